//! Benchmarks (`bench=NAME`, see `vmdma_guest::bench_args`): DMA command
//! loops timed with the TSC, the cost-model measurements, and a bare boot.
//! They run instead of a suite and report in the suite's format, so host
//! tools parse both alike:
//!
//! ```text
//! running bench=NAME ...                         (not with `quiet`)
//! bench NAME: N commands of S sectors, T TSC cycles
//! bench NAME: tsc_hz=H tsc_source=pit|cpuid-15h
//! bench NAME: latency_cycles min=A mean=B p50=C p99=D max=E
//! test bench_NAME ... ok                         (or ... FAILED: reason)
//! 1 passed, 0 failed, 0 skipped                  (or 0 passed, 1 failed, 0 skipped)
//! ```
//!
//! `calibrate` prints its own `bench calibrate:` lines; `boot` none.
#![forbid(unsafe_code)]
// Failures carry their reason inline (the suite's `Fail`, no heap).
#![expect(
    clippy::result_large_err,
    reason = "fixed-size failure messages, no heap"
)]

mod calibrate;
mod dma;
mod latency;

use vmdma_guest::bench_args::{Bench, BenchKind};
use vmdma_guest::cmdline::Options;
use vmdma_protocol::{GUEST_EXIT_FAIL, GUEST_EXIT_PASS};

use crate::arch::dma_memory::{DmaMemory, Stage};
use crate::platform::BootInfo;
use crate::println;
use crate::suite::Ctx;

/// Runs `bench`; returns the debug-exit value.
pub fn run(
    bench: &Bench,
    options: &Options,
    boot: &BootInfo,
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
    if bench.kind.is_dma() {
        crate::banner!(
            "running bench={name} bench_count={} bench_sectors={} bench_wait={} bench_shape={}{}",
            bench.count,
            bench.sectors,
            bench.wait.name(),
            bench.shape.name(),
            if bench.kind.is_random() {
                " (random)"
            } else {
                ""
            },
        );
    } else {
        crate::banner!("running bench={name}");
    }
    let result = match bench.kind {
        BenchKind::Boot => Ok(()),
        BenchKind::Calibrate => calibrate::run(&mut ctx),
        _ => dma::run(&mut ctx, bench, boot),
    };
    match result {
        Ok(()) => {
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
