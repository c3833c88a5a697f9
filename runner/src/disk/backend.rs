//! The disk backend the IDE controller sees: the synchronous raw image
//! (`aio=sync`) or the io_uring one (`aio=io_uring`), one type for both.
//!
//! It also watches the results: an I/O error from the host (EIO when the
//! image shrank under the guest, ENOSPC, ...) reaches the guest as an ATA
//! error for that command, and the runner says so on stderr once per kind
//! of error (a guest retrying must not flood the log) and counts them all.

use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use vmm_sys_util::eventfd::EventFd;

use vmdma_core::block::{BlockDevice, BlockError, BlockRequest, Completion, Refused, RequestToken};

use super::accounting::{DataPathCounters, HostRanges};
use super::options::{Aio, Cache};
use super::raw::RawDisk;
use super::uring::UringDisk;

/// A raw image on one of the two engines, with its I/O error log.
#[derive(Debug)]
pub struct Disk<'m> {
    engine: Engine<'m>,
    errors: IoErrors,
    accounting: Option<(HostRanges, Arc<DataPathCounters>)>,
}

/// The engine of a [`Disk`].
#[derive(Debug)]
pub enum Engine<'m> {
    /// `preadv`/`pwritev` inside `submit`.
    Sync(RawDisk),
    /// io_uring; completions through [`Disk::completion_fd`]. Boxed: the
    /// ring is much larger than the synchronous engine's state.
    Uring(Box<UringDisk<'m>>),
}

/// Host I/O errors seen, and which have been reported.
#[derive(Debug, Default)]
struct IoErrors {
    count: u64,
    reported: Vec<i32>,
}

impl IoErrors {
    /// Notes `result`; the first error of each errno gets one line on
    /// stderr.
    fn note(&mut self, result: &Result<(), BlockError>) {
        let Err(BlockError::Io(errno)) = result else {
            return;
        };
        self.count = self.count.saturating_add(1);
        if !self.reported.contains(errno) {
            self.reported.push(*errno);
            eprintln!(
                "vmdma: warning: disk I/O error: {} (the guest gets an ATA error for that \
                 command; has the image been changed by another process?)",
                io::Error::from_raw_os_error(*errno)
            );
        }
    }
}

impl<'m> Disk<'m> {
    /// A disk on `engine`.
    pub fn new(engine: Engine<'m>) -> Self {
        Disk {
            engine,
            errors: IoErrors::default(),
            accounting: None,
        }
    }

    /// Counts where the buffers of accepted requests are (guest RAM,
    /// bounce space, other VMM memory) into `counters`.
    pub fn with_accounting(mut self, ranges: HostRanges, counters: Arc<DataPathCounters>) -> Self {
        self.accounting = Some((ranges, counters));
        self
    }

    /// Host I/O errors seen so far (each also failed its command).
    pub fn io_errors(&self) -> u64 {
        self.errors.count
    }
}

/// What a [`Disk`] runs on, for logs and statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskMode {
    /// The engine in use (after any fallback).
    pub aio: Aio,
    /// The cache policy.
    pub cache: Cache,
}

impl Disk<'_> {
    /// The fd that becomes readable when completions are waiting (io_uring
    /// only; the synchronous engine completes inside `submit`).
    pub fn completion_fd(&self) -> Option<RawFd> {
        match &self.engine {
            Engine::Sync(_) => None,
            Engine::Uring(u) => Some(u.completion_fd()),
        }
    }

    /// What the I/O thread needs (io_uring only): a handle on the completion
    /// eventfd and the count of requests the kernel still has.
    pub fn completion_eventfd(&self) -> Option<io::Result<(EventFd, Arc<AtomicUsize>)>> {
        match &self.engine {
            Engine::Sync(_) => None,
            Engine::Uring(u) => Some(u.completion_eventfd().map(|e| (e, u.pending()))),
        }
    }

    /// The io_uring counters, if that is the engine.
    pub fn uring_stats(&self) -> Option<super::uring::UringStats> {
        match &self.engine {
            Engine::Sync(_) => None,
            Engine::Uring(u) => Some(u.stats()),
        }
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        match &self.engine {
            Engine::Sync(_) => 0,
            Engine::Uring(u) => u.in_flight(),
        }
    }

    /// The engine.
    pub fn aio(&self) -> Aio {
        match &self.engine {
            Engine::Sync(_) => Aio::Sync,
            Engine::Uring(_) => Aio::IoUring,
        }
    }

    /// Bytes copied through an aligned buffer for direct I/O.
    pub fn bounced_bytes(&self) -> u64 {
        match &self.engine {
            Engine::Sync(d) => d.bounced_bytes(),
            Engine::Uring(u) => u.stats().bounced_bytes,
        }
    }
}

impl<'m> BlockDevice<'m> for Disk<'m> {
    fn sector_count(&self) -> u64 {
        match &self.engine {
            Engine::Sync(d) => <RawDisk as BlockDevice<'m>>::sector_count(d),
            Engine::Uring(u) => u.sector_count(),
        }
    }

    fn is_read_only(&self) -> bool {
        match &self.engine {
            Engine::Sync(d) => <RawDisk as BlockDevice<'m>>::is_read_only(d),
            Engine::Uring(u) => u.is_read_only(),
        }
    }

    fn submit(&mut self, token: RequestToken, req: BlockRequest<'_, 'm>) -> Result<(), Refused> {
        let tally = match (&req, &self.accounting) {
            (
                BlockRequest::Read { iov, .. } | BlockRequest::Write { iov, .. },
                Some((ranges, _)),
            ) => Some(ranges.tally(iov.iter().filter_map(|l| l.view(&token)))),
            _ => None,
        };
        let r = match &mut self.engine {
            Engine::Sync(d) => d.submit(token, req),
            Engine::Uring(u) => u.submit(token, req),
        };
        match (&r, tally, &self.accounting) {
            (Err(refused), ..) => self.errors.note(&Err(refused.error)),
            (Ok(()), Some(t), Some((_, counters))) => counters.add(t),
            _ => {}
        }
        r
    }

    fn poll(&mut self) -> Option<Completion> {
        let c = match &mut self.engine {
            Engine::Sync(d) => <RawDisk as BlockDevice<'m>>::poll(d),
            Engine::Uring(u) => u.poll(),
        };
        if let Some(c) = &c {
            self.errors.note(&c.result);
        }
        c
    }

    fn wait(&mut self) -> Option<Completion> {
        let c = match &mut self.engine {
            Engine::Sync(d) => <RawDisk as BlockDevice<'m>>::wait(d),
            Engine::Uring(u) => u.wait(),
        };
        if let Some(c) = &c {
            self.errors.note(&c.result);
        }
        c
    }
}
