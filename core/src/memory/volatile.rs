//! Views of memory that a guest (or a device) may change at any time.
//!
//! This is the one module of `vmdma-core` that dereferences host pointers.
//! Guest RAM is shared with running vCPUs, so the core never forms a Rust `&`
//! or `&mut` reference to it: a [`VolatileSlice`] is a raw pointer plus a
//! length, and every access copies bytes in or out (the approach of rust-vmm's
//! `vm-memory`). The only way to make one is the `unsafe`
//! [`VolatileSlice::from_raw_parts`] (whose caller promises validity) or the
//! safe constructors that borrow memory exclusively for the slice's lifetime.
//!
//! Byte copies use `core::ptr::copy` semantics (`copy_nonoverlapping` for
//! host buffers). Guest RAM is written by vCPUs at any time, which the
//! Rust memory model cannot describe; like `vm-memory`, vmdma treats memory
//! behind a view as shared with an outside agent (the guest, the kernel
//! doing I/O): accesses are raw copies of plain bytes, never references, so
//! a race yields torn byte values (as on hardware) and no assumption of the
//! compiler about Rust-owned data is broken. Inside the core, no two parts
//! ever access the same *host-owned* bytes (bounce space) at once: the arena
//! hands each allocated range to one mapping, and a mapping's view borrows
//! the mapping.
#![allow(unsafe_code)]

use core::cell::UnsafeCell;
use core::marker::PhantomData;

/// A host memory range of `len` bytes valid for `'a`, accessed only by copies.
///
/// `VolatileSlice` is `Copy`: it is a view, not an owner. Validity for `'a`
/// is promised by whoever created it.
#[derive(Clone, Copy, Debug)]
pub struct VolatileSlice<'a> {
    ptr: *mut u8,
    len: usize,
    _life: PhantomData<&'a UnsafeCell<u8>>,
}

// SAFETY: a VolatileSlice is a pointer into memory its creator promised is
// valid for `'a`. Views are how guest RAM (shared with vCPU threads by
// nature) is reached, so they must cross threads; every access is a raw
// byte copy and no `&`/`&mut` is ever formed into the memory (see the module
// docs for the shared-memory model this follows).
unsafe impl Send for VolatileSlice<'_> {}
// SAFETY: see the `Send` impl above; all accessors take `&self` and copy.
unsafe impl Sync for VolatileSlice<'_> {}

impl<'a> VolatileSlice<'a> {
    /// An empty view (no memory behind it).
    pub const fn empty() -> Self {
        VolatileSlice {
            ptr: core::ptr::NonNull::<u8>::dangling().as_ptr(),
            len: 0,
            _life: PhantomData,
        }
    }

    /// Makes a view of `len` bytes at `ptr`.
    ///
    /// # Safety
    /// For the whole of `'a`, `ptr..ptr + len` must be one allocation that is
    /// valid for reads and writes, and no Rust reference to any of those bytes
    /// may be used while views exist (raw-pointer access by others, such as a
    /// vCPU or the kernel doing I/O, is fine).
    pub const unsafe fn from_raw_parts(ptr: *mut u8, len: usize) -> Self {
        VolatileSlice {
            ptr,
            len,
            _life: PhantomData,
        }
    }

    /// A view of a buffer borrowed exclusively for `'a`.
    pub fn from_mut_slice(buf: &'a mut [u8]) -> Self {
        VolatileSlice {
            ptr: buf.as_mut_ptr(),
            len: buf.len(),
            _life: PhantomData,
        }
    }

    /// A view of a byte array that lives in an `UnsafeCell` (the bounce
    /// pool's storage); the cell grants shared mutability. Crate-private:
    /// the pool decides who may use a slot.
    pub(crate) const fn from_cell<const N: usize>(cell: &'a UnsafeCell<[u8; N]>) -> Self {
        VolatileSlice {
            ptr: cell.get().cast::<u8>(),
            len: N,
            _life: PhantomData,
        }
    }

