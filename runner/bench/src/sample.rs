//! One measurement of one mode on one target, and how each target takes
//! it: vmdma and QEMU boot the same guest ELF on the same image; the host
//! runs the same commands itself.

use std::collections::BTreeMap;
use std::io;
use std::time::Duration;

use serde_json::{Value, json};
use thiserror::Error;
use vmdma_protocol::MARKS_CALIBRATE;

use super::host::{self, HostError};
use super::parse::{self, GuestReport, Interval};
use super::plan::{Mode, Target};
use super::setup::{Setup, qemu_command, vmdma_command};
use super::snapshot::{self, Snap, SnapError};
use super::spawn::{self, Finished, SpawnError};

/// Why one run of one mode on one target has no sample.
#[derive(Debug, Error)]
pub enum SampleError {
    /// vmdma or QEMU did not run to its end (could not start, timed out).
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    /// The guest did not print its passing report: how the process ended
    /// and the last lines of its output.
    #[error("the guest's benchmark did not pass (status {code:?}): {stdout}{stderr}")]
    GuestFailed {
        /// The exit code (`None`: killed by a signal).
        code: Option<i32>,
        /// The last lines of its stdout, joined by ` | `.
        stdout: String,
        /// The last lines of its stderr, joined by ` | `.
        stderr: String,
    },
    /// The guest's report does not match the plan (command count, or no
    /// TSC frequency).
    #[error("the guest reported {commands} commands at {tsc_hz} Hz, expected {expected}")]
    WrongReport {
        /// Commands the guest reported.
        commands: u64,
        /// The TSC frequency it reported.
        tsc_hz: u64,
        /// Commands the plan asked for.
        expected: u64,
    },
    /// vmdma's `--stats-json` file could not be read.
    #[error("stats: {0}")]
    StatsRead(io::Error),
    /// vmdma's `--stats-json` file is not JSON.
    #[error("stats: {0}")]
    StatsJson(serde_json::Error),
    /// The stats lack the POST-code marks around the timed loop.
    #[error("no marks around the timed loop in --stats-json")]
    NoMarks,
    /// The snapshot or the restore failed.
    #[error("snapshot: {0}")]
    Snapshot(#[from] SnapError),
    /// The host column's file could not be opened this way (`O_DIRECT`).
    #[error("not supported on this file system")]
    HostUnsupported,
    /// The host's own run failed.
    #[error(transparent)]
    Host(#[from] HostError),
}

/// A boot: process start → first serial byte → exit, and memory.
#[derive(Clone, Debug, Default)]
pub struct Boot {
    /// Spawn to the first byte on stdout.
    pub first_byte_s: Option<f64>,
    /// Spawn to the guest's first instruction (the VM built): the process's
    /// exit less what vmdma reports after that point; `None` for QEMU.
    pub vm_start_s: Option<f64>,
    /// Spawn to the guest's exit (its debug-exit write): the process's
    /// exit less what vmdma reports it spent after the guest's exit
    /// (tearing the VM down); `None` for QEMU.
    pub guest_exit_s: Option<f64>,
    /// Spawn to the process's exit.
    pub exit_s: f64,
    /// Peak resident set (vmdma's `--stats-json`).
    pub max_rss_kib: Option<u64>,
    /// Resident guest RAM at the end.
    pub guest_ram_rss_kib: Option<u64>,
}

/// One calibration section: loops, seconds, and (vmdma) its counters.
#[derive(Clone, Debug)]
pub struct Section {
    /// Iterations (or commands).
    pub loops: u64,
    /// Seconds of the section (guest TSC).
    pub seconds: f64,
    /// vmdma's counters over the section.
    pub counters: Option<Interval>,
}

/// What one run measured.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    /// Commands of the timed loop.
    pub commands: u64,
    /// Bytes per command.
    pub command_bytes: u64,
    /// Seconds of the timed loop (I/O modes).
    pub seconds: f64,
    /// Per-command seconds: min, mean, p50, p99, max.
    pub latency: Option<[f64; 5]>,
    /// TSC frequency and its source.
    pub tsc: Option<(u64, String)>,
    /// vmdma's counters over the timed loop.
    pub counters: Option<Interval>,
    /// Boot timings (boot mode).
    pub boot: Option<Boot>,
    /// Calibration sections (calibrate mode).
    pub calibrate: BTreeMap<String, Section>,
    /// A snapshot and its restore (snapshot mode).
    pub snapshot: Option<Snap>,
}

impl Sample {
    /// Seconds per command (I/O modes).
    pub fn per_command(&self) -> f64 {
        self.seconds / self.commands.max(1) as f64
    }

