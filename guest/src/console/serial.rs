//! COM1 (16550 UART at 0x3F8), output only.
//!
//! Initialisation: 115200 8N1, FIFOs on, no interrupts. Output leaves in
//! bursts of up to [`FIFO_LEN`] bytes: wait for THRE (with the FIFOs on it
//! means the transmit FIFO is empty), then write the burst with one
//! `rep outsb`. A 16550A accepts a FIFO's worth of bytes after THRE (Linux's
//! 8250 driver sends up to its FIFO size per THRE), and a VMM that batches
//! string I/O (KVM) sees one exit for the burst: two exits per 16 bytes
//! instead of two per byte.
//!
//! The THRE wait is bounded: after [`THRE_POLLS`] reads the burst is sent
//! anyway, and from then on the UART is assumed not to report THRE at all
//! (so a VMM with a minimal UART is not slowed down by a timeout per burst).

use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::arch::io::{inb, outb, outsb};

/// COM1 base port.
pub const COM1: u16 = 0x3F8;
const THR: u16 = COM1;
const IER: u16 = COM1 + 1;
const FCR: u16 = COM1 + 2;
const LCR: u16 = COM1 + 3;
const MCR: u16 = COM1 + 4;
const LSR: u16 = COM1 + 5;
const LSR_THRE: u8 = 0x20;
/// Line status reads before a burst is written regardless.
pub const THRE_POLLS: u32 = 10_000;
/// Bytes per burst: the 16550A's transmit FIFO.
pub const FIFO_LEN: usize = 16;

/// Set once THRE failed to appear within [`THRE_POLLS`] reads.
static NO_THRE: AtomicBool = AtomicBool::new(false);

/// Programs the UART.
pub fn init() {
    outb(IER, 0x00); // no interrupts
    outb(LCR, 0x80); // DLAB
    outb(THR, 0x01); // divisor 1 = 115200 baud
    outb(IER, 0x00);
    outb(LCR, 0x03); // 8N1
    outb(FCR, 0xC7); // enable and clear FIFOs
    outb(MCR, 0x03); // DTR | RTS, OUT2 off (no IRQ)
}

/// Sends up to [`FIFO_LEN`] bytes (more are cut off) as one burst.
fn send_burst(bytes: &[u8]) {
    let bytes = bytes.get(..FIFO_LEN).unwrap_or(bytes);
    if bytes.is_empty() {
        return;
    }
    if !NO_THRE.load(Ordering::Relaxed) && !(0..THRE_POLLS).any(|_| inb(LSR) & LSR_THRE != 0) {
        NO_THRE.store(true, Ordering::Relaxed);
    }
    outsb(THR, bytes);
}

/// A `fmt::Write` handle to COM1 that collects bytes into FIFO-sized
/// bursts. Whatever is left is sent when it is dropped (the `print!`
/// macros drop it at the end of each call).
pub struct Serial {
    buf: [u8; FIFO_LEN],
    len: usize,
}

impl Serial {
    /// An empty writer.
    pub const fn new() -> Self {
        Serial {
            buf: [0; FIFO_LEN],
            len: 0,
        }
    }

    /// Sends the collected bytes.
    pub fn flush(&mut self) {
        send_burst(self.buf.get(..self.len).unwrap_or(&[]));
        self.len = 0;
    }
}

impl Default for Serial {
    fn default() -> Self {
        Serial::new()
    }
}

impl fmt::Write for Serial {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Whole pieces at a time (one bulk copy each), not byte by byte:
        // guest instructions may be emulated one by one.
        let mut rest = s.as_bytes();
        while !rest.is_empty() {
            if self.len == FIFO_LEN {
                self.flush();
            }
            let room = FIFO_LEN - self.len;
            let (piece, tail) = rest.split_at(room.min(rest.len()));
            if let Some(dst) = self.buf.get_mut(self.len..self.len + piece.len()) {
                dst.copy_from_slice(piece);
            }
            self.len += piece.len();
            rest = tail;
        }
        Ok(())
    }
}

impl Drop for Serial {
    fn drop(&mut self) {
        self.flush();
    }
}
