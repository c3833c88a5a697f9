//! COM1: a 16550A UART from rust-vmm's `vm-superio`, output to a writer
//! (stdout), interrupts on IRQ 4 through the in-kernel PIC/IOAPIC (an
//! [`IrqLine`](crate::devices::irq::IrqLine) as the trigger).

use std::io::Write;

use vm_superio::{Serial, Trigger};

use crate::devices::bus::PioDevice;

/// COM1 base port.
pub const COM1_BASE: u16 = 0x3F8;
/// Ports decoded by a 16550.
pub const COM1_LEN: u16 = 8;
/// COM1's ISA interrupt.
pub const COM1_IRQ: u32 = 4;

/// The UART as a port-I/O device. Byte accesses only.
pub struct SerialPort<T: Trigger, W: Write> {
    uart: Serial<T, vm_superio::serial::NoEvents, W>,
    errors: u64,
}

impl<T: Trigger, W: Write> std::fmt::Debug for SerialPort<T, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SerialPort")
            .field("errors", &self.errors)
            .finish()
    }
}

impl<T: Trigger, W: Write> SerialPort<T, W> {
    /// A UART that writes to `out` and signals through `irq`.
    pub fn new(irq: T, out: W) -> Self {
        SerialPort {
            uart: Serial::new(irq, out),
            errors: 0,
        }
    }

    /// Output or interrupt failures so far (the guest is not told; output
    /// to a closed stdout is simply lost).
    pub fn errors(&self) -> u64 {
        self.errors
    }

    /// The output writer.
    pub fn writer_mut(&mut self) -> &mut W {
        self.uart.writer_mut()
    }
}

impl<T: Trigger + Send, W: Write + Send> PioDevice for SerialPort<T, W> {
    fn read(&mut self, offset: u16, data: &mut [u8]) {
        match (u8::try_from(offset), data) {
            (Ok(off), [b]) => *b = self.uart.read(off),
            (_, data) => data.fill(0xFF),
        }
    }

    fn write(&mut self, offset: u16, data: &[u8]) {
        if let (Ok(off), [b]) = (u8::try_from(offset), data)
            && self.uart.write(off, *b).is_err()
        {
            self.errors = self.errors.saturating_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::irq::NoIrq;

    #[test]
    fn transmit_goes_to_the_writer() {
        let mut s = SerialPort::new(NoIrq, Vec::new());
        for &b in b"ok\n" {
            s.write(0, &[b]);
        }
        assert_eq!(s.writer_mut().as_slice(), b"ok\n");
        // Line status: transmitter empty.
        let mut lsr = [0u8];
        s.read(5, &mut lsr);
        assert_ne!(lsr[0] & 0x20, 0);
        assert_eq!(s.errors(), 0);
    }
}