    /// The sample as JSON.
    pub fn to_json(&self) -> Value {
        let counters = |c: &Interval| {
            json!({
                "user_exits": c.user_exits,
                "user_exits_by_kind": c.user_kinds,
                "coalesced_writes": c.coalesced,
                "kernel_exits": c.kernel_exits(),
                "kvm": c.kvm,
                "ram_direct_bytes": c.ram_direct_bytes,
                "bounce_bytes": c.bounce_bytes,
                "vmm_buffer_bytes": c.vmm_buffer_bytes,
                "host_seconds": c.seconds,
            })
        };
        json!({
            "commands": self.commands,
            "command_bytes": self.command_bytes,
            "seconds": self.seconds,
            "latency_s": self.latency.map(|l| json!({
                "min": l[0], "mean": l[1], "p50": l[2], "p99": l[3], "max": l[4]})),
            "tsc": self.tsc.as_ref().map(|(hz, src)| json!({"hz": hz, "source": src})),
            "counters": self.counters.as_ref().map(counters),
            "boot": self.boot.as_ref().map(|b| json!({
                "first_byte_s": b.first_byte_s, "vm_start_s": b.vm_start_s,
                "guest_exit_s": b.guest_exit_s, "exit_s": b.exit_s,
                "max_rss_kib": b.max_rss_kib, "guest_ram_rss_kib": b.guest_ram_rss_kib})),
            "calibrate": self.calibrate.iter().map(|(k, s)| (k.clone(), json!({
                "loops": s.loops, "seconds": s.seconds,
                "counters": s.counters.as_ref().map(counters)}))).collect::<serde_json::Map<_, _>>(),
            "snapshot": self.snapshot.as_ref().map(Snap::to_json),
        })
    }
}

/// The guest's report, checked: the bench passed and the loop ran the
/// expected commands.
fn checked_report(
    mode: &Mode,
    setup: &Setup<'_>,
    f: &Finished,
) -> Result<GuestReport, SampleError> {
    let name = match mode {
        Mode::Seq { .. } | Mode::Rand { .. } => mode.family(),
        Mode::Boot => "boot",
        Mode::Calibrate => "calibrate",
        Mode::Snapshot => "snapshot",
    };
    let r = parse::guest_output(name, &f.stdout);
    if !r.passed {
        return Err(SampleError::GuestFailed {
            code: f.code,
            stdout: last_lines(&f.stdout),
            stderr: last_lines(&f.stderr),
        });
    }
    let want = mode.commands(&setup.sizes);
    if mode.is_io() && (r.commands != want || r.tsc_hz == 0) {
        return Err(SampleError::WrongReport {
            commands: r.commands,
            tsc_hz: r.tsc_hz,
            expected: want,
        });
    }
    Ok(r)
}

fn last_lines(s: &str) -> String {
    let lines: Vec<&str> = s.lines().rev().take(3).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
}

/// Turns the guest's report (and vmdma's stats, if any) into a sample.
fn sample(mode: &Mode, r: &GuestReport, f: &Finished, stats: Option<&Value>) -> Sample {
    let hz = r.tsc_hz.max(1) as f64;
    let mut s = Sample {
        commands: r.commands,
        command_bytes: mode.command_bytes(),
        seconds: r.cycles as f64 / hz,
        latency: r.latency.map(|l| l.map(|c| c as f64 / hz)),
        tsc: (r.tsc_hz != 0).then(|| (r.tsc_hz, r.tsc_source.clone())),
        counters: stats.and_then(parse::bench_loop),
        ..Sample::default()
    };
    if *mode == Mode::Boot {
        let (rss, ram) = stats.map(parse::memory).unwrap_or((None, None));
        let exit_s = f.exit.as_secs_f64();
        s.boot = Some(Boot {
            first_byte_s: f.first_byte.map(|d| d.as_secs_f64()),
            vm_start_s: stats
                .and_then(parse::after_vm_start)
                .map(|after| exit_s - after),
            guest_exit_s: stats
                .and_then(parse::after_guest_exit)
                .map(|after| exit_s - after),
            exit_s,
            max_rss_kib: rss,
            guest_ram_rss_kib: ram,
        });
    }
    if *mode == Mode::Calibrate {
        for (name, code) in MARKS_CALIBRATE {
            if let Some(&(loops, cycles)) = r.calibrate.get(name) {
                s.calibrate.insert(
                    name.to_string(),
                    Section {
                        loops,
                        seconds: cycles as f64 / hz,
                        counters: stats.and_then(|v| parse::interval(v, code, code + 1)),
                    },
                );
            }
        }
    }
    s
}

/// Runs `mode` on vmdma with disk options `opts`.
fn vmdma(
    mode: &Mode,
    opts: Option<&str>,
    setup: &Setup<'_>,
    run: u32,
) -> Result<Sample, SampleError> {
    let stats = setup.scratch.join(format!("stats-{run}.json"));
    let mut c = vmdma_command(setup, setup.image, opts);
    c.arg("--stats-json")
        .arg(&stats)
        .args(["--cmdline", &mode.guest_cmdline(&setup.sizes)]);
    let f = spawn::run(c, setup.timeout + Duration::from_secs(10))?;
    let r = checked_report(mode, setup, &f)?;
    let text = std::fs::read_to_string(&stats).map_err(SampleError::StatsRead)?;
    let v: Value = serde_json::from_str(&text).map_err(SampleError::StatsJson)?;
    let s = sample(mode, &r, &f, Some(&v));
    if mode.is_io() && s.counters.is_none() {
        return Err(SampleError::NoMarks);
    }
    Ok(s)
}

/// Runs `mode` on QEMU with `-drive` options `opts`.
fn qemu(mode: &Mode, opts: &str, setup: &Setup<'_>) -> Result<Sample, SampleError> {
    let c = qemu_command(
        setup,
        setup.image,
        opts,
        Some(&mode.guest_cmdline(&setup.sizes)),
    );
    let f = spawn::run(c, setup.timeout + Duration::from_secs(15))?;
    let r = checked_report(mode, setup, &f)?;
    Ok(sample(mode, &r, &f, None))
}

/// Runs `mode` on `target`; `host_files` are the host's open images
/// (buffered, `O_DIRECT` if supported).
pub fn take(
    mode: &Mode,
    target: &Target,
    setup: &Setup<'_>,
    host_files: &HostFiles,
    run: u32,
) -> Result<Sample, SampleError> {
    if *mode == Mode::Snapshot {
        return Ok(Sample {
            snapshot: Some(snapshot::take(target, setup, run)?),
            ..Sample::default()
        });
    }
    match target {
        Target::Vmdma(opts) => vmdma(mode, opts.as_deref(), setup, run),
        Target::Qemu(opts) => qemu(mode, opts, setup),
        Target::Host { direct } => {
            let f = if *direct {
                host_files.direct.as_ref()
            } else {
                host_files.buffered.as_ref()
            }
            .ok_or(SampleError::HostUnsupported)?;
            let commands = mode.commands(&setup.sizes);
            let r = host::run(f, mode, commands, setup.sizes.random_span)?;
            Ok(Sample {
                commands,
                command_bytes: mode.command_bytes(),
                seconds: r.seconds,
                latency: r.latency,
                ..Sample::default()
            })
        }
    }
}

/// The image opened for the host runs.
#[derive(Debug)]
pub struct HostFiles {
    /// Through the page cache.
    pub buffered: Option<std::fs::File>,
    /// With `O_DIRECT` (`None`: not supported or not asked for).
    pub direct: Option<std::fs::File>,
}
