//! The bundled guest's DMA benchmarks (`bench=dma-read`, `bench=dma-write`)
//! under vmdma with `--stats`: they pass, the writes land exactly as the
//! manifest announces, and two runs of different lengths give the marginal
//! VM exits per DMA command (the boot and the report cancel out). This
//! counts exits; it asserts nothing about time (TSC cycles are only
//! printed).

mod common;

use std::path::{Path, PathBuf};

use common::suite::{Change, Outcome, check_image, parse};
use common::{kvm_available, sparse_image, status, stderr, vmdma};

/// A fresh sparse image per run.
const IMAGE_BYTES: u64 = 1 << 30;
/// The guest's default sectors per command.
const SECTORS: u64 = 128;
/// The first LBA the benchmarks use.
const FIRST_LBA: u64 = 2048;
/// COM1's ports: the guest's console output, not part of a DMA command.
const COM1: std::ops::RangeInclusive<u16> = 0x3F8..=0x3FF;

/// What one benchmark run printed.
#[derive(Debug)]
struct BenchRun {
    count: u64,
    /// `vmdma stats: vm exits TOTAL`.
    exits: u64,
    /// Exits on COM1 ports (serial output, manifest lines included).
    serial_exits: u64,
    /// Exits for the supervisor's kicks (`signal`), not caused by the guest.
    signal_exits: u64,
    /// TSC cycles of the guest's command loop.
    cycles: u64,
    manifest: Vec<Change>,
    image: PathBuf,
}

impl BenchRun {
    /// Exits other than console output and supervisor kicks.
    fn device_exits(&self) -> u64 {
        self.exits - self.serial_exits - self.signal_exits
    }
}

