//! The bundled guest's DMA benchmarks under vmdma with `--stats-json`:
//! they pass, the writes land exactly as the manifest announces, and the
//! POST-code marks around the timed loop give the exact VM exits per DMA
//! command, with KVM's coalesced PIO and without it (`--no-coalesced-pio`).
//! This counts exits; it asserts nothing about time.

mod common;

use std::path::{Path, PathBuf};

use common::facts::{COALESCED_LBA28, COALESCED_LBA48, EXITS_LBA28, EXITS_LBA48};
use common::suite::{Change, Outcome, check_image, parse_run};
use common::{kvm_available, sparse_image, status, stderr, vmdma};
use serde_json::Value;
use vmdma_protocol::{MARK_BENCH_END, MARK_BENCH_START};

/// A fresh sparse image per run.
const IMAGE_BYTES: u64 = 1 << 30;
/// The first LBA the benchmarks use.
const FIRST_LBA: u64 = 2048;

/// What one benchmark run reported.
#[derive(Debug)]
struct BenchRun {
    count: u64,
    /// The stats JSON.
    stats: Value,
    manifest: Vec<Change>,
    image: PathBuf,
}

impl BenchRun {
    /// The counter `key` (a JSON pointer below a snapshot) at mark `code`.
    fn at_mark(&self, code: u8, key: &str) -> u64 {
        let marks = self.stats["marks"].as_array().expect("marks");
        let m = marks
            .iter()
            .find(|m| m["code"] == u64::from(code))
            .unwrap_or_else(|| panic!("no mark {code:#x}: {marks:?}"));
        m.pointer(key)
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("no {key} at mark {code:#x}"))
    }

    /// Counter `key` per command over the timed loop: the difference
    /// between the two marks, less the end mark's own exit for exit
    /// counters, divided by the commands.
    fn per_command(&self, key: &str, mark_exits: u64) -> f64 {
        let d = self.at_mark(MARK_BENCH_END, key) - self.at_mark(MARK_BENCH_START, key);
        (d - mark_exits) as f64 / self.count as f64
    }
}

/// Runs `bench=NAME bench_count=COUNT EXTRA` on a fresh image and checks
/// the report: exit status 0, one passing test, the bench line.
fn run_bench(dir: &Path, name: &str, count: u64, extra: &str) -> BenchRun {
    run_bench_with(dir, name, count, extra, &[])
}

/// [`run_bench`] with more runner options.
fn run_bench_with(dir: &Path, name: &str, count: u64, extra: &str, runner: &[&str]) -> BenchRun {
    let tag = format!("{name}-{count}-{}", runner.len());
    let image = sparse_image(dir, &format!("{tag}.img"), IMAGE_BYTES);
    let stats = dir.join(format!("{tag}.json"));
    let manifest = dir.join(format!("{tag}.manifest"));
    let cmdline = format!("bench={name} bench_count={count} {extra}");
    // The synchronous engine: every command's data phase completes inside
    // the START write, which is the command shape counted here (with
    // io_uring a write may complete later, and the guest's BM status polls
    // then vary with host timing).
    let disk = format!("{},aio=sync", image.display());
    let mut args = vec![
        "run",
        "--disk",
        &disk,
        "--stats-json",
        stats.to_str().unwrap(),
        "--manifest",
        manifest.to_str().unwrap(),
        "--timeout",
        "300",
        "--cmdline",
        &cmdline,
    ];
    args.extend_from_slice(runner);
    let out = vmdma(&args);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = stderr(&out);
    assert_eq!(
        status(&out),
        0,
        "{cmdline}\nstdout:\n{text}\nstderr:\n{err}"
    );
    let run = parse_run(&text, &std::fs::read_to_string(&manifest).unwrap());
    assert_eq!(run.summary, Some((1, 0, 0)), "{text}");
    assert_eq!(
        run.tests,
        vec![(format!("bench_{name}"), Outcome::Ok)],
        "{text}"
    );
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix(&format!("bench {name}: {count} commands of ")))
        .unwrap_or_else(|| panic!("no bench line:\n{text}"));
    assert!(line.ends_with(" TSC cycles"), "{line}");
    assert!(
        text.contains(&format!("bench {name}: tsc_hz=")),
        "frequency line:\n{text}"
    );
    let stats: Value = serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    let dma =
        stats["ide"]["dma_reads"].as_u64().unwrap() + stats["ide"]["dma_writes"].as_u64().unwrap();
    assert_eq!(dma, count, "the device saw {count} DMA commands");
    BenchRun {
        count,
        stats,
        manifest: run.manifest,
        image,
    }
}

/// Exits per command over the timed loop (the end mark's exit excluded).
fn exits_per_command(r: &BenchRun) -> f64 {
    r.per_command("/exits/total", 1)
}

