//! `dma-read` and `dma-write`: READ DMA / WRITE DMA (LBA28) of `sectors`
//! sectors on consecutive LBAs from [`FIRST_LBA`], each driven with
//! [`ide::dma::run_lean`] through one PRD entry (two above 64 KiB).
//!
//! The PRD table and, for writes, the stamped data are prepared once before
//! the timed loop; per write command only the LBA fields of the headers are
//! rewritten (one 8-byte store per sector) and the manifest line is printed.
//! Reads check each command's status, not the data.

use vmdma_guest::ata::regs::cmd;
use vmdma_guest::ata::taskfile::{Drive, LBA28_LIMIT, TaskFile};
use vmdma_guest::cmdline::{Bench, BenchKind};
use vmdma_guest::msg;
use vmdma_guest::prd::{self, Region};
use vmdma_guest::stamp::{self, SECTOR, Template};

use crate::arch::dma_memory::DmaMemory;
use crate::arch::{cpu, mem};
use crate::ide::dma::{self as ide_dma, Direction};
use crate::suite::{Ctx, Fail};

/// First LBA the benchmarks use (where the suite's allocations start too).
pub const FIRST_LBA: u64 = 2048;

/// PRD entries of the largest transfer (256 sectors = 2 x 64 KiB).
const MAX_PRDS: usize = 2;

/// Runs `bench` (a DMA benchmark); returns the TSC cycles of the command
/// loop.
pub fn run(ctx: &mut Ctx, bench: &Bench) -> Result<u64, Fail> {
    let sectors = bench.sectors;
    let span = u64::from(bench.count) * u64::from(sectors);
    let end = FIRST_LBA + span;
    let limit = ctx.capacity.min(LBA28_LIMIT);
    crate::ensure!(
        end <= limit,
        "the benchmark needs LBAs up to {end}, the disk has {limit} (LBA28-addressable)"
    );
    let bytes = sectors as usize * SECTOR;
    load_prds(ctx.mem, bytes)?;
    let (opcode, dir) = match bench.kind {
        BenchKind::DmaRead => (cmd::READ_DMA, Direction::ToMemory),
        BenchKind::DmaWrite => (cmd::WRITE_DMA, Direction::FromMemory),
    };
    let write = dir == Direction::FromMemory;
    let pattern = ctx.pattern();
    if write {
        stamp_buffer(ctx.mem, FIRST_LBA, sectors, pattern)?;
    }

    let start = cpu::rdtsc();
    for c in 0..u64::from(bench.count) {
        let lba = FIRST_LBA + c * u64::from(sectors);
        if write {
            if c != 0 {
                restamp_buffer(ctx.mem, lba, sectors);
            }
            ctx.manifest_write(lba, sectors, pattern);
        }
        let tf = TaskFile::lba28(Drive::Master, lba, sectors, 0)
            .map_err(|e| Fail(msg!("command {c} at LBA {lba}: {e}")))?;
        ide_dma::run_lean(&ctx.ch, ctx.mem, opcode, &tf, dir)
            .map_err(|e| Fail(msg!("command {c} at LBA {lba}: {e}")))?;
    }
    Ok(cpu::rdtsc().wrapping_sub(start))
}

/// Describes the first `bytes` of the data buffer in the PRD table, split
/// at 64 KiB boundaries (the buffer is 64 KiB aligned).
fn load_prds(mem: &mut DmaMemory, bytes: usize) -> Result<(), Fail> {
    let mut regions = [Region { addr: 0, len: 0 }; MAX_PRDS];
    let mut n = 0;
    for (offset, len) in prd::split_64k(0, bytes) {
        let addr = mem
            .data_phys(offset)
            .filter(|_| offset + len as usize <= mem.data.len())
            .ok_or_else(|| Fail(msg!("{bytes} bytes exceed the DMA buffer")))?;
        let slot = regions
            .get_mut(n)
            .ok_or_else(|| Fail(msg!("{bytes} bytes need more than {MAX_PRDS} PRD entries")))?;
        *slot = Region { addr, len };
        n += 1;
    }
    let regions = regions.get(..n).unwrap_or(&[]);
    prd::encode_table(regions, &mut mem.prd).map_err(|e| Fail(msg!("{e}")))?;
    Ok(())
}

/// Fills the first `sectors` sectors of the data buffer with the stamps of
/// (`lba + i`, `pattern`): one template copy and one header per sector.
fn stamp_buffer(mem: &mut DmaMemory, lba: u64, sectors: u32, pattern: u32) -> Result<(), Fail> {
    let template = Template::new(pattern);
    let mut lbas = lba..lba + u64::from(sectors);
    for s in mem.data.chunks_exact_mut(SECTOR).take(sectors as usize) {
        let Some(l) = lbas.next() else { break };
        mem::copy(s, template.sector());
        stamp::write_header(s, l, pattern);
    }
    crate::ensure!(
        lbas.next().is_none(),
        "{sectors} sectors exceed the DMA buffer"
    );
    Ok(())
}

/// Re-stamps the sectors that [`stamp_buffer`] prepared for the LBAs from
/// `lba` (same pattern: only the LBA fields change).
fn restamp_buffer(mem: &mut DmaMemory, lba: u64, sectors: u32) {
    for (s, l) in mem
        .data
        .chunks_exact_mut(SECTOR)
        .take(sectors as usize)
        .zip(lba..)
    {
        stamp::restamp_lba(s, l);
    }
}
