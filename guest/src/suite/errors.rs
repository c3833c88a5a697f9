//! Error handling: out-of-range LBAs (PIO, DMA, TRIM), unknown commands and
//! invalid parameters all end with Status 0x41, Error ABRT and an interrupt.

use vmdma_guest::ata::regs::{bm, cmd, error, feature, status};
use vmdma_guest::ata::taskfile::{Drive, TaskFile, lba48_from};
use vmdma_guest::stamp::SECTOR;

use super::commands::trim_dma;
use super::io::{Layout, Mode, Xfer, expect_bm};
use super::{Ctx, Fail, PASS, TestResult};
use crate::ide::AtaError;
use crate::ide::dma::DmaOutcome;
use crate::ide::pio::{self, Width};
use crate::{ensure, ensure_eq, skip};

fn expect_aborted_dma(what: &str, o: &DmaOutcome) -> Result<(), Fail> {
    ensure!(
        o.status == status::ABORTED && o.error & error::ABRT != 0,
        "{what}: status {:#04x} error {:#04x}, want 0x41 / ABRT",
        o.status,
        o.error
    );
    expect_bm(o.bm_at_completion, bm::STATUS_INT, what)?;
    expect_bm(o.bm_after_stop, bm::STATUS_INT, what)?;
    ensure!(o.irq_requested, "{what}: no interrupt");
    Ok(())
}

/// READ SECTORS EXT at the capacity, and across it, is aborted (a read
/// across the end transfers the sectors before it first, one DRQ block per
/// sector); the LBA registers then hold the first unreadable LBA (the
/// capacity).
pub fn out_of_range_pio_read(ctx: &mut Ctx) -> TestResult {
    let cap = ctx.capacity;
    for (lba, sectors) in [(cap, 1u32), (cap - 1, 2)] {
        ctx.ch.drain_irq();
        let tf = Mode::Lba48.taskfile(lba, sectors)?;
        let mut buf = [0u8; 2 * SECTOR];
        let buf = buf.get_mut(..sectors as usize * SECTOR).unwrap_or(&mut []);
        let r = pio::data_in(&ctx.ch, &tf, cmd::READ_SECTORS_EXT, Width::Bits16, 1, buf);
        let irq = ctx.ch.irq_requested();
        let (hob, low) = ctx.ch.read_taskfile();
        match r {
            Err(AtaError::Device {
                status: s,
                error: e,
            }) => {
                ensure_eq!(s, status::ABORTED, "status");
                ensure!(e & error::ABRT != 0, "error {e:#04x} lacks ABRT");
            }
            Ok(s) => {
                return Err(Fail(vmdma_guest::msg!(
                    "LBA {lba}+{sectors} read succeeded (status {s:#04x})"
                )));
            }
            Err(other) => return Err(other.into()),
        }
        ensure!(irq, "no interrupt for the aborted read at {lba}");
        ensure_eq!(lba48_from(&hob, &low), cap, "LBA registers after the abort");
    }
    PASS
}

/// READ DMA EXT at the capacity: aborted, BM INT, no data moved.
pub fn out_of_range_dma_read(ctx: &mut Ctx) -> TestResult {
    let l = Layout::ram(0, SECTOR)?;
    let o = ctx.dma_read(&Xfer::new(ctx.capacity, 1), &l)?;
    expect_aborted_dma("READ DMA EXT at the capacity", &o)?;
    ctx.check_untouched(&l)?;
    PASS
}

/// WRITE DMA EXT across the end of the disk: aborted before writing
/// anything (the last sector keeps its data).
pub fn out_of_range_dma_write(ctx: &mut Ctx) -> TestResult {
    let last = ctx.capacity - 1;
    let old = ctx.write_dma(last, 1)?;
    let new = ctx.pattern();
    let l = Layout::ram(0, 2 * SECTOR)?;
    let o = ctx.dma_write_unannounced(&Xfer::new(last, 2), new, &l)?;
    expect_aborted_dma("WRITE DMA EXT across the end", &o)?;
    ctx.read_dma_verify(last, 1, old)?;
    PASS
}

/// Opcodes the device does not implement (NOP 0x00, reserved 0x01) are
/// aborted.
pub fn unknown_command(ctx: &mut Ctx) -> TestResult {
    let tf = TaskFile::plain(Drive::Master, 0, 0);
    for op in [cmd::NOP, 0x01] {
        ctx.non_data_aborted(&tf, op)?;
    }
    PASS
}

/// SET FEATURES with an unknown subcommand or an invalid transfer mode is
/// aborted.
pub fn set_features_invalid(ctx: &mut Ctx) -> TestResult {
    ctx.non_data_aborted(&TaskFile::plain(Drive::Master, 0x00, 0), cmd::SET_FEATURES)?;
    ctx.non_data_aborted(
        &TaskFile::plain(Drive::Master, feature::SET_TRANSFER_MODE, 0x30),
        cmd::SET_FEATURES,
    )?;
    PASS
}

/// A TRIM range beyond the capacity is aborted.
pub fn trim_out_of_range(ctx: &mut Ctx) -> TestResult {
    if !ctx.id.trim() {
        skip!("IDENTIFY word 169 does not advertise TRIM");
    }
    let o = trim_dma(ctx, &[(ctx.capacity, 1)])?;
    expect_aborted_dma("TRIM beyond the capacity", &o)?;
    PASS
}