/// Coalesced writes per command over the timed loop.
fn coalesced_per_command(r: &BenchRun) -> f64 {
    r.per_command("/exits/coalesced_total", 0)
}

/// Checks both counts: with coalescing, the coalesced writes leave the
/// exits; without it, `r_all` shows every access as an exit.
fn assert_shape(r: &BenchRun, r_all: &BenchRun, exits: f64, coalesced: f64) {
    assert_eq!(r.stats["coalesced_pio"], true, "KVM_CAP_COALESCED_PIO");
    assert_eq!(
        exits_per_command(r),
        exits - coalesced,
        "{:#}",
        r.stats["marks"]
    );
    assert_eq!(coalesced_per_command(r), coalesced);
    assert_eq!(r_all.stats["coalesced_pio"], false);
    assert_eq!(
        exits_per_command(r_all),
        exits,
        "{:#}",
        r_all.stats["marks"]
    );
    assert_eq!(coalesced_per_command(r_all), 0.0);
}

#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn dma_read_exits_per_command() {
    if !kvm_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let r = run_bench(dir.path(), "dma-read", 8, "");
    let all = run_bench_with(dir.path(), "dma-read", 8, "", &["--no-coalesced-pio"]);
    assert!(r.manifest.is_empty(), "reads announce no writes");
    assert_eq!(check_image(&r.image, &[]), 0, "reads leave the image empty");
    assert_shape(&r, &all, EXITS_LBA28, COALESCED_LBA28);
    let direct = r.per_command("/data_path/ram_direct_bytes", 0);
    assert_eq!(direct, 128.0 * 512.0, "every byte straight into guest RAM");
    assert_eq!(r.stats["data_path"]["vmm_buffer_bytes"], 0, "no copy");
    assert_eq!(r.stats["data_path"]["bounce_bytes"], 0);
}

#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn dma_write_matches_manifest_and_exits_per_command() {
    if !kvm_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let r = run_bench(dir.path(), "dma-write", 16, "");
    let [
        Change::Repeat {
            lba,
            count,
            from,
            period,
            ..
        },
    ] = r.manifest[..]
    else {
        panic!("one repeat line expected: {:?}", r.manifest);
    };
    assert_eq!(
        (lba, count, from, period),
        (FIRST_LBA, 16 * 128, FIRST_LBA, 128)
    );
    let checked = check_image(&r.image, &r.manifest) as u64;
    assert!(checked >= 16 * 128, "only {checked} sectors checked");
    let all = run_bench_with(dir.path(), "dma-write", 16, "", &["--no-coalesced-pio"]);
    assert!(check_image(&all.image, &all.manifest) >= 16 * 128);
    assert_shape(&r, &all, EXITS_LBA28, COALESCED_LBA28);
}

#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn lba48_sequential_and_random_writes_match_the_manifest() {
    if !kvm_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let r = run_bench(dir.path(), "seq-write", 3, "bench_sectors=2048");
    let all = run_bench_with(
        dir.path(),
        "seq-write",
        3,
        "bench_sectors=2048",
        &["--no-coalesced-pio"],
    );
    assert_shape(&r, &all, EXITS_LBA48, COALESCED_LBA48);
    assert!(check_image(&r.image, &r.manifest) >= 3 * 2048);
    assert_eq!(r.stats["ide"]["bytes_written"], 3 * 2048 * 512);

    let r = run_bench(
        dir.path(),
        "rand-write",
        24,
        "bench_seed=7 bench_span=4096 bench_wait=irq",
    );
    let [
        Change::Random {
            base,
            span,
            sectors,
            count,
            seed,
            ..
        },
    ] = r.manifest[..]
    else {
        panic!("one random line expected: {:?}", r.manifest);
    };
    assert_eq!(
        (base, span, sectors, count, seed),
        (FIRST_LBA, 4096, 8, 24, 7)
    );
    assert!(check_image(&r.image, &r.manifest) >= 8);
    // Interrupt-driven: the same exits to user space as polling (the
    // handler's BM status read replaces the poll); the halt and the
    // interrupt are handled in the kernel.
    assert_eq!(
        exits_per_command(&r),
        EXITS_LBA48 - COALESCED_LBA48,
        "{:#}",
        r.stats["marks"]
    );
    if !r.stats["kvm"].is_null() {
        let halts = r.per_command("/kvm/halt_exits", 0);
        assert!(halts >= 1.0, "one halt per command at least: {halts}");
    }

    let r = run_bench(dir.path(), "rand-read", 16, "bench_span=64");
    assert_eq!(exits_per_command(&r), EXITS_LBA48 - COALESCED_LBA48);
    assert_eq!(r.per_command("/data_path/ram_direct_bytes", 0), 4096.0);
}
