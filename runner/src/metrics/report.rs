//! The report of one run: why it ended, when, and every counter gathered
//! on the way (exits, IDE, disk engine, KVM, data path, marks, memory).
//! `--stats` prints it ([`super::exits`]), `--stats-json` writes it
//! ([`super::json`]).

use std::fmt::Write as _;
use std::time::Instant;

use vmdma_core::ide::IdeStats;

use crate::control::StopReason;
use crate::disk::accounting::DataPath;
use crate::disk::{self, DiskMode};
use crate::metrics::exits::ExitStats;
use crate::metrics::kvm::KvmCounters;
use crate::metrics::marks::Mark;
use crate::metrics::proc_memory::MemoryUse;

/// How a run ended, with its statistics.
#[derive(Debug)]
pub struct RunReport {
    /// Why it ended.
    pub reason: StopReason,
    /// When the vCPU was about to run the guest for the first time (the
    /// VM fully built); `None` if unknown.
    pub started_at: Option<Instant>,
    /// When the stop was requested (for a guest exit: when the guest
    /// wrote the debug-exit port); `None` if unknown.
    pub stopped_at: Option<Instant>,
    /// Exit counters of vCPU 0.
    pub stats: ExitStats,
    /// The IDE controller's counters.
    pub ide: IdeStats,
    /// The disk engine that ran, and its counters.
    pub disk: Option<DiskReport>,
    /// KVM's counters of vCPU 0 at the end (`None` where the kernel has no
    /// statistics file).
    pub kvm: Option<KvmCounters>,
    /// Where the disk's data went.
    pub data_path: DataPath,
    /// The guest's progress marks, with the counters at each.
    pub marks: Vec<Mark>,
    /// Marks beyond [`crate::metrics::marks::MAX_MARKS`], not recorded.
    pub marks_dropped: u64,
    /// The process's peak resident set (filled in by
    /// [`RunReport::read_memory_use`]) and the guest RAM's share of it.
    pub memory: MemoryUse,
    /// Whether KVM coalesced the side-effect-free port writes.
    pub coalesced_pio: bool,
    /// `--incoming`: how long restoring took.
    pub restore: Option<RestoreTimes>,
}

/// The phases of a restore (`--incoming`).
#[derive(Debug, Clone, Copy, Default)]
pub struct RestoreTimes {
    /// Reading the snapshot file and checking it whole.
    pub check: std::time::Duration,
    /// Putting RAM, KVM and device state back.
    pub apply: std::time::Duration,
}

/// What the disk backend did.
#[derive(Debug, Clone, Copy)]
pub struct DiskReport {
    /// Engine and cache policy.
    pub mode: DiskMode,
    /// io_uring counters (io_uring engine only).
    pub uring: Option<disk::uring::UringStats>,
    /// Bytes copied through an aligned buffer for direct I/O.
    pub bounced_bytes: u64,
    /// Times the I/O thread woke up to deliver completions.
    pub io_thread_wakeups: u64,
    /// Host I/O errors (each failed its ATA command).
    pub io_errors: u64,
}

impl RunReport {
    /// A report with no counters (when the vCPU never answered).
    pub fn without_counters(reason: StopReason) -> Self {
        RunReport {
            reason,
            started_at: None,
            stopped_at: None,
            stats: ExitStats::default(),
            ide: IdeStats::default(),
            disk: None,
            kvm: None,
            data_path: DataPath::default(),
            marks: Vec::new(),
            marks_dropped: 0,
            memory: MemoryUse::default(),
            coalesced_pio: false,
            restore: None,
        }
    }

    /// Reads the process's peak resident set into [`RunReport::memory`].
    /// Called on the supervisor thread: it opens /proc, which the
    /// sandboxed vCPU thread may not.
    pub fn read_memory_use(&mut self) {
        self.memory.max_rss_kib = crate::metrics::proc_memory::max_rss_kib();
    }
}

/// The `--stats` line about a restore: `start` is when the process
/// started.
pub fn restore_report(r: &RunReport, start: std::time::Instant) -> Option<String> {
    let t = r.restore?;
    let first = r
        .started_at
        .map(|s| s.saturating_duration_since(start).as_secs_f64() * 1e3);
    Some(format!(
        "vmdma stats: restored from a snapshot: read and checked in {:.2} ms, state put back in \
         {:.2} ms; first guest entry {} after process start\n",
        t.check.as_secs_f64() * 1e3,
        t.apply.as_secs_f64() * 1e3,
        first.map_or_else(|| "unknown".into(), |ms| format!("{ms:.2} ms")),
    ))
}

/// The `--stats` line about the disk backend.
pub fn disk_report(d: &DiskReport) -> String {
    let mut s = format!(
        "vmdma stats: disk: aio={} cache={}",
        d.mode.aio.name(),
        d.mode.cache.name()
    );
    if let Some(u) = d.uring {
        let _ = write!(
            s,
            "; {} requests ({} completed inline), {} resubmits; I/O thread woke {} times",
            u.requests, u.inline, u.resubmits, d.io_thread_wakeups
        );
    }
    let _ = writeln!(
        s,
        "; {} bytes through the direct-I/O bounce buffer; {} host I/O errors",
        d.bounced_bytes, d.io_errors
    );
    s
}
