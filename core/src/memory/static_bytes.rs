//! Memory for hosts without a heap: a fixed buffer, usually a `static`,
//! handed out once as guest RAM or as any other byte view (a RAM disk).

use core::sync::atomic::{AtomicBool, Ordering};

use super::volatile::{RamBacking, SharedBytes, VolatileSlice};

/// `N` zeroed bytes that can live in a `static` and are handed out once:
/// as guest RAM ([`StaticBytes::claim_ram`]) or as a plain view
/// ([`StaticBytes::claim`]). The flag makes the one claimant the only user,
/// which is what makes sharing the bytes through views sound.
#[repr(C)]
pub struct StaticBytes<const N: usize> {
    bytes: SharedBytes<N>,
    claimed: AtomicBool,
}

impl<const N: usize> Default for StaticBytes<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> StaticBytes<N> {
    /// Zeroed, unclaimed bytes (const: usable in a `static`).
    pub const fn new() -> Self {
        StaticBytes {
            bytes: SharedBytes::new(),
            claimed: AtomicBool::new(false),
        }
    }

    /// The whole buffer as a view, the first time; `None` afterwards.
    pub fn claim(&self) -> Option<VolatileSlice<'_>> {
        (!self.claimed.swap(true, Ordering::AcqRel)).then(|| self.bytes.view())
    }

    /// The whole buffer as guest RAM for a region map, the first time.
    pub fn claim_ram(&self) -> Option<RamBacking<'_>> {
        self.claim().map(RamBacking::from_view)
    }

    /// Size in bytes.
    pub const fn len(&self) -> usize {
        N
    }

    /// True for a zero-sized buffer.
    pub const fn is_empty(&self) -> bool {
        N == 0
    }
}

/// `N` zeroed bytes in a `static` that are guest RAM and nothing else:
/// [`StaticRam::guest_ram`] is `const`, so a `static` region map can be
/// built from it at compile time. Guest RAM is memory shared by nature (the
/// guest and every device that maps it reach it at once, always by copies
/// through views), and this type offers no other view of its bytes, so
/// handing it out any number of times aliases nothing that expects to be
/// its own. (For bytes that one user owns, such as a RAM disk, use
/// [`StaticBytes`], which hands them out once.)
#[repr(C)]
pub struct StaticRam<const N: usize> {
    bytes: SharedBytes<N>,
}

impl<const N: usize> Default for StaticRam<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> StaticRam<N> {
    /// Zeroed guest RAM (const: usable in a `static`).
    pub const fn new() -> Self {
        StaticRam {
            bytes: SharedBytes::new(),
        }
    }

    /// The bytes as guest RAM for a region map.
    pub const fn guest_ram(&'static self) -> RamBacking<'static> {
        RamBacking::from_view(self.bytes.view())
    }

    /// Size in bytes.
    pub const fn len(&self) -> usize {
        N
    }

    /// True for a zero-sized buffer.
    pub const fn is_empty(&self) -> bool {
        N == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claimed_once() {
        static B: StaticBytes<64> = StaticBytes::new();
        let v = B.claim().unwrap();
        assert_eq!(v.len(), 64);
        assert!(B.claim().is_none());
        assert!(B.claim_ram().is_none());
        let r = StaticBytes::<16>::new();
        assert_eq!(r.claim_ram().map(|b| b.len()), Some(16));
    }
}
