//! Building blocks of hostile DMA: raw PRD entries and table pointers,
//! issuing a command without starting the bus master, START and STOP at
//! chosen moments, the bounded wait for the end, what the registers showed,
//! the outcome class, and checks of the data buffer.

use vmdma_guest::ata::regs::{bm, error, status};
use vmdma_guest::ata::taskfile::TaskFile;
use vmdma_guest::msg;
use vmdma_guest::msg::Msg;
use vmdma_guest::stamp::SECTOR;

use super::super::Fail;
use super::Verdict;
use super::env::Hx;
use crate::arch::dma_memory::DATA_LEN;
use crate::arch::mem;
use crate::ide::channel::WAIT_POLLS;
use crate::suite::io::{CANARY, Layout, Mode, Xfer, expect_clean};

/// The PRD EOT flag (dword 1 bit 31).
pub const EOT: u32 = 1 << 31;

/// What the registers showed at the end of a hostile DMA.
#[derive(Clone, Copy, Debug)]
pub struct Obs {
    /// BM status when the wait ended (before START was cleared).
    pub bm_end: u8,
    /// BM status after START was cleared.
    pub bm_after: u8,
    /// Status (read last: acknowledges INTRQ).
    pub status: u8,
    /// Error.
    pub error: u8,
    /// IRQ 14 requested at the PIC before Status was read.
    pub irq: bool,
    /// The bounded wait for INT or !ACTIVE expired.
    pub timed_out: bool,
}

/// How a hostile DMA ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Status DRDY, BM INT and an IRQ; `active`: ACTIVE stayed set until
    /// START was cleared (PRDs longer than the transfer).
    Done {
        /// ACTIVE was still set when the wait ended.
        active: bool,
    },
    /// ERR/ABRT with an IRQ; `bm_err`: BMDMA ERR too (a master abort).
    Aborted {
        /// BM status ERR was set.
        bm_err: bool,
    },
    /// The short-PRD outcome: Status DRDY, no IRQ, BM status 0.
    Short,
    /// Anything else.
    Odd,
}

impl Obs {
    /// The outcome class.
    pub fn outcome(&self) -> Outcome {
        let st = self.status & !status::DSC;
        let bm_end = self.bm_end & (bm::STATUS_ACTIVE | bm::STATUS_ERR | bm::STATUS_INT);
        if self.timed_out {
            return Outcome::Odd;
        }
        if st == status::DRDY
            && bm_end & (bm::STATUS_INT | bm::STATUS_ERR) == bm::STATUS_INT
            && self.irq
        {
            return Outcome::Done {
                active: bm_end & bm::STATUS_ACTIVE != 0,
            };
        }
        if st == status::DRDY | status::ERR && self.error & error::ABRT != 0 && self.irq {
            return Outcome::Aborted {
                bm_err: bm_end & bm::STATUS_ERR != 0,
            };
        }
        if st == status::DRDY && bm_end == 0 && !self.irq {
            return Outcome::Short;
        }
        Outcome::Odd
    }

    /// The registers, for a FAIL reason.
    pub fn describe(&self) -> Msg {
        msg!(
            "status {:#04x} error {:#04x}, BM status {:#04x} at the end / {:#04x} after stop, irq {}{}",
            self.status,
            self.error,
            self.bm_end,
            self.bm_after,
            self.irq,
            if self.timed_out { ", timed out" } else { "" }
        )
    }
}

/// The usual reason of an aborted DMA.
pub fn abort_reason(bm_err: bool) -> &'static str {
    if bm_err {
        "ABRT + BM ERR (master abort)"
    } else {
        "ABRT"
    }
}

/// The usual reason of the short-PRD outcome.
pub const SHORT_REASON: &str = "short PRD table: no IRQ, no data, BM status 0";

/// Which way a DMA ended, for the data checks of [`dma_verdict`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// It completed: the data must be where the guest asked.
    Done,
    /// It was refused (aborted or short): nothing may have moved, or only
    /// what the case allows for a transfer cut short.
    Refused,
}

