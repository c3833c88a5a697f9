//! The `snapshot` mode: a snapshot of the bundled guest running its
//! conformance suite, and its restore, on vmdma and on QEMU, through their
//! public interfaces only (QMP, the command line, vmdma's `--stats-json`).
//!
//! ```text
//! source   VMM --qmp/-qmp SOCKET, fresh sparse image, the suite (no cmdline)
//!          console shows SNAPSHOT_AFTER → QMP stop → QMP migrate
//!              vmdma: {"uri": "file:SNAP"}       QEMU 7.2: {"uri": "exec:cat > SNAP"}
//!          query-migrate until "completed": total-time, and the wall time
//!          the client saw from sending migrate; cp --sparse=always of the
//!          image (the VM is paused, postmigrate); quit
//! restore  VMM on that copy, same options, plus
//!              vmdma: --incoming file:SNAP --stats-json   QEMU: -incoming "exec:cat SNAP"
//!          spawn → first console line end (VmHWM/VmRSS of the VMM read
//!          from /proc then) → exit; the suite's summary must say 0 failed
//! ```
//!
//! The VM is paused with `stop` before `migrate` on both: QEMU migrates a
//! running VM live (copying RAM while the guest runs on, which took it
//! three tests further here), vmdma pauses first. So the snapshot is taken
//! just after the guest printed the line of test `check_power_mode` (the
//! guest may get a few hundred instructions further before the pause
//! lands: into the next line, or one test on). The next tests
//! (`execute_device_diagnostic`, `read_native_max`) are one non-data
//! command each, so the restored guest's first line end (the rest of a
//! line the snapshot cut, or the next test's line) comes after tiny guest
//! work, the same on both VMMs: "spawn → first line" is the restore
//! itself plus that. The process exit adds the suite's last tests (one of
//! them writes and reads 64 ranges: there the VMMs' own I/O speeds
//! differ).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use thiserror::Error;

use super::live::{self, Live};
use super::plan::Target;
use super::qmp::{self, Client};
use super::setup::{Setup, qemu_command, vmdma_command};
use super::spawn::{Finished, SpawnError};

/// The console line after which the snapshot is taken (its start: the
/// test's verdict follows).
pub const SNAPSHOT_AFTER: &str = "test check_power_mode ... ";
/// Image size for the conformance suite (its LBA48 tests go above 2^28
/// sectors); a sparse file, fresh for every source run.
pub const SUITE_IMAGE_BYTES: u64 = 130 << 30;

/// Why a snapshot or its restore has no figures.
#[derive(Debug, Error)]
pub enum SnapError {
    /// The VMM did not run to its end (could not start, timed out).
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    /// The monitor failed or refused a command.
    #[error(transparent)]
    Qmp(#[from] qmp::QmpError),
    /// What went wrong (a file, the migration, the guest's suite).
    #[error("{0}")]
    Failed(String),
}

/// One snapshot and its restore.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snap {
    /// QMP `stop` sent → its reply (the VM paused).
    pub stop_s: f64,
    /// `query-migrate`'s `total-time` (ms, as the VMM reports it).
    pub total_time_ms: f64,
    /// Sending `migrate` → the client reading `"completed"`.
    pub wall_s: f64,
    /// The snapshot file's apparent size.
    pub file_bytes: u64,
    /// Its blocks on disk (`st_blocks × 512`).
    pub file_disk_bytes: u64,
    /// vmdma's restore: reading and checking the file.
    pub read_check_s: Option<f64>,
    /// vmdma's restore: putting RAM, KVM and device state back.
    pub apply_s: Option<f64>,
    /// vmdma's restore: process start → the guest's first entry.
    pub first_entry_s: Option<f64>,
    /// Spawn → the restored guest's first console line end.
    pub first_line_s: f64,
    /// That line (without its line end).
    pub first_line: String,
    /// Spawn → the restored process's exit (the suite finished).
    pub exit_s: f64,
    /// `VmHWM` of the VMM process when the first line arrived.
    pub hwm_kib: Option<u64>,
    /// `VmRSS` of the VMM process when the first line arrived.
    pub rss_kib: Option<u64>,
    /// vmdma's `--stats-json` peak RSS over the whole restored run.
    pub max_rss_kib: Option<u64>,
    /// Tests the whole suite passed (the restored guest's summary).
    pub passed: u32,
}

