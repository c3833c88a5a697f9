//! COM1 (16550 UART at 0x3F8), output only.
//!
//! Initialisation: 115200 8N1, FIFOs on, no interrupts. Each byte waits for
//! THRE, bounded: after [`THRE_POLLS`] reads the byte is sent anyway, and
//! from then on the UART is assumed not to report THRE at all (so a VMM
//! with a minimal UART is not slowed down by a timeout per byte).

use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::arch::io::{inb, outb};

/// COM1 base port.
pub const COM1: u16 = 0x3F8;
const THR: u16 = COM1;
const IER: u16 = COM1 + 1;
const FCR: u16 = COM1 + 2;
const LCR: u16 = COM1 + 3;
const MCR: u16 = COM1 + 4;
const LSR: u16 = COM1 + 5;
const LSR_THRE: u8 = 0x20;
/// Line status reads before a byte is written regardless.
pub const THRE_POLLS: u32 = 10_000;

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

/// Sends one byte.
pub fn write_byte(b: u8) {
    if !NO_THRE.load(Ordering::Relaxed) && !(0..THRE_POLLS).any(|_| inb(LSR) & LSR_THRE != 0) {
        NO_THRE.store(true, Ordering::Relaxed);
    }
    outb(THR, b);
}

/// A `fmt::Write` handle to COM1.
pub struct Serial;

impl fmt::Write for Serial {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            write_byte(b);
        }
        Ok(())
    }
}
