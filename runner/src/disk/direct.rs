//! Direct I/O (`cache=none`, `O_DIRECT`): the alignment the filesystem asks
//! for, and an aligned host buffer for requests whose guest buffers do not
//! meet it.
//!
//! Rules (Linux): every buffer address and length of a direct request must
//! be a multiple of the memory alignment, and the file offset and total
//! length a multiple of the offset alignment. IDE requests are whole 512-byte
//! sectors, so a file whose offset alignment is larger than 512 (a 4Kn
//! device under the filesystem) cannot serve them directly and is refused
//! at open. Guest buffers are whatever the guest's PRDs say (any even
//! address); a request with a buffer that is not aligned goes through an
//! aligned bounce buffer — a copy, counted in the backend's statistics —
//! while aligned requests (page-aligned buffers, as OS drivers use) go
//! straight between the disk and guest memory.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;

use vmdma_core::block::SECTOR_SIZE;
use vmdma_core::memory::VolatileSlice;

use super::sys;

/// The direct-I/O alignment of one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirectIo {
    /// Buffer addresses and lengths must be multiples of this.
    pub mem_align: usize,
    /// File offsets and lengths must be multiples of this.
    pub offset_align: u64,
}

/// Why direct I/O cannot be used on an image.
#[derive(Debug, thiserror::Error)]
pub enum DirectIoError {
    /// The filesystem does not support `O_DIRECT` on this file.
    #[error("the filesystem does not support direct I/O (cache=none) on this file")]
    Unsupported,
    /// Direct I/O needs larger units than a 512-byte sector.
    #[error(
        "direct I/O on this file needs {0}-byte aligned offsets, larger than a 512-byte sector; use cache=writeback"
    )]
    OffsetAlignment(u64),
    /// The alignment could not be queried.
    #[error("cannot query the direct-I/O alignment: {0}")]
    Query(io::Error),
}

impl DirectIo {
    /// The rules for `file` (opened with `O_DIRECT`): from
    /// `statx(STATX_DIOALIGN)`, or 512/512 on kernels that do not report
    /// them (the traditional logical-block rule).
    pub fn probe(file: &File) -> Result<Self, DirectIoError> {
        let (mem, off) = match sys::dio_alignment(file.as_fd()) {
            Ok(a) => a,
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => (512, 512),
            Err(e) => return Err(DirectIoError::Query(e)),
        };
        if mem == 0 || off == 0 {
            return Err(DirectIoError::Unsupported);
        }
        if u64::from(off) > SECTOR_SIZE as u64 {
            return Err(DirectIoError::OffsetAlignment(u64::from(off)));
        }
        Ok(DirectIo {
            mem_align: mem as usize,
            offset_align: u64::from(off),
        })
    }

    /// True when every buffer of `iov` meets the memory alignment.
    pub fn aligned(&self, iov: &[VolatileSlice<'_>]) -> bool {
        iov.iter().all(|s| {
            (s.as_ptr() as usize).is_multiple_of(self.mem_align)
                && s.len().is_multiple_of(self.mem_align)
        })
    }
}

/// A heap buffer of `len` bytes starting at an `align`-aligned address.
#[derive(Debug)]
pub struct AlignedBuf {
    storage: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBuf {
    /// A zeroed buffer (`align` a power of two, at least 1).
    pub fn new(len: usize, align: usize) -> Self {
        let align = align.max(1);
        let storage = vec![0u8; len + align];
        let misalign = (storage.as_ptr() as usize) % align;
        let start = if misalign == 0 { 0 } else { align - misalign };
        AlignedBuf {
            storage,
            start,
            len,
        }
    }

    /// The buffer as one view (for the kernel).
    pub fn view(&mut self) -> VolatileSlice<'_> {
        let (s, l) = (self.start, self.len);
        VolatileSlice::from_mut_slice(self.storage.get_mut(s..s + l).unwrap_or_default())
    }

    /// Copies the bytes of `iov`, in order, into the buffer.
    pub fn gather(&mut self, iov: &[VolatileSlice<'_>]) {
        let mut at = self.start;
        for s in iov {
            if let Some(dst) = self.storage.get_mut(at..at + s.len()) {
                s.copy_to(0, dst);
            }
            at += s.len();
        }
    }

    /// Copies the buffer, in order, into the buffers of `iov`.
    pub fn scatter(&self, iov: &[VolatileSlice<'_>]) {
        let mut at = self.start;
        for s in iov {
            if let Some(src) = self.storage.get(at..at + s.len()) {
                s.copy_from(0, src);
            }
            at += s.len();
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for an empty buffer.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_buffer_round_trip() {
        let mut b = AlignedBuf::new(1024, 512);
        assert_eq!(b.view().as_ptr() as usize % 512, 0);
        assert_eq!(b.len(), 1024);
        let mut x = [1u8; 300];
        let mut y = [2u8; 724];
        let iov = [
            VolatileSlice::from_mut_slice(&mut x),
            VolatileSlice::from_mut_slice(&mut y),
        ];
        b.gather(&iov);
        let mut out = [0u8; 1024];
        b.view().copy_to(0, &mut out);
        assert_eq!((out[299], out[300]), (1, 2));
        b.view().fill(0, 1024, 9);
        b.scatter(&iov);
        assert!(x.iter().chain(y.iter()).all(|&v| v == 9));
    }

    #[test]
    fn alignment_check() {
        let d = DirectIo {
            mem_align: 512,
            offset_align: 512,
        };
        let mut buf = AlignedBuf::new(2048, 512);
        let v = buf.view();
        assert!(d.aligned(&[v.subslice(0, 1024).unwrap()]));
        assert!(!d.aligned(&[v.subslice(8, 512).unwrap()]));
        assert!(!d.aligned(&[v.subslice(0, 256).unwrap()]));
    }
}
