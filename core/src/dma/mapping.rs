//! The mapping handle returned by `map`, and the unmap contract.

use crate::block::RequestId;
use crate::memory::{DeviceId, MemError, VolatileSlice};

use super::DmaDirection;
use super::arena::sealed::Alloc;

/// Ends bounce mappings: implemented by whoever created them (the address
/// space). Crate private: only a [`Mapping`] (consumed, dropped or
/// quarantined) gives its bounce space back, so no view of that space can
/// outlive the mapping that owns it.
///
/// `Sync` because a [`Mapping`] holds a shared reference to its unmapper:
/// a device model holding live mappings (an IDE transfer) can then be
/// `Send` and move to the thread that runs it.
///
/// # Implementation contract
/// Each bounce is ended exactly once, by `release` or `quarantine`.
/// `release` is called with `access_len <=` the mapped length; for
/// [`DmaDirection::DeviceWritesMemory`] with a guest address it writes back
/// exactly `access_len` bytes of `data` there, then frees the space and
/// notifies retry clients. `quarantine` keeps the space out of use until
/// the request's token is handed to
/// [`DmaMemory::reclaim`](super::DmaMemory::reclaim).
pub(crate) trait Unmapper: Sync {
    /// Ends a bounce mapping normally.
    fn release(
        &self,
        bounce: &Bounce,
        data: VolatileSlice<'_>,
        access_len: usize,
    ) -> Result<(), MemError>;
    /// Ends a bounce mapping whose space request `request` may still
    /// reference.
    fn quarantine(&self, bounce: &Bounce, request: RequestId);
}

/// Keeps a translation (an IOMMU range) in place while a mapping through
/// it lives. Crate private, like [`Unmapper`]: only a [`Mapping`] ends a
/// pin, exactly once, by `unpin` or `keep`.
pub(crate) trait Pin: Sync {
    /// The mapping through range `key` ended.
    fn unpin(&self, key: u64);
    /// The mapping through range `key` belongs to request `request`, still
    /// in flight, whose owner went away: keep the range pinned until the
    /// request's token is reclaimed.
    fn keep(&self, key: u64, request: RequestId);
}

/// Bookkeeping of a bounced mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Bounce {
    /// The arena allocation.
    pub alloc: Alloc,
    /// Guest-physical address the space stands for (`None`: staging space
    /// whose contents the caller moves itself).
    pub addr: Option<u64>,
    /// Direction of the mapping.
    pub dir: DmaDirection,
    /// Device doing the DMA (for the write-back's re-entrancy check).
    pub requester: DeviceId,
}

/// A live DMA mapping: a direct view of guest RAM, or bounce space.
///
/// Consume it with [`Mapping::unmap`]; dropping it is an unmap with
/// `access_len = 0` (nothing written back, space freed).
#[must_use = "a mapping holds bounce space until it is unmapped or dropped"]
pub struct Mapping<'a> {
    slice: VolatileSlice<'a>,
    addr: u64,
    bounce: Option<(Bounce, &'a dyn Unmapper)>,
    /// The translation this mapping went through, held until it ends.
    pin: Option<(&'a dyn Pin, u64)>,
}

impl core::fmt::Debug for Mapping<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Mapping")
            .field("addr", &self.addr)
            .field("len", &self.slice.len())
            .field("bounce", &self.bounce.as_ref().map(|(b, _)| *b))
            .finish()
    }
}

impl<'a> Mapping<'a> {
    /// A direct mapping of guest RAM.
    pub(crate) fn direct(addr: u64, slice: VolatileSlice<'a>) -> Self {
        Mapping {
            slice,
            addr,
            bounce: None,
            pin: None,
        }
    }

    /// A bounced mapping; `owner` ends it at unmap/drop.
    pub(crate) fn bounced(
        slice: VolatileSlice<'a>,
        bounce: Bounce,
        owner: &'a dyn Unmapper,
    ) -> Self {
        Mapping {
            slice,
            addr: bounce.addr.unwrap_or(0),
            bounce: Some((bounce, owner)),
            pin: None,
        }
    }

    /// This mapping went through range `key` of `pin`, which stays pinned
    /// until the mapping ends. `Err` (the mapping back, unchanged) if it is
    /// pinned already: one translation stage per mapping.
    pub(crate) fn pinned(mut self, pin: &'a dyn Pin, key: u64) -> Result<Self, Self> {
        if self.pin.is_some() {
            return Err(self);
        }
        self.pin = Some((pin, key));
        Ok(self)
    }

    /// The memory the device may access. The view borrows the mapping, so
    /// it cannot be used after `unmap` (when bounce space may already
    /// belong to someone else).
    pub fn slice(&self) -> VolatileSlice<'_> {
        self.slice
    }

    /// The view with the mapping's own lifetime, for handing to a block
    /// backend: crate-private, because only a transfer that keeps the
    /// mapping alive until the request completes may do it.
    pub(crate) fn lease_view(&self) -> VolatileSlice<'a> {
        self.slice
    }

    /// Mapped length in bytes (at least 1).
    pub fn len(&self) -> usize {
        self.slice.len()
    }

    /// Never true for a mapping returned by `map`.
    pub fn is_empty(&self) -> bool {
        self.slice.is_empty()
    }

    /// The guest (or device) address that was mapped (0 for staging space).
    pub fn addr(&self) -> u64 {
        self.addr
    }

    /// True when this is bounce space rather than a direct view.
    pub fn is_bounce(&self) -> bool {
        self.bounce.is_some()
    }

    /// Shortens the mapping to `len` bytes (no-op if not shorter). The
    /// trimmed tail is never written back.
    pub fn truncate(&mut self, len: usize) {
        if let Some(s) = self.slice.subslice(0, len) {
            self.slice = s;
        }
    }

    /// Ends the mapping; `access_len` is the number of bytes the device
    /// really accessed (clamped to the mapped length). For a bounced
    /// device-writes-memory mapping those bytes are written back now.
    pub fn unmap(mut self, access_len: usize) -> Result<(), MemError> {
        self.release(access_len)
    }

    /// Ends the mapping without freeing its bounce space, which stays out
    /// of use until `request` is over: for a mapping that request (in
    /// flight) may still reference when its owner goes away.
    pub(crate) fn quarantine(mut self, request: RequestId) {
        if let Some((b, owner)) = self.bounce.take() {
            owner.quarantine(&b, request);
        }
        if let Some((p, key)) = self.pin.take() {
            p.keep(key, request);
        }
    }

    fn release(&mut self, access_len: usize) -> Result<(), MemError> {
        let r = match self.bounce.take() {
            Some((b, owner)) => owner.release(&b, self.slice, access_len.min(self.slice.len())),
            None => Ok(()),
        };
        // After the write-back, which goes through the translation.
        if let Some((p, key)) = self.pin.take() {
            p.unpin(key);
        }
        r
    }
}

impl Drop for Mapping<'_> {
    fn drop(&mut self) {
        // An unmap with access_len 0 writes nothing back and cannot fail in
        // a way the dropper could act on.
        let _ = self.release(0);
    }
}
