//! The disk backend the IDE controller sees: the synchronous raw image
//! (`aio=sync`) or the io_uring one (`aio=io_uring`), one type for both,
//! behind the [`Stage`] that applies fault injection and the error
//! policies (and keeps requests back for `cont`).
//!
//! It also watches the results: an I/O error from the host (EIO when the
//! image shrank under the guest, ENOSPC, ...) is handled as the policy
//! says (by default the guest gets an ATA error for that command), and the
//! runner says so on stderr once per kind of error and decision (a guest
//! retrying must not flood the log) and counts them all.

use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use vmm_sys_util::eventfd::EventFd;

use vmdma_core::block::{BlockDevice, BlockError, BlockRequest, Completion, Refused, RequestToken};

use super::accounting::{DataPathCounters, HostRanges};
use super::blkdebug::Blkdebug;
use super::events::DiskEvents;
use super::options::{Aio, Cache};
use super::policy::ErrorPolicy;
use super::raw::RawDisk;
use super::stage::{Release, Stage};
use super::uring::UringDisk;

/// A raw image on one of the two engines, behind its stage.
#[derive(Debug)]
pub struct Disk<'m> {
    engine: Engine<'m>,
    stage: Stage<'m>,
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

impl<'m> BlockDevice<'m> for Engine<'m> {
    fn sector_count(&self) -> u64 {
        match self {
            Engine::Sync(d) => <RawDisk as BlockDevice<'m>>::sector_count(d),
            Engine::Uring(u) => u.sector_count(),
        }
    }

    fn is_read_only(&self) -> bool {
        match self {
            Engine::Sync(d) => <RawDisk as BlockDevice<'m>>::is_read_only(d),
            Engine::Uring(u) => u.is_read_only(),
        }
    }

    fn submit(&mut self, token: RequestToken, req: BlockRequest<'_, 'm>) -> Result<(), Refused> {
        match self {
            Engine::Sync(d) => d.submit(token, req),
            Engine::Uring(u) => u.submit(token, req),
        }
    }

    fn poll(&mut self) -> Option<Completion> {
        match self {
            Engine::Sync(d) => <RawDisk as BlockDevice<'m>>::poll(d),
            Engine::Uring(u) => u.poll(),
        }
    }

    fn wait(&mut self) -> Option<Completion> {
        match self {
            Engine::Sync(d) => <RawDisk as BlockDevice<'m>>::wait(d),
            Engine::Uring(u) => u.wait(),
        }
    }
}

impl<'m> Disk<'m> {
    /// A disk on `engine`.
    pub fn new(engine: Engine<'m>) -> Self {
        Disk {
            engine,
            stage: Stage::new(),
            accounting: None,
        }
    }

    /// Applies the error policy; `events` is the monitor's queue (without
    /// one, `stop` decisions report), `device` the drive's name in it.
    pub fn with_policy(
        mut self,
        policy: ErrorPolicy,
        events: Option<Arc<DiskEvents>>,
        device: &'static str,
    ) -> Self {
        self.stage.set_policy(policy, events, device);
        self
    }

    /// Turns fault injection on with `rules`.
    pub fn with_faults(mut self, rules: Blkdebug) -> Self {
        self.stage.set_faults(rules);
        self
    }

    /// The fault-injection rules, if on (for `qemu-io`'s breakpoints).
    pub fn faults_mut(&mut self) -> Option<&mut Blkdebug> {
        self.stage.faults_mut()
    }

    /// Releases kept requests (no I/O here: [`Disk::submit_released`] does
    /// it on a thread that may). Returns how many.
    pub fn release(&mut self, which: Release<'_>) -> usize {
        self.stage.release(which)
    }

    /// Submits the released requests to the engine again.
    pub fn submit_released(&mut self) {
        self.stage.submit_released(&mut self.engine);
    }

    /// The image file.
    pub fn file(&self) -> &std::fs::File {
        match &self.engine {
            Engine::Sync(d) => d.file(),
            Engine::Uring(u) => u.file(),
        }
    }

    /// True while a request is held at a breakpoint of `tag`.
    pub fn is_held(&self, tag: &str) -> bool {
        self.stage.is_held(tag)
    }

    /// True while a request stopped by its error waits for `cont`.
    pub fn has_stopped_request(&self) -> bool {
        self.stage.has_stopped()
    }

    /// The run ends: kept requests complete with an error, and every
    /// error from now on is reported.
    pub fn abandon_kept(&mut self) {
        self.stage.abandon();
    }

    /// Counts where the buffers of accepted requests are (guest RAM,
    /// bounce space, other VMM memory) into `counters`.
    pub fn with_accounting(mut self, ranges: HostRanges, counters: Arc<DataPathCounters>) -> Self {
        self.accounting = Some((ranges, counters));
        self
    }

    /// Host I/O errors seen so far (whatever the policy did with them).
    pub fn io_errors(&self) -> u64 {
        self.stage.io_errors()
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

    /// Requests in flight: in the kernel, or kept back by the stage.
    pub fn in_flight(&self) -> usize {
        let engine = match &self.engine {
            Engine::Sync(_) => 0,
            Engine::Uring(u) => u.in_flight(),
        };
        engine + self.stage.outside_engine()
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
        self.engine.sector_count()
    }

    fn is_read_only(&self) -> bool {
        self.engine.is_read_only()
    }

    fn submit(&mut self, token: RequestToken, req: BlockRequest<'_, 'm>) -> Result<(), Refused> {
        let tally = match (&req, &self.accounting) {
            (
                BlockRequest::Read { iov, .. } | BlockRequest::Write { iov, .. },
                Some((ranges, _)),
            ) => Some(ranges.tally(iov.iter().filter_map(|l| l.view(&token)))),
            _ => None,
        };
        let r = self.stage.submit(&mut self.engine, token, req);
        match (&r, tally, &self.accounting) {
            (Err(refused), ..) => {
                if let BlockError::Io(errno) = refused.error {
                    self.stage.note_refused(errno);
                }
            }
            (Ok(()), Some(t), Some((_, counters))) => counters.add(t),
            _ => {}
        }
        r
    }

    fn poll(&mut self) -> Option<Completion> {
        self.stage.next(&mut self.engine, false)
    }

    fn wait(&mut self) -> Option<Completion> {
        self.stage.next(&mut self.engine, true)
    }
}
