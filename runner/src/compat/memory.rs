//! Stand-in for `vmdma_core::memory::{VolatileSlice, MmioHandler, MmioError}`.
#![allow(unsafe_code)]

use std::cell::UnsafeCell;
use std::marker::PhantomData;

/// A host memory range of `len` bytes valid for `'a`, accessed only through
/// raw pointers (never through Rust references), like core's type.
#[derive(Clone, Copy, Debug)]
pub struct VolatileSlice<'a> {
    ptr: *mut u8,
    len: usize,
    _life: PhantomData<&'a UnsafeCell<u8>>,
}

// SAFETY: the view is a pointer into memory whose creator promised validity
// for `'a` and accepts concurrent access through copies (guest RAM is shared
// with vCPUs); no reference into it is ever formed.
unsafe impl Send for VolatileSlice<'_> {}
// SAFETY: as for `Send`: every accessor takes `&self` and works on raw
// pointers.
unsafe impl Sync for VolatileSlice<'_> {}

impl<'a> VolatileSlice<'a> {
    /// Makes a view of `len` bytes at `ptr`.
    ///
    /// # Safety
    /// For the whole of `'a`, `ptr..ptr + len` must be one allocation that is
    /// valid for reads and writes, and no Rust reference to any of those bytes
    /// may be used while views exist.
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

    /// Length in bytes.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// True when the view has no bytes.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The host address of the first byte (for `preadv`/`pwritev`).
    pub const fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }
}

/// Why an MMIO handler refused an access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmioError {
    /// The offset/length is not decoded by the device.
    Unmapped,
    /// The device does not accept this access (width, alignment, state).
    Denied,
}

/// A device's MMIO register window; `offset` is relative to the region
/// start and `offset + data.len()` never exceeds the region length.
pub trait MmioHandler: Sync {
    /// Reads `data.len()` bytes at `offset`.
    fn read(&self, offset: u64, data: &mut [u8]) -> Result<(), MmioError>;
    /// Writes `data` at `offset`.
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), MmioError>;
}
