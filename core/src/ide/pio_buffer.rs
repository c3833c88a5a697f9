//! Storage for a channel's PIO data blocks.
//!
//! The buffer lives outside the controller, for as long as the DMA memory
//! (`'m`), because an asynchronous backend reads a PIO block into it (or
//! writes one from it) while the controller goes on answering port
//! accesses: a request in flight may not point into an object that can be
//! moved or dropped. Each buffer serves one controller: the controller
//! claims it when its first disk is attached.

use core::sync::atomic::{AtomicBool, Ordering};

use crate::block::SECTOR_SIZE;
use crate::memory::{SharedBytes, VolatileSlice};

use super::identify::MAX_MULTIPLE;

/// `N` bytes of PIO buffer: one DRQ block of up to `N / 512` sectors
/// (READ/WRITE MULTIPLE uses at most 16). Const-constructible, so it can be
/// a `static`. The bytes come first (`repr(C)`), so a host that needs them
/// aligned (direct I/O) aligns the whole value.
#[repr(C)]
pub struct PioBuffer<const N: usize> {
    bytes: SharedBytes<N>,
    claimed: AtomicBool,
}

impl<const N: usize> Default for PioBuffer<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> PioBuffer<N> {
    const SIZE_OK: () = assert!(
        N >= SECTOR_SIZE && N.is_multiple_of(SECTOR_SIZE),
        "a PIO buffer holds a whole number of sectors, at least one"
    );

    /// A zeroed, unclaimed buffer.
    pub const fn new() -> Self {
        let () = Self::SIZE_OK;
        PioBuffer {
            bytes: SharedBytes::new(),
            claimed: AtomicBool::new(false),
        }
    }

    /// The largest multiple count this buffer supports (1..=16).
    pub const fn max_multiple(&self) -> u8 {
        let mut m = MAX_MULTIPLE;
        while m as usize * SECTOR_SIZE > N {
            m -= 1;
        }
        m
    }
}

mod sealed {
    /// Only this crate's buffers are PIO storage: `claim` hands out shared
    /// views, which is sound only for storage that hands them out once.
    pub trait Sealed {}
}

impl<const N: usize> sealed::Sealed for PioBuffer<N> {}

/// A PIO buffer of any size, as a controller holds it. Sealed: only
/// [`PioBuffer`] implements it (see `claim`).
pub trait PioStorage: Sync + sealed::Sealed {
    /// Claims the whole buffer for one controller; `None` if it was
    /// claimed before. An implementation that handed the same bytes out
    /// twice would let two controllers (and their backends) write them at
    /// once: hence the seal.
    #[doc(hidden)]
    fn claim(&self) -> Option<VolatileSlice<'_>>;
    /// The largest multiple count the buffer supports.
    fn max_multiple(&self) -> u8;
}

/// The bytes are handed out once (the `claimed` flag), so one controller
/// is their only user.
impl<const N: usize> PioStorage for PioBuffer<N> {
    fn claim(&self) -> Option<VolatileSlice<'_>> {
        (!self.claimed.swap(true, Ordering::AcqRel)).then(|| self.bytes.view())
    }

    fn max_multiple(&self) -> u8 {
        PioBuffer::max_multiple(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claimed_once_and_sized() {
        let b = PioBuffer::<1024>::new();
        assert_eq!(b.max_multiple(), 2);
        assert_eq!(b.claim().map(|v| v.len()), Some(1024));
        assert!(b.claim().is_none());
        assert_eq!(PioBuffer::<{ 32 * 512 }>::new().max_multiple(), 16);
    }
}
