//! The DMA benchmarks: `count` commands of `sectors` sectors, one at a
//! time, timed with the TSC.
//!
//! - `dma-read`, `dma-write`: READ DMA / WRITE DMA (LBA28) on consecutive
//!   LBAs from [`FIRST_LBA`];
//! - `seq-read`, `seq-write`: READ DMA EXT / WRITE DMA EXT (LBA48) on
//!   consecutive LBAs;
//! - `rand-read`, `rand-write`: the EXT commands on the random LBAs of
//!   [`BenchLbas`] (seeded, computed before the loop).
//!
//! Each command is driven with [`ide_dma::run_lean`] (libata's sequence,
//! `bench_shape=libata`) or [`ide_dma::run_minimal`] (the fewest accesses,
//! `bench_shape=minimal`), completion by polling or by IRQ 14. The data buffer is bulk RAM beyond
//! the image, described by a PRD table of 64 KiB entries. Everything
//! else happens outside the timed loop: every page of the buffer is
//! touched once, the buffer is stamped once (for the LBAs from
//! [`FIRST_LBA`]) and every write command writes it as it is, so the whole
//! run is announced by one manifest line before the loop (`repeat` for
//! sequential writes, `random` for random ones). Reads check
//! each command's status, not the data. POST-code marks bracket the loop,
//! so the VMM can count exactly the exits inside it.

use vmdma_guest::ata::regs::{bm, cmd};
use vmdma_guest::ata::taskfile::{Drive, LBA28_LIMIT, TaskFile};
use vmdma_guest::bench_args::{Bench, BenchShape, BenchWait, FIRST_LBA};
use vmdma_guest::msg;
use vmdma_guest::prd::{self, PRD_MAX_LEN, PRD_TABLE_ENTRIES, Region};
use vmdma_guest::stamp::{self, SECTOR, Template};
use vmdma_protocol::{BenchLbas, MARK_BENCH_END, MARK_BENCH_START, POST_CODE_PORT};

use super::latency;
use crate::arch::bulk::{self, BULK_ALIGN, split_words};
use crate::arch::dma_memory::DmaMemory;
use crate::arch::{cpu, io, mem};
use crate::ide::dma::{self as ide_dma, Direction, LeanWait, MinimalCommand, MinimalPorts};
use crate::platform::BootInfo;
use crate::println;
use crate::suite::{Ctx, Fail};
use crate::tsc;

