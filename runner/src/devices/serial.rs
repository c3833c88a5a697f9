//! COM1: a 16550A UART from rust-vmm's `vm-superio`, output to a writer
//! (stdout), interrupts on IRQ 4 through the in-kernel PIC/IOAPIC (an
//! [`IrqLine`](crate::devices::irq::IrqLine) as the trigger).
//!
//! # The transmit register without exits
//!
//! While the guest has every UART interrupt disabled (IER = 0, as a polled
//! console keeps it: our guest, Linux's console writes, firmware), a write
//! to the transmit register has no effect the guest can see without a
//! read of one of the UART's registers, and every read is an exit, which
//! applies the writes KVM coalesced first. So the transmit register is
//! then a KVM coalesced zone ([`SwitchedZone`]): a line of output costs no
//! exit per byte. The moment IER enables an interrupt (its write is an
//! exit), the zone is switched off again, so an interrupt-driven driver
//! gets its THRE interrupt right after its write, as before.
//!
//! What changes is when the bytes reach stdout: at the vCPU thread's next
//! return from `KVM_RUN` instead of at the write. The guest's next port
//! access that exits does that (our guest reads LSR before each burst and
//! ends with the debug-exit write); a guest that prints and then neither
//! exits nor halts is kicked out of `KVM_RUN` by the supervisor's halt
//! probe within its 100 ms interval, which applies them too.

use std::io::Write;

use vm_superio::{Serial, Trigger};

use crate::devices::bus::PioDevice;
use crate::kvm::coalesced::SwitchedZone;

/// COM1 base port.
pub const COM1_BASE: u16 = 0x3F8;
/// Ports decoded by a 16550.
pub const COM1_LEN: u16 = 8;
/// COM1's ISA interrupt.
pub const COM1_IRQ: u32 = 4;
/// The transmit register's port (also the receive buffer and, with DLAB,
/// the divisor's low byte): the zone [`SerialPort::coalesce_transmit`]
/// takes.
pub const COM1_THR: u16 = COM1_BASE;
/// The interrupt enable register's offset (with DLAB: the divisor's high
/// byte).
const IER_OFFSET: u16 = 1;

/// The console's writer: `vm-superio` flushes after every byte, which on
/// stdout is a system call per byte; this passes whole lines on instead
/// (the flush after a line end goes through) and flushes the rest at
/// [`ConsoleOut::finish`].
#[derive(Debug)]
pub struct ConsoleOut<W: Write> {
    inner: W,
    line_end: bool,
}

impl<W: Write> ConsoleOut<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        ConsoleOut {
            inner,
            line_end: false,
        }
    }

    /// Flushes everything written so far.
    pub fn finish(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }

    /// The wrapped writer.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }
}

impl<W: Write> Write for ConsoleOut<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        if let Some(last) = buf.get(..n).and_then(<[u8]>::last) {
            self.line_end = *last == b'\n';
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.line_end {
            self.inner.flush()
        } else {
            Ok(())
        }
    }
}

