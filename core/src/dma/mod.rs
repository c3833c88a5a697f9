//! DMA from devices to guest memory: `map`/`unmap` (direct for RAM, bounced
//! for MMIO), the bounce arena, the retry queue, scatter/gather lists and
//! the resumable SG-to-block transfer.
//!
//! # The map/unmap contract
//! [`DmaMemory::map`] returns a [`Mapping`] of *at most* the requested
//! length (the caller loops for the rest). A RAM mapping is a direct
//! [`VolatileSlice`](crate::memory::VolatileSlice) view of guest memory: no
//! copy. An MMIO mapping is zero-filled bounce space, pre-filled from the
//! MMIO handler when the device will read memory. [`Mapping::unmap`] takes
//! the number of bytes really accessed; for a device write into MMIO exactly
//! that many bytes are written back (never the mapped length: see
//! CVE-2024-8612). Dropping a mapping is an unmap with `access_len = 0`.
//!
//! When the bounce arena has no room, `map` fails with
//! [`MemError::BounceBusy`]; the client registers on the retry queue with
//! [`BounceWait::register_retry`] and is handed back by
//! [`BounceWait::poll_retry`] once space was freed.
//!
//! # Mapping and waiting
//! Two traits: [`DmaMemory`] maps (and is what a translation stage
//! wraps), [`BounceWait`] is the retry queue of the bounce arena at the
//! end of the chain. A wrapper implements only `DmaMemory` and hands the
//! inner stage's waiter out of [`DmaMemory::bounce_wait`]; every
//! `DmaMemory` is a `BounceWait` through that.
//!
//! # In-flight memory
//! A mapping handed to a block backend as part of a request stays mapped
//! until that request's completion is delivered: [`SgTransfer`] keeps the
//! request's mappings (its *lease*) and gives them back only in
//! [`SgTransfer::complete`] with the request's token. Nothing else releases
//! them; a transfer dropped with a request in flight quarantines its bounce
//! space under the request's id until the token comes back
//! ([`DmaMemory::reclaim`]), so a late completion can never write into space
//! that belongs to someone else. [`crate::block::lease`] has the argument.

mod address_space;
mod arena;
pub(crate) mod mapping;
mod once;
mod retry;
mod sg;
mod transfer;

pub use address_space::AddressSpace;
pub use arena::{BOUNCE_GRANULE, BounceArena, BounceBuffers};
pub use mapping::Mapping;
pub use retry::{RetryError, RetryQueue, RetryStatus};
pub use sg::{SgEntry, SgList};
pub use transfer::{BlockDir, Progress, SgTransfer, TransferError};

use crate::block::RequestToken;
use crate::memory::{DeviceId, MemError, Probe};

/// Which way data moves, named from the device's side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DmaDirection {
    /// The device reads guest memory (e.g. a disk WRITE command).
    DeviceReadsMemory,
    /// The device writes guest memory (e.g. a disk READ command).
    DeviceWritesMemory,
}

/// Waiting for bounce space: the retry queue of a bounce arena, declared
/// once. Implemented by every [`BounceBuffers`] and, through
/// [`DmaMemory::bounce_wait`], by every [`DmaMemory`].
///
/// Every method may be called from any thread; the retry queue is shared
/// by all clients.
pub trait BounceWait {
    /// Bytes of bounce space in all: no single mapping can be larger, so a
    /// transfer needing more for one sector can never run.
    fn bounce_capacity(&self) -> usize;

    /// A counter bumped every time bounce space is released. A client reads
    /// it *before* a `map` attempt and hands it to
    /// [`BounceWait::register_retry`], which then knows whether space was
    /// freed in between (no lost wake-up, no busy retry).
    fn bounce_generation(&self) -> u32;

    /// Registers `client` to be told when bounce space is freed.
    ///
    /// `seen_generation` is [`BounceWait::bounce_generation`] as read before
    /// the failed map: if space was released since (and `client` is first in
    /// line), the call returns [`RetryStatus::RetryNow`] and nothing is
    /// queued.
    fn register_retry(
        &self,
        client: DeviceId,
        seen_generation: u32,
    ) -> Result<RetryStatus, RetryError>;

