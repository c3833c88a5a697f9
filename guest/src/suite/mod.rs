//! The test suites and their runner.
//!
//! Output, one line per test, then a summary line, then the debug-exit
//! write (`GUEST_EXIT_PASS` only if nothing failed):
//!
//! ```text
//! test NAME ... ok
//! test NAME ... FAILED: reason
//! test NAME ... skipped: reason
//! N passed, M failed, K skipped
//! ```
//!
//! Every disk write is announced on the console before it is issued, as
//! `vmdma-manifest: write LBA COUNT PATTERN` or `vmdma-manifest: trim LBA
//! COUNT` (see [`vmdma_core::protocol::MANIFEST_PREFIX`]); the host replays
//! these lines to check the image.
#![forbid(unsafe_code)]
// Without a heap, a failure carries its reason inline (`Msg`); the error
// path is cold, so the large `Err` variant costs nothing that matters.
#![expect(
    clippy::result_large_err,
    reason = "fixed-size failure messages, no heap"
)]

mod commands;
mod ctx;
mod dma;
mod errors;
mod identify;
mod integrity;
mod io;
mod irq;
mod mmio;
mod pio;
mod prd;
mod readonly;
mod registers;

use core::fmt;

use vmdma_core::protocol::{GUEST_EXIT_FAIL, GUEST_EXIT_PASS};
use vmdma_guest::cmdline::{Options, Suite};
use vmdma_guest::msg::Msg;

use crate::arch::dma_memory::{DmaMemory, Stage};
use crate::ide::AtaError;
use crate::println;

pub use ctx::Ctx;

/// How a test ended, when it did not fail.
#[expect(
    clippy::large_enum_variant,
    reason = "fixed-size skip reasons, no heap"
)]
pub enum Outcome {
    /// Every assertion held.
    Pass,
    /// The test cannot run on this platform or disk.
    Skip(Msg),
}

/// Why a test failed.
pub struct Fail(pub Msg);

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl From<AtaError> for Fail {
    fn from(e: AtaError) -> Self {
        Fail(vmdma_guest::msg!("{e}"))
    }
}

/// A test's result.
pub type TestResult = Result<Outcome, Fail>;

/// A named test.
pub struct Test {
    /// Name printed in the report.
    pub name: &'static str,
    /// The test.
    pub run: fn(&mut Ctx) -> TestResult,
}

/// Fails the test with a formatted reason unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            return Err($crate::suite::Fail(vmdma_guest::msg!($($arg)*)));
        }
    };
}

/// Fails the test unless `got == want` (printed in hex).
#[macro_export]
macro_rules! ensure_eq {
    ($got:expr, $want:expr, $what:expr) => {{
        let (got, want) = ($got, $want);
        if got != want {
            return Err($crate::suite::Fail(vmdma_guest::msg!(
                "{}: got {:#x}, want {:#x}",
                $what,
                got,
                want
            )));
        }
    }};
}

/// Returns a skip with a formatted reason.
#[macro_export]
macro_rules! skip {
    ($($arg:tt)*) => {
        return Ok($crate::suite::Outcome::Skip(vmdma_guest::msg!($($arg)*)))
    };
}

/// Shorthand for a passing result.
pub const PASS: TestResult = Ok(Outcome::Pass);