/// The UART as a port-I/O device. Byte accesses only.
pub struct SerialPort<T: Trigger, W: Write> {
    uart: Serial<T, vm_superio::serial::NoEvents, W>,
    errors: u64,
    /// The transmit register as a coalesced zone, where KVM has them.
    tx_zone: Option<SwitchedZone>,
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
            tx_zone: None,
        }
    }

    /// Has KVM coalesce writes to the transmit register whenever the guest
    /// has no UART interrupt enabled (see the module docs); `zone` is
    /// that register's.
    pub fn coalesce_transmit(&mut self, zone: SwitchedZone) {
        self.tx_zone = Some(zone);
        self.switch_tx_zone();
    }

    /// Switches the transmit zone to what the interrupt enables allow.
    fn switch_tx_zone(&mut self) {
        if let Some(zone) = &mut self.tx_zone {
            // With an interrupt enabled, a transmitted byte may raise one
            // (THRE, or received data in loopback mode): it must exit.
            zone.set(self.uart.state().interrupt_enable == 0);
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

    /// The UART's registers and receive FIFO, as bytes (for a snapshot):
    /// the nine registers, then the FIFO's length and bytes.
    pub fn state_bytes(&self) -> Vec<u8> {
        let s = self.uart.state();
        let mut v = vec![
            s.baud_divisor_low,
            s.baud_divisor_high,
            s.interrupt_enable,
            s.interrupt_identification,
            s.line_control,
            s.line_status,
            s.modem_control,
            s.modem_status,
            s.scratch,
            s.in_buffer.len() as u8,
        ];
        v.extend_from_slice(&s.in_buffer);
        v
    }

    /// A UART in the state [`SerialPort::state_bytes`] gave (the pending
    /// interrupt, if any, is raised again). The bytes are checked.
    pub fn from_state_bytes(bytes: &[u8], irq: T, out: W) -> Result<Self, &'static str> {
        let [
            baud_divisor_low,
            baud_divisor_high,
            interrupt_enable,
            interrupt_identification,
            line_control,
            line_status,
            modem_control,
            modem_status,
            scratch,
            n,
            rest @ ..,
        ] = bytes
        else {
            return Err("COM1 state truncated");
        };
        if rest.len() != usize::from(*n) {
            return Err("COM1 receive FIFO length does not match");
        }
        let state = vm_superio::serial::SerialState {
            baud_divisor_low: *baud_divisor_low,
            baud_divisor_high: *baud_divisor_high,
            interrupt_enable: *interrupt_enable,
            interrupt_identification: *interrupt_identification,
            line_control: *line_control,
            line_status: *line_status,
            modem_control: *modem_control,
            modem_status: *modem_status,
            scratch: *scratch,
            in_buffer: rest.to_vec(),
        };
        let uart = Serial::from_state(&state, irq, vm_superio::serial::NoEvents, out)
            .map_err(|_| "COM1 state refused (receive FIFO too long, or its interrupt)")?;
        Ok(SerialPort {
            uart,
            errors: 0,
            tx_zone: None,
        })
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
        if offset == IER_OFFSET {
            self.switch_tx_zone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::irq::NoIrq;

    #[test]
    fn state_round_trips_and_is_checked() {
        let mut s = SerialPort::new(NoIrq, Vec::new());
        // Line control, scratch, interrupt enable.
        s.write(3, &[0x03]);
        s.write(7, &[0x5A]);
        s.write(1, &[0x01]);
        let b = s.state_bytes();
        let mut t = SerialPort::from_state_bytes(&b, NoIrq, Vec::new()).unwrap();
        assert_eq!(t.state_bytes(), b);
        let mut scratch = [0u8];
        t.read(7, &mut scratch);
        assert_eq!(scratch[0], 0x5A);
        assert!(SerialPort::from_state_bytes(&b[..5], NoIrq, Vec::new()).is_err());
        let mut long = b.clone();
        long[9] = 200;
        long.extend(std::iter::repeat_n(0u8, 200));
        assert!(SerialPort::from_state_bytes(&long, NoIrq, Vec::new()).is_err());
    }

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

    /// Counts flushes that reach the inner writer.
    #[derive(Default)]
    struct Flushes(Vec<u8>, usize);
    impl Write for Flushes {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.1 += 1;
            Ok(())
        }
    }

    #[test]
    fn console_flushes_at_line_ends_and_finish() {
        let mut s = SerialPort::new(NoIrq, ConsoleOut::new(Flushes::default()));
        for &b in b"ab\ncd" {
            s.write(0, &[b]);
        }
        assert_eq!(s.writer_mut().get_ref().0, b"ab\ncd");
        assert_eq!(
            s.writer_mut().get_ref().1,
            1,
            "one flush, after the line end"
        );
        s.writer_mut().finish().unwrap();
        assert_eq!(s.writer_mut().get_ref().1, 2);
    }
}
