//! The system calls of the raw-disk backend that have no safe std wrapper:
//! vectored positioned I/O straight from/to guest memory, and hole punching.
//!
//! Every function takes [`VolatileSlice`]s, whose creators promised that the
//! memory stays valid; the kernel reads or writes it directly (no bounce
//! buffer, no Rust reference into guest memory).
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use vmdma_core::memory::VolatileSlice;

/// Most iovecs passed to one `preadv`/`pwritev` (Linux's `UIO_MAXIOV`).
pub const MAX_IOV: usize = 1024;

/// Direction of a vectored transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// File → memory (`preadv`).
    Read,
    /// Memory → file (`pwritev`).
    Write,
}

/// One `preadv`/`pwritev` of at most [`MAX_IOV`] buffers at file offset
/// `offset`, starting `skip` bytes into the first buffer. Returns the bytes
/// transferred (possibly short).
pub fn transfer_once(
    fd: BorrowedFd<'_>,
    dir: Dir,
    iov: &[VolatileSlice<'_>],
    skip: usize,
    offset: u64,
) -> io::Result<usize> {
    let mut vecs: Vec<libc::iovec> = Vec::with_capacity(iov.len().min(MAX_IOV));
    for (i, s) in iov.iter().take(MAX_IOV).enumerate() {
        let (base, len) = if i == 0 {
            let len = s.len().checked_sub(skip).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "skip past the first buffer")
            })?;
            (s.as_ptr().wrapping_add(skip), len)
        } else {
            (s.as_ptr(), s.len())
        };
        vecs.push(libc::iovec {
            iov_base: base.cast(),
            iov_len: len,
        });
    }
    let off = libc::off_t::try_from(offset)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file offset too large"))?;
    let cnt = libc::c_int::try_from(vecs.len()).unwrap_or(libc::c_int::MAX);
    let fd = fd.as_raw_fd();
    let ret = match dir {
        // SAFETY: every iovec describes memory inside a VolatileSlice, which
        // its creator guarantees valid for reads and writes for the slice's
        // lifetime (covering this call); `skip` was checked against the first
        // slice's length. The kernel writes only inside those ranges.
        Dir::Read => unsafe { libc::preadv(fd, vecs.as_ptr(), cnt, off) },
        // SAFETY: as above; the kernel only reads the ranges.
        Dir::Write => unsafe { libc::pwritev(fd, vecs.as_ptr(), cnt, off) },
    };
    usize::try_from(ret).map_err(|_| io::Error::last_os_error())
}

/// Deallocates `len` bytes at `offset` (they then read as zeros), keeping
/// the file size: `fallocate(PUNCH_HOLE | KEEP_SIZE)`.
pub fn punch_hole(fd: BorrowedFd<'_>, offset: u64, len: u64) -> io::Result<()> {
    let bad = || io::Error::new(io::ErrorKind::InvalidInput, "range too large");
    let off = libc::off_t::try_from(offset).map_err(|_| bad())?;
    let len = libc::off_t::try_from(len).map_err(|_| bad())?;
    // SAFETY: fallocate only reads its integer arguments; the descriptor is
    // borrowed and open for the duration of the call.
    let ret = unsafe {
        libc::fallocate(
            fd.as_raw_fd(),
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            off,
            len,
        )
    };
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `statx(STATX_DIOALIGN)`: the direct-I/O memory and offset alignment the
/// filesystem asks for (0 and 0 when it does not support direct I/O on
/// this file, or the kernel predates 6.1).
pub fn dio_alignment(fd: BorrowedFd<'_>) -> io::Result<(u32, u32)> {
    /// Linux `STATX_DIOALIGN` (not in every libc target).
    const STATX_DIOALIGN: libc::c_uint = 0x2000;
    let mut st = std::mem::MaybeUninit::<libc::statx>::zeroed();
    // SAFETY: statx writes at most one `struct statx` into the buffer we
    // pass, which is that size; the empty path with AT_EMPTY_PATH names the
    // descriptor itself (borrowed, open for the call).
    let ret = unsafe {
        libc::statx(
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            STATX_DIOALIGN,
            st.as_mut_ptr(),
        )
    };
    if ret != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statx returned 0, so it filled the structure (and it was
    // zeroed before, so fields it did not report read as 0).
    let st = unsafe { st.assume_init() };
    if st.stx_mask & STATX_DIOALIGN == 0 {
        return Ok((0, 0));
    }
    Ok((st.stx_dio_mem_align, st.stx_dio_offset_align))
}
