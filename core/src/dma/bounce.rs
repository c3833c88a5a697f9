//! A static pool of bounce buffers for DMA to MMIO.
//!
//! The pool has a fixed total size (`SLOTS` × `SLOT` bytes, no heap) and can
//! serve several concurrent mappings, one slot each. Slots are handed out
//! zero-filled so that a device that reports more than it wrote can never
//! leak stale data (CVE-2024-8612 class). Allocation is a lock-free bitmap.

use core::sync::atomic::{AtomicU32, Ordering};

use crate::memory::{SharedBytes, VolatileSlice};

/// The bounce-buffer interface the address space uses (object safe, so one
/// address space type serves pools of any size).
///
/// Slot allocation takes a `sealed::Key` that only this crate can make:
/// the only caller is the address space, which ties every slot to one
/// [`Mapping`](super::Mapping) and releases it when that mapping is
/// consumed or dropped, so no view of a slot outlives its owner. Outside
/// code can neither allocate slots nor implement the trait.
pub trait BounceBuffers: Sync {
    /// Takes a free slot and returns its index and a zero-filled view of
    /// `min(len, slot_size)` bytes; `None` when every slot is in use or
    /// `len` is 0.
    #[doc(hidden)]
    fn acquire(&self, key: sealed::Key, len: usize) -> Option<(u16, VolatileSlice<'_>)>;
    /// Returns a slot to the pool; false if it was not in use. No view of
    /// the slot may be used afterwards (the slot may be handed to another
    /// mapping at once): the address space guarantees this.
    #[doc(hidden)]
    fn release(&self, key: sealed::Key, slot: u16) -> bool;
    /// Bytes per slot.
    fn slot_size(&self) -> usize;
    /// Number of slots.
    fn slot_count(&self) -> usize;
    /// Slots currently in use.
    fn in_use(&self) -> usize;
}

pub(crate) mod sealed {
    /// Proof that the caller is inside `vmdma-core` (the field is private
    /// to the crate, and the type cannot be named outside it).
    #[derive(Clone, Copy, Debug)]
    pub struct Key(pub(crate) ());
}

/// `SLOTS` bounce buffers of `SLOT` bytes each (`SLOTS <= 32`).
pub struct BouncePool<const SLOT: usize, const SLOTS: usize> {
    storage: [SharedBytes<SLOT>; SLOTS],
    busy: AtomicU32,
}

impl<const SLOT: usize, const SLOTS: usize> Default for BouncePool<SLOT, SLOTS> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const SLOT: usize, const SLOTS: usize> BouncePool<SLOT, SLOTS> {
    const SIZE_OK: () = assert!(
        SLOTS > 0
            && SLOTS <= 32
            && SLOT >= 512
            && SLOT.is_multiple_of(512)
            && SLOT <= u16::MAX as usize + 1,
        "bounce pool: 1..=32 slots of a multiple of 512 bytes (at most 64 KiB)"
    );

    /// An empty pool (usable in a `static`).
    pub const fn new() -> Self {
        let () = Self::SIZE_OK;
        BouncePool {
            storage: [const { SharedBytes::new() }; SLOTS],
            busy: AtomicU32::new(0),
        }
    }

    /// Total bytes of bounce space.
    pub const fn capacity(&self) -> usize {
        SLOT * SLOTS
    }
}

/// Slots are disjoint elements of `storage`, which lives as long as the
/// pool; the `busy` bitmap (compare-exchange) hands each slot to one caller
/// until `release` clears its bit.
impl<const SLOT: usize, const SLOTS: usize> BounceBuffers for BouncePool<SLOT, SLOTS> {
    fn acquire(&self, _: sealed::Key, len: usize) -> Option<(u16, VolatileSlice<'_>)> {
        if len == 0 {
            return None;
        }
        let mut cur = self.busy.load(Ordering::Relaxed);
        loop {
            let free = !cur & slot_mask(SLOTS);
            if free == 0 {
                return None;
            }
            let slot = free.trailing_zeros();
            match self.busy.compare_exchange_weak(
                cur,
                cur | (1 << slot),
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    let idx = slot as usize;
                    let view = self.storage.get(idx)?.view().subslice(0, len.min(SLOT))?;
                    view.fill(0, view.len(), 0);
                    return Some((u16::try_from(idx).ok()?, view));
                }
                Err(now) => cur = now,
            }
        }
    }

    fn release(&self, _: sealed::Key, slot: u16) -> bool {
        if usize::from(slot) >= SLOTS {
            return false;
        }
        let bit = 1u32 << slot;
        self.busy.fetch_and(!bit, Ordering::Release) & bit != 0
    }

    fn slot_size(&self) -> usize {
        SLOT
    }

    fn slot_count(&self) -> usize {
        SLOTS
    }

    fn in_use(&self) -> usize {
        self.busy.load(Ordering::Relaxed).count_ones() as usize
    }
}

const fn slot_mask(slots: usize) -> u32 {
    if slots >= 32 {
        u32::MAX
    } else {
        (1u32 << slots) - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: sealed::Key = sealed::Key(());

    #[test]
    fn slots_are_exclusive_zeroed_and_bounded() {
        let pool = BouncePool::<512, 2>::new();
        let (a, va) = pool.acquire(K, 1000).unwrap();
        assert_eq!(va.len(), 512);
        va.fill(0, 512, 0xAA);
        let (b, vb) = pool.acquire(K, 10).unwrap();
        assert_ne!(a, b);
        assert_eq!(vb.len(), 10);
        assert!(pool.acquire(K, 1).is_none());
        assert!(pool.acquire(K, 0).is_none());
        assert_eq!(pool.in_use(), 2);
        assert!(pool.release(K, a));
        assert!(!pool.release(K, a));
        assert!(!pool.release(K, 7));
        let (c, vc) = pool.acquire(K, 512).unwrap();
        assert_eq!(c, a);
        let mut buf = [1u8; 512];
        vc.copy_to(0, &mut buf);
        assert!(
            buf.iter().all(|&x| x == 0),
            "reused slot must be zero-filled"
        );
        assert_eq!(pool.capacity(), 1024);
    }

    #[test]
    fn full_width_pool() {
        let pool = BouncePool::<512, 32>::new();
        for _ in 0..32 {
            assert!(pool.acquire(K, 512).is_some());
        }
        assert!(pool.acquire(K, 512).is_none());
        assert_eq!(pool.in_use(), 32);
    }
}
