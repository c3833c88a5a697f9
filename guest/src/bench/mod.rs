//! Benchmarks (`bench=NAME`): a fixed number of identical DMA commands,
//! timed with the TSC, so that a VMM's counters (the runner's `--stats`)
//! can be divided by a known number of commands. They run instead of a
//! suite and report in the suite's format, so host tools parse both alike:
//!
//! ```text
//! running bench=NAME bench_count=N bench_sectors=S
//! vmdma-manifest: write LBA S PATTERN      (dma-write: before every command)
//! bench NAME: N commands of S sectors, T TSC cycles
//! test bench_NAME ... ok                   (or ... FAILED: reason)
//! 1 passed, 0 failed, 0 skipped            (or 0 passed, 1 failed, 0 skipped)
//! ```
#![forbid(unsafe_code)]
// Failures carry their reason inline (the suite's `Fail`, no heap).
#![expect(
    clippy::result_large_err,
    reason = "fixed-size failure messages, no heap"
)]

mod dma;

use vmdma_core::protocol::{GUEST_EXIT_FAIL, GUEST_EXIT_PASS};
use vmdma_guest::cmdline::{Bench, Options};

use crate::arch::dma_memory::{DmaMemory, Stage};
use crate::println;
use crate::suite::Ctx;

/// Runs `bench`; returns the debug-exit value.
pub fn run(
    bench: &Bench,
    options: &Options,
    bmiba: u16,
    mem: &'static mut DmaMemory,
    stage: &'static mut Stage,
) -> u32 {
    let mut ctx = match Ctx::new(options, bmiba, mem, stage) {
        Ok(c) => c,
        Err(f) => {
            println!("vmdma-guest: fatal: {f}");
            return GUEST_EXIT_FAIL;
        }
    };
    let name = bench.kind.name();
    println!(
        "running bench={name} bench_count={} bench_sectors={}",
        bench.count, bench.sectors
    );
    match dma::run(&mut ctx, bench) {
        Ok(cycles) => {
            println!(
                "bench {name}: {} commands of {} sectors, {cycles} TSC cycles",
                bench.count, bench.sectors
            );
            println!("test bench_{name} ... ok");
            println!("1 passed, 0 failed, 0 skipped");
            GUEST_EXIT_PASS
        }
        Err(why) => {
            println!("test bench_{name} ... FAILED: {why}");
            println!("0 passed, 1 failed, 0 skipped");
            GUEST_EXIT_FAIL
        }
    }
}
