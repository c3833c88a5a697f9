//! Counters recorded at the guest's progress marks (POST codes, see
//! [`crate::devices::post_code`]) and at the end of the run: the runner's
//! exit counters, KVM's own counters and the DMA data path, with the time
//! since the VM started. Two marks bracket a benchmark's timed loop, so
//! their difference is exactly what the loop cost.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::disk::accounting::{DataPath, DataPathCounters};
use crate::metrics::exits::ExitStats;
use crate::metrics::kvm::{KvmCounters, KvmStats};

/// The last code written and not yet taken (bit 8 set when present).
#[derive(Debug, Default)]
pub struct MarkLatch(AtomicU32);

const PRESENT: u32 = 1 << 8;

impl MarkLatch {
    /// Latches `code` (replacing one not yet taken).
    pub fn set(&self, code: u8) {
        self.0.store(PRESENT | u32::from(code), Ordering::Relaxed);
    }

    /// Takes the latched code, if any.
    pub fn take(&self) -> Option<u8> {
        let v = self.0.swap(0, Ordering::Relaxed);
        (v & PRESENT != 0).then_some((v & 0xFF) as u8)
    }
}

/// Marks kept at most; later ones are only counted.
pub const MAX_MARKS: usize = 64;

/// The counters at one point of the run.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// Time since the VM was built.
    pub at: Duration,
    /// The runner's exit counters.
    pub exits: ExitStats,
    /// KVM's counters (`None` without `KVM_GET_STATS_FD`).
    pub kvm: Option<KvmCounters>,
    /// The disk's data path.
    pub data_path: DataPath,
}

/// A mark: its code and the counters right after its exit.
#[derive(Clone, Debug)]
pub struct Mark {
    /// The byte the guest wrote.
    pub code: u8,
    /// The counters.
    pub snapshot: Snapshot,
}

/// Records marks on the vCPU thread.
#[derive(Debug)]
pub struct Recorder {
    latch: Arc<MarkLatch>,
    kvm: Option<KvmStats>,
    data_path: Arc<DataPathCounters>,
    start: Instant,
    marks: Vec<Mark>,
    dropped: u64,
}

impl Recorder {
    /// A recorder for the marks latched in `latch`.
    pub fn new(
        latch: Arc<MarkLatch>,
        kvm: Option<KvmStats>,
        data_path: Arc<DataPathCounters>,
    ) -> Self {
        Recorder {
            latch,
            kvm,
            data_path,
            start: Instant::now(),
            marks: Vec::new(),
            dropped: 0,
        }
    }

    /// The counters now.
    pub fn snapshot(&self, exits: &ExitStats) -> Snapshot {
        Snapshot {
            at: self.start.elapsed(),
            exits: exits.clone(),
            kvm: self.kvm.as_ref().and_then(KvmStats::read),
            data_path: self.data_path.snapshot(),
        }
    }

    /// Called after every handled exit: records a mark the exit latched.
    pub fn after_exit(&mut self, exits: &ExitStats) {
        let Some(code) = self.latch.take() else {
            return;
        };
        if self.marks.len() >= MAX_MARKS {
            self.dropped = self.dropped.saturating_add(1);
            return;
        }
        let snapshot = self.snapshot(exits);
        self.marks.push(Mark { code, snapshot });
    }

    /// When the recorder was made: right before the vCPU first ran.
    pub fn started(&self) -> Instant {
        self.start
    }

    /// The marks and how many were dropped.
    pub fn finish(self) -> (Vec<Mark>, u64) {
        (self.marks, self.dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::exits::ExitKind;

    #[test]
    fn records_latched_marks_with_the_counters_then() {
        let latch = Arc::new(MarkLatch::default());
        let mut r = Recorder::new(latch.clone(), None, Arc::default());
        let mut s = ExitStats::default();
        s.exit(ExitKind::IoOut);
        r.after_exit(&s);
        latch.set(0xB1);
        r.after_exit(&s);
        s.exit(ExitKind::IoIn);
        latch.set(0xB2);
        r.after_exit(&s);
        for _ in 0..MAX_MARKS {
            latch.set(1);
            r.after_exit(&s);
        }
        let (marks, dropped) = r.finish();
        assert_eq!(marks.len(), MAX_MARKS);
        assert_eq!(dropped, 2);
        assert_eq!((marks[0].code, marks[0].snapshot.exits.total()), (0xB1, 1));
        assert_eq!((marks[1].code, marks[1].snapshot.exits.total()), (0xB2, 2));
        assert!(marks[1].snapshot.at >= marks[0].snapshot.at);
    }
}
