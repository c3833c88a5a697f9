//! PRD-length outcomes and bus-master START/STOP sequencing (QEMU's
//! behaviour, reference doc sections 4.3-4.6):
//!
//! | PRD bytes vs request | IRQ | BM status | data |
//! |---|---|---|---|
//! | fewer | none | 0x00 | none moved |
//! | equal | yes | 0x04 | all |
//! | more | yes | 0x05 (ACTIVE stays until START is cleared) | all |

use vmdma_guest::ata::regs::{bm, reg, status};
use vmdma_guest::stamp::SECTOR;

use super::io::{Layout, Space, Xfer, expect_bm, expect_clean};
use super::{Ctx, PASS, TestResult};
use crate::ide::dma::{DmaOutcome, StartOrder};
use crate::{ensure, ensure_eq};

const SECTORS: u32 = 4;
const BYTES: usize = SECTORS as usize * SECTOR;

/// Fails unless Status is DRDY|DSC (no BSY, DRQ, ERR, DF).
fn expect_ready(o: &DmaOutcome) -> Result<(), super::Fail> {
    ensure_eq!(o.status & !status::DSC, status::DRDY, "status after DMA");
    Ok(())
}

/// PRDs describing exactly the request: IRQ, BM INT, ACTIVE clear.
pub fn prd_exact(ctx: &mut Ctx) -> TestResult {
    let lba = ctx.alloc(u64::from(SECTORS))?;
    let p = ctx.write_dma(lba, SECTORS)?;
    let l = Layout::ram(0, BYTES)?;
    let x = Xfer::new(lba, SECTORS);
    let o = ctx.dma_read(&x, &l)?;
    expect_bm(o.bm_at_completion, bm::STATUS_INT, "at completion")?;
    expect_bm(o.bm_after_stop, bm::STATUS_INT, "after clearing START")?;
    expect_ready(&o)?;
    ensure!(o.irq_requested, "no interrupt");
    ctx.check_canary(&l)?;
    ctx.gather(&l)?;
    ctx.verify_stage(lba, SECTORS, p)?;
    PASS
}

/// Short PRDs (half the request) on a read: no interrupt, BM status 0x00,
/// Status DRDY|DSC, and no data moved.
pub fn prd_short_read(ctx: &mut Ctx) -> TestResult {
    let lba = ctx.alloc(u64::from(SECTORS))?;
    ctx.write_dma(lba, SECTORS)?;
    let l = Layout::ram(0, BYTES / 2)?;
    let o = ctx.dma_read(&Xfer::new(lba, SECTORS), &l)?;
    expect_bm(o.bm_at_completion, 0, "at completion")?;
    expect_bm(o.bm_after_stop, 0, "after clearing START")?;
    expect_ready(&o)?;
    ensure!(!o.irq_requested, "short PRD raised an interrupt");
    ensure_eq!(ctx.ch.irq_window(64), 0, "interrupts after a short PRD");
    ctx.check_untouched(&l)?;
    ctx.check_canary(&l)?;
    PASS
}

/// Short PRDs on a write: same outcome, and the disk keeps its old data.
pub fn prd_short_write(ctx: &mut Ctx) -> TestResult {
    let lba = ctx.alloc(u64::from(SECTORS))?;
    let old = ctx.write_dma(lba, SECTORS)?;
    let new = ctx.pattern();
    let l = Layout::ram(0, BYTES / 2)?;
    let o = ctx.dma_write_unannounced(&Xfer::new(lba, SECTORS), new, &l)?;
    expect_bm(o.bm_at_completion, 0, "at completion")?;
    expect_bm(o.bm_after_stop, 0, "after clearing START")?;
    expect_ready(&o)?;
    ensure!(!o.irq_requested, "short PRD raised an interrupt");
    ctx.read_dma_verify(lba, SECTORS, old)?;
    PASS
}

/// Long PRDs (an extra 1 KiB entry): IRQ, BM status ACTIVE|INT until START
/// is cleared, data complete, the extra region untouched.
pub fn prd_long(ctx: &mut Ctx) -> TestResult {
    let lba = ctx.alloc(u64::from(SECTORS))?;
    let p = ctx.write_dma(lba, SECTORS)?;
    let mut l = Layout::new();
    l.push(Space::Ram, 0, BYTES as u32)?;
    l.push(Space::Ram, 0x4000, 1024)?;
    let o = ctx.dma_read(&Xfer::new(lba, SECTORS), &l)?;
    expect_bm(
        o.bm_at_completion,
        bm::STATUS_ACTIVE | bm::STATUS_INT,
        "at completion",
    )?;
    expect_bm(o.bm_after_stop, bm::STATUS_INT, "after clearing START")?;
    expect_ready(&o)?;
    ensure!(o.irq_requested, "no interrupt");
    ctx.check_canary(&l)?;
    let mut extra = Layout::new();
    extra.push(Space::Ram, 0x4000, 1024)?;
    ctx.check_untouched(&extra)?;
    ctx.verify_data(0, lba, SECTORS, p)?;
    PASS
}