    /// Removes `client` from the retry queue; returns whether it was there.
    fn cancel_retry(&self, client: DeviceId) -> bool;

    /// The next client to tell that bounce space was freed (the head of the
    /// FIFO queue, once per release). The host calls this after device
    /// activity and re-runs that client's map step; a client handed out
    /// must try again or cancel, or it blocks everyone queued behind it.
    fn poll_retry(&self) -> Option<DeviceId>;
}

/// Memory as a DMA-capable device sees it. Implemented by
/// [`AddressSpace`] (guest-physical memory) and by
/// [`Iommu`](crate::iommu::Iommu), which translates and delegates, so
/// stages chain: device → IOMMU → memory. Waiting for bounce space is the
/// other trait, [`BounceWait`]: a stage only says where its waiter is.
///
/// Every method may be called from any thread; the bounce arena is shared
/// by all clients.
pub trait DmaMemory {
    /// Maps up to `len` bytes at `addr` for DMA by `requester`.
    ///
    /// Returns a mapping of at least 1 and at most `len` bytes, or an error
    /// ([`MemError::BounceBusy`] when the range is MMIO and no bounce space
    /// is free for `requester`). Never maps across a region boundary.
    fn map(
        &self,
        requester: DeviceId,
        addr: u64,
        len: u64,
        dir: DmaDirection,
    ) -> Result<Mapping<'_>, MemError>;

    /// Exactly `len` bytes of zero-filled bounce space not tied to any
    /// address (the caller gathers into it or scatters from it itself);
    /// unmapping it writes nothing back. [`MemError::BounceBusy`] when it
    /// does not fit now.
    fn map_staging(&self, requester: DeviceId, len: usize) -> Result<Mapping<'_>, MemError>;

    /// What `requester` would reach at `addr` (up to `len` bytes of one
    /// region), checked the way `map` checks it but without touching
    /// anything: no bounce space is taken and no handler runs.
    fn probe(
        &self,
        requester: DeviceId,
        addr: u64,
        len: u64,
        dir: DmaDirection,
    ) -> Result<Probe, MemError>;

    /// Copies guest memory at `addr` into `buf` (like
    /// `cpu_physical_memory_read`); holes are errors.
    fn read(&self, requester: DeviceId, addr: u64, buf: &mut [u8]) -> Result<(), MemError>;

    /// Copies `buf` into guest memory at `addr`; holes are errors.
    fn write(&self, requester: DeviceId, addr: u64, buf: &[u8]) -> Result<(), MemError>;

    /// The retry queue a client of this memory waits on when `map` fails
    /// with [`MemError::BounceBusy`] (the bounce arena's, for a stage that
    /// delegates: its inner stage's).
    fn bounce_wait(&self) -> &dyn BounceWait;

    /// The request of `token` is over (its token is back, so no backend
    /// holds it): bounce space quarantined for it, because its transfer
    /// was dropped while it was in flight, is freed. Devices call it for
    /// completions that match no request of theirs; a host that polls a
    /// backend itself should too. Consuming the token is what makes this
    /// sound: only whoever holds it can, and then nobody holds it.
    fn reclaim(&self, token: RequestToken);
}

/// Every DMA memory waits where [`DmaMemory::bounce_wait`] says.
impl<M: DmaMemory + ?Sized> BounceWait for M {
    fn bounce_capacity(&self) -> usize {
        self.bounce_wait().bounce_capacity()
    }

    fn bounce_generation(&self) -> u32 {
        self.bounce_wait().bounce_generation()
    }

    fn register_retry(
        &self,
        client: DeviceId,
        seen_generation: u32,
    ) -> Result<RetryStatus, RetryError> {
        self.bounce_wait().register_retry(client, seen_generation)
    }

    fn cancel_retry(&self, client: DeviceId) -> bool {
        self.bounce_wait().cancel_retry(client)
    }

    fn poll_retry(&self) -> Option<DeviceId> {
        self.bounce_wait().poll_retry()
    }
}
