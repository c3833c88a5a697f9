//! The bounce arena: a static buffer, allocated in small granules, for DMA
//! to and from MMIO (and for staging sectors that do not fit an I/O vector).
//!
//! A mapping costs its length rounded up to [`BOUNCE_GRANULE`] bytes, so a
//! 4 KiB arena holds one 4 KiB mapping or sixty-four 8-byte ones. Space is
//! handed out zero-filled, so a device that reports more than it wrote can
//! never leak stale data (CVE-2024-8612 class). The allocation table is a
//! sorted list of live ranges (at most `LIVE`), searched first-fit for the
//! whole request and otherwise for the largest gap that still holds the
//! minimum the caller accepts. The retry queue lives under the same lock
//! (see [`super::retry`] for the fairness guarantee).
//!
//! Space referenced by a request whose owner went away while it was in
//! flight is *quarantined* under the request's id, not freed: it stays
//! allocated and counted ([`BounceBuffers::quarantined`]) until that
//! request's token is handed to `DmaMemory::reclaim` (proof that no backend
//! holds it any more), so no late completion can ever write into space
//! that belongs to someone else. A token that is dropped instead leaves the
//! space quarantined for good: safe, a leak.

use heapless::Vec;
use spin::Mutex;

use crate::block::RequestId;
use crate::memory::{DeviceId, MemError, SharedBytes, VolatileSlice};

use super::BounceWait;
use super::retry::{RetryError, RetryQueue, RetryStatus};

/// Allocation granule in bytes: every mapping's length is rounded up to it.
pub const BOUNCE_GRANULE: usize = 64;

/// The bounce-space interface the address space uses (object safe, so one
/// address space type serves arenas of any size).
///
/// Allocation takes a `sealed::Key` that only this crate can make: the only
/// caller is the address space, which ties every allocation to one
/// [`Mapping`](super::Mapping) and frees it when that mapping is consumed or
/// dropped, so no view of bounce space outlives its owner. Outside code can
/// neither allocate nor implement the trait.
pub trait BounceBuffers: BounceWait + Sync {
    /// Takes between `min` and `max` bytes (at least `min`, as much of `max`
    /// as one free range allows) for `client`, zero-filled. Fails with
    /// [`MemError::BounceBusy`] when no range fits, the live-range table is
    /// full, or another client waits ahead of `client` in the retry queue.
    #[doc(hidden)]
    fn alloc(
        &self,
        key: sealed::Key,
        client: DeviceId,
        min: usize,
        max: usize,
    ) -> Result<(sealed::Alloc, VolatileSlice<'_>), MemError>;
    /// Frees an allocation and notifies waiting clients. No view of it may
    /// be used afterwards: the address space guarantees this.
    #[doc(hidden)]
    fn free(&self, key: sealed::Key, alloc: sealed::Alloc);
    /// Keeps an allocation out of use while `request` may still reference
    /// it (its owner was dropped with the request in flight), until
    /// [`BounceBuffers::reclaim`] for that request.
    #[doc(hidden)]
    fn quarantine(&self, key: sealed::Key, alloc: sealed::Alloc, request: RequestId);
    /// `request` is over (its token is gone): frees what was quarantined
    /// under it and notifies waiting clients.
    #[doc(hidden)]
    fn reclaim(&self, key: sealed::Key, request: RequestId);
    /// Bytes currently allocated (quarantined space included).
    fn in_use(&self) -> usize;
    /// Bytes quarantined for requests still in flight.
    fn quarantined(&self) -> usize;
    /// Live allocations.
    fn live(&self) -> usize;
    /// Clients in the retry queue.
    fn waiting(&self) -> usize;
    /// The allocation id owning the byte at `ptr`, if it is bounce space in
    /// use (diagnostics, tests and fuzzing: a late completion must only
    /// touch its own allocation; ids are never reused within a run).
    fn alloc_id_at(&self, ptr: *const u8) -> Option<u32>;
}

pub(crate) mod sealed {
    /// Proof that the caller is inside `vmdma-core` (the field is private
    /// to the crate, and the type cannot be named outside it).
    #[derive(Clone, Copy, Debug)]
    pub struct Key(pub(crate) ());

    /// One allocation: where it is, how long (rounded), and a unique id.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Alloc {
        pub(crate) start: u32,
        pub(crate) len: u32,
        pub(crate) id: u32,
    }
}

use sealed::{Alloc, Key};

#[derive(Clone, Copy, Debug)]
struct Live {
    alloc: Alloc,
    /// The request in flight this space is kept for (its owner is gone).
    quarantined: Option<RequestId>,
}