/// DMA with PCI bus mastering off (Command bit 2 clear). The function may
/// start no bus cycles (PCI 3.0 §6.2.2), so no data reaches memory; the
/// command ends as on QEMU, whose disabled bus-master space reads zeroed
/// PRDs (512 entries of 64 KiB, more than the request): IRQ, BM status
/// ACTIVE|INT, Status DRDY|DSC, no error (QEMU's ide-test
/// `bmdma/no_busmaster` pins the same result).
pub fn bus_master_off(ctx: &mut Ctx) -> TestResult {
    let (function, _) = crate::pci::find_piix_ide()
        .ok_or_else(|| super::Fail(vmdma_guest::msg!("PIIX IDE function not found")))?;
    let lba = ctx.alloc(u64::from(SECTORS))?;
    ctx.write_dma(lba, SECTORS)?;
    let l = Layout::ram(0, BYTES)?;
    crate::pci::set_bus_master(function, false);
    let o = ctx.dma_read(&Xfer::new(lba, SECTORS), &l);
    crate::pci::set_bus_master(function, true);
    let o = o?;
    expect_bm(
        o.bm_at_completion,
        bm::STATUS_ACTIVE | bm::STATUS_INT,
        "at completion",
    )?;
    expect_bm(o.bm_after_stop, bm::STATUS_INT, "after clearing START")?;
    expect_ready(&o)?;
    ensure_eq!(o.error, 0, "error register");
    ensure!(o.irq_requested, "no interrupt");
    ctx.check_untouched(&l)?;
    ctx.check_canary(&l)?;
    PASS
}

/// START written before the command: the transfer runs when the command
/// arrives.
pub fn start_before_command(ctx: &mut Ctx) -> TestResult {
    let lba = ctx.alloc(u64::from(SECTORS))?;
    let p = ctx.write_dma(lba, SECTORS)?;
    let x = Xfer {
        order: StartOrder::BeforeCommand,
        ..Xfer::new(lba, SECTORS)
    };
    ctx.dma_read_verify(&x, p, &Layout::ram(0, BYTES)?)?;
    // And a write in that order.
    let q = ctx.pattern();
    let l = Layout::ram(0, BYTES)?;
    let o = ctx.dma_write(&x, q, &l)?;
    expect_clean("DMA write", &o)?;
    ctx.read_dma_verify(lba, SECTORS, q)?;
    PASS
}

/// Command before START: the device waits with Status DRDY|DSC|DRQ and BM
/// ACTIVE clear until START.
pub fn start_after_command(ctx: &mut Ctx) -> TestResult {
    let lba = ctx.alloc(u64::from(SECTORS))?;
    let p = ctx.write_dma(lba, SECTORS)?;
    let l = Layout::ram(0, BYTES)?;
    let o = ctx.dma_read(&Xfer::new(lba, SECTORS), &l)?;
    ensure_eq!(
        o.status_before_start.unwrap_or(0),
        status::READY | status::DRQ,
        "status between command and START"
    );
    expect_bm(
        o.bm_before_start.unwrap_or(0xFF),
        0,
        "between command and START",
    )?;
    expect_clean("DMA read", &o)?;
    ctx.gather(&l)?;
    ctx.verify_stage(lba, SECTORS, p)?;
    PASS
}

/// While a DMA command waits for START (DRQ set), task-file writes are
/// ignored.
pub fn taskfile_locked_during_dma(ctx: &mut Ctx) -> TestResult {
    let lba = ctx.alloc(u64::from(SECTORS))?;
    let p = ctx.write_dma(lba, SECTORS)?;
    let low = lba.to_le_bytes().first().copied().unwrap_or(0);
    let x = Xfer {
        probe: Some((reg::LBA_LOW, !low)),
        ..Xfer::new(lba, SECTORS)
    };
    let l = Layout::ram(0, BYTES)?;
    let o = ctx.dma_read(&x, &l)?;
    ensure_eq!(
        o.probe_read.unwrap_or(!low),
        low,
        "LBA low after a write during DRQ"
    );
    expect_clean("DMA read", &o)?;
    ctx.gather(&l)?;
    ctx.verify_stage(lba, SECTORS, p)?;
    PASS
}

/// Clearing START right after setting it: the controller finishes the
/// transfer first (BM INT, ACTIVE clear, all data moved).
pub fn stop_mid_transfer_read(ctx: &mut Ctx) -> TestResult {
    let lba = ctx.alloc(64)?;
    let p = ctx.write_dma(lba, 64)?;
    let x = Xfer {
        stop_early: true,
        ..Xfer::new(lba, 64)
    };
    let l = Layout::ram(0, 64 * SECTOR)?;
    let o = ctx.dma_read(&x, &l)?;
    expect_bm(o.bm_at_completion, bm::STATUS_INT, "after clearing START")?;
    expect_clean("DMA read", &o)?;
    ctx.check_canary(&l)?;
    ctx.verify_data(0, lba, 64, p)?;
    PASS
}

/// The same for a write: the data reaches the disk.
pub fn stop_mid_transfer_write(ctx: &mut Ctx) -> TestResult {
    let lba = ctx.alloc(64)?;
    let p = ctx.pattern();
    let x = Xfer {
        stop_early: true,
        ..Xfer::new(lba, 64)
    };
    let o = ctx.dma_write(&x, p, &Layout::ram(0, 64 * SECTOR)?)?;
    expect_bm(o.bm_at_completion, bm::STATUS_INT, "after clearing START")?;
    expect_clean("DMA write", &o)?;
    ctx.read_dma_verify(lba, 64, p)?;
    PASS
}
