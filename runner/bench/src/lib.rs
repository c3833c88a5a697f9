//! `vmdma bench`: one command that measures vmdma against QEMU and the
//! host's own `pread`/`pwrite` on the same machine, with the same guest
//! ELF (the bundled one) and the same image file.
//!
//! ```text
//! for run in 1..=runs:                      (columns interleave in every run)
//!     for mode in modes:                    seq-read/-write × sizes, rand-read/-write
//!         for column in columns:            × poll/irq, boot, calibrate, snapshot
//!             vmdma  --kernel ELF --disk IMG[,OPTS] --stats-json ... --cmdline "bench=..."
//!             QEMU   -M pc -drive file=IMG,if=ide,OPTS -kernel ELF -append "bench=..."
//!             host   pread/pwrite of the same commands on IMG (page cache, O_DIRECT)
//! ```
//!
//! The snapshot mode runs the guest's conformance suite instead, with a
//! QMP monitor, snapshots it and restores it (`snapshot.rs`).
//!
//! The guest times its loop with the TSC and states the frequency's
//! source; vmdma's counters between the loop's POST-code marks give the
//! exits per command. The report is markdown (stdout, and `--markdown
//! FILE`): a summary table (a row per workload: vmdma's two first columns,
//! the faster QEMU column, the host limit, the ratios; `--full` adds every
//! column), the snapshot and restore tables, the exits, boot and
//! cost-model sections; a chart of the summary
//! (`--svg FILE`); and a JSON document with every sample (`--json FILE`);
//! see `docs/performance.md` for a real run.
//!
//! A crate of its own on top of the `vmdma` library (the VMM): the `vmdma`
//! command (`vmdma-cli`) runs it as `vmdma bench`, and the runs of vmdma it
//! measures are that same executable.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod args;
mod chart;
mod compact;
mod error;
mod host;
mod image;
mod live;
mod model;
mod parse;
mod plan;
mod qmp;
mod report;
mod sample;
mod setup;
mod snapshot;
mod snapshot_report;
mod spawn;
mod summary;

use std::path::PathBuf;
use std::process::Command;

use serde_json::json;

use vmdma::guest_image::BUNDLED_GUEST;

pub use args::BenchArgs;
pub use error::{BenchError, QemuError};

use plan::{FAMILIES, FIRST_LBA, Mode, PlanError, SECTOR, Sizes, Target};
use report::Results;
use sample::HostFiles;
use setup::Setup;

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn io_err(what: &'static str) -> impl Fn(std::io::Error) -> BenchError {
    move |source| BenchError::Io { what, source }
}

/// The first line of `qemu --version`, or why QEMU cannot run.
fn qemu_version(qemu: &str) -> Result<String, QemuError> {
    if qemu == "none" {
        return Err(QemuError::LeftOut);
    }
    let out = Command::new(qemu)
        .arg("--version")
        .output()
        .map_err(|source| QemuError::NotFound {
            qemu: qemu.into(),
            source,
        })?;
    if !out.status.success() {
        return Err(QemuError::NotUsable { qemu: qemu.into() });
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .to_string())
}

/// The machine, for the report.
fn machine() -> serde_json::Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .ok();
    json!({
        "cpu": cpu,
        "cpus": std::thread::available_parallelism().map(|n| n.get()).ok(),
        "kernel": kernel,
    })
}

