//! DMA from devices to guest memory: `map`/`unmap` (direct for RAM, bounced
//! for MMIO), the bounce pool, the retry queue, scatter/gather lists and the
//! resumable SG-to-block transfer.
//!
//! # The map/unmap contract
//! [`DmaMemory::map`] returns a [`Mapping`] of *at most* the requested
//! length (the caller loops for the rest). A RAM mapping is a direct
//! [`VolatileSlice`](crate::memory::VolatileSlice) view of guest memory: no
//! copy. An MMIO mapping is a zero-filled bounce slot, pre-filled from the
//! MMIO handler when the device will read memory. [`Mapping::unmap`] takes
//! the number of bytes really accessed; for a device write into MMIO exactly
//! that many bytes are written back (never the mapped length: see
//! CVE-2024-8612). Dropping a mapping is an unmap with `access_len = 0`.
//!
//! When the bounce pool is exhausted, `map` fails with
//! [`MemError::BounceBusy`]; the client
//! registers on the retry queue with [`DmaMemory::register_retry`] and is
//! handed back by [`DmaMemory::poll_retry`] once space was freed.

mod address_space;
mod bounce;
mod mapping;
mod retry;
mod sg;
mod transfer;

pub use address_space::AddressSpace;
pub use bounce::{BounceBuffers, BouncePool};
pub use mapping::Mapping;
pub use retry::{ClientId, RetryError, RetryQueue, RetryStatus};
pub use sg::{SgEntry, SgList};
pub use transfer::{BlockDir, Progress, SgTransfer, TransferError};

use crate::memory::{DeviceId, MemError};

/// Which way data moves, named from the device's side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DmaDirection {
    /// The device reads guest memory (e.g. a disk WRITE command).
    DeviceReadsMemory,
    /// The device writes guest memory (e.g. a disk READ command).
    DeviceWritesMemory,
}

/// Memory as a DMA-capable device sees it. Implemented by
/// [`AddressSpace`] (guest-physical memory) and by
/// [`Iommu`](crate::iommu::Iommu), which translates and delegates, so
/// stages chain: device → IOMMU → memory.
pub trait DmaMemory {
    /// Maps up to `len` bytes at `addr` for DMA by `requester`.
    ///
    /// Returns a mapping of at least 1 and at most `len` bytes, or an error
    /// ([`MemError::BounceBusy`] when the range is MMIO and no bounce space
    /// is free). Never maps across a region boundary.
    fn map(
        &self,
        requester: DeviceId,
        addr: u64,
        len: u64,
        dir: DmaDirection,
    ) -> Result<Mapping<'_>, MemError>;

    /// Copies guest memory at `addr` into `buf` (like
    /// `cpu_physical_memory_read`); holes are errors.
    fn read(&self, requester: DeviceId, addr: u64, buf: &mut [u8]) -> Result<(), MemError>;

    /// Copies `buf` into guest memory at `addr`; holes are errors.
    fn write(&self, requester: DeviceId, addr: u64, buf: &[u8]) -> Result<(), MemError>;

    /// A counter bumped every time bounce space is released. A client reads
    /// it *before* a `map` attempt and hands it to
    /// [`DmaMemory::register_retry`], which then knows whether space was
    /// freed in between (no lost wake-up, no busy retry).
    fn bounce_generation(&self) -> u32;

    /// True while some bounce space is held by a mapping.
    fn bounce_in_use(&self) -> bool;

    /// Registers `client` to be told when bounce space is freed.
    ///
    /// `seen_generation` is [`DmaMemory::bounce_generation`] as read before
    /// the failed map: if space was released since, the call returns
    /// [`RetryStatus::RetryNow`] and nothing is queued.
    fn register_retry(
        &self,
        client: ClientId,
        seen_generation: u32,
    ) -> Result<RetryStatus, RetryError>;

    /// Removes `client` from the retry queue (waiting or already
    /// notified); returns whether it was there.
    fn cancel_retry(&self, client: ClientId) -> bool;

    /// The next client to notify that bounce space was freed, oldest first.
    /// The host calls this after device activity and re-runs that client's
    /// map step.
    fn poll_retry(&self) -> Option<ClientId>;
}
