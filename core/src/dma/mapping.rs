//! The mapping handle returned by `map`, and the unmap contract.

use crate::memory::{MemError, VolatileSlice};

use super::DmaDirection;

/// Releases bounce mappings: implemented by whoever created them. Crate
/// private: only a [`Mapping`] (consumed or dropped) releases its slot, so
/// no view of a slot can outlive the mapping that owns it.
///
/// `Sync` because a [`Mapping`] holds a shared reference to its unmapper:
/// a device model holding live mappings (an IDE transfer) can then be
/// `Send` and move to the thread that runs it.
///
/// # Implementation contract
/// `release` is called exactly once per ticket, with `access_len <=`
/// the mapped length; for [`DmaDirection::DeviceWritesMemory`] it writes back
/// exactly `access_len` bytes of `data` to the original address, then frees
/// the slot and notifies retry clients.
pub(crate) trait Unmapper: Sync {
    /// Ends a bounce mapping.
    fn release(
        &self,
        ticket: &BounceTicket,
        data: VolatileSlice<'_>,
        access_len: usize,
    ) -> Result<(), MemError>;
}

/// Bookkeeping of a bounced mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BounceTicket {
    /// Slot index in the bounce pool.
    pub slot: u16,
    /// Guest-physical address the slot stands for.
    pub addr: u64,
    /// Direction of the mapping.
    pub dir: DmaDirection,
    /// Device doing the DMA (for the write-back's re-entrancy check).
    pub requester: crate::memory::DeviceId,
}

/// A live DMA mapping: a view of guest RAM (direct) or of a bounce slot.
///
/// Consume it with [`Mapping::unmap`]; dropping it is an unmap with
/// `access_len = 0` (nothing written back, space freed).
#[must_use = "a mapping holds bounce space until it is unmapped or dropped"]
pub struct Mapping<'a> {
    slice: VolatileSlice<'a>,
    addr: u64,
    bounce: Option<(BounceTicket, &'a dyn Unmapper)>,
}

impl core::fmt::Debug for Mapping<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Mapping")
            .field("addr", &self.addr)
            .field("len", &self.slice.len())
            .field("bounce", &self.bounce.as_ref().map(|(t, _)| *t))
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
        }
    }

    /// A bounced mapping; `owner.release` runs at unmap/drop.
    pub(crate) fn bounced(
        slice: VolatileSlice<'a>,
        ticket: BounceTicket,
        owner: &'a dyn Unmapper,
    ) -> Self {
        Mapping {
            slice,
            addr: ticket.addr,
            bounce: Some((ticket, owner)),
        }
    }

    /// The memory the device may access. The view borrows the mapping, so
    /// it cannot be used after `unmap` (when a bounce slot may already
    /// belong to someone else).
    pub fn slice(&self) -> VolatileSlice<'_> {
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

    /// The guest (or device) address that was mapped.
    pub fn addr(&self) -> u64 {
        self.addr
    }

    /// True when this is a bounce buffer rather than a direct view.
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

    fn release(&mut self, access_len: usize) -> Result<(), MemError> {
        match self.bounce.take() {
            Some((ticket, owner)) => {
                owner.release(&ticket, self.slice, access_len.min(self.slice.len()))
            }
            None => Ok(()),
        }
    }
}

impl Drop for Mapping<'_> {
    fn drop(&mut self) {
        // An unmap with access_len 0 writes nothing back and cannot fail in
        // a way the dropper could act on.
        let _ = self.release(0);
    }
}