/// A verdict for a DMA: PASS if it completed and `check(Side::Done)` holds,
/// REJECT if it was aborted or short and `check(Side::Refused)` holds, FAIL
/// otherwise.
pub fn dma_verdict(o: &Obs, check: impl FnOnce(Side) -> Result<(), Msg>) -> Verdict {
    match o.outcome() {
        Outcome::Done { active } => match check(Side::Done) {
            Ok(()) if active => Verdict::Pass(Msg::from_text(
                "completed; BM ACTIVE kept until START cleared (PRDs longer than the transfer)",
            )),
            Ok(()) => Verdict::Pass(Msg::from_text("completed")),
            Err(m) => Verdict::Fail(msg!("completed, but {m}")),
        },
        Outcome::Aborted { bm_err } => match check(Side::Refused) {
            Ok(()) => Verdict::Reject(Msg::from_text(abort_reason(bm_err))),
            Err(m) => Verdict::Fail(msg!("{}, but {m}", abort_reason(bm_err))),
        },
        Outcome::Short => match check(Side::Refused) {
            Ok(()) => Verdict::Reject(Msg::from_text(SHORT_REASON)),
            Err(m) => Verdict::Fail(msg!("short PRD outcome, but {m}")),
        },
        Outcome::Odd => Verdict::Fail(o.describe()),
    }
}

/// What a stretch of the data buffer must hold after a DMA.
#[derive(Clone, Copy, Debug)]
pub enum Expect {
    /// `sectors` stamps from `lba` with `pattern`.
    Stamps {
        /// First LBA.
        lba: u64,
        /// Pattern.
        pattern: u32,
    },
    /// Per sector: the stamp, or untouched (a transfer cut short).
    StampsOrCanary {
        /// First LBA.
        lba: u64,
        /// Pattern.
        pattern: u32,
    },
    /// Zeros (never-written sectors).
    Zeros,
    /// Anything.
    Any,
}

impl Expect {
    /// What a refused transfer may have left instead: each stamped sector
    /// whole or untouched; zeros or anything.
    pub fn relaxed(self) -> Expect {
        match self {
            Expect::Stamps { lba, pattern } => Expect::StampsOrCanary { lba, pattern },
            Expect::Zeros => Expect::Any,
            e => e,
        }
    }
}

impl Hx {
    /// [`Hx::check_data`] for a transfer that ended the way `side` says: on
    /// a refusal each region may also be untouched.
    pub fn check_side(
        &mut self,
        side: Side,
        regions: &[(usize, usize, Expect)],
    ) -> Result<(), Msg> {
        match side {
            Side::Done => self.check_data(regions),
            Side::Refused => {
                let mut relaxed = [(0usize, 0usize, Expect::Any); 8];
                for (r, &(o, l, e)) in relaxed.iter_mut().zip(regions) {
                    *r = (o, l, e.relaxed());
                }
                self.check_data(relaxed.get(..regions.len().min(8)).unwrap_or(&[]))
            }
        }
    }

    /// Writes PRD entry `i` as raw dwords.
    pub fn prd(&mut self, i: usize, addr: u32, ctl: u32) -> Result<(), Fail> {
        let e = self
            .ctx
            .mem
            .prd
            .get_mut(i)
            .ok_or_else(|| Fail(msg!("PRD entry {i} is outside the table")))?;
        *e = [addr, ctl];
        Ok(())
    }

    /// Writes raw PRD entries from entry 0.
    pub fn prds(&mut self, entries: &[(u32, u32)]) -> Result<(), Fail> {
        for (i, &(a, c)) in entries.iter().enumerate() {
            self.prd(i, a, c)?;
        }
        Ok(())
    }

    /// Physical address of the PRD table.
    pub fn table(&self) -> Result<u32, Fail> {
        self.ctx
            .mem
            .prd_phys()
            .ok_or_else(|| Fail(Msg::from_text("PRD table above 4 GiB")))
    }