struct State<const LIVE: usize, const WAITERS: usize> {
    /// Live allocations sorted by start.
    live: Vec<Live, LIVE>,
    waiters: RetryQueue<WAITERS>,
    generation: u32,
    next_id: u32,
    in_use: usize,
    quarantined: usize,
}

/// `BYTES` of bounce space with at most `LIVE` allocations at once and up
/// to `WAITERS` clients in the retry queue. Usable in a `static`. The bytes
/// come first (`repr(C)`) and every allocation starts on a granule, so a
/// host that aligns the whole value aligns every bounce buffer.
#[repr(C)]
pub struct BounceArena<const BYTES: usize, const LIVE: usize = 32, const WAITERS: usize = 8> {
    storage: SharedBytes<BYTES>,
    state: Mutex<State<LIVE, WAITERS>>,
}

impl<const BYTES: usize, const LIVE: usize, const WAITERS: usize> Default
    for BounceArena<BYTES, LIVE, WAITERS>
{
    fn default() -> Self {
        Self::new()
    }
}

impl<const BYTES: usize, const LIVE: usize, const WAITERS: usize>
    BounceArena<BYTES, LIVE, WAITERS>
{
    const SIZE_OK: () = assert!(
        BYTES >= 512
            && BYTES.is_multiple_of(BOUNCE_GRANULE)
            && BYTES <= u32::MAX as usize
            && LIVE > 0
            && WAITERS > 0,
        "bounce arena: at least one sector, a multiple of the granule, below 4 GiB; LIVE and WAITERS > 0"
    );

    /// An empty arena (const: it can be a `static`).
    pub const fn new() -> Self {
        let () = Self::SIZE_OK;
        BounceArena {
            storage: SharedBytes::new(),
            state: Mutex::new(State {
                live: Vec::new(),
                waiters: RetryQueue::new(),
                generation: 0,
                next_id: 0,
                in_use: 0,
                quarantined: 0,
            }),
        }
    }
}

/// `n` rounded up to the granule (saturating).
const fn round_up(n: usize) -> usize {
    n.saturating_add(BOUNCE_GRANULE - 1) / BOUNCE_GRANULE * BOUNCE_GRANULE
}

/// Where to put an allocation of `need..=want` bytes (both granule
/// multiples) among `live` ranges in `total` bytes: the first gap that holds
/// `want`, else the largest gap of at least `need` (its length rounded down
/// to the granule). Returns `(insert index, start, length)`.
fn place(live: &[Live], total: usize, need: usize, want: usize) -> Option<(usize, usize, usize)> {
    let mut best: Option<(usize, usize, usize)> = None;
    let mut prev_end = 0usize;
    let ends = live
        .iter()
        .map(|l| {
            (
                l.alloc.start as usize,
                l.alloc.start as usize + l.alloc.len as usize,
            )
        })
        .chain(core::iter::once((total, total)));
    for (idx, (start, end)) in ends.enumerate() {
        let gap = start.saturating_sub(prev_end);
        if gap >= want {
            return Some((idx, prev_end, want));
        }
        let usable = gap / BOUNCE_GRANULE * BOUNCE_GRANULE;
        if usable >= need && best.is_none_or(|b| usable > b.2) {
            best = Some((idx, prev_end, usable));
        }
        prev_end = end;
    }
    best
}

impl<const BYTES: usize, const LIVE: usize, const WAITERS: usize>
    BounceArena<BYTES, LIVE, WAITERS>
{
    /// Bookkeeping after `alloc` left the live table: its bytes are free,
    /// and waiting clients are told.
    fn released(&self, st: &mut State<LIVE, WAITERS>, alloc: Alloc) {
        st.in_use = st.in_use.saturating_sub(alloc.len as usize);
        st.generation = st.generation.wrapping_add(1);
        st.waiters.notify_all();
        #[cfg(test)]
        if let Some(v) = self
            .storage
            .view()
            .subslice(alloc.start as usize, alloc.len as usize)
        {
            // Poison freed space so tests can see a late write into it.
            v.fill(0, v.len(), POISON);
        }
    }
}

