//! What the disk tells the control plane: host I/O errors with the action
//! taken (QMP's `BLOCK_IO_ERROR`), and whether it keeps requests back for
//! the VM's `cont`.
//!
//! The disk runs under the chipset's lock on the vCPU or I/O thread; the
//! monitor runs on its own thread. [`DiskEvents`] is the queue between
//! them: the disk pushes, the eventfd wakes the monitor, the monitor
//! drains. The queue is bounded ([`MAX_QUEUED`]): a guest that fails
//! request after request with `report` cannot grow it; what does not fit
//! is counted.
//! (The other direction, the monitor releasing kept requests, goes through
//! the chipset's lock and `RunControl::request_service`: the monitor's
//! seccomp list has no disk system calls, the vCPU thread submits them.)

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use vmm_sys_util::eventfd::{EFD_NONBLOCK, EventFd};

use super::blkdebug::IoType;
use super::policy::Decision;

/// Events kept for the monitor at most.
pub const MAX_QUEUED: usize = 64;

/// A host I/O error and what was done about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IoErrorEvent {
    /// QEMU's name of the drive (`ide0-hd0`, `ide0-hd1`).
    pub device: &'static str,
    /// The request's kind.
    pub kind: IoType,
    /// The policy's decision.
    pub decision: Decision,
    /// The error was ENOSPC.
    pub nospace: bool,
    /// The error, as text (`strerror`).
    pub reason: String,
}

impl IoErrorEvent {
    /// QEMU's `operation`: `read` for reads, `write` for the rest.
    pub fn operation(&self) -> &'static str {
        match self.kind {
            IoType::Read => "read",
            _ => "write",
        }
    }
}

#[derive(Debug, Default)]
struct Queue {
    events: VecDeque<IoErrorEvent>,
    dropped: u64,
}

/// The shared queue (see the module docs).
#[derive(Debug)]
pub struct DiskEvents {
    queue: Mutex<Queue>,
    notify: EventFd,
}

impl DiskEvents {
    /// An empty queue with its eventfd.
    pub fn new() -> std::io::Result<Self> {
        Ok(DiskEvents {
            queue: Mutex::default(),
            notify: EventFd::new(EFD_NONBLOCK)?,
        })
    }

    /// The eventfd that becomes readable when events wait.
    pub fn notify_fd(&self) -> &EventFd {
        &self.notify
    }

    /// Queues `e` and wakes the monitor.
    pub fn push(&self, e: IoErrorEvent) {
        let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        if q.events.len() < MAX_QUEUED {
            q.events.push_back(e);
        } else {
            q.dropped = q.dropped.saturating_add(1);
        }
        drop(q);
        let _ = self.notify.write(1);
    }

    /// Takes every queued event (clearing the eventfd first, so a push
    /// that races with this wakes the monitor again).
    pub fn drain(&self) -> Vec<IoErrorEvent> {
        let _ = self.notify.read();
        let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        q.events.drain(..).collect()
    }

    /// Events that did not fit in the queue.
    pub fn dropped(&self) -> u64 {
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_is_bounded_and_counts_what_it_drops() {
        let q = DiskEvents::new().unwrap();
        let e = IoErrorEvent {
            device: "ide0-hd0",
            kind: IoType::Flush,
            decision: Decision::Report,
            nospace: false,
            reason: "Input/output error".into(),
        };
        assert_eq!(e.operation(), "write");
        for _ in 0..MAX_QUEUED + 5 {
            q.push(e.clone());
        }
        assert_eq!(q.drain().len(), MAX_QUEUED);
        assert_eq!(q.dropped(), 5);
        assert!(q.drain().is_empty());
    }
}