impl Snap {
    /// As JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "stop_s": self.stop_s,
            "migrate_total_time_ms": self.total_time_ms,
            "migrate_wall_s": self.wall_s,
            "file_bytes": self.file_bytes,
            "file_disk_bytes": self.file_disk_bytes,
            "restore_read_check_s": self.read_check_s,
            "restore_apply_s": self.apply_s,
            "restore_first_entry_s": self.first_entry_s,
            "restore_first_line_s": self.first_line_s,
            "restore_first_line": self.first_line,
            "restore_exit_s": self.exit_s,
            "restore_vm_hwm_kib": self.hwm_kib,
            "restore_vm_rss_kib": self.rss_kib,
            "restore_stats_max_rss_kib": self.max_rss_kib,
            "suite_passed": self.passed,
        })
    }
}

/// The suite's summary line (`N passed, M failed, K skipped`).
pub fn suite_summary(text: &str) -> Option<(u32, u32, u32)> {
    text.lines().rev().find_map(|l| {
        let mut w = l.trim_end_matches('\r').split(", ");
        let mut num = |suffix: &str| w.next()?.strip_suffix(suffix)?.parse::<u32>().ok();
        Some((num(" passed")?, num(" failed")?, num(" skipped")?))
    })
}

/// vmdma's restore phases from its `--stats-json` (`restore`), and its
/// peak RSS.
pub fn restore_stats(stats: &Value) -> (Option<f64>, Option<f64>, Option<f64>, Option<u64>) {
    let f = |p: &str| stats.pointer(p).and_then(Value::as_f64);
    (
        f("/restore/read_check_s"),
        f("/restore/apply_s"),
        f("/restore/first_entry_s"),
        stats.pointer("/memory/max_rss_kib").and_then(Value::as_u64),
    )
}

/// Which VMM, and its disk options.
enum Vmm<'a> {
    Vmdma(Option<&'a str>),
    Qemu(&'a str),
}

impl Vmm<'_> {
    /// The command for `image`: with a monitor on `socket`, or restoring
    /// `incoming` (with vmdma's stats to `stats`).
    fn command(
        &self,
        setup: &Setup<'_>,
        image: &Path,
        socket: Option<&Path>,
        incoming: Option<(&Path, &Path)>,
    ) -> Command {
        match self {
            Vmm::Vmdma(opts) => {
                let mut c = vmdma_command(setup, image, *opts);
                if let Some(s) = socket {
                    c.arg("--qmp")
                        .arg(format!("unix:{},server=on,wait=off", s.display()));
                }
                if let Some((snap, stats)) = incoming {
                    c.arg("--incoming")
                        .arg(format!("file:{}", snap.display()))
                        .arg("--stats-json")
                        .arg(stats);
                }
                c
            }
            Vmm::Qemu(opts) => {
                let mut c = qemu_command(setup, image, opts, None);
                // Without the source's run state in the stream, the
                // destination starts the VM once restored (as with a
                // running source) instead of staying paused like it.
                c.args(["-global", "migration.store-global-state=off"]);
                if let Some(s) = socket {
                    c.arg("-qmp")
                        .arg(format!("unix:{},server=on,wait=off", s.display()));
                }
                if let Some((snap, _)) = incoming {
                    c.arg("-incoming")
                        .arg(format!("exec:cat {}", snap.display()));
                }
                c
            }
        }
    }

    fn migrate_uri(&self, snap: &Path) -> String {
        match self {
            Vmm::Vmdma(_) => format!("file:{}", snap.display()),
            Vmm::Qemu(_) => format!("exec:cat > {}", snap.display()),
        }
    }

    /// The VMM's own process: QEMU runs under `timeout`.
    fn pid(&self, child: u32) -> Option<u32> {
        match self {
            Vmm::Vmdma(_) => Some(child),
            Vmm::Qemu(_) => live::first_child(child),
        }
    }
}