    /// Physical address of data buffer offset `off`.
    pub fn data_at(&self, off: usize) -> Result<u32, Fail> {
        self.ctx
            .mem
            .data_phys(off)
            .ok_or_else(|| Fail(msg!("data buffer offset {off:#x} out of range")))
    }

    /// Selects the master, loads `tf`, writes the PRD pointer `table` and
    /// the BM direction, then the command; START stays clear.
    pub fn issue(
        &mut self,
        opcode: u8,
        tf: &TaskFile,
        to_memory: bool,
        table: u32,
    ) -> Result<(), Fail> {
        let ch = &self.ctx.ch;
        ch.stop_bus_master();
        ch.drain_irq();
        ch.prepare(tf)?;
        ch.set_prd_pointer(table);
        ch.set_bm_cmd(if to_memory { bm::CMD_WRITE_MEMORY } else { 0 });
        ch.command(opcode);
        Ok(())
    }

    /// Sets START (keeping the direction bit).
    pub fn start(&self) {
        let ch = &self.ctx.ch;
        ch.set_bm_cmd(ch.bm_cmd() | bm::CMD_START);
    }

    /// Clears START (keeping the direction bit).
    pub fn stop(&self) {
        let ch = &self.ctx.ch;
        ch.set_bm_cmd(ch.bm_cmd() & !bm::CMD_START);
        let _ = ch.alt_status();
    }

    /// Waits (bounded) for BM INT or ACTIVE clear, clears START, and reads
    /// what the registers show; acknowledges INTRQ and BM INT/ERR.
    pub fn conclude(&self) -> Obs {
        let ch = &self.ctx.ch;
        let mut bm_end = 0;
        let mut timed_out = true;
        for _ in 0..WAIT_POLLS {
            bm_end = ch.bm_status();
            if bm_end & bm::STATUS_INT != 0 || bm_end & bm::STATUS_ACTIVE == 0 {
                timed_out = false;
                break;
            }
        }
        self.finish_obs(bm_end, timed_out)
    }

    /// The end of [`Hx::conclude`] for a BM status already read.
    pub fn finish_obs(&self, bm_end: u8, timed_out: bool) -> Obs {
        let ch = &self.ctx.ch;
        self.stop();
        let bm_after = ch.bm_status();
        let _ = ch.wait_not_busy("BSY clear after DMA");
        let irq = ch.irq_requested();
        let error = ch.error();
        let status = ch.status();
        let _ = ch.clear_bm_status();
        Obs {
            bm_end,
            bm_after,
            status,
            error,
            irq,
            timed_out,
        }
    }

    /// Issues a DMA command with the PRD table at `table`, starts the bus
    /// master after the command (Linux's order) and concludes.
    pub fn dma(
        &mut self,
        opcode: u8,
        tf: &TaskFile,
        to_memory: bool,
        table: u32,
    ) -> Result<Obs, Fail> {
        self.issue(opcode, tf, to_memory, table)?;
        self.start();
        Ok(self.conclude())
    }

    /// READ DMA (EXT if needed) of `sectors` at `lba` through the PRD table
    /// in the DMA memory.
    pub fn read(&mut self, lba: u64, sectors: u32) -> Result<Obs, Fail> {
        let mode = Mode::for_range(lba, sectors);
        let tf = mode.taskfile(lba, sectors)?;
        let table = self.table()?;
        self.dma(
            mode.dma_opcode(crate::ide::dma::Direction::ToMemory),
            &tf,
            true,
            table,
        )
    }

    /// WRITE DMA (EXT if needed) of `sectors` at `lba` through the PRD
    /// table in the DMA memory.
    pub fn write(&mut self, lba: u64, sectors: u32) -> Result<Obs, Fail> {
        let mode = Mode::for_range(lba, sectors);
        let tf = mode.taskfile(lba, sectors)?;
        let table = self.table()?;
        self.dma(
            mode.dma_opcode(crate::ide::dma::Direction::FromMemory),
            &tf,
            false,
            table,
        )
    }