/// Runs the DMA benchmark `bench` and prints its report lines.
pub fn run(ctx: &mut Ctx, bench: &Bench, boot: &BootInfo) -> Result<(), Fail> {
    let kind = bench.kind;
    let name = kind.name();
    let sectors = u64::from(bench.sectors);
    let count = bench.count as usize;
    let span = if kind.is_random() {
        bench.span
    } else {
        u64::from(bench.count) * sectors
    };
    let limit = if kind.lba48() {
        ctx.capacity
    } else {
        ctx.capacity.min(LBA28_LIMIT)
    };
    let end = FIRST_LBA.saturating_add(span);
    crate::ensure!(
        end <= limit,
        "the benchmark needs LBAs up to {end}, the disk has {limit}{}",
        if kind.lba48() {
            ""
        } else {
            " (LBA28-addressable)"
        }
    );
    let freq = tsc::frequency().map_err(|e| Fail(msg!("TSC frequency: {e}")))?;

    // Bulk memory: the data buffer (64 KiB aligned), the random LBAs, the
    // per-command cycles.
    let bytes = bench.sectors as usize * SECTOR;
    let data_len = bytes.next_multiple_of(BULK_ALIGN as usize);
    let lba_words = if kind.is_random() { count } else { 0 };
    let bulk_len = data_len + 8 * (lba_words + 1) + 4 * (count + 1);
    let bulk = bulk::take(boot.memmap(), bulk_len)
        .ok_or_else(|| Fail(msg!("no {bulk_len} bytes of RAM beyond the guest image")))?;
    // Touch every page once (one `rep stosq`), so that the VMM's first
    // commands do not pay for populating guest RAM inside the timed loop
    // (16 MiB cost about 8 ms of page faults here).
    mem::fill(bulk, 0);
    let (data, rest) = bulk.split_at_mut(data_len);
    let data = data
        .get_mut(..bytes)
        .ok_or_else(|| Fail(msg!("data buffer")))?;
    let (lbas, rest) =
        split_words::<u64>(rest, lba_words).ok_or_else(|| Fail(msg!("LBA array does not fit")))?;
    let (cycles, _) =
        split_words::<u32>(rest, count).ok_or_else(|| Fail(msg!("cycle array does not fit")))?;
    load_prds(ctx.mem, data)?;

    if kind.is_write() {
        let pattern = ctx.pattern();
        stamp_buffer(data, FIRST_LBA, pattern);
        if kind.is_random() {
            ctx.manifest_random(
                FIRST_LBA,
                span,
                sectors,
                count as u64,
                bench.seed,
                pattern,
                FIRST_LBA,
            );
        } else {
            ctx.manifest_repeat(FIRST_LBA, span, pattern, FIRST_LBA, sectors);
        }
    }
    if kind.is_random() {
        let seq = BenchLbas::new(bench.seed, FIRST_LBA, span, sectors)
            .ok_or_else(|| Fail(msg!("bench_span {span} holds no command")))?;
        for (slot, lba) in lbas.iter_mut().zip(seq) {
            *slot = lba;
        }
    }

    let shape = Shape {
        opcode: match (kind.lba48(), kind.is_write()) {
            (false, false) => cmd::READ_DMA,
            (false, true) => cmd::WRITE_DMA,
            (true, false) => cmd::READ_DMA_EXT,
            (true, true) => cmd::WRITE_DMA_EXT,
        },
        dir: if kind.is_write() {
            Direction::FromMemory
        } else {
            Direction::ToMemory
        },
        lba48: kind.lba48(),
        sectors: bench.sectors,
        wait: match bench.wait {
            BenchWait::Poll => LeanWait::Poll,
            BenchWait::Irq => LeanWait::Interrupt,
        },
        minimal: None,
    };
    let shape = Shape {
        minimal: match bench.shape {
            BenchShape::Libata => None,
            BenchShape::Minimal => Some(MinimalCommand {
                ports: MinimalPorts::of(&ctx.ch),
                opcode: shape.opcode,
                sectors: shape.sectors,
                lba48: shape.lba48,
                bm_cmd: prepare_minimal(ctx, kind.is_write())?,
                wait: shape.wait,
            }),
        },
        ..shape
    };
    let total = if kind.is_random() {
        timed_loop(ctx, &shape, lbas.iter().copied(), cycles)?
    } else {
        let seq = (0..count as u64).map(|k| FIRST_LBA + k * sectors);
        timed_loop(ctx, &shape, seq, cycles)?
    };

    println!("bench {name}: {count} commands of {sectors} sectors, {total} TSC cycles");
    println!("bench {name}: {freq}");
    if let Some(s) = latency::summarize(cycles) {
        println!(
            "bench {name}: latency_cycles min={} mean={} p50={} p99={} max={}",
            s.min, s.mean, s.p50, s.p99, s.max
        );
    }
    Ok(())
}

/// What every command of the loop looks like.
struct Shape {
    opcode: u8,
    dir: Direction,
    lba48: bool,
    sectors: u32,
    wait: LeanWait,
    /// `bench_shape=minimal`: the shared part of every command.
    minimal: Option<MinimalCommand>,
}

/// Sets up what the minimal shape does once for all commands: the PRD
/// pointer, the bus master stopped, the drive selected and idle. Returns
/// the BM command value with the direction bit.
fn prepare_minimal(ctx: &mut Ctx, write: bool) -> Result<u8, Fail> {
    let prd = ctx
        .mem
        .prd_phys()
        .ok_or_else(|| Fail(msg!("PRD table address")))?;
    ctx.ch.stop_bus_master();
    ctx.ch.select(Drive::Master)?;
    ctx.ch.set_prd_pointer(prd);
    let mut bm_cmd = ctx.ch.bm_cmd() & !(bm::CMD_START | bm::CMD_WRITE_MEMORY);
    if !write {
        bm_cmd |= bm::CMD_WRITE_MEMORY;
    }
    ctx.ch.set_bm_cmd(bm_cmd);
    Ok(bm_cmd)
}

