//! An in-memory block device for tests and examples.

use heapless::Deque;

use super::{
    BlockDevice, BlockError, BlockRequest, Completion, Refused, RequestToken, SECTOR_SIZE,
};
use super::{check_range, check_rw};

/// A disk held in a caller-provided byte buffer (a whole number of sectors).
///
/// Completes every request synchronously inside `submit` and queues the
/// completion (up to 16). Counts requests so tests can assert that a DMA
/// command used one vectored request. Can be told to fail requests.
#[derive(Debug)]
pub struct MemDisk<'d> {
    data: &'d mut [u8],
    read_only: bool,
    done: Deque<Completion, 16>,
    rw_requests: u32,
    flushes: u32,
    discards: heapless::Vec<(u64, u64), 8>,
    fail_after: Option<u32>,
}

impl<'d> MemDisk<'d> {
    /// Number of read/write requests submitted so far.
    pub fn rw_requests(&self) -> u32 {
        self.rw_requests
    }

    /// Number of flushes submitted so far.
    pub fn flushes(&self) -> u32 {
        self.flushes
    }

    /// Discards received, as `(sector, count)` (the first 8).
    pub fn discards(&self) -> &[(u64, u64)] {
        &self.discards
    }

    /// A disk over `data`; trailing bytes past the last whole sector are
    /// ignored.
    pub fn new(data: &'d mut [u8], read_only: bool) -> Self {
        MemDisk {
            data,
            read_only,
            done: Deque::new(),
            rw_requests: 0,
            flushes: 0,
            discards: heapless::Vec::new(),
            fail_after: None,
        }
    }

    /// Makes every request after the next `n` complete with `BlockError::Io(5)`.
    pub fn fail_after(&mut self, n: u32) {
        self.fail_after = Some(n);
    }

    /// Stops injecting failures.
    pub fn heal(&mut self) {
        self.fail_after = None;
    }

    /// The disk contents.
    pub fn data(&self) -> &[u8] {
        self.data
    }

    /// Queues the completion (`submit` checked that there is room).
    fn finish(
        &mut self,
        token: RequestToken,
        result: Result<(), BlockError>,
    ) -> Result<(), Refused> {
        self.done
            .push_back(Completion::new(token, result))
            .map_err(|c| Refused::new(c.token, BlockError::QueueFull))
    }

    /// Runs `req`; `Err` is a refusal before any I/O.
    fn run<'m>(
        &mut self,
        token: &RequestToken,
        req: BlockRequest<'_, 'm>,
    ) -> Result<Result<(), BlockError>, BlockError> {
        let sectors = self.sector_count_of();
        match req {
            BlockRequest::Read { sector, iov } | BlockRequest::Write { sector, iov } => {
                let write = matches!(req, BlockRequest::Write { .. });
                if write && self.read_only {
                    return Err(BlockError::ReadOnly);
                }
                let (off, _) = check_rw(sectors, sector, iov)?;
                self.rw_requests += 1;
                if self.injected_failure() {
                    return Ok(Err(BlockError::Io(5)));
                }
                let mut pos = usize::try_from(off).map_err(|_| BlockError::OutOfRange)?;
                for l in iov {
                    let s = l.view(token).ok_or(BlockError::NotLeased)?;
                    let end = pos.checked_add(s.len()).ok_or(BlockError::OutOfRange)?;
                    let disk = self.data.get_mut(pos..end).ok_or(BlockError::OutOfRange)?;
                    if write {
                        s.copy_to(0, disk);
                    } else {
                        s.copy_from(0, disk);
                    }
                    pos = end;
                }
                Ok(Ok(()))
            }
            BlockRequest::Flush => {
                self.flushes += 1;
                Ok(if self.injected_failure() {
                    Err(BlockError::Io(5))
                } else {
                    Ok(())
                })
            }
            BlockRequest::Discard { sector, count } => {
                if self.read_only {
                    return Err(BlockError::ReadOnly);
                }
                check_range(sectors, sector, count)?;
                let _ = self.discards.push((sector, count));
                let start =
                    usize::try_from(sector).map_err(|_| BlockError::OutOfRange)? * SECTOR_SIZE;
                let len = usize::try_from(count).map_err(|_| BlockError::OutOfRange)? * SECTOR_SIZE;
                if let Some(d) = self.data.get_mut(start..start + len) {
                    d.fill(0);
                }
                Ok(Ok(()))
            }
        }
    }

    fn sector_count_of(&self) -> u64 {
        (self.data.len() / SECTOR_SIZE) as u64
    }

    fn injected_failure(&mut self) -> bool {
        match &mut self.fail_after {
            Some(0) => true,
            Some(n) => {
                *n -= 1;
                false
            }
            None => false,
        }
    }
}