    /// Writes `sectors` fresh stamps of one new pattern at a fresh LBA, in
    /// commands of at most 256 sectors (announced); returns (LBA, pattern)
    /// and leaves the data buffer full of canaries.
    pub fn stamped(&mut self, sectors: u32) -> Result<(u64, u32), Fail> {
        let lba = self.ctx.alloc(u64::from(sectors))?;
        let pattern = self.ctx.pattern();
        let mut done = 0;
        while done < sectors {
            let n = (sectors - done).min(256);
            let at = lba + u64::from(done);
            let layout = Layout::ram(0, n as usize * SECTOR)?;
            let o = self.ctx.dma_write(&Xfer::new(at, n), pattern, &layout)?;
            expect_clean("stamping write", &o)?;
            done += n;
        }
        mem::fill(&mut self.ctx.mem.data, CANARY);
        Ok((lba, pattern))
    }

    /// Fills the whole data buffer with the canary.
    pub fn canaries(&mut self) {
        mem::fill(&mut self.ctx.mem.data, CANARY);
    }

    /// Checks the data buffer: each `(offset, len, expect)` region (sorted,
    /// disjoint) holds what it should, everything else the canary.
    pub fn check_data(&mut self, regions: &[(usize, usize, Expect)]) -> Result<(), Msg> {
        let mut at = 0usize;
        for &(off, len, e) in regions {
            if off < at {
                return Err(Msg::from_text("check_data: regions overlap"));
            }
            self.expect_canary(at, off)?;
            self.expect(off, len, e)?;
            at = off + len;
        }
        self.expect_canary(at, DATA_LEN)
    }

    fn expect_canary(&self, from: usize, to: usize) -> Result<(), Msg> {
        let gap = self.ctx.mem.data.get(from..to).unwrap_or(&[]);
        match mem::first_not(gap, CANARY) {
            None => Ok(()),
            Some(i) => Err(msg!(
                "data buffer offset {:#x} outside the target changed (to {:#04x})",
                from + i,
                gap.get(i).copied().unwrap_or(0)
            )),
        }
    }

    fn expect(&mut self, off: usize, len: usize, e: Expect) -> Result<(), Msg> {
        let sectors = u32::try_from(len / SECTOR).unwrap_or(0);
        match e {
            Expect::Any => Ok(()),
            Expect::Zeros => {
                let r = self.ctx.mem.data.get(off..off + len).unwrap_or(&[]);
                match mem::first_not(r, 0) {
                    None => Ok(()),
                    Some(i) => Err(msg!(
                        "offset {:#x} is {:#04x}, want 0",
                        off + i,
                        r.get(i).copied().unwrap_or(0)
                    )),
                }
            }
            Expect::Stamps { lba, pattern } => self
                .ctx
                .verify_data(off, lba, sectors, pattern)
                .map_err(|f| f.0),
            Expect::StampsOrCanary { lba, pattern } => {
                for i in 0..sectors {
                    let s = off + i as usize * SECTOR;
                    let untouched = self
                        .ctx
                        .mem
                        .data
                        .get(s..s + SECTOR)
                        .is_some_and(|b| mem::first_not(b, CANARY).is_none());
                    if !untouched {
                        self.ctx
                            .verify_data(s, lba + u64::from(i), 1, pattern)
                            .map_err(|f| msg!("neither the stamp nor untouched: {}", f.0))?;
                    }
                }
                Ok(())
            }
        }
    }
}

/// A verdict for a non-data command: PASS if it completed (DRDY, an IRQ),
/// REJECT if it was aborted (ERR/ABRT, an IRQ), FAIL otherwise.
pub fn non_data_verdict(status_reg: u8, error_reg: u8, irq: bool) -> Verdict {
    let st = status_reg & !status::DSC;
    if st == status::DRDY && irq {
        Verdict::Pass(Msg::from_text("completed"))
    } else if st == status::DRDY | status::ERR && error_reg & error::ABRT != 0 && irq {
        Verdict::Reject(Msg::from_text("ABRT"))
    } else {
        Verdict::Fail(msg!(
            "status {status_reg:#04x} error {error_reg:#04x}, irq {irq}"
        ))
    }
}
