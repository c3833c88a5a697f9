//! The hostile-guest suite (`suite=hostile`): attacks on the IDE controller
//! and the PCI function around it, one file per attack class, each case
//! ending in a verdict:
//!
//! | verdict | meaning |
//! |---|---|
//! | PASS | the device answered sanely (the data went where the guest asked, or nowhere) and kept working |
//! | REJECT | the device refused in a documented way (ABRT, BMDMA ERR, the short-PRD outcome) |
//! | FAIL | wrong data, memory outside the target touched, a bad status |
//! | WEDGED | the channel no longer works after the guest's best recovery |
//! | SKIP | the case does not apply to this platform or disk |
//!
//! After every case the runner ([`checks`]) restores the platform state
//! cases may change (PCI configuration, PIC, Device Control, bus master),
//! resets the channel (SRST), re-identifies the disk, runs a known-good DMA
//! read with canaries around it, re-stamps sectors a case wrote with
//! unpredictable content, and checks the sentinels: the guard areas around
//! the DMA memory, the free RAM below 1 MiB and a copy of the guest image.
//! A wedge or a corruption is therefore attributed to the case that caused
//! it: recovery failing makes the verdict WEDGED, a sentinel hit makes it
//! FAIL.
//!
//! Output: a start line before each case (so a VMM that dies in a case
//! leaves `running case NAME` without a verdict line after it; manifest
//! lines may come in between) and a verdict line after it:
//!
//! ```text
//! running N hostile cases (suite=hostile)
//! running case NAME
//! case NAME ... PASS: reason | REJECT: reason | FAIL: reason | WEDGED: reason | SKIP: reason
//! hostile: P pass, R reject, F fail, W wedged, S skip
//! ```
//!
//! Reasons are deterministic (no timings or counters that vary between
//! runs), so that host tools can compare runs and platforms. The exit value
//! is `GUEST_EXIT_PASS` unless a case was FAIL or WEDGED.
//!
//! Disk writes go through the suite's write announcements ([`Ctx`]'s
//! manifest calls): writes of stamped data are announced before they are
//! issued; a write whose content the guest cannot predict (its PRDs point
//! at holes or device windows) is followed, after the case, by an announced
//! re-stamping write of the same sectors.
#![forbid(unsafe_code)]

mod atapi;
mod busy;
mod checks;
mod env;
mod irq;
mod lba;
mod lists;
mod midway;
mod opcodes;
mod params;
mod pci_cfg;
mod pio_flood;
mod prd_addr;
mod prd_table;
mod raw;
mod trim;

use core::fmt;

use vmdma_guest::cmdline::{CaseSelection, Options};
use vmdma_guest::msg::Msg;
use vmdma_protocol::{GUEST_EXIT_FAIL, GUEST_EXIT_PASS};

use super::{Ctx, Fail};
use crate::arch::dma_memory::{DmaMemory, Stage};
use crate::pci::IdeSetup;
use crate::platform::BootInfo;
use crate::println;

pub use env::Hx;

/// How a case ended.
#[derive(Clone)]
pub enum Verdict {
    /// The device answered sanely and kept working.
    Pass(Msg),
    /// The device refused in a documented way.
    Reject(Msg),
    /// Wrong data, memory outside the target touched, a bad status.
    Fail(Msg),
    /// The channel does not work after the guest's best recovery.
    Wedged(Msg),
    /// Not applicable here.
    Skip(Msg),
}

impl Verdict {
    /// The verdict's word.
    pub fn word(&self) -> &'static str {
        match self {
            Verdict::Pass(_) => "PASS",
            Verdict::Reject(_) => "REJECT",
            Verdict::Fail(_) => "FAIL",
            Verdict::Wedged(_) => "WEDGED",
            Verdict::Skip(_) => "SKIP",
        }
    }

    fn reason(&self) -> &Msg {
        match self {
            Verdict::Pass(m)
            | Verdict::Reject(m)
            | Verdict::Fail(m)
            | Verdict::Wedged(m)
            | Verdict::Skip(m) => m,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.word(), self.reason())
    }
}

/// A case's result: a verdict, or a failure raised with `?` (FAIL).
pub type CaseResult = Result<Verdict, Fail>;