    /// Length in bytes.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// True when the view has no bytes.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The host address of the first byte, for handing to the kernel
    /// (`preadv`/`pwritev`, io_uring). Dereferencing it is the caller's
    /// business and must keep this module's rules.
    pub const fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// A sub-view `offset..offset + len`, or `None` if it does not fit.
    pub fn subslice(&self, offset: usize, len: usize) -> Option<VolatileSlice<'a>> {
        let end = offset.checked_add(len)?;
        if end > self.len {
            return None;
        }
        // SAFETY: `offset..end` lies inside this view (checked above), so the
        // creator's promise for the whole view covers the sub-view.
        Some(unsafe { VolatileSlice::from_raw_parts(self.ptr.add(offset), len) })
    }

    /// Splits into `..mid` and `mid..`; `None` if `mid > len`.
    pub fn split_at(&self, mid: usize) -> Option<(VolatileSlice<'a>, VolatileSlice<'a>)> {
        let rest = self.len.checked_sub(mid)?;
        Some((self.subslice(0, mid)?, self.subslice(mid, rest)?))
    }

    /// Copies `min(buf.len(), len - offset)` bytes starting at `offset` into
    /// `buf`; returns the number copied (0 if `offset` is past the end).
    pub fn copy_to(&self, offset: usize, buf: &mut [u8]) -> usize {
        let n = self.len.saturating_sub(offset).min(buf.len());
        if n == 0 {
            return 0;
        }
        // SAFETY: `offset + n <= len`, so the source range is inside the view;
        // `buf` is a distinct host buffer borrowed mutably, so the ranges
        // cannot overlap (no reference into the view exists).
        unsafe { core::ptr::copy_nonoverlapping(self.ptr.add(offset), buf.as_mut_ptr(), n) };
        n
    }

    /// Copies `min(buf.len(), len - offset)` bytes from `buf` into the view
    /// at `offset`; returns the number copied.
    pub fn copy_from(&self, offset: usize, buf: &[u8]) -> usize {
        let n = self.len.saturating_sub(offset).min(buf.len());
        if n == 0 {
            return 0;
        }
        // SAFETY: `offset + n <= len`, so the destination is inside the view;
        // `buf` is a host buffer with a live shared borrow, and the view
        // never aliases a Rust reference, so the ranges do not overlap.
        unsafe { core::ptr::copy_nonoverlapping(buf.as_ptr(), self.ptr.add(offset), n) };
        n
    }

    /// Copies `min(self.len, dst.len)` bytes from this view into `dst`
    /// (the views may overlap: `memmove` semantics). Returns the count.
    pub fn copy_to_volatile(&self, dst: &VolatileSlice<'_>) -> usize {
        let n = self.len.min(dst.len);
        if n == 0 {
            return 0;
        }
        // SAFETY: both ranges are inside their views; `copy` tolerates
        // overlap.
        unsafe { core::ptr::copy(self.ptr, dst.ptr, n) };
        n
    }

    /// Sets `min(len, self.len - offset)` bytes from `offset` to `byte`;
    /// returns the count.
    pub fn fill(&self, offset: usize, len: usize, byte: u8) -> usize {
        let n = self.len.saturating_sub(offset).min(len);
        if n == 0 {
            return 0;
        }
        // SAFETY: `offset + n <= self.len`: the range is inside the view.
        unsafe { core::ptr::write_bytes(self.ptr.add(offset), byte, n) };
        n
    }

    /// Reads a little-endian `u32` at `offset` (unaligned allowed).
    pub fn read_u32_le(&self, offset: usize) -> Option<u32> {
        let mut b = [0u8; 4];
        (self.copy_to(offset, &mut b) == 4).then(|| u32::from_le_bytes(b))
    }
}

/// Fixed storage that hands out [`VolatileSlice`] views of itself: the
/// bounce arena's storage. The arena guarantees that an allocated range has
/// one user at a time, which is what makes the shared `&self` access sound.
pub(crate) struct SharedBytes<const N: usize>(UnsafeCell<[u8; N]>);

// SAFETY: the bytes are only reached through `VolatileSlice` copies, and the
// owner (the bounce arena) hands each range to one mapping at a time under
// its granule bitmap, so no two threads access the same bytes concurrently.
unsafe impl<const N: usize> Sync for SharedBytes<N> {}

impl<const N: usize> SharedBytes<N> {
    /// Zeroed storage (const, for `static` arenas).
    pub(crate) const fn new() -> Self {
        SharedBytes(UnsafeCell::new([0; N]))
    }

    /// A view of all `N` bytes.
    pub(crate) const fn view(&self) -> VolatileSlice<'_> {
        VolatileSlice::from_cell(&self.0)
    }
}

/// Host memory handed to a [`crate::memory::RegionMap`] as guest RAM.
///
/// Unlike a [`VolatileSlice`] it is the *whole* backing of one RAM region;
/// the map hands out sub-views of it.
#[derive(Clone, Copy, Debug)]
pub struct RamBacking<'a> {
    slice: VolatileSlice<'a>,
}

impl<'a> RamBacking<'a> {
    /// Backing from a raw host mapping (an `mmap` of guest RAM, say).
    ///
    /// # Safety
    /// The same contract as [`VolatileSlice::from_raw_parts`]: `ptr..ptr+len`
    /// must stay valid for reads and writes for `'a`, and must not be accessed
    /// through Rust references while the backing is in use.
    pub const unsafe fn from_raw_parts(ptr: *mut u8, len: usize) -> Self {
        RamBacking {
            // SAFETY: the caller keeps the contract stated on this function,
            // which is the one `from_raw_parts` requires.
            slice: unsafe { VolatileSlice::from_raw_parts(ptr, len) },
        }
    }

    /// Backing from a buffer borrowed exclusively for `'a` (tests, statics).
    pub fn from_mut_slice(buf: &'a mut [u8]) -> Self {
        RamBacking {
            slice: VolatileSlice::from_mut_slice(buf),
        }
    }

    /// Backing from a view the caller owns exclusively (a claimed
    /// [`StaticBytes`](super::StaticBytes)).
    pub(crate) const fn from_view(slice: VolatileSlice<'a>) -> Self {
        RamBacking { slice }
    }

    /// Size in bytes.
    pub const fn len(&self) -> usize {
        self.slice.len()
    }

    /// True when the backing has no bytes.
    pub const fn is_empty(&self) -> bool {
        self.slice.is_empty()
    }

    /// The view of `offset..offset+len`, if inside the backing.
    pub fn slice(&self, offset: usize, len: usize) -> Option<VolatileSlice<'a>> {
        self.slice.subslice(offset, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_are_bounded() {
        let mut buf = [1u8, 2, 3, 4, 5];
        let s = VolatileSlice::from_mut_slice(&mut buf);
        let mut out = [0u8; 8];
        assert_eq!(s.copy_to(3, &mut out), 2);
        assert_eq!(&out[..2], &[4, 5]);
        assert_eq!(s.copy_to(9, &mut out), 0);
        assert_eq!(s.copy_from(4, &[9, 9, 9]), 1);
        assert_eq!(s.fill(0, 100, 7), 5);
        assert!(s.subslice(4, 2).is_none());
        assert!(s.subslice(usize::MAX, 2).is_none());
        let (a, b) = s.split_at(2).unwrap();
        assert_eq!((a.len(), b.len()), (2, 3));
        assert!(s.split_at(6).is_none());
        assert_eq!(s.read_u32_le(0), Some(0x0707_0707));
        assert_eq!(s.read_u32_le(2), None);
    }
}