/// Issues one command per LBA of `lbas` (as many as `cycles` has room
/// for), storing each command's TSC cycles; returns the loop's cycles.
/// POST-code marks bracket the loop, outside the timed part.
fn timed_loop(
    ctx: &mut Ctx,
    shape: &Shape,
    lbas: impl Iterator<Item = u64>,
    cycles: &mut [u32],
) -> Result<u64, Fail> {
    io::outb(POST_CODE_PORT, MARK_BENCH_START);
    let start = cpu::rdtsc();
    let mut prev = start;
    let mut result = Ok(());
    for (c, (slot, lba)) in cycles.iter_mut().zip(lbas).enumerate() {
        let done = match shape.minimal {
            Some(m) => ide_dma::run_minimal(&ctx.ch, &m, lba)
                .map_err(|e| Fail(msg!("command {c} at LBA {lba}: {e}"))),
            None => {
                let tf = if shape.lba48 {
                    TaskFile::lba48(Drive::Master, lba, shape.sectors, 0)
                } else {
                    TaskFile::lba28(Drive::Master, lba, shape.sectors, 0)
                };
                tf.map_err(|e| Fail(msg!("command {c} at LBA {lba}: {e}")))
                    .and_then(|tf| {
                        ide_dma::run_lean(
                            &ctx.ch,
                            ctx.mem,
                            shape.opcode,
                            &tf,
                            shape.dir,
                            shape.wait,
                        )
                        .map_err(|e| Fail(msg!("command {c} at LBA {lba}: {e}")))
                    })
            }
        };
        let now = cpu::rdtsc();
        *slot = u32::try_from(now.wrapping_sub(prev)).unwrap_or(u32::MAX);
        prev = now;
        if let Err(e) = done {
            result = Err(e);
            break;
        }
    }
    io::outb(POST_CODE_PORT, MARK_BENCH_END);
    result.map(|()| prev.wrapping_sub(start))
}

/// Describes `data` (64 KiB aligned, in the identity map below 4 GiB) in
/// the PRD table, one entry per 64 KiB.
fn load_prds(mem: &mut DmaMemory, data: &[u8]) -> Result<(), Fail> {
    let base = u32::try_from(data.as_ptr() as usize)
        .map_err(|_| Fail(msg!("the DMA buffer lies above 4 GiB")))?;
    let mut regions = [Region { addr: 0, len: 0 }; PRD_TABLE_ENTRIES];
    let mut n = 0;
    for (offset, len) in prd::split_64k(0, data.len()) {
        let slot = regions.get_mut(n).ok_or_else(|| {
            Fail(msg!(
                "{} bytes need more than {PRD_TABLE_ENTRIES} PRD entries of {PRD_MAX_LEN}",
                data.len()
            ))
        })?;
        let addr = u32::try_from(offset)
            .ok()
            .and_then(|o| base.checked_add(o))
            .ok_or_else(|| Fail(msg!("PRD address overflow")))?;
        *slot = Region { addr, len };
        n += 1;
    }
    let regions = regions.get(..n).unwrap_or(&[]);
    prd::encode_table(regions, &mut mem.prd).map_err(|e| Fail(msg!("{e}")))?;
    Ok(())
}

/// Fills `data` with the stamps of (`lba + i`, `pattern`): one template
/// copy and one header per sector.
fn stamp_buffer(data: &mut [u8], lba: u64, pattern: u32) {
    let template = Template::new(pattern);
    for (s, l) in data.chunks_exact_mut(SECTOR).zip(lba..) {
        mem::copy(s, template.sector());
        stamp::write_header(s, l, pattern);
    }
}
