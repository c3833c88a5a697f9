//! Interrupt behaviour: delivery through the 8259, the BM INT bit, which
//! register read acknowledges INTRQ, and nIEN.

use vmdma_guest::ata::regs::{bm, cmd, devctl, status};
use vmdma_guest::ata::taskfile::{Drive, TaskFile};
use vmdma_guest::stamp::SECTOR;

use super::io::{Layout, Xfer, expect_bm, expect_clean};
use super::{Ctx, PASS, TestResult};
use crate::ide::channel::{DEVCTL_NORMAL, WAIT_POLLS};
use crate::ide::dma::Wait;
use crate::{ensure, ensure_eq, pic};

const SECTORS: u32 = 8;

/// Interrupt-driven DMA (read and write): exactly one IRQ 14 per command,
/// BM INT set when it arrives, no further interrupts afterwards.
pub fn irq_dma_completion(ctx: &mut Ctx) -> TestResult {
    let lba = ctx.alloc(u64::from(SECTORS))?;
    let l = Layout::ram(0, SECTORS as usize * SECTOR)?;
    let x = Xfer {
        wait: Wait::Interrupt,
        ..Xfer::new(lba, SECTORS)
    };
    let p = ctx.pattern();
    let o = ctx.dma_write(&x, p, &l)?;
    ensure_eq!(o.irqs, 1, "interrupts for a DMA write");
    expect_bm(
        o.bm_at_completion,
        bm::STATUS_INT,
        "write, at the interrupt",
    )?;
    expect_clean("DMA write", &o)?;
    let o = ctx.dma_read(&x, &l)?;
    ensure_eq!(o.irqs, 1, "interrupts for a DMA read");
    expect_bm(o.bm_at_completion, bm::STATUS_INT, "read, at the interrupt")?;
    expect_clean("DMA read", &o)?;
    ensure_eq!(ctx.ch.irq_window(64), 0, "interrupts after the command");
    ensure_eq!(
        ctx.ch.bm_status() & bm::STATUS_INT,
        0,
        "BM INT after write-1-to-clear"
    );
    ctx.check_canary(&l)?;
    ctx.verify_data(0, lba, SECTORS, p)?;
    PASS
}

/// A non-data command's interrupt is delivered and sets BM INT too.
pub fn irq_non_data_sets_bm_int(ctx: &mut Ctx) -> TestResult {
    let ch = &ctx.ch;
    ch.select(Drive::Master)?;
    let _ = ch.status();
    let _ = ch.clear_bm_status();
    ctx.ch.drain_irq();
    let base = pic::irq14_count();
    let tf = TaskFile::plain(Drive::Master, 0, 0);
    let arrived = pic::with_interrupts(|| -> Result<bool, super::Fail> {
        ch.issue(&tf, cmd::CHECK_POWER_MODE)?;
        for _ in 0..WAIT_POLLS {
            if pic::irq14_count() != base {
                return Ok(true);
            }
            let _ = ch.alt_status();
        }
        Ok(false)
    })?;
    let bm_status = ch.bm_status();
    let st = ch.status();
    let _ = ch.clear_bm_status();
    ensure!(arrived, "timeout waiting for IRQ 14");
    ensure_eq!(pic::irq14_count().wrapping_sub(base), 1, "interrupts");
    expect_bm(bm_status, bm::STATUS_INT, "after the interrupt")?;
    ensure_eq!(st, status::READY, "status");
    PASS
}

/// INTRQ is a level: reading Alternate Status leaves it asserted, reading
/// Status deasserts it; neither clears BM INT. Observed with IRQ 14 masked
/// and level-triggered, so that the slave PIC's IRR follows the line.
pub fn status_read_clears_irq(ctx: &mut Ctx) -> TestResult {
    let ch = &ctx.ch;
    ch.select(Drive::Master)?;
    let _ = ch.status();
    ctx.ch.drain_irq();
    let _ = ch.clear_bm_status();
    pic::set_irq14_masked(true);
    pic::set_irq14_level(true);
    let low_before = ch.irq_released();
    let tf = TaskFile::plain(Drive::Master, 0, 0);
    let issued = ch
        .issue(&tf, cmd::CHECK_POWER_MODE)
        .and_then(|()| ch.wait_not_busy("CHECK POWER MODE"));
    let raised = ch.irq_requested();
    let _ = ch.alt_status();
    let _ = ch.alt_status();
    let after_alt = pic::irq14_requested();
    let bm_before = ch.bm_status();
    let st = ch.status();
    let released = ch.irq_released();
    let bm_after = ch.bm_status();
    pic::set_irq14_level(false);
    pic::set_irq14_masked(false);
    let _ = ch.clear_bm_status();
    issued?;
    ensure!(low_before, "IRQ 14 line high before the command");
    ensure!(raised, "IRQ 14 line low after the command completed");
    ensure!(after_alt, "reading Alternate Status lowered IRQ 14");
    ensure!(released, "reading Status left IRQ 14 high");
    expect_bm(bm_before, bm::STATUS_INT, "before the Status read")?;
    expect_bm(bm_after, bm::STATUS_INT, "after the Status read")?;
    ensure_eq!(st, status::READY, "status");
    PASS
}

/// With nIEN set, a DMA read raises no interrupt and never sets BM INT;
/// completion is seen by polling Alternate Status.
pub fn nien_dma_no_irq(ctx: &mut Ctx) -> TestResult {
    let lba = ctx.alloc(u64::from(SECTORS))?;
    let p = ctx.write_dma(lba, SECTORS)?;
    ctx.ch.set_devctl(DEVCTL_NORMAL | devctl::NIEN);
    let l = Layout::ram(0, SECTORS as usize * SECTOR)?;
    let x = Xfer {
        wait: Wait::AltStatus,
        ..Xfer::new(lba, SECTORS)
    };
    let o = ctx.dma_read(&x, &l);
    let irqs = ctx.ch.irq_window(64);
    ctx.ch.set_devctl(DEVCTL_NORMAL);
    let o = o?;
    expect_bm(o.bm_at_completion, 0, "at completion with nIEN")?;
    expect_bm(o.bm_after_stop, 0, "after clearing START with nIEN")?;
    ensure_eq!(o.status, status::READY, "status");
    ensure!(!o.irq_requested && irqs == 0, "interrupt with nIEN set");
    ctx.check_canary(&l)?;
    ctx.verify_data(0, lba, SECTORS, p)?;
    PASS
}

/// With nIEN set, a non-data command raises no interrupt either.
pub fn nien_non_data_no_irq(ctx: &mut Ctx) -> TestResult {
    ctx.ch.set_devctl(DEVCTL_NORMAL | devctl::NIEN);
    let r = ctx.non_data(&TaskFile::plain(Drive::Master, 0, 0), cmd::CHECK_POWER_MODE);
    let irqs = ctx.ch.irq_window(64);
    let bm_status = ctx.ch.bm_status();
    ctx.ch.set_devctl(DEVCTL_NORMAL);
    let r = r?;
    ensure_eq!(r.status, status::READY, "status");
    ensure!(!r.irq && irqs == 0, "interrupt with nIEN set");
    expect_bm(bm_status, 0, "with nIEN")?;
    PASS
}