/// A scratch directory of one run, removed on drop.
struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn io(what: &'static str) -> impl Fn(std::io::Error) -> SnapError {
    move |source| SnapError::Failed(format!("{what}: {source}"))
}

/// `what` went wrong, with how `f` ended and its last lines.
fn failed(what: &str, f: &Finished) -> SnapError {
    let last = |s: &str| {
        let l: Vec<&str> = s.lines().rev().take(3).collect();
        l.into_iter().rev().collect::<Vec<_>>().join(" | ")
    };
    SnapError::Failed(format!(
        "{what} (status {:?}): {}{}",
        f.code,
        last(&f.stdout),
        last(&f.stderr)
    ))
}

/// The source run: boots the suite, snapshots it after
/// [`SNAPSHOT_AFTER`], copies the image; returns the snapshot's figures
/// (sizes and times) and the image copy.
fn source(
    vmm: &Vmm<'_>,
    setup: &Setup<'_>,
    dir: &Path,
    snap: &Path,
) -> Result<(Snap, PathBuf), SnapError> {
    let image = dir.join("disk.img");
    std::fs::File::create(&image)
        .and_then(|f| f.set_len(SUITE_IMAGE_BYTES))
        .map_err(io("image"))?;
    let socket = dir.join("qmp.sock");
    let child = Live::spawn(vmm.command(setup, &image, Some(&socket), None))?;
    let deadline = Instant::now() + setup.timeout;
    let taken = (|| {
        let mut c = Client::connect(&socket, deadline, || child.exited())?;
        if child
            .wait_line(|l| l.starts_with(SNAPSHOT_AFTER), deadline)
            .is_none()
        {
            return Ok(None);
        }
        // Paused first: QEMU's migration would otherwise copy RAM while the
        // guest runs on (it got three tests further that way) and the
        // restore would start elsewhere in the suite than vmdma's.
        let t = Instant::now();
        c.execute("stop", None)?;
        let stop = t.elapsed();
        let t = Instant::now();
        c.execute("migrate", Some(json!({ "uri": vmm.migrate_uri(snap) })))?;
        let done = loop {
            let q = c.execute("query-migrate", None)?;
            match qmp::migration_status(&q) {
                Ok(Some(m)) => break Ok((m, t.elapsed())),
                Err(e) => break Err(e),
                Ok(None) if Instant::now() >= deadline => break Err("no end".into()),
                Ok(None) => std::thread::sleep(Duration::from_micros(200)),
            }
        };
        let copy = dir.join("restore.img");
        let cp = Command::new("cp")
            .arg("--sparse=always")
            .arg(&image)
            .arg(&copy)
            .status();
        c.execute("quit", None).ok();
        Ok::<_, qmp::QmpError>(Some((stop, done, copy, cp)))
    })();
    if taken.is_err() {
        // A VM left paused would wait for the timeout: end it (`timeout`
        // passes the signal on to QEMU).
        let _ = Command::new("kill")
            .args(["-TERM", &child.pid().to_string()])
            .status();
    }
    let f = child.finish(setup.timeout + Duration::from_secs(15))?;
    let taken = taken.map_err(|e| failed(&e.to_string(), &f))?;
    let Some((stop, done, copy, cp)) = taken else {
        return Err(failed("the source never printed the snapshot's line", &f));
    };
    let (m, wall) = done.map_err(|e| SnapError::Failed(format!("migrate: {e}")))?;
    if !cp.map_err(io("cp"))?.success() {
        return Err(SnapError::Failed("cp --sparse=always failed".into()));
    }
    let meta = std::fs::metadata(snap).map_err(io("snapshot file"))?;
    Ok((
        Snap {
            stop_s: stop.as_secs_f64(),
            total_time_ms: m.total_ms as f64,
            wall_s: wall.as_secs_f64(),
            file_bytes: meta.len(),
            file_disk_bytes: meta.blocks() * 512,
            ..Snap::default()
        },
        copy,
    ))
}

