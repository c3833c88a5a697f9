//! Bus-master DMA transfers: PRD table shapes (one entry, many, odd-sized
//! non-contiguous, 64 KiB entries), counts above 256, and addressing limits
//! (last LBA28 sector, LBA48 above 2^28, last sectors of the disk).

use vmdma_guest::ata::taskfile::LBA28_LIMIT;
use vmdma_guest::stamp::SECTOR;

use super::io::{Layout, Mode, Space, Xfer, expect_clean};
use super::{Ctx, PASS, TestResult};
use crate::ide::pio::Width;
use crate::skip;

/// Sectors the disk needs beyond 2^28 for the LBA48 tests.
const ABOVE_2_28_MARGIN: u64 = 1 << 16;

/// Writes through `write_layout`, reads back through `read_layout`
/// (checking canaries), then reads back by PIO.
fn round_trip(
    ctx: &mut Ctx,
    lba: u64,
    sectors: u32,
    write_layout: &Layout,
    read_layout: &Layout,
) -> Result<(), super::Fail> {
    let p = ctx.pattern();
    let x = Xfer::new(lba, sectors);
    let o = ctx.dma_write(&x, p, write_layout)?;
    expect_clean("DMA write", &o)?;
    ctx.dma_read_verify(&x, p, read_layout)?;
    ctx.read_pio_verify(x.mode, lba, sectors, Width::Bits32, p)
}

/// One PRD entry of 4 KiB for an 8-sector read and write.
pub fn dma_single_prd(ctx: &mut Ctx) -> TestResult {
    let lba = ctx.alloc(8)?;
    let l = Layout::ram(0, 8 * SECTOR)?;
    round_trip(ctx, lba, 8, &l, &l)?;
    PASS
}

/// 32 entries of 256 bytes (write) and 64 entries of 128 bytes (read),
/// with gaps between them.
pub fn dma_many_prds(ctx: &mut Ctx) -> TestResult {
    let lba = ctx.alloc(16)?;
    let mut w = Layout::new();
    for i in 0..32 {
        w.push(Space::Ram, i * 768, 256)?;
    }
    let mut r = Layout::new();
    for i in 0..64 {
        r.push(Space::Ram, i * 512 + 64, 128)?;
    }
    round_trip(ctx, lba, 16, &w, &r)?;
    PASS
}

/// Entries of even but not sector-multiple lengths (510, 2, 1000, 536,
/// 2048) at scattered even addresses: sectors straddle entries.
pub fn dma_noncontiguous_odd(ctx: &mut Ctx) -> TestResult {
    let lba = ctx.alloc(8)?;
    let mut l = Layout::new();
    for (off, len) in [
        (0x100, 510),
        (0x1002, 2),
        (0x2000, 1000),
        (0x3006, 536),
        (0x4000, 2048),
    ] {
        l.push(Space::Ram, off, len)?;
    }
    round_trip(ctx, lba, 8, &l, &l)?;
    PASS
}

/// 64 KiB entries (count field 0): a 512-sector WRITE DMA EXT through four,
/// then READ DMA with count 0 (256 sectors) and READ DMA EXT through two.
pub fn dma_64k_entries(ctx: &mut Ctx) -> TestResult {
    let lba = ctx.alloc(512)?;
    let p = ctx.pattern();
    let all = Layout::ram(0, 512 * SECTOR)?;
    let x = Xfer::new(lba, 512);
    let o = ctx.dma_write(&x, p, &all)?;
    expect_clean("DMA write", &o)?;
    let half = Layout::ram(0, 256 * SECTOR)?;
    let first = Xfer::new(lba, 256);
    if first.mode != Mode::Lba28 {
        skip!("the allocated range is not LBA28-addressable");
    }
    ctx.dma_read_verify(&first, p, &half)?;
    let second = Xfer {
        mode: Mode::Lba48,
        ..Xfer::new(lba + 256, 256)
    };
    // Verify against the stamps of the second half.
    let o = ctx.dma_read(&second, &half)?;
    expect_clean("DMA read", &o)?;
    ctx.check_canary(&half)?;
    ctx.verify_data(0, lba + 256, 256, p)?;
    PASS
}

/// 300 sectors with READ/WRITE DMA EXT (count high byte 1).
pub fn dma_lba48_count_above_256(ctx: &mut Ctx) -> TestResult {
    let lba = ctx.alloc(300)?;
    let l = Layout::ram(0, 300 * SECTOR)?;
    round_trip(ctx, lba, 300, &l, &l)?;
    PASS
}

/// The last LBA28-addressable sector (0x0FFFFFFF, or the last sector of a
/// smaller disk) with READ/WRITE DMA and READ SECTORS.
pub fn lba28_last_sector(ctx: &mut Ctx) -> TestResult {
    let lba = ctx.capacity.min(LBA28_LIMIT) - 1;
    let l = Layout::ram(0, SECTOR)?;
    round_trip(ctx, lba, 1, &l, &l)?;
    PASS
}

fn needs_above_2_28(ctx: &Ctx) -> Option<u64> {
    let need = LBA28_LIMIT + ABOVE_2_28_MARGIN;
    (ctx.capacity < need).then_some(need)
}

/// 16 sectors at 2^28 + 4096 with the EXT commands (DMA and PIO).
pub fn lba48_above_2_28(ctx: &mut Ctx) -> TestResult {
    if let Some(need) = needs_above_2_28(ctx) {
        skip!("disk has {} sectors, the test needs {need}", ctx.capacity);
    }
    let l = Layout::ram(0, 16 * SECTOR)?;
    round_trip(ctx, LBA28_LIMIT + 4096, 16, &l, &l)?;
    PASS
}

/// 16 sectors from 2^28 - 8: one EXT command crossing the LBA28 limit.
pub fn lba48_cross_2_28(ctx: &mut Ctx) -> TestResult {
    if let Some(need) = needs_above_2_28(ctx) {
        skip!("disk has {} sectors, the test needs {need}", ctx.capacity);
    }
    let l = Layout::ram(0, 16 * SECTOR)?;
    round_trip(ctx, LBA28_LIMIT - 8, 16, &l, &l)?;
    PASS
}

/// The last 8 sectors of the disk.
pub fn disk_last_sectors(ctx: &mut Ctx) -> TestResult {
    let l = Layout::ram(0, 8 * SECTOR)?;
    round_trip(ctx, ctx.capacity - 8, 8, &l, &l)?;
    PASS
}