/// The retry queue lives under the allocation lock.
impl<const BYTES: usize, const LIVE: usize, const WAITERS: usize> BounceWait
    for BounceArena<BYTES, LIVE, WAITERS>
{
    fn bounce_capacity(&self) -> usize {
        BYTES
    }

    fn bounce_generation(&self) -> u32 {
        self.state.lock().generation
    }

    fn register_retry(
        &self,
        client: DeviceId,
        seen_generation: u32,
    ) -> Result<RetryStatus, RetryError> {
        let mut st = self.state.lock();
        // Under the allocation lock: a release either happened before this
        // check (retry now) or will notify this registration.
        if st.generation != seen_generation && st.waiters.admits(client) {
            return Ok(RetryStatus::RetryNow);
        }
        st.waiters.register(client)?;
        Ok(RetryStatus::Queued)
    }

    fn cancel_retry(&self, client: DeviceId) -> bool {
        self.state.lock().waiters.cancel(client)
    }

    fn poll_retry(&self) -> Option<DeviceId> {
        self.state.lock().waiters.hand_out()
    }
}

/// The storage holds `BYTES` bytes; every allocation is a disjoint range
/// of it recorded in the live table under the lock, and a range is handed
/// to exactly one mapping until `free` removes it.
impl<const BYTES: usize, const LIVE: usize, const WAITERS: usize> BounceBuffers
    for BounceArena<BYTES, LIVE, WAITERS>
{
    fn alloc(
        &self,
        _: Key,
        client: DeviceId,
        min: usize,
        max: usize,
    ) -> Result<(Alloc, VolatileSlice<'_>), MemError> {
        if min == 0 || max < min {
            return Err(MemError::ZeroLength);
        }
        let want = round_up(max.min(BYTES));
        let need = round_up(min);
        let mut st = self.state.lock();
        if !st.waiters.admits(client) || st.live.is_full() || need > BYTES {
            return Err(MemError::BounceBusy);
        }
        let (idx, start, len) = place(&st.live, BYTES, need, want).ok_or(MemError::BounceBusy)?;
        let view = self
            .storage
            .view()
            .subslice(start, len.min(max))
            .ok_or(MemError::BounceBusy)?;
        let alloc = Alloc {
            start: u32::try_from(start).map_err(|_| MemError::BounceBusy)?,
            len: u32::try_from(len).map_err(|_| MemError::BounceBusy)?,
            id: st.next_id,
        };
        crate::vec_util::insert_at(
            &mut st.live,
            idx,
            Live {
                alloc,
                quarantined: None,
            },
        )
        .map_err(|_| MemError::BounceBusy)?;
        st.next_id = st.next_id.wrapping_add(1);
        st.in_use += len;
        st.waiters.served(client);
        drop(st);
        view.fill(0, view.len(), 0);
        Ok((alloc, view))
    }

    fn free(&self, _: Key, alloc: Alloc) {
        let mut st = self.state.lock();
        let Some(pos) = st
            .live
            .iter()
            .position(|l| l.alloc == alloc && l.quarantined.is_none())
        else {
            return;
        };
        st.live.remove(pos);
        self.released(&mut st, alloc);
    }

    fn quarantine(&self, _: Key, alloc: Alloc, request: RequestId) {
        let mut st = self.state.lock();
        if let Some(l) = st
            .live
            .iter_mut()
            .find(|l| l.alloc == alloc && l.quarantined.is_none())
        {
            l.quarantined = Some(request);
            st.quarantined += alloc.len as usize;
        }
    }

    fn reclaim(&self, _: Key, request: RequestId) {
        let mut st = self.state.lock();
        if st.quarantined == 0 {
            return;
        }
        // At most LIVE rounds: each removes one entry.
        while let Some(pos) = st.live.iter().position(|l| l.quarantined == Some(request)) {
            let alloc = st.live.remove(pos).alloc;
            st.quarantined = st.quarantined.saturating_sub(alloc.len as usize);
            self.released(&mut st, alloc);
        }
    }

    fn in_use(&self) -> usize {
        self.state.lock().in_use
    }

    fn quarantined(&self) -> usize {
        self.state.lock().quarantined
    }

    fn live(&self) -> usize {
        self.state.lock().live.len()
    }

    fn waiting(&self) -> usize {
        self.state.lock().waiters.len()
    }

    fn alloc_id_at(&self, ptr: *const u8) -> Option<u32> {
        let base = self.storage.view().as_ptr() as usize;
        let off = (ptr as usize).checked_sub(base)?;
        let st = self.state.lock();
        st.live
            .iter()
            .find(|l| off >= l.alloc.start as usize && off < (l.alloc.start + l.alloc.len) as usize)
            .map(|l| l.alloc.id)
    }
}

/// The byte freed bounce space is filled with in tests.
#[cfg(test)]
pub(crate) const POISON: u8 = 0xDB;

#[cfg(test)]
mod tests;
