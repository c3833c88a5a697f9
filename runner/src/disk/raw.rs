//! A raw disk image file as a [`BlockDevice`]: sector `n` is bytes
//! `512 n .. 512 (n + 1)` of the file.
//!
//! Reads and writes go straight between the file and the request's I/O
//! vector (guest memory) with `preadv`/`pwritev`: no intermediate buffer.
//! Requests complete synchronously inside `submit`; their completions are
//! queued and handed out by `poll`, the same shape an io_uring backend
//! would have.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::fd::AsFd;

use thiserror::Error;

use super::direct::{AlignedBuf, DirectIo, DirectIoError};
use super::lock::{LockError, lock};
use super::sys::{self, Dir};
use crate::input_file::describe;
use vmdma_core::block::{
    BlockDevice, BlockError, BlockRequest, Completion, Leased, Refused, RequestToken, SECTOR_SIZE,
    check_range, check_rw,
};
use vmdma_core::memory::VolatileSlice;

/// Completions that may wait in the queue before `submit` reports
/// `QueueFull`.
pub const MAX_QUEUED: usize = 64;
/// Consecutive `EINTR`s tolerated in one request before it fails.
const MAX_EINTR: u32 = 1000;

/// Why an image cannot be used.
#[derive(Debug, Error)]
pub enum DiskError {
    /// The file could not be opened or inspected.
    #[error("{0}")]
    Open(io::Error),
    /// Not a regular file (what it is instead).
    #[error("not a regular file ({0})")]
    NotRegularFile(&'static str),
    /// The file is empty.
    #[error("the image is empty")]
    Empty,
    /// The size is not a whole number of sectors.
    #[error("size {0} bytes is not a multiple of 512")]
    NotSectorMultiple(u64),
    /// The lock could not be taken.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// Direct I/O (`cache=none`) cannot be used on the image.
    #[error(transparent)]
    Direct(#[from] DirectIoError),
    /// The blkdebug rules could not be read.
    #[error(transparent)]
    Blkdebug(#[from] super::blkdebug::BlkdebugError),
    /// The temporary image could not be created.
    #[error("cannot create a temporary image in {dir}: {source}")]
    Temporary {
        /// Directory tried.
        dir: String,
        /// The error.
        source: io::Error,
    },
}

/// A raw image file.
#[derive(Debug)]
pub struct RawDisk {
    file: File,
    sectors: u64,
    read_only: bool,
    direct: Option<DirectIo>,
    done: VecDeque<Completion>,
    bounced_bytes: u64,
}

/// Checks that `file` is a usable image (a regular file, not empty, a whole
/// number of sectors) and locks it (shared when `read_only`); returns its
/// size in sectors.
pub fn check_and_lock(file: &File, read_only: bool) -> Result<u64, DiskError> {
    let meta = file.metadata().map_err(DiskError::Open)?;
    if !meta.is_file() {
        return Err(DiskError::NotRegularFile(describe(meta.file_type())));
    }
    lock(file, read_only)?;
    let size = meta.len();
    if size == 0 {
        return Err(DiskError::Empty);
    }
    if size % SECTOR_SIZE as u64 != 0 {
        return Err(DiskError::NotSectorMultiple(size));
    }
    Ok(size / SECTOR_SIZE as u64)
}

impl RawDisk {
    /// The image file (snapshots read a few sectors of it to tell images
    /// apart).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Uses `file` (opened read-write unless `read_only`) as a disk after
    /// locking it and checking its size.
    pub fn new(file: File, read_only: bool) -> Result<Self, DiskError> {
        let sectors = check_and_lock(&file, read_only)?;
        Ok(Self::checked(file, sectors, read_only, None))
    }

    /// A disk on a file already checked and locked by [`check_and_lock`];
    /// `direct` when it was opened with `O_DIRECT`.
    pub fn checked(file: File, sectors: u64, read_only: bool, direct: Option<DirectIo>) -> Self {
        RawDisk {
            file,
            sectors,
            read_only,
            direct,
            done: VecDeque::new(),
            bounced_bytes: 0,
        }
    }

    /// Bytes copied through an aligned buffer (`cache=none` with unaligned
    /// guest buffers).
    pub fn bounced_bytes(&self) -> u64 {
        self.bounced_bytes
    }

    /// The whole vector through an aligned buffer (direct I/O of unaligned
    /// guest buffers).
    fn transfer_bounced(
        &mut self,
        dir: Dir,
        offset: u64,
        bytes: u64,
        iov: &[VolatileSlice<'_>],
        align: usize,
    ) -> Result<(), BlockError> {
        let len = usize::try_from(bytes).map_err(|_| BlockError::OutOfRange)?;
        let mut buf = AlignedBuf::new(len, align);
        if dir == Dir::Write {
            buf.gather(iov);
        }
        self.bounced_bytes = self.bounced_bytes.saturating_add(bytes);
        self.transfer(dir, offset, &[buf.view()])?;
        if dir == Dir::Read {
            buf.scatter(iov);
        }
        Ok(())
    }

    /// A read or write (checked with `check_rw`), direct or through the
    /// aligned buffer.
    fn rw(&mut self, dir: Dir, sector: u64, iov: &[VolatileSlice<'_>]) -> Result<(), BlockError> {
        let off = sector
            .checked_mul(SECTOR_SIZE as u64)
            .ok_or(BlockError::OutOfRange)?;
        let bytes = iov.iter().map(|s| s.len() as u64).sum();
        match self.direct {
            Some(d) if !d.aligned(iov) => self.transfer_bounced(dir, off, bytes, iov, d.mem_align),
            _ => self.transfer(dir, off, iov),
        }
    }

    /// Moves the whole vector between the file (from byte `offset`) and
    /// memory, looping on short transfers and `EINTR`.
    fn transfer(&self, dir: Dir, offset: u64, iov: &[VolatileSlice<'_>]) -> Result<(), BlockError> {
        let mut idx = 0usize;
        let mut skip = 0usize;
        let mut pos = offset;
        let mut eintr = 0u32;
        loop {
            while iov.get(idx).is_some_and(|s| s.len() == skip) {
                idx += 1;
                skip = 0;
            }
            let Some(rest) = iov.get(idx..).filter(|r| !r.is_empty()) else {
                return Ok(());
            };
            let n = match sys::transfer_once(self.file.as_fd(), dir, rest, skip, pos) {
                Ok(0) => {
                    // The file shrank under us (range was checked at submit).
                    return Err(BlockError::Io(libc::EIO));
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted && eintr < MAX_EINTR => {
                    eintr += 1;
                    continue;
                }
                Err(e) => return Err(BlockError::Io(e.raw_os_error().unwrap_or(libc::EIO))),
            };
            eintr = 0;
            pos = pos.checked_add(n as u64).ok_or(BlockError::OutOfRange)?;
            // Advance through the vector by `n` bytes; each step consumes
            // the rest of one buffer or ends, so this is bounded.
            let mut left = n;
            while left > 0 {
                let Some(s) = iov.get(idx) else {
                    return Err(BlockError::Io(libc::EIO));
                };
                let avail = s.len() - skip;
                if left >= avail {
                    left -= avail;
                    idx += 1;
                    skip = 0;
                } else {
                    skip += left;
                    left = 0;
                }
            }
        }
    }

    /// Runs `req` inside `submit`: `Err` is a refusal before any I/O,
    /// `Ok` the request's result.
    fn run(
        &mut self,
        token: &RequestToken,
        req: BlockRequest<'_, '_>,
    ) -> Result<Result<(), BlockError>, BlockError> {
        Ok(match req {
            BlockRequest::Read { sector, iov } => {
                check_rw(self.sectors, sector, iov)?;
                self.rw(Dir::Read, sector, &views(iov, token)?)
            }
            BlockRequest::Write { sector, iov } => {
                if self.read_only {
                    return Err(BlockError::ReadOnly);
                }
                check_rw(self.sectors, sector, iov)?;
                self.rw(Dir::Write, sector, &views(iov, token)?)
            }
            BlockRequest::Flush => {
                if self.read_only {
                    Ok(())
                } else {
                    self.file
                        .sync_data()
                        .map_err(|e| BlockError::Io(e.raw_os_error().unwrap_or(libc::EIO)))
                }
            }
            BlockRequest::Discard { sector, count } => {
                if self.read_only {
                    return Err(BlockError::ReadOnly);
                }
                check_range(self.sectors, sector, count)?;
                if count == 0 {
                    Ok(())
                } else {
                    let sz = SECTOR_SIZE as u64;
                    // check_range bounds both by the sector count, which
                    // came from a u64 byte size, so these cannot overflow.
                    let (off, len) = (sector * sz, count * sz);
                    match sys::punch_hole(self.file.as_fd(), off, len) {
                        Ok(()) => Ok(()),
                        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
                            return Err(BlockError::Unsupported);
                        }
                        Err(e) => Err(BlockError::Io(e.raw_os_error().unwrap_or(libc::EIO))),
                    }
                }
            }
        })
    }
}

/// The memory of `iov`, opened with the request's `token`.
pub(super) fn views<'a>(
    iov: &'a [Leased<'_>],
    token: &'a RequestToken,
) -> Result<Vec<VolatileSlice<'a>>, BlockError> {
    iov.iter()
        .map(|l| l.view(token).ok_or(BlockError::NotLeased))
        .collect()
}

impl<'m> BlockDevice<'m> for RawDisk {
    fn sector_count(&self) -> u64 {
        self.sectors
    }

    fn is_read_only(&self) -> bool {
        self.read_only
    }

    fn submit(&mut self, token: RequestToken, req: BlockRequest<'_, 'm>) -> Result<(), Refused> {
        if self.done.len() >= MAX_QUEUED {
            return Err(Refused::new(token, BlockError::QueueFull));
        }
        match self.run(&token, req) {
            Ok(result) => {
                self.done.push_back(Completion::new(token, result));
                Ok(())
            }
            Err(e) => Err(Refused::new(token, e)),
        }
    }

    fn poll(&mut self) -> Option<Completion> {
        self.done.pop_front()
    }

    /// Requests complete inside `submit`: waiting is polling.
    fn wait(&mut self) -> Option<Completion> {
        self.done.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use std::fs::OpenOptions;
    use std::io::{Read, Seek, SeekFrom, Write};

    use super::*;
    use vmdma_core::block::lease::testing::{discard, done, flush, read, write};

    fn image(sectors: usize) -> (tempfile::NamedTempFile, RawDisk) {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        let data: Vec<u8> = (0..sectors * 512).map(|i| (i / 512) as u8).collect();
        f.write_all(&data).unwrap();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(f.path())
            .unwrap();
        let d = RawDisk::new(file, false).unwrap();
        (f, d)
    }

    fn contents(f: &tempfile::NamedTempFile) -> Vec<u8> {
        let mut v = Vec::new();
        let mut h = File::open(f.path()).unwrap();
        h.seek(SeekFrom::Start(0)).unwrap();
        h.read_to_end(&mut v).unwrap();
        v
    }

    #[test]
    fn vectored_read_lands_in_every_buffer() {
        let (_f, mut d) = image(4);
        assert_eq!(d.sector_count(), 4);
        let mut a = vec![0u8; 100];
        let mut b = vec![0u8; 924];
        let mut c = vec![0u8; 512];
        let iov = [
            VolatileSlice::from_mut_slice(&mut a),
            VolatileSlice::from_mut_slice(&mut b),
            VolatileSlice::from_mut_slice(&mut c),
        ];
        let t = read(&mut d, 1, &iov).unwrap();
        assert_eq!(done(d.poll()), Some((t, Ok(()))));
        assert_eq!(done(d.poll()), None);
        assert!(a.iter().all(|&x| x == 1));
        assert!(b[..412].iter().all(|&x| x == 1));
        assert!(b[412..].iter().all(|&x| x == 2));
        assert!(c.iter().all(|&x| x == 3));
    }

    #[test]
    fn vectored_write_and_zero_length_buffers() {
        let (f, mut d) = image(4);
        let mut empty: [u8; 0] = [];
        let mut a = vec![0xAAu8; 512];
        let mut b = vec![0xBBu8; 512];
        let iov = [
            VolatileSlice::from_mut_slice(&mut empty),
            VolatileSlice::from_mut_slice(&mut a),
            VolatileSlice::from_mut_slice(&mut b),
        ];
        write(&mut d, 2, &iov).unwrap();
        assert_eq!(d.poll().unwrap().result, Ok(()));
        flush(&mut d).unwrap();
        assert_eq!(d.poll().unwrap().result, Ok(()));
        let v = contents(&f);
        assert!(v[..512].iter().all(|&x| x == 0));
        assert!(v[512..1024].iter().all(|&x| x == 1));
        assert!(v[1024..1536].iter().all(|&x| x == 0xAA));
        assert!(v[1536..].iter().all(|&x| x == 0xBB));
    }

    #[test]
    fn many_buffers_exceed_one_syscall() {
        let (f, mut d) = image(8);
        // 2048 two-byte buffers: more than MAX_IOV, so several pwritev calls.
        let mut bufs: Vec<[u8; 2]> = (0..2048).map(|i| [i as u8, (i >> 8) as u8]).collect();
        let iov: Vec<VolatileSlice<'_>> = bufs
            .iter_mut()
            .map(|b| VolatileSlice::from_mut_slice(b))
            .collect();
        write(&mut d, 0, &iov).unwrap();
        assert_eq!(d.poll().unwrap().result, Ok(()));
        let v = contents(&f);
        assert_eq!(&v[..4], &[0, 0, 1, 0]);
        assert_eq!(&v[4094..4096], &[0xFF, 0x07]);
    }

    #[test]
    fn transfers_go_straight_to_and_from_guest_ram() {
        use crate::kvm::memory::GuestRam;
        let (f, mut d) = image(4);
        let ram = GuestRam::new(64 * 1024).unwrap();
        // A scatter list across two non-adjacent guest pages.
        let iov = [
            ram.slice(0x1000 + 256, 512).unwrap(),
            ram.slice(0x8000, 1024).unwrap(),
        ];
        read(&mut d, 1, &iov).unwrap();
        assert_eq!(d.poll().unwrap().result, Ok(()));
        let mut b = [0u8; 1536];
        ram.read(0x1000 + 256, &mut b[..512]).unwrap();
        ram.read(0x8000, &mut b[512..]).unwrap();
        assert!(b[..512].iter().all(|&x| x == 1));
        assert!(b[512..1024].iter().all(|&x| x == 2));
        assert!(b[1024..].iter().all(|&x| x == 3));

        ram.write(0x8000, &[0x5A; 1024]).unwrap();
        let iov = [ram.slice(0x8000, 1024).unwrap()];
        write(&mut d, 0, &iov).unwrap();
        assert_eq!(d.poll().unwrap().result, Ok(()));
        let v = contents(&f);
        assert!(v[..1024].iter().all(|&x| x == 0x5A));
        assert!(v[1024..1536].iter().all(|&x| x == 2));
    }

    #[test]
    fn range_alignment_and_read_only_checks() {
        let (f, mut d) = image(2);
        let mut a = vec![0u8; 512];
        let iov = [VolatileSlice::from_mut_slice(&mut a)];
        assert_eq!(read(&mut d, 2, &iov), Err(BlockError::OutOfRange));
        assert_eq!(write(&mut d, u64::MAX, &iov), Err(BlockError::OutOfRange));
        assert_eq!(discard(&mut d, 1, 2), Err(BlockError::OutOfRange));
        let mut odd = vec![0u8; 511];
        let odd_iov = [VolatileSlice::from_mut_slice(&mut odd)];
        assert_eq!(read(&mut d, 0, &odd_iov), Err(BlockError::Misaligned));
        assert_eq!(
            done(d.poll()),
            None,
            "refused requests produce no completion"
        );
        drop(d);

        let ro = RawDisk::new(File::open(f.path()).unwrap(), true);
        let mut ro = ro.unwrap();
        assert!(ro.is_read_only());
        assert_eq!(write(&mut ro, 0, &iov), Err(BlockError::ReadOnly));
        assert_eq!(discard(&mut ro, 0, 1), Err(BlockError::ReadOnly));
        read(&mut ro, 1, &iov).unwrap();
        assert_eq!(ro.poll().unwrap().result, Ok(()));
        assert!(a.iter().all(|&x| x == 1));
    }

    #[test]
    fn discard_reads_back_zero() {
        let (f, mut d) = image(4);
        match discard(&mut d, 1, 2) {
            Ok(_) => {
                assert_eq!(d.poll().unwrap().result, Ok(()));
                let v = contents(&f);
                assert!(v[512..1536].iter().all(|&x| x == 0));
                assert!(v[1536..].iter().all(|&x| x == 3));
                assert_eq!(v.len(), 2048, "size kept");
            }
            // tmpfs and ext4 support hole punching; a filesystem that does
            // not must give exactly this error.
            Err(e) => assert_eq!(e, BlockError::Unsupported),
        }
    }

    #[test]
    fn queue_full_until_polled() {
        let (_f, mut d) = image(1);
        let first = flush(&mut d).unwrap();
        for _ in 1..MAX_QUEUED {
            flush(&mut d).unwrap();
        }
        assert_eq!(flush(&mut d), Err(BlockError::QueueFull));
        assert_eq!(d.poll().map(|c| c.id()), Some(first), "in order");
        flush(&mut d).unwrap();
    }

    #[test]
    fn bad_images_are_refused() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        let open = |f: &tempfile::NamedTempFile| File::open(f.path()).unwrap();
        assert!(matches!(
            RawDisk::new(open(&f), true),
            Err(DiskError::Empty)
        ));
        f.write_all(&[0u8; 1000]).unwrap();
        assert!(matches!(
            RawDisk::new(open(&f), true),
            Err(DiskError::NotSectorMultiple(1000))
        ));
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            RawDisk::new(File::open(dir.path()).unwrap(), true),
            Err(DiskError::NotRegularFile("a directory"))
        ));
    }

    #[test]
    fn locked_image_is_refused() {
        let (f, _d) = image(1);
        let other = OpenOptions::new()
            .read(true)
            .write(true)
            .open(f.path())
            .unwrap();
        assert!(matches!(
            RawDisk::new(other, false),
            Err(DiskError::Lock(LockError::Busy))
        ));
        let ro = File::open(f.path()).unwrap();
        assert!(matches!(
            RawDisk::new(ro, true),
            Err(DiskError::Lock(LockError::Busy))
        ));
    }
}