/// Today's date (UTC) as YYYY-MM-DD.
fn today() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or(0);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Runs the benchmark; the status is 0 when every run of every present
/// column succeeded.
pub fn run(args: &BenchArgs) -> Result<u8, BenchError> {
    let families: Vec<String> = args
        .modes
        .clone()
        .unwrap_or_else(|| FAMILIES.iter().map(|s| s.to_string()).collect());
    let modes = plan::modes(&families, &args.sizes)?;
    let qemu = qemu_version(&args.qemu);
    let mut targets: Vec<Target> = args
        .vmdma_disk
        .iter()
        .map(|o| Target::Vmdma((o != "default").then(|| o.clone())))
        .collect();
    targets.extend(args.qemu_drive.iter().map(|o| Target::Qemu(o.clone())));
    targets.push(Target::Host { direct: false });
    if args.host_direct {
        targets.push(Target::Host { direct: true });
    }

    let scratch = Scratch(std::env::temp_dir().join(format!("vmdma-bench-{}", std::process::id())));
    std::fs::create_dir_all(&scratch.0).map_err(io_err("scratch directory"))?;
    let kernel = scratch.0.join("guest.elf");
    std::fs::write(&kernel, BUNDLED_GUEST.ok_or(BenchError::NoBundledGuest)?)
        .map_err(io_err("guest ELF"))?;
    let vmdma = std::env::current_exe().map_err(io_err("this executable"))?;
    let largest = args.sizes.iter().copied().max().unwrap_or(0);
    let seq_bytes = args.total.max(largest);
    let sizes = Sizes {
        total: args.total,
        random_count: args.random_count,
        random_span: args.random_span / SECTOR,
    };
    if args.random_span < 4096 || !args.random_span.is_multiple_of(4096) {
        return Err(PlanError::RandomSpan(args.random_span).into());
    }
    let used = (FIRST_LBA * SECTOR) + seq_bytes.max(args.random_span) + (1 << 20);
    eprintln!(
        "vmdma bench: preparing {} MiB of {}",
        used >> 20,
        args.image
            .as_deref()
            .map_or("a temporary image".into(), |p| p.display().to_string())
    );
    let image = image::Image::prepare(args.image.as_deref(), used)?;
    let host_open = |source| BenchError::HostOpen {
        path: image.path().to_path_buf(),
        source,
    };
    let host_files = HostFiles {
        buffered: host::open(image.path(), false).map_err(host_open)?,
        direct: if args.host_direct {
            host::open(image.path(), true).map_err(host_open)?
        } else {
            None
        },
    };
    let absent: Vec<Option<String>> = targets
        .iter()
        .map(|t| match t {
            Target::Qemu(_) => qemu.as_ref().err().map(ToString::to_string),
            Target::Host { direct: true } if host_files.direct.is_none() => {
                Some("O_DIRECT not supported by the file system".into())
            }
            _ => None,
        })
        .collect();
    let setup = Setup {
        vmdma: &vmdma,
        qemu: &args.qemu,
        kernel: &kernel,
        image: image.path(),
        memory: args.memory,
        sizes,
        timeout: args.timeout,
        scratch: &scratch.0,
    };

    let mut runs: Vec<Vec<report::Runs>> = modes
        .iter()
        .map(|_| targets.iter().map(|_| Vec::new()).collect())
        .collect();
    for run in 1..=args.runs {
        for (m, mode) in modes.iter().enumerate() {
            for (t, target) in targets.iter().enumerate() {
                if !target.measures(mode) || absent.get(t).is_some_and(Option::is_some) {
                    continue;
                }
                if matches!(mode, Mode::Boot) {
                    // Every column's exit flush then finds a clean image;
                    // otherwise the first column after the write modes
                    // pays for their dirty pages (50-100 ms here).
                    image.settle()?;
                }
                if mode.is_io() {
                    // Page-cached when it starts, whatever came before: the
                    // host's O_DIRECT writes drop the pages they overwrite,
                    // and a host may reclaim pages left unused for a while
                    // (this development machine pages out what sat idle
                    // for 60 s, a DAMON scheme, so a row's range was read
                    // from the disk in some runs).
                    image.warm()?;
                }
                let r = sample::take(mode, target, &setup, &host_files, run);
                match &r {
                    Ok(s) if mode.is_io() => eprintln!(
                        "vmdma bench: run {run}/{}: {mode} on {}: {:.1} µs per command",
                        args.runs,
                        target.label(),
                        s.per_command() * 1e6
                    ),
                    Ok(s) if s.snapshot.is_some() => {
                        let snap = s.snapshot.clone().unwrap_or_default();
                        eprintln!(
                            "vmdma bench: run {run}/{}: {mode} on {}: migrate {:.1} ms, \
                             restored guest's first line after {:.1} ms",
                            args.runs,
                            target.label(),
                            snap.wall_s * 1e3,
                            snap.first_line_s * 1e3
                        )
                    }
                    Ok(_) => eprintln!(
                        "vmdma bench: run {run}/{}: {mode} on {}: done",
                        args.runs,
                        target.label()
                    ),
                    Err(e) => eprintln!(
                        "vmdma bench: run {run}/{}: {mode} on {}: FAILED: {e}",
                        args.runs,
                        target.label()
                    ),
                }
                if let Some(cell) = runs.get_mut(m).and_then(|row| row.get_mut(t)) {
                    cell.push(r);
                }
            }
        }
    }

    let results = Results {
        modes,
        targets,
        runs,
        absent,
    };
    let command: Vec<String> = std::env::args().collect();
    let date = today();
    let qemu_line = match &qemu {
        Ok(v) => v.clone(),
        Err(e) => e.to_string(),
    };
    let meta = json!({
        "date": date,
        "command": command.join(" "),
        "machine": machine(),
        "qemu": qemu_line,
        "runs": args.runs,
        "total_bytes": args.total,
        "random_count": args.random_count,
        "random_span_bytes": args.random_span,
        "memory_bytes": args.memory,
        "image": image.path().display().to_string(),
    });
    let m = machine();
    let header = format!(
        "## vmdma bench, {date}\n\n`{}`\n\nMachine: {} ({} CPUs), Linux {}; {}. Guest: the bundled \
         test guest, {} MiB RAM; image: {} MiB, page-cached; {} runs, columns interleaved.",
        command.join(" "),
        m["cpu"].as_str().unwrap_or("?"),
        m["cpus"],
        m["kernel"].as_str().unwrap_or("?"),
        qemu_line,
        args.memory >> 20,
        used >> 20,
        args.runs,
    );
    let md = results.markdown(&header, args.full);
    println!("{md}");
    if let Some(p) = &args.markdown {
        std::fs::write(p, &md).map_err(io_err("markdown file"))?;
    }
    let title = format!(
        "vmdma bench, {date}: {} ({} CPUs), {} runs",
        m["cpu"].as_str().unwrap_or("?"),
        m["cpus"],
        args.runs
    );
    if let Some(svg) = results.chart(&title) {
        std::fs::write(&args.svg, svg).map_err(io_err("SVG file"))?;
    }
    let doc = results.json(meta);
    let text = serde_json::to_string_pretty(&doc)?;
    std::fs::write(&args.json, text + "\n").map_err(io_err("JSON file"))?;
    Ok(if results.all_ok() { 0 } else { 1 })
}
