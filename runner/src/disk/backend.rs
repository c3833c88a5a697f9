//! The disk backend the IDE controller sees: the synchronous raw image
//! (`aio=sync`) or the io_uring one (`aio=io_uring`), one type for both.

use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use vmm_sys_util::eventfd::EventFd;

use vmdma_core::block::{BlockDevice, BlockError, BlockRequest, Completion, RequestToken};

use super::options::{Aio, Cache};
use super::raw::RawDisk;
use super::uring::UringDisk;

/// A raw image on one of the two engines.
#[derive(Debug)]
pub enum Disk<'m> {
    /// `preadv`/`pwritev` inside `submit`.
    Sync(RawDisk),
    /// io_uring; completions through [`Disk::completion_fd`]. Boxed: the
    /// ring is much larger than the synchronous engine's state.
    Uring(Box<UringDisk<'m>>),
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
        match self {
            Disk::Sync(_) => None,
            Disk::Uring(u) => Some(u.completion_fd()),
        }
    }

    /// What the I/O thread needs (io_uring only): a handle on the completion
    /// eventfd and the count of requests the kernel still has.
    pub fn completion_eventfd(&self) -> Option<io::Result<(EventFd, Arc<AtomicUsize>)>> {
        match self {
            Disk::Sync(_) => None,
            Disk::Uring(u) => Some(u.completion_eventfd().map(|e| (e, u.pending()))),
        }
    }

    /// The io_uring counters, if that is the engine.
    pub fn uring_stats(&self) -> Option<super::uring::UringStats> {
        match self {
            Disk::Sync(_) => None,
            Disk::Uring(u) => Some(u.stats()),
        }
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        match self {
            Disk::Sync(_) => 0,
            Disk::Uring(u) => u.in_flight(),
        }
    }

    /// The engine.
    pub fn aio(&self) -> Aio {
        match self {
            Disk::Sync(_) => Aio::Sync,
            Disk::Uring(_) => Aio::IoUring,
        }
    }

    /// Bytes copied through an aligned buffer for direct I/O.
    pub fn bounced_bytes(&self) -> u64 {
        match self {
            Disk::Sync(d) => d.bounced_bytes(),
            Disk::Uring(u) => u.stats().bounced_bytes,
        }
    }
}

impl<'m> BlockDevice<'m> for Disk<'m> {
    fn sector_count(&self) -> u64 {
        match self {
            Disk::Sync(d) => <RawDisk as BlockDevice<'m>>::sector_count(d),
            Disk::Uring(u) => u.sector_count(),
        }
    }

    fn is_read_only(&self) -> bool {
        match self {
            Disk::Sync(d) => <RawDisk as BlockDevice<'m>>::is_read_only(d),
            Disk::Uring(u) => u.is_read_only(),
        }
    }

    fn submit(&mut self, req: BlockRequest<'_, 'm>) -> Result<RequestToken, BlockError> {
        match self {
            Disk::Sync(d) => d.submit(req),
            Disk::Uring(u) => u.submit(req),
        }
    }

    fn poll(&mut self) -> Option<Completion> {
        match self {
            Disk::Sync(d) => <RawDisk as BlockDevice<'m>>::poll(d),
            Disk::Uring(u) => u.poll(),
        }
    }

    fn wait(&mut self) -> Option<Completion> {
        match self {
            Disk::Sync(d) => <RawDisk as BlockDevice<'m>>::wait(d),
            Disk::Uring(u) => u.wait(),
        }
    }
}