/// PASS with a formatted reason.
#[macro_export]
macro_rules! pass {
    ($($arg:tt)*) => {
        Ok($crate::suite::hostile::Verdict::Pass(vmdma_guest::msg!($($arg)*)))
    };
}

/// REJECT with a formatted reason.
#[macro_export]
macro_rules! reject {
    ($($arg:tt)*) => {
        Ok($crate::suite::hostile::Verdict::Reject(vmdma_guest::msg!($($arg)*)))
    };
}

/// FAIL with a formatted reason.
#[macro_export]
macro_rules! fail {
    ($($arg:tt)*) => {
        Ok($crate::suite::hostile::Verdict::Fail(vmdma_guest::msg!($($arg)*)))
    };
}

/// SKIP with a formatted reason.
#[macro_export]
macro_rules! skip_case {
    ($($arg:tt)*) => {
        Ok($crate::suite::hostile::Verdict::Skip(vmdma_guest::msg!($($arg)*)))
    };
}

/// A named attack.
pub struct Case {
    /// Name printed in the report (`[a-z0-9_]`, at most 48 characters).
    pub name: &'static str,
    /// The attack.
    pub run: fn(&mut Hx) -> CaseResult,
}

impl Case {
    /// A named case.
    pub const fn new(name: &'static str, run: fn(&mut Hx) -> CaseResult) -> Self {
        Case { name, run }
    }
}

/// Counts of each verdict.
#[derive(Default)]
struct Tally {
    pass: u32,
    reject: u32,
    fail: u32,
    wedged: u32,
    skip: u32,
}

impl Tally {
    fn add(&mut self, v: &Verdict) {
        let n = match v {
            Verdict::Pass(_) => &mut self.pass,
            Verdict::Reject(_) => &mut self.reject,
            Verdict::Fail(_) => &mut self.fail,
            Verdict::Wedged(_) => &mut self.wedged,
            Verdict::Skip(_) => &mut self.skip,
        };
        *n += 1;
    }
}

/// The cases `selection` picks, as a slice of the list (empty if it names
/// no case).
fn selected(selection: &CaseSelection) -> Option<&'static [Case]> {
    let all = lists::CASES;
    let index = |name: &str| all.iter().position(|c| c.name == name);
    match selection {
        CaseSelection::All => Some(all),
        CaseSelection::From(n) => all.get(index(n.as_str())?..),
        CaseSelection::Only(n) => {
            let i = index(n.as_str())?;
            all.get(i..=i)
        }
    }
}

/// Runs the hostile suite; returns the debug-exit value.
pub fn run(
    options: &Options,
    boot: &BootInfo,
    ide: &IdeSetup,
    mem: &'static mut DmaMemory,
    stage: &'static mut Stage,
) -> u32 {
    let Some(cases) = selected(&options.hostile) else {
        println!("vmdma-guest: fatal: hostile_from=/hostile_only= names no hostile case");
        return GUEST_EXIT_FAIL;
    };
    let ctx = match Ctx::new(options, ide.bmiba, mem, stage) {
        Ok(c) => c,
        Err(f) => {
            println!("vmdma-guest: fatal: {f}");
            return GUEST_EXIT_FAIL;
        }
    };
    let mut hx = match Hx::new(ctx, boot, ide) {
        Ok(h) => h,
        Err(f) => {
            println!("vmdma-guest: fatal: {f}");
            return GUEST_EXIT_FAIL;
        }
    };
    println!("running {} hostile cases (suite=hostile)", cases.len());
    let mut tally = Tally::default();
    for case in cases {
        println!("running case {}", case.name);
        hx.begin_case();
        let verdict = match (case.run)(&mut hx) {
            Ok(v) => v,
            Err(f) => Verdict::Fail(f.0),
        };
        let verdict = hx.after_case(verdict);
        tally.add(&verdict);
        println!("case {} ... {verdict}", case.name);
    }
    println!(
        "hostile: {} pass, {} reject, {} fail, {} wedged, {} skip",
        tally.pass, tally.reject, tally.fail, tally.wedged, tally.skip
    );
    if tally.fail == 0 && tally.wedged == 0 {
        GUEST_EXIT_PASS
    } else {
        GUEST_EXIT_FAIL
    }
}
