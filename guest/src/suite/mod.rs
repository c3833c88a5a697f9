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
//! COUNT` (see [`vmdma_protocol::MANIFEST_PREFIX`]); the host replays
//! these lines to check the image.
#![forbid(unsafe_code)]
// Without a heap, a failure carries its reason inline (`Msg`); the error
// path is cold, so the large `Err` variant costs nothing that matters.
#![expect(
    clippy::result_large_err,
    reason = "fixed-size failure messages, no heap"
)]

mod async_io;
mod atapi;
mod commands;
mod ctx;
mod dma;
mod errors;
pub mod hostile;
mod identify;
mod integrity;
mod io;
mod irq;
mod lists;
mod mmio;
mod pio;
mod prd;
mod readonly;
mod registers;

use core::fmt;

use vmdma_guest::cmdline::{Options, Suite};
use vmdma_guest::msg::Msg;
use vmdma_protocol::{GUEST_EXIT_FAIL, GUEST_EXIT_PASS};

use crate::arch::dma_memory::{DmaMemory, Stage};
use crate::ide::AtaError;
use crate::pci::IdeSetup;
use crate::platform::BootInfo;
use crate::println;

pub use ctx::Ctx;
use lists::{ATAPI, ATAPI_TRAY, CONFORMANCE, ISO, READONLY};

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

impl From<vmdma_guest::ata::taskfile::AddressError> for Fail {
    fn from(e: vmdma_guest::ata::taskfile::AddressError) -> Self {
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

impl Test {
    /// A named test.
    pub const fn new(name: &'static str, run: fn(&mut Ctx) -> TestResult) -> Self {
        Test { name, run }
    }
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

/// Runs the suite `options` selects; returns the debug-exit value.
pub fn run(
    options: &Options,
    boot: &BootInfo,
    ide: &IdeSetup,
    mem: &'static mut DmaMemory,
    stage: &'static mut Stage,
) -> u32 {
    let tests = match options.suite {
        Suite::Conformance => CONFORMANCE,
        Suite::ReadOnly => READONLY,
        Suite::Atapi => ATAPI,
        Suite::Iso => ISO,
        Suite::AtapiTray => ATAPI_TRAY,
        Suite::Hostile => return hostile::run(options, boot, ide, mem, stage),
    };
    let mut ctx = match Ctx::new(options, ide.bmiba, mem, stage) {
        Ok(c) => c,
        Err(f) => {
            println!("vmdma-guest: fatal: {f}");
            return GUEST_EXIT_FAIL;
        }
    };
    crate::banner!(
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