/// The conformance suite, in run order (later tests change device state:
/// transfer modes, multiple mode).
pub const CONFORMANCE: &[Test] = &[
    Test {
        name: "srst_signature",
        run: registers::srst_signature,
    },
    Test {
        name: "identify_device",
        run: identify::identify_device,
    },
    Test {
        name: "identify_capacity",
        run: identify::identify_capacity,
    },
    Test {
        name: "identify_lba48_bits",
        run: identify::identify_lba48_bits,
    },
    Test {
        name: "identify_dma_modes",
        run: identify::identify_dma_modes,
    },
    Test {
        name: "identify_flush_bits",
        run: identify::identify_flush_bits,
    },
    Test {
        name: "identify_strings",
        run: identify::identify_strings,
    },
    Test {
        name: "pio_rw_16bit",
        run: pio::pio_rw_16bit,
    },
    Test {
        name: "pio_rw_32bit",
        run: pio::pio_rw_32bit,
    },
    Test {
        name: "pio_rw_lba48",
        run: pio::pio_rw_lba48,
    },
    Test {
        name: "read_write_multiple",
        run: pio::read_write_multiple,
    },
    Test {
        name: "set_multiple_invalid",
        run: pio::set_multiple_invalid,
    },
    Test {
        name: "dma_single_prd",
        run: dma::dma_single_prd,
    },
    Test {
        name: "dma_many_prds",
        run: dma::dma_many_prds,
    },
    Test {
        name: "dma_noncontiguous_odd",
        run: dma::dma_noncontiguous_odd,
    },
    Test {
        name: "dma_64k_entries",
        run: dma::dma_64k_entries,
    },
    Test {
        name: "dma_lba48_count_above_256",
        run: dma::dma_lba48_count_above_256,
    },
    Test {
        name: "dma_mmio_bounce",
        run: mmio::dma_mmio_bounce,
    },
    Test {
        name: "dma_mmio_retry",
        run: mmio::dma_mmio_retry,
    },
    Test {
        name: "lba28_last_sector",
        run: dma::lba28_last_sector,
    },
    Test {
        name: "lba48_above_2_28",
        run: dma::lba48_above_2_28,
    },
    Test {
        name: "lba48_cross_2_28",
        run: dma::lba48_cross_2_28,
    },
    Test {
        name: "disk_last_sectors",
        run: dma::disk_last_sectors,
    },
    Test {
        name: "prd_exact",
        run: prd::prd_exact,
    },
    Test {
        name: "prd_short_read",
        run: prd::prd_short_read,
    },
    Test {
        name: "prd_short_write",
        run: prd::prd_short_write,
    },
    Test {
        name: "prd_long",
        run: prd::prd_long,
    },
    Test {
        name: "start_before_command",
        run: prd::start_before_command,
    },
    Test {
        name: "start_after_command",
        run: prd::start_after_command,
    },
    Test {
        name: "taskfile_locked_during_dma",
        run: prd::taskfile_locked_during_dma,
    },
    Test {
        name: "stop_mid_transfer_read",
        run: prd::stop_mid_transfer_read,
    },
    Test {
        name: "stop_mid_transfer_write",
        run: prd::stop_mid_transfer_write,
    },
    Test {
        name: "irq_dma_completion",
        run: irq::irq_dma_completion,
    },
    Test {
        name: "irq_non_data_sets_bm_int",
        run: irq::irq_non_data_sets_bm_int,
    },
    Test {
        name: "status_read_clears_irq",
        run: irq::status_read_clears_irq,
    },
    Test {
        name: "nien_dma_no_irq",
        run: irq::nien_dma_no_irq,
    },
    Test {
        name: "nien_non_data_no_irq",
        run: irq::nien_non_data_no_irq,
    },
    Test {
        name: "hob_readback",
        run: registers::hob_readback,
    },
    Test {
        name: "hob_cleared_by_register_write",
        run: registers::hob_cleared_by_register_write,
    },
    Test {
        name: "absent_slave",
        run: registers::absent_slave,
    },
    Test {
        name: "bm_registers",
        run: registers::bm_registers,
    },
    Test {
        name: "out_of_range_pio_read",
        run: errors::out_of_range_pio_read,
    },
    Test {
        name: "out_of_range_dma_read",
        run: errors::out_of_range_dma_read,
    },
    Test {
        name: "out_of_range_dma_write",
        run: errors::out_of_range_dma_write,
    },
    Test {
        name: "unknown_command",
        run: errors::unknown_command,
    },
    Test {
        name: "set_features_invalid",
        run: errors::set_features_invalid,
    },
    Test {
        name: "readonly_refuses_writes",
        run: readonly::skipped_in_conformance,
    },
    Test {
        name: "flush_cache",
        run: commands::flush_cache,
    },
    Test {
        name: "flush_cache_ext",
        run: commands::flush_cache_ext,
    },
    Test {
        name: "trim",
        run: commands::trim,
    },
    Test {
        name: "trim_out_of_range",
        run: errors::trim_out_of_range,
    },
    Test {
        name: "set_features_mwdma2",
        run: commands::set_features_mwdma2,
    },
    Test {
        name: "set_features_udma5",
        run: commands::set_features_udma5,
    },
    Test {
        name: "read_verify",
        run: commands::read_verify,
    },
    Test {
        name: "read_verify_ext",
        run: commands::read_verify_ext,
    },
    Test {
        name: "check_power_mode",
        run: commands::check_power_mode,
    },
    Test {
        name: "execute_device_diagnostic",
        run: commands::execute_device_diagnostic,
    },
    Test {
        name: "read_native_max",
        run: commands::read_native_max,
    },
    Test {
        name: "read_native_max_ext",
        run: commands::read_native_max_ext,
    },
    Test {
        name: "data_integrity_scattered",
        run: integrity::data_integrity_scattered,
    },
];

