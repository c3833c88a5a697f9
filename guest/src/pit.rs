//! The 8254 PIT's channel 0 as a watchdog tick (IRQ 0) for tests that wait
//! in `hlt`: a guest that halts for an interrupt that never comes still
//! wakes up and can fail the test instead of hanging.

use core::sync::atomic::{AtomicU32, Ordering};

use crate::arch::io::outb;

const CHANNEL0: u16 = 0x40;
const MODE: u16 = 0x43;
/// Channel 0, lobyte/hibyte, mode 2 (rate generator), binary.
const RATE_GENERATOR: u8 = 0x34;
/// Channel 0, lobyte/hibyte, mode 0 (one shot, stays low): stops the ticks.
const ONE_SHOT: u8 = 0x30;
/// The PIT's input clock in Hz.
const PIT_HZ: u32 = 1_193_182;

static TICKS: AtomicU32 = AtomicU32::new(0);

/// Called from the IRQ 0 handler.
pub fn tick() {
    TICKS.fetch_add(1, Ordering::Relaxed);
}

/// Ticks so far.
pub fn ticks() -> u32 {
    TICKS.load(Ordering::Relaxed)
}

/// Starts periodic ticks at about `hz` (1..=1000) per second.
pub fn start(hz: u32) {
    let divisor = PIT_HZ / hz.clamp(19, 1000);
    let [lo, hi, ..] = divisor.to_le_bytes();
    outb(MODE, RATE_GENERATOR);
    outb(CHANNEL0, lo);
    outb(CHANNEL0, hi);
}

/// Stops the ticks (a one-shot count that is never reloaded).
pub fn stop() {
    outb(MODE, ONE_SHOT);
    outb(CHANNEL0, 0xFF);
    outb(CHANNEL0, 0xFF);
}