/// Runs `bench=NAME bench_count=COUNT` on a fresh image and checks the
/// report: exit status 0, one passing test, the bench line, `--stats`.
fn run_bench(dir: &Path, name: &str, count: u64) -> BenchRun {
    let image = sparse_image(dir, &format!("{name}-{count}.img"), IMAGE_BYTES);
    let cmdline = format!("bench={name} bench_count={count}");
    // The synchronous engine: every command's data phase completes inside
    // the START write, which is the command shape counted here (with
    // io_uring a write may complete later, and the guest's BM status polls
    // then vary with host timing).
    let disk = format!("{},aio=sync", image.display());
    let out = vmdma(&[
        "run",
        "--disk",
        &disk,
        "--stats",
        "--timeout",
        "300",
        "--cmdline",
        &cmdline,
    ]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = stderr(&out);
    assert_eq!(
        status(&out),
        0,
        "{cmdline}\nstdout:\n{text}\nstderr:\n{err}"
    );
    let run = parse(&text);
    assert_eq!(run.summary, Some((1, 0, 0)), "{text}");
    assert_eq!(
        run.tests,
        vec![(format!("bench_{name}"), Outcome::Ok)],
        "{text}"
    );

    let bench_line = text
        .lines()
        .find_map(|l| l.strip_prefix(&format!("bench {name}: ")))
        .unwrap_or_else(|| panic!("no bench line:\n{text}"));
    let cycles = parse_bench_line(bench_line, count);

    let stat = |key: &str| -> Vec<&str> {
        err.lines()
            .filter_map(|l| l.strip_prefix("vmdma stats:"))
            .map(str::trim_start)
            .filter_map(|l| l.strip_prefix(key))
            .collect()
    };
    let exits = match stat("vm exits ").as_slice() {
        [n] => n.parse().expect("vm exits is a number"),
        other => panic!("expected one `vm exits` line, got {other:?}\n{err}"),
    };
    let signal_exits = stat("signal ")
        .first()
        .map_or(0, |n| n.trim().parse().expect("signal count"));
    let serial_exits = stat("port ")
        .iter()
        .map(|l| parse_port_line(l))
        .filter(|(port, _)| COM1.contains(port))
        .map(|(_, n)| n)
        .sum();
    let dma: Vec<u64> = stat("DMA commands ")
        .iter()
        .map(|l| {
            let n = l.split(',').next().unwrap_or(l);
            n.trim().parse().expect("DMA command count")
        })
        .collect();
    assert_eq!(
        dma,
        vec![count],
        "the device saw {count} DMA commands\n{err}"
    );
    BenchRun {
        count,
        exits,
        serial_exits,
        signal_exits,
        cycles,
        manifest: run.manifest,
        image,
    }
}

/// `N commands of S sectors, T TSC cycles` → T (checking N and S).
fn parse_bench_line(line: &str, count: u64) -> u64 {
    let want = format!("{count} commands of {SECTORS} sectors, ");
    let cycles = line
        .strip_prefix(&want)
        .and_then(|r| r.strip_suffix(" TSC cycles"))
        .unwrap_or_else(|| panic!("bad bench line {line:?}, want {want:?}..."));
    cycles.parse().expect("TSC cycles is a number")
}

/// `0x03f8 in R out W` → (port, R + W).
fn parse_port_line(line: &str) -> (u16, u64) {
    let w: Vec<&str> = line.split_whitespace().collect();
    let [port, "in", r, "out", o] = w.as_slice() else {
        panic!("bad port line {line:?}");
    };
    let port = u16::from_str_radix(port.trim_start_matches("0x"), 16).expect("port number");
    (port, r.parse::<u64>().unwrap() + o.parse::<u64>().unwrap())
}

/// `(b(long) - b(short)) / (commands in between)`.
fn marginal(short: &BenchRun, long: &BenchRun, f: impl Fn(&BenchRun) -> u64) -> f64 {
    assert!(long.count > short.count);
    let (a, b) = (f(short), f(long));
    assert!(b >= a, "the longer run has fewer: {a} > {b}");
    (b - a) as f64 / (long.count - short.count) as f64
}

/// VM exits of one LBA28 DMA command driven the way Linux's libata drives
/// a PIIX (the guest's `run_lean`), all port I/O: drive select 4 (idle
/// poll, Device write, Alternate Status read, idle poll: the polls read
/// Alternate Status and find the drive idle at once), task file 6
/// (Features, Count, LBA low/mid/high, Device), PRD table pointer 1, BM
/// command 2 (read it, write the direction), ATA command 1, BM START 1 (the
/// whole data phase completes inside this write), one BM status poll 1,
/// stop 2 (BM command write clearing START, Alternate Status read), ATA
/// Status read 1 (acknowledges the interrupt), BM status write-back (W1C) 1.
const EXITS_PER_DMA_COMMAND: f64 = 20.0;

/// Asserts that `per_command` is [`EXITS_PER_DMA_COMMAND`] within `slack`.
fn assert_exits_per_command(what: &str, per_command: f64, slack: f64) {
    assert!(
        (per_command - EXITS_PER_DMA_COMMAND).abs() <= slack,
        "{what}: {per_command:.3} exits per DMA command, expected \
         {EXITS_PER_DMA_COMMAND} (±{slack}): select 4, task file 6, PRD pointer 1, \
         BM command 2, command 1, START 1, BM status poll 1, stop 2, Status 1, BM W1C 1"
    );
}

/// [`marginal`] for a time measurement, reported but never asserted on:
/// on a loaded machine a longer run can take fewer TSC cycles.
fn marginal_time(short: &BenchRun, long: &BenchRun, f: impl Fn(&BenchRun) -> u64) -> f64 {
    (f(long) as f64 - f(short) as f64) / (long.count - short.count) as f64
}

/// Prints the measurement (visible with `--nocapture`).
fn report(name: &str, short: &BenchRun, long: &BenchRun) {
    eprintln!(
        "{name}: {:.3} VM exits per DMA command (marginal, runs of {} and {} commands); \
         {:.3} without COM1 output; {:.0} TSC cycles per command (marginal), {:.0} per command \
         over the {}-command loop",
        marginal(short, long, |r| r.exits),
        short.count,
        long.count,
        marginal(short, long, BenchRun::device_exits),
        marginal_time(short, long, |r| r.cycles),
        long.cycles as f64 / long.count as f64,
        long.count,
    );
}

#[test]
fn dma_read_exits_per_command() {
    if !kvm_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let short = run_bench(dir.path(), "dma-read", 8);
    let long = run_bench(dir.path(), "dma-read", 72);
    report("dma-read", &short, &long);
    for r in [&short, &long] {
        assert!(r.manifest.is_empty(), "reads announce no writes");
        assert_eq!(check_image(&r.image, &[]), 0, "reads leave the image empty");
    }
    // The two runs print the same lines except for the count's digits, so
    // the total differs from the device exits by a few serial exits spread
    // over the commands in between.
    assert_exits_per_command(
        "dma-read (all exits)",
        marginal(&short, &long, |r| r.exits),
        0.25,
    );
    assert_exits_per_command(
        "dma-read (without COM1)",
        marginal(&short, &long, BenchRun::device_exits),
        0.05,
    );
}

#[test]
fn dma_write_matches_manifest_and_exits_per_command() {
    if !kvm_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let short = run_bench(dir.path(), "dma-write", 16);
    let long = run_bench(dir.path(), "dma-write", 48);
    report("dma-write", &short, &long);
    for r in [&short, &long] {
        assert_eq!(
            r.manifest.len() as u64,
            r.count,
            "one manifest line per command"
        );
        for (i, c) in r.manifest.iter().enumerate() {
            let Change::Write { lba, count, .. } = *c else {
                panic!("unexpected manifest entry {c:?}");
            };
            assert_eq!((lba, count), (FIRST_LBA + i as u64 * SECTORS, SECTORS));
        }
        let checked = check_image(&r.image, &r.manifest) as u64;
        assert!(
            checked >= r.count * SECTORS,
            "only {checked} sectors checked"
        );
    }
    // Every write also prints a manifest line (tens of serial exits), so
    // the exact count applies to the device exits only.
    assert_exits_per_command(
        "dma-write (without COM1)",
        marginal(&short, &long, BenchRun::device_exits),
        0.05,
    );
    assert!(
        long.serial_exits > short.serial_exits,
        "every write command is announced on the console"
    );
}
