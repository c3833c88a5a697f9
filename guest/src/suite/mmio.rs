//! DMA to and from the vmdma MMIO scratch region: every access to it is an
//! MMIO exit, so the controller must go through bounce buffers. vmdma's
//! bounce arena is a few KiB: 4 KiB fits, 32 KiB needs the retry path.
//! QEMU has no such region, so these tests skip there.

use vmdma_guest::stamp::SECTOR;

use super::io::{Layout, Space, Xfer, expect_clean};
use super::{Ctx, Fail, Outcome, PASS, TestResult};
use crate::ide::pio::Width;

/// `Some(skip)` unless a scratch region of at least `need` bytes exists.
fn need_scratch(ctx: &Ctx, need: u64) -> Option<Outcome> {
    match ctx.scratch {
        None => Some(Outcome::Skip(vmdma_guest::msg!(
            "no vmdma.mmio_scratch on the command line (QEMU has no MMIO scratch region)"
        ))),
        Some(s) if s.len < need => Some(Outcome::Skip(vmdma_guest::msg!(
            "the MMIO scratch region has {:#x} bytes, the test needs {need:#x}",
            s.len
        ))),
        Some(_) => None,
    }
}

/// Writes through `layout`, reads back through it, then into RAM and by
/// PIO.
fn round_trip(ctx: &mut Ctx, sectors: u32, layout: &Layout) -> Result<(), Fail> {
    let lba = ctx.alloc(u64::from(sectors))?;
    let p = ctx.pattern();
    let x = Xfer::new(lba, sectors);
    let o = ctx.dma_write(&x, p, layout)?;
    expect_clean("DMA write from MMIO", &o)?;
    ctx.dma_read_verify(&x, p, layout)?;
    ctx.read_dma_verify(lba, sectors, p)?;
    ctx.read_pio_verify(x.mode, lba, sectors, Width::Bits32, p)
}

/// 4 KiB (within the bounce arena): PRDs mixing RAM and MMIO scratch.
pub fn dma_mmio_bounce(ctx: &mut Ctx) -> TestResult {
    if let Some(skip) = need_scratch(ctx, 0x1000) {
        return Ok(skip);
    }
    let mut l = Layout::new();
    l.push(Space::Ram, 0, 1024)?;
    l.push(Space::Mmio, 0, 2048)?;
    l.push(Space::Ram, 0x2000, 1024)?;
    round_trip(ctx, 8, &l)?;
    PASS
}

/// 32 KiB in one MMIO PRD: larger than the bounce arena, so the transfer
/// must be split and retried as bounce buffers free up.
pub fn dma_mmio_retry(ctx: &mut Ctx) -> TestResult {
    const BYTES: usize = 32 * 1024;
    if let Some(skip) = need_scratch(ctx, BYTES as u64) {
        return Ok(skip);
    }
    let mut l = Layout::new();
    l.push(Space::Mmio, 0, BYTES as u32)?;
    round_trip(ctx, (BYTES / SECTOR) as u32, &l)?;
    PASS
}
