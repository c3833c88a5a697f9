//! The TSC frequency, to turn benchmark cycles into time.
//!
//! CPUID leaf 0x15 gives it exactly when the CPU reports both its crystal
//! frequency and the TSC/crystal ratio; otherwise (AMD CPUs, and KVM on
//! them) it is measured against channel 2 of the 8254 PIT, which counts at
//! 1.193182 MHz: one-shot over 11932 ticks (10 ms), gated and watched
//! through port 0x61, three times, the median kept (a VMM's first access
//! to the PIT was seen to be slow enough to skew one measurement by a
//! quarter). Leaf 0x16 (a nominal "base frequency" in MHz) is not
//! used: it is not a measurement of the TSC.

use core::fmt;

use crate::arch::cpu;
use crate::arch::io::{inb, outb};

/// Where the frequency came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// CPUID leaf 0x15 (crystal frequency × ratio).
    Cpuid15,
    /// Calibrated against the PIT.
    Pit,
}

impl Source {
    /// The name printed in the benchmark report.
    pub const fn name(self) -> &'static str {
        match self {
            Source::Cpuid15 => "cpuid-15h",
            Source::Pit => "pit",
        }
    }
}

/// The TSC frequency and its source.
#[derive(Clone, Copy, Debug)]
pub struct TscFrequency {
    /// Cycles per second.
    pub hz: u64,
    /// Where it came from.
    pub source: Source,
}

impl fmt::Display for TscFrequency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tsc_hz={} tsc_source={}", self.hz, self.source.name())
    }
}

/// PIT input clock.
const PIT_HZ: u64 = 1_193_182;
/// Calibration length in PIT ticks (10 ms).
const PIT_TICKS: u16 = 11_932;
const PIT_CH2: u16 = 0x42;
const PIT_MODE: u16 = 0x43;
/// Channel 2, low then high byte, mode 0 (one-shot), binary.
const PIT_CH2_ONESHOT: u8 = 0b1011_0000;
/// System control port B: bit 0 gates channel 2, bit 1 drives the speaker,
/// bit 5 reads channel 2's output.
const PORT_B: u16 = 0x61;
const GATE2: u8 = 0x01;
const SPEAKER: u8 = 0x02;
const OUT2: u8 = 0x20;
/// Port reads before the calibration gives up (a PIT that never fires).
const MAX_POLLS: u32 = 10_000_000;
/// Plausible TSC frequencies.
const PLAUSIBLE: core::ops::RangeInclusive<u64> = 100_000_000..=20_000_000_000;

/// Why the frequency is unknown.
#[derive(Clone, Copy, Debug)]
pub enum TscError {
    /// The PIT's channel 2 output never went high.
    PitSilent,
    /// The measured value is implausible.
    Implausible(u64),
}

impl fmt::Display for TscError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TscError::PitSilent => f.write_str("PIT channel 2 never reached its terminal count"),
            TscError::Implausible(hz) => write!(f, "implausible TSC frequency {hz} Hz"),
        }
    }
}

/// The TSC frequency (leaf 0x15 if complete, else the PIT).
pub fn frequency() -> Result<TscFrequency, TscError> {
    if let Some(hz) = from_cpuid() {
        return Ok(TscFrequency {
            hz,
            source: Source::Cpuid15,
        });
    }
    let mut hz = [from_pit()?, from_pit()?, from_pit()?];
    hz.sort_unstable();
    let [_, hz, _] = hz;
    if !PLAUSIBLE.contains(&hz) {
        return Err(TscError::Implausible(hz));
    }
    Ok(TscFrequency {
        hz,
        source: Source::Pit,
    })
}

/// Leaf 0x15: TSC = crystal (ecx) × ebx / eax, when all three are given.
fn from_cpuid() -> Option<u64> {
    let (max, ..) = cpu::cpuid(0);
    if max < 0x15 {
        return None;
    }
    let (denominator, numerator, crystal, _) = cpu::cpuid(0x15);
    if denominator == 0 || numerator == 0 || crystal == 0 {
        return None;
    }
    let hz = u64::from(crystal) * u64::from(numerator) / u64::from(denominator);
    PLAUSIBLE.contains(&hz).then_some(hz)
}

/// TSC cycles over [`PIT_TICKS`] of channel 2, scaled to one second.
fn from_pit() -> Result<u64, TscError> {
    let b = inb(PORT_B) & !(GATE2 | SPEAKER);
    outb(PORT_B, b);
    outb(PIT_MODE, PIT_CH2_ONESHOT);
    let [lo, hi] = PIT_TICKS.to_le_bytes();
    outb(PIT_CH2, lo);
    outb(PIT_CH2, hi);
    let start = cpu::rdtsc();
    outb(PORT_B, b | GATE2);
    let fired = (0..MAX_POLLS).any(|_| inb(PORT_B) & OUT2 != 0);
    let end = cpu::rdtsc();
    outb(PORT_B, b);
    if !fired {
        return Err(TscError::PitSilent);
    }
    let cycles = end.wrapping_sub(start);
    Ok(cycles.saturating_mul(PIT_HZ) / u64::from(PIT_TICKS))
}
