//! Data integrity across the whole disk: 64 scattered ranges written by
//! DMA, then read back by DMA and by PIO.

use vmdma_guest::stamp::SECTOR;

use super::io::{Layout, Mode, Xfer, expect_clean};
use super::{Ctx, PASS, TestResult};
use crate::ide::pio::Width;

const RANGES: u64 = 64;

/// Range `i`: 1-4 sectors somewhere in the `i`-th 64th of the disk.
fn range(capacity: u64, i: u64) -> (u64, u32) {
    let span = capacity / RANGES;
    let jitter = (i * 7919) % span.saturating_sub(8).max(1);
    (i * span + jitter, 1 + (i % 4) as u32)
}

/// Writes 64 scattered ranges (LBA28 and LBA48 commands as the LBA needs),
/// then checks every one by DMA and by PIO.
pub fn data_integrity_scattered(ctx: &mut Ctx) -> TestResult {
    let mut patterns = [0u32; RANGES as usize];
    for (i, p) in (0..RANGES).zip(patterns.iter_mut()) {
        let (lba, n) = range(ctx.capacity, i);
        *p = ctx.pattern();
        let o = ctx.dma_write(
            &Xfer::new(lba, n),
            *p,
            &Layout::ram(0, n as usize * SECTOR)?,
        )?;
        expect_clean("DMA write", &o)?;
    }
    for (i, p) in (0..RANGES).zip(patterns.iter()) {
        let (lba, n) = range(ctx.capacity, i);
        ctx.read_dma_verify(lba, n, *p)?;
    }
    for (i, p) in (0..RANGES).zip(patterns.iter()) {
        let (lba, n) = range(ctx.capacity, i);
        ctx.read_pio_verify(Mode::for_range(lba, n), lba, n, Width::Bits32, *p)?;
    }
    PASS
}