/// One snapshot and restore on `target` (vmdma or QEMU).
pub fn take(target: &Target, setup: &Setup<'_>, run: u32) -> Result<Snap, SnapError> {
    let vmm = match target {
        Target::Vmdma(o) => Vmm::Vmdma(o.as_deref()),
        Target::Qemu(o) => Vmm::Qemu(o),
        Target::Host { .. } => return Err(SnapError::Failed("the host has no VM".into())),
    };
    let dir = Dir(setup.scratch.join(format!("snapshot-{run}")));
    let _ = std::fs::remove_dir_all(&dir.0);
    std::fs::create_dir_all(&dir.0).map_err(io("scratch"))?;
    let snap = dir.0.join("snap.bin");
    let (mut s, copy) = source(&vmm, setup, &dir.0, &snap)?;

    let stats = dir.0.join("stats.json");
    let child = Live::spawn(vmm.command(setup, &copy, None, Some((&snap, &stats))))?;
    let deadline = Instant::now() + setup.timeout;
    let first = child.wait_line(|_| true, deadline);
    let (hwm, rss) = vmm
        .pid(child.pid())
        .and_then(|p| std::fs::read_to_string(format!("/proc/{p}/status")).ok())
        .map_or((None, None), |t| live::rss_kib(&t));
    let f = child.finish(setup.timeout + Duration::from_secs(15))?;
    let (Some(first), Some((passed, 0, _))) = (first, suite_summary(&f.stdout)) else {
        return Err(failed("the restored suite did not pass", &f));
    };
    s.first_line = first.0.trim_end().to_string();
    s.first_line_s = first.1.as_secs_f64();
    s.exit_s = f.exit.as_secs_f64();
    s.hwm_kib = hwm;
    s.rss_kib = rss;
    s.passed = passed;
    if matches!(vmm, Vmm::Vmdma(_)) {
        let text = std::fs::read_to_string(&stats).map_err(io("--stats-json"))?;
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| SnapError::Failed(format!("--stats-json: {e}")))?;
        (s.read_check_s, s.apply_s, s.first_entry_s, s.max_rss_kib) = restore_stats(&v);
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_suite_summary() {
        let out = "test trim ... ok\r\n62 passed, 0 failed, 5 skipped\r\n";
        assert_eq!(suite_summary(out), Some((62, 0, 5)));
        assert_eq!(
            suite_summary("61 passed, 1 failed, 5 skipped\nvmdma: guest exit 3\n"),
            Some((61, 1, 5))
        );
        assert_eq!(suite_summary("test x ... ok\n"), None);
        assert_eq!(suite_summary("1 passed, 0 failed"), None);
    }

    #[test]
    fn restore_phases_from_the_stats() {
        let v = json!({
            "restore": {"read_check_s": 0.0029, "apply_s": 0.0014, "first_entry_s": 0.010},
            "memory": {"max_rss_kib": 9000, "guest_ram_rss_kib": 2000},
        });
        assert_eq!(
            restore_stats(&v),
            (Some(0.0029), Some(0.0014), Some(0.010), Some(9000))
        );
        let old = json!({"memory": {"max_rss_kib": 9000}});
        assert_eq!(restore_stats(&old), (None, None, None, Some(9000)));
    }

    #[test]
    fn the_snapshot_point_is_a_suite_test() {
        // The guest prints `test NAME ... ok`; the name must stay in its list.
        let name = SNAPSHOT_AFTER
            .strip_prefix("test ")
            .and_then(|s| s.strip_suffix(" ... "))
            .unwrap();
        let lists = include_str!("../../../guest/src/suite/lists.rs");
        assert!(lists.contains(&format!("Test::new(\"{name}\"")), "{name}");
    }
}
