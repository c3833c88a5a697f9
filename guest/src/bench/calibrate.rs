//! `bench=calibrate`: the numbers of the cost model of a DMA command.
//!
//! ```text
//! bench calibrate: tsc_hz=H tsc_source=pit|cpuid-15h
//! bench calibrate: rdtsc loops=N cycles=C         N back-to-back rdtsc
//! bench calibrate: null_exit loops=N cycles=C     N reads of an unclaimed port
//! bench calibrate: device_exit loops=N cycles=C   N reads of Alternate Status
//! bench calibrate: kernel_exit loops=N cycles=C   N reads of the master PIC's IMR
//! bench calibrate: alu loops=N cycles=C           N rounds of a short register loop
//! bench calibrate: commands count=K sectors=8 cycles=C   K 4 KiB READ DMA EXT
//! ```
//!
//! Each section is bracketed by POST-code marks (`MARKS_CALIBRATE` in the
//! protocol; the second mark of a section is the first plus one),
//! so a VMM that records marks (vmdma's `--stats-json`) tells the host the
//! exits and KVM's emulated instructions of each section. With those the
//! host derives the cost of one emulated guest instruction (`alu`) and of
//! one exit beyond its instruction (`null_exit`), which give the floor of a
//! command: its instructions and exits at those prices.

use core::hint::black_box;

use vmdma_guest::ata::regs::cmd;
use vmdma_guest::ata::taskfile::{Drive, TaskFile};
use vmdma_guest::bench_args::FIRST_LBA;
use vmdma_guest::msg;
use vmdma_guest::prd::{self, Region};
use vmdma_protocol::{
    MARK_CAL_ALU as MARK_ALU, MARK_CAL_COMMANDS as MARK_COMMANDS,
    MARK_CAL_DEVICE_EXIT as MARK_DEVICE_EXIT, MARK_CAL_KERNEL_EXIT as MARK_KERNEL_EXIT,
    MARK_CAL_NULL_EXIT as MARK_NULL_EXIT, MARK_CAL_RDTSC as MARK_RDTSC, POST_CODE_PORT,
};

use crate::arch::{cpu, io};
use crate::ide::dma::{self as ide_dma, Direction, LeanWait};
use crate::println;
use crate::suite::{Ctx, Fail};
use crate::tsc;

/// Loops of each exit measurement.
const EXIT_LOOPS: u32 = 1000;
/// Rounds of the register loop.
const ALU_LOOPS: u32 = 100_000;
/// 4 KiB commands measured.
const COMMANDS: u64 = 64;
/// Sectors per command (4 KiB).
const SECTORS: u32 = 8;
/// A port no PC device decodes (not on vmdma, not on QEMU's `pc`).
const NULL_PORT: u16 = 0x00E0;
/// The master PIC's data port (IMR), emulated in the kernel under KVM.
const PIC_IMR: u16 = 0x21;

/// TSC cycles of `n` calls of `f`, between POST-code marks `mark` and
/// `mark + 1` (so the VMM can count what the loop cost it).
fn measure(mark: u8, n: u32, mut f: impl FnMut()) -> u64 {
    io::outb(POST_CODE_PORT, mark);
    let start = cpu::rdtsc();
    for _ in 0..n {
        f();
    }
    let c = cpu::rdtsc().wrapping_sub(start);
    io::outb(POST_CODE_PORT, mark + 1);
    c
}

/// Runs the measurements and prints them.
pub fn run(ctx: &mut Ctx) -> Result<(), Fail> {
    let freq = tsc::frequency().map_err(|e| Fail(msg!("TSC frequency: {e}")))?;
    println!("bench calibrate: {freq}");
    let n = EXIT_LOOPS;
    let c = measure(MARK_RDTSC, n, || {
        black_box(cpu::rdtsc());
    });
    println!("bench calibrate: rdtsc loops={n} cycles={c}");
    let c = measure(MARK_NULL_EXIT, n, || {
        black_box(io::inb(NULL_PORT));
    });
    println!("bench calibrate: null_exit loops={n} cycles={c}");
    let ch = &ctx.ch;
    let c = measure(MARK_DEVICE_EXIT, n, || {
        black_box(ch.alt_status());
    });
    println!("bench calibrate: device_exit loops={n} cycles={c}");
    let c = measure(MARK_KERNEL_EXIT, n, || {
        black_box(io::inb(PIC_IMR));
    });
    println!("bench calibrate: kernel_exit loops={n} cycles={c}");
    let mut x = black_box(1u64);
    let c = measure(MARK_ALU, ALU_LOOPS, || {
        x = black_box(x.wrapping_mul(3).wrapping_add(1));
    });
    println!("bench calibrate: alu loops={ALU_LOOPS} cycles={c}");

    let addr = ctx
        .mem
        .data_phys(0)
        .ok_or_else(|| Fail(msg!("DMA buffer address")))?;
    prd::encode_table(
        &[Region {
            addr,
            len: SECTORS * 512,
        }],
        &mut ctx.mem.prd,
    )
    .map_err(|e| Fail(msg!("{e}")))?;
    io::outb(POST_CODE_PORT, MARK_COMMANDS);
    let start = cpu::rdtsc();
    for k in 0..COMMANDS {
        let lba = FIRST_LBA + k * u64::from(SECTORS);
        let tf = TaskFile::lba48(Drive::Master, lba, SECTORS, 0).map_err(|e| Fail(msg!("{e}")))?;
        ide_dma::run_lean(
            &ctx.ch,
            ctx.mem,
            cmd::READ_DMA_EXT,
            &tf,
            Direction::ToMemory,
            LeanWait::Poll,
        )?;
    }
    let cycles = cpu::rdtsc().wrapping_sub(start);
    io::outb(POST_CODE_PORT, MARK_COMMANDS + 1);
    println!("bench calibrate: commands count={COMMANDS} sectors={SECTORS} cycles={cycles}");
    Ok(())
}
