//! The read-only disk suite: reads work, PIO and DMA writes are refused
//! (aborted) and leave the disk unchanged. Nothing here is announced in the
//! write manifest: the disk must not change at all.

use vmdma_guest::ata::regs::{bm, error, status};
use vmdma_guest::stamp::SECTOR;

use super::io::{Layout, Mode, Xfer, expect_bm, expect_clean};
use super::{Ctx, Fail, PASS, TestResult};
use crate::arch::dma_memory::DATA_LEN;
use crate::arch::mem;
use crate::ide::pio::{self, Width};
use crate::{ensure, skip};

const SECTORS: u32 = 16;
const PROBE_LBA: u64 = 64;

/// In the conformance suite the disk is writable.
pub fn skipped_in_conformance(_ctx: &mut Ctx) -> TestResult {
    skip!("run with suite=readonly");
}

/// DMA-reads `SECTORS` at `lba` into the RAM buffer (clean completion).
fn dma_read_raw(ctx: &mut Ctx, lba: u64) -> Result<(), Fail> {
    let o = ctx.dma_read(
        &Xfer::new(lba, SECTORS),
        &Layout::ram(0, SECTORS as usize * SECTOR)?,
    )?;
    expect_clean("DMA read", &o)
}

/// Compares the RAM buffer (`what_ram`) with the staging buffer
/// (`what_stage`) over `SECTORS`.
fn same(ctx: &Ctx, what_ram: &str, what_stage: &str) -> Result<(), Fail> {
    let n = SECTORS as usize * SECTOR;
    let a = ctx.mem.data.get(..n).unwrap_or(&[]);
    let b = ctx.stage.bytes.get(..n).unwrap_or(&[]);
    if let Some(i) = mem::first_difference(a, b) {
        return Err(Fail(vmdma_guest::msg!(
            "byte {i}: {what_ram} {:#04x}, {what_stage} {:#04x}",
            a.get(i).copied().unwrap_or(0),
            b.get(i).copied().unwrap_or(0)
        )));
    }
    Ok(())
}

/// DMA and PIO reads of the first and last sectors return the same data.
pub fn reads_agree(ctx: &mut Ctx) -> TestResult {
    for lba in [0, ctx.capacity - u64::from(SECTORS)] {
        dma_read_raw(ctx, lba)?;
        ctx.read_pio_with(
            Mode::for_range(lba, SECTORS).pio_opcode(false),
            Mode::for_range(lba, SECTORS),
            lba,
            SECTORS,
            Width::Bits32,
            1,
        )?;
        same(ctx, "DMA read", "PIO read")?;
    }
    PASS
}

/// Reads the probe range into the staging buffer (the "before" copy).
fn snapshot(ctx: &mut Ctx) -> Result<(), Fail> {
    let mode = Mode::for_range(PROBE_LBA, SECTORS);
    ctx.read_pio_with(
        mode.pio_opcode(false),
        mode,
        PROBE_LBA,
        SECTORS,
        Width::Bits32,
        1,
    )
}

/// WRITE SECTORS is aborted (at once, or after its data phase) and the
/// disk is unchanged.
pub fn refuses_pio_write(ctx: &mut Ctx) -> TestResult {
    let p = ctx.pattern();
    // The stamped data goes to the RAM buffer; the staging buffer holds the
    // "before" copy.
    ctx.build(PROBE_LBA, SECTORS, p)?;
    let n = SECTORS as usize * SECTOR;
    mem::copy(
        ctx.mem.data.get_mut(..n).unwrap_or(&mut []),
        ctx.stage.bytes.get(..n).unwrap_or(&[]),
    );
    snapshot(ctx)?;
    ctx.ch.drain_irq();
    let tf = Mode::Lba28.taskfile(PROBE_LBA, SECTORS)?;
    let r = pio::data_out(
        &ctx.ch,
        &tf,
        Mode::Lba28.pio_opcode(true),
        Width::Bits16,
        1,
        ctx.mem.data.get(..n).unwrap_or(&[]),
    );
    let irq = ctx.ch.irq_requested();
    match r {
        Err(crate::ide::AtaError::Device {
            status: s,
            error: e,
        }) => {
            ensure!(
                s & status::ERR != 0 && e & error::ABRT != 0,
                "status {s:#04x} error {e:#04x}, want ERR / ABRT"
            );
        }
        Ok(s) => {
            return Err(Fail(vmdma_guest::msg!(
                "PIO write succeeded (status {s:#04x})"
            )));
        }
        Err(other) => return Err(other.into()),
    }
    ensure!(irq, "no interrupt for the refused write");
    dma_read_raw(ctx, PROBE_LBA)?;
    same(ctx, "after the refused write", "before")?;
    PASS
}

/// WRITE DMA is aborted (Status ERR, Error ABRT, BM INT, interrupt) and the
/// disk is unchanged.
pub fn refuses_dma_write(ctx: &mut Ctx) -> TestResult {
    let n = SECTORS as usize * SECTOR;
    snapshot(ctx)?;
    // `dma_write_unannounced` builds its data in the staging buffer, so the
    // "before" copy waits in the upper half of the RAM buffer.
    let save = DATA_LEN / 2;
    mem::copy(
        ctx.mem.data.get_mut(save..save + n).unwrap_or(&mut []),
        ctx.stage.bytes.get(..n).unwrap_or(&[]),
    );
    let p = ctx.pattern();
    let o = ctx.dma_write_unannounced(&Xfer::new(PROBE_LBA, SECTORS), p, &Layout::ram(0, n)?)?;
    mem::copy(
        ctx.stage.bytes.get_mut(..n).unwrap_or(&mut []),
        ctx.mem.data.get(save..save + n).unwrap_or(&[]),
    );
    ensure!(
        o.status & status::ERR != 0 && o.error & error::ABRT != 0,
        "status {:#04x} error {:#04x}, want ERR / ABRT",
        o.status,
        o.error
    );
    expect_bm(o.bm_after_stop, bm::STATUS_INT, "after the refused write")?;
    ensure!(o.irq_requested, "no interrupt for the refused write");
    dma_read_raw(ctx, PROBE_LBA)?;
    same(ctx, "after the refused write", "before")?;
    PASS
}