impl<'m> BlockDevice<'m> for MemDisk<'_> {
    fn sector_count(&self) -> u64 {
        self.sector_count_of()
    }

    fn is_read_only(&self) -> bool {
        self.read_only
    }

    fn submit(&mut self, token: RequestToken, req: BlockRequest<'_, 'm>) -> Result<(), Refused> {
        if self.done.is_full() {
            return Err(Refused::new(token, BlockError::QueueFull));
        }
        match self.run(&token, req) {
            Ok(result) => self.finish(token, result),
            Err(e) => Err(Refused::new(token, e)),
        }
    }

    fn poll(&mut self) -> Option<Completion> {
        self.done.pop_front()
    }

    /// Requests complete inside `submit`, so waiting is polling.
    fn wait(&mut self) -> Option<Completion> {
        self.done.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::lease::testing::{discard, done, flush, read, write};
    use crate::memory::VolatileSlice;

    #[test]
    fn read_write_flush_discard_and_errors() {
        let mut disk = [0u8; 4 * SECTOR_SIZE];
        let mut d = MemDisk::new(&mut disk, false);
        let mut a = [7u8; 512];
        let mut b = [9u8; 1024];
        let iov = [
            VolatileSlice::from_mut_slice(&mut a),
            VolatileSlice::from_mut_slice(&mut b),
        ];
        let t = write(&mut d, 1, &iov).unwrap();
        assert_eq!(done(d.poll()), Some((t, Ok(()))));
        assert!(d.poll().is_none());
        assert_eq!(d.data()[512], 7);
        assert_eq!(d.data()[1024], 9);
        assert_eq!(d.data()[0], 0);
        assert_eq!(write(&mut d, 2, &iov), Err(BlockError::OutOfRange));
        assert_eq!(read(&mut d, u64::MAX, &iov), Err(BlockError::OutOfRange));
        let mut odd = [0u8; 100];
        let odd_iov = [VolatileSlice::from_mut_slice(&mut odd)];
        assert_eq!(read(&mut d, 0, &odd_iov), Err(BlockError::Misaligned));
        flush(&mut d).unwrap();
        discard(&mut d, 1, 1).unwrap();
        assert_eq!(d.data()[512], 0);
        assert_eq!(discard(&mut d, 4, 1), Err(BlockError::OutOfRange));
        d.fail_after(0);
        let t = read(&mut d, 0, &iov).unwrap();
        while let Some(c) = d.poll() {
            if c.id() == t {
                assert_eq!(c.result, Err(BlockError::Io(5)));
            }
        }
    }

    #[test]
    fn read_only_refuses_writes() {
        let mut disk = [0u8; SECTOR_SIZE];
        let mut d = MemDisk::new(&mut disk, true);
        let mut a = [1u8; 512];
        let iov = [VolatileSlice::from_mut_slice(&mut a)];
        assert_eq!(write(&mut d, 0, &iov), Err(BlockError::ReadOnly));
        assert_eq!(discard(&mut d, 0, 1), Err(BlockError::ReadOnly));
        assert!(read(&mut d, 0, &iov).is_ok());
        assert_eq!(a[0], 0);
    }

    /// A buffer lent to one request does not open with another's token:
    /// the backend refuses it instead of touching the memory.
    #[test]
    fn a_buffer_of_another_request_is_refused() {
        let mut disk = [5u8; SECTOR_SIZE];
        let mut d = MemDisk::new(&mut disk, false);
        let mut a = [1u8; 512];
        let mine = RequestToken::new();
        let theirs = RequestToken::new();
        let iov = [crate::block::Leased::new(
            VolatileSlice::from_mut_slice(&mut a),
            &theirs,
        )];
        let r = d.submit(
            mine,
            BlockRequest::Read {
                sector: 0,
                iov: &iov,
            },
        );
        assert_eq!(r.map_err(|r| r.error), Err(BlockError::NotLeased));
        assert_eq!(a[0], 1, "nothing moved");
    }
}