/// The read-only suite (run with `suite=readonly` on a read-only disk).
pub const READONLY: &[Test] = &[
    Test {
        name: "srst_signature",
        run: registers::srst_signature,
    },
    Test {
        name: "identify_device",
        run: identify::identify_device,
    },
    Test {
        name: "identify_capacity",
        run: identify::identify_capacity,
    },
    Test {
        name: "readonly_reads_agree",
        run: readonly::reads_agree,
    },
    Test {
        name: "readonly_refuses_pio_write",
        run: readonly::refuses_pio_write,
    },
    Test {
        name: "readonly_refuses_dma_write",
        run: readonly::refuses_dma_write,
    },
];

/// Runs the suite `options` selects; returns the debug-exit value.
pub fn run(
    options: &Options<'_>,
    bmiba: u16,
    mem: &'static mut DmaMemory,
    stage: &'static mut Stage,
) -> u32 {
    let mut ctx = match Ctx::new(options, bmiba, mem, stage) {
        Ok(c) => c,
        Err(f) => {
            println!("vmdma-guest: fatal: {f}");
            return GUEST_EXIT_FAIL;
        }
    };
    let tests = match options.suite {
        Suite::Conformance => CONFORMANCE,
        Suite::ReadOnly => READONLY,
    };
    println!(
        "running {} tests (suite={})",
        tests.len(),
        options.suite.name()
    );
    let (mut passed, mut failed, mut skipped) = (0u32, 0u32, 0u32);
    for test in tests {
        let result = (test.run)(&mut ctx);
        let leftover = ctx.recover();
        match (result, leftover) {
            (Ok(Outcome::Pass), None) => {
                passed += 1;
                println!("test {} ... ok", test.name);
            }
            (Ok(Outcome::Pass), Some(why)) => {
                failed += 1;
                println!("test {} ... FAILED: {why}", test.name);
            }
            (Ok(Outcome::Skip(why)), _) => {
                skipped += 1;
                println!("test {} ... skipped: {why}", test.name);
            }
            (Err(why), _) => {
                failed += 1;
                println!("test {} ... FAILED: {why}", test.name);
            }
        }
    }
    let stray = crate::pic::stray_count();
    if stray != 0 {
        println!("vmdma-guest: {stray} interrupts other than IRQ 14 arrived");
    }
    println!("{passed} passed, {failed} failed, {skipped} skipped");
    if failed == 0 {
        GUEST_EXIT_PASS
    } else {
        GUEST_EXIT_FAIL
    }
}
