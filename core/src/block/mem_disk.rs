//! An in-memory block device for tests and examples.

use heapless::Deque;

use super::{BlockDevice, BlockError, BlockRequest, Completion, RequestToken, SECTOR_SIZE};
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
    next_token: u32,
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
            next_token: 0,
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

    fn finish(&mut self, result: Result<(), BlockError>) -> Result<RequestToken, BlockError> {
        let token = RequestToken(self.next_token);
        self.next_token = self.next_token.wrapping_add(1);
        self.done
            .push_back(Completion { token, result })
            .map_err(|_| BlockError::QueueFull)?;
        Ok(token)
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
        (self.data.len() / SECTOR_SIZE) as u64
    }

    fn is_read_only(&self) -> bool {
        self.read_only
    }

    fn submit(&mut self, req: BlockRequest<'_, 'm>) -> Result<RequestToken, BlockError> {
        if self.done.is_full() {
            return Err(BlockError::QueueFull);
        }
        let sectors = self.sector_count();
        match req {
            BlockRequest::Read { sector, iov } | BlockRequest::Write { sector, iov } => {
                let write = matches!(req, BlockRequest::Write { .. });
                if write && self.read_only {
                    return Err(BlockError::ReadOnly);
                }
                let (off, _) = check_rw(sectors, sector, iov)?;
                self.rw_requests += 1;
                if self.injected_failure() {
                    return self.finish(Err(BlockError::Io(5)));
                }
                let mut pos = usize::try_from(off).map_err(|_| BlockError::OutOfRange)?;
                for s in iov {
                    let end = pos.checked_add(s.len()).ok_or(BlockError::OutOfRange)?;
                    let disk = self.data.get_mut(pos..end).ok_or(BlockError::OutOfRange)?;
                    if write {
                        s.copy_to(0, disk);
                    } else {
                        s.copy_from(0, disk);
                    }
                    pos = end;
                }
                self.finish(Ok(()))
            }
            BlockRequest::Flush => {
                self.flushes += 1;
                let r = if self.injected_failure() {
                    Err(BlockError::Io(5))
                } else {
                    Ok(())
                };
                self.finish(r)
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
                self.finish(Ok(()))
            }
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
        let t = d
            .submit(BlockRequest::Write {
                sector: 1,
                iov: &iov,
            })
            .unwrap();
        assert_eq!(
            d.poll(),
            Some(Completion {
                token: t,
                result: Ok(())
            })
        );
        assert_eq!(d.poll(), None);
        assert_eq!(d.data()[512], 7);
        assert_eq!(d.data()[1024], 9);
        assert_eq!(d.data()[0], 0);
        assert_eq!(
            d.submit(BlockRequest::Write {
                sector: 2,
                iov: &iov
            }),
            Err(BlockError::OutOfRange)
        );
        assert_eq!(
            d.submit(BlockRequest::Read {
                sector: u64::MAX,
                iov: &iov
            }),
            Err(BlockError::OutOfRange)
        );
        let mut odd = [0u8; 100];
        let odd_iov = [VolatileSlice::from_mut_slice(&mut odd)];
        assert_eq!(
            d.submit(BlockRequest::Read {
                sector: 0,
                iov: &odd_iov
            }),
            Err(BlockError::Misaligned)
        );
        d.submit(BlockRequest::Flush).unwrap();
        d.submit(BlockRequest::Discard {
            sector: 1,
            count: 1,
        })
        .unwrap();
        assert_eq!(d.data()[512], 0);
        assert_eq!(
            d.submit(BlockRequest::Discard {
                sector: 4,
                count: 1
            }),
            Err(BlockError::OutOfRange)
        );
        d.fail_after(0);
        let t = d
            .submit(BlockRequest::Read {
                sector: 0,
                iov: &iov,
            })
            .unwrap();
        while let Some(c) = d.poll() {
            if c.token == t {
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
        assert_eq!(
            d.submit(BlockRequest::Write {
                sector: 0,
                iov: &iov
            }),
            Err(BlockError::ReadOnly)
        );
        assert_eq!(
            d.submit(BlockRequest::Discard {
                sector: 0,
                count: 1
            }),
            Err(BlockError::ReadOnly)
        );
        assert!(
            d.submit(BlockRequest::Read {
                sector: 0,
                iov: &iov
            })
            .is_ok()
        );
        assert_eq!(a[0], 0);
    }
}
