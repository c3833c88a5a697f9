//! A disk whose requests complete later, when the host says so, and whose
//! data moves at completion time, not at submission: the shape of a real
//! asynchronous backend (io_uring, a worker thread), for tests and for
//! embedders who want to exercise their completion paths.

use heapless::{Deque, Vec};

use super::{
    BlockDevice, BlockError, BlockRequest, Completion, Leased, Refused, RequestToken, SECTOR_SIZE,
};
use super::{check_range, check_rw};

/// Sees a [`DeferredDisk`]'s requests as they are submitted and right
/// before their data moves (tests use it to check that the memory a late
/// completion writes still belongs to the request).
pub trait DiskObserver<'m> {
    /// A request was accepted with this I/O vector (empty for flush and
    /// discard); `token` opens its buffers.
    fn submitted(&self, token: &RequestToken, iov: &[Leased<'m>]);
    /// The request's data is about to move.
    fn completing(&self, token: &RequestToken, iov: &[Leased<'m>]);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Read,
    Write,
    Flush,
    Discard { count: u64 },
}

#[derive(Debug)]
struct Pending<'m, const IOV: usize> {
    token: RequestToken,
    kind: Kind,
    sector: u64,
    iov: Vec<Leased<'m>, IOV>,
}

/// A disk in a caller-provided buffer whose requests wait until released.
///
/// Up to `Q` requests may be in flight, each with at most `IOV` buffers.
/// [`DeferredDisk::release`] lets the next `n` requests complete: `poll`
/// then moves their data (in submission order) and returns their
/// completions. Whether [`BlockDevice::wait`] completes a request (a drain
/// that succeeds within its bound) or returns `None` (the bound ran out)
/// is set with [`DeferredDisk::set_wait_completes`].
pub struct DeferredDisk<'d, 'm, const Q: usize = 4, const IOV: usize = 256> {
    data: &'d mut [u8],
    read_only: bool,
    pending: Deque<Pending<'m, IOV>, Q>,
    released: u32,
    wait_completes: bool,
    fail_next: u32,
    observer: Option<&'d dyn DiskObserver<'m>>,
    completed: u32,
}

impl<'d, 'm, const Q: usize, const IOV: usize> DeferredDisk<'d, 'm, Q, IOV> {
    /// A disk over `data` (trailing bytes past the last whole sector are
    /// ignored); nothing completes until released, and `wait` completes.
    pub fn new(data: &'d mut [u8], read_only: bool) -> Self {
        DeferredDisk {
            data,
            read_only,
            pending: Deque::new(),
            released: 0,
            wait_completes: true,
            fail_next: 0,
            observer: None,
            completed: 0,
        }
    }

    /// Reports submissions and completions to `observer`.
    pub fn observe(&mut self, observer: &'d dyn DiskObserver<'m>) {
        self.observer = Some(observer);
    }

    /// Lets the next `n` requests (in submission order) complete.
    pub fn release(&mut self, n: u32) {
        self.released = self.released.saturating_add(n);
    }

    /// Whether `wait` completes the oldest request (`true`, the default) or
    /// reports that nothing finished within its bound (`false`).
    pub fn set_wait_completes(&mut self, on: bool) {
        self.wait_completes = on;
    }

    /// The next `n` requests to complete fail with `BlockError::Io(5)`
    /// (their data does not move).
    pub fn fail_next(&mut self, n: u32) {
        self.fail_next = n;
    }

    /// Requests submitted and not yet completed.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Requests completed so far.
    pub fn completed(&self) -> u32 {
        self.completed
    }

    /// The disk contents.
    pub fn data(&self) -> &[u8] {
        self.data
    }

    /// Completes the oldest request now: moves its data, returns its
    /// completion.
    fn complete_oldest(&mut self) -> Option<Completion> {
        let p = self.pending.pop_front()?;
        if let Some(o) = self.observer {
            o.completing(&p.token, &p.iov);
        }
        self.completed = self.completed.saturating_add(1);
        if self.fail_next > 0 {
            self.fail_next -= 1;
            return Some(Completion::new(p.token, Err(BlockError::Io(5))));
        }
        let result = self.move_data(&p);
        Some(Completion::new(p.token, result))
    }

    /// Checks `req` and copies its I/O vector (nothing moves yet).
    #[allow(clippy::type_complexity)]
    fn accept(
        &self,
        req: BlockRequest<'_, 'm>,
    ) -> Result<(Kind, u64, Vec<Leased<'m>, IOV>), BlockError> {
        if self.pending.is_full() {
            return Err(BlockError::QueueFull);
        }
        let sectors = self.sector_count();
        let mut iov = Vec::new();
        let (kind, sector) = match req {
            BlockRequest::Read { sector, iov: v } | BlockRequest::Write { sector, iov: v } => {
                let write = matches!(req, BlockRequest::Write { .. });
                if write && self.read_only {
                    return Err(BlockError::ReadOnly);
                }
                check_rw(sectors, sector, v)?;
                iov.extend_from_slice(v)
                    .map_err(|_| BlockError::Unsupported)?;
                (if write { Kind::Write } else { Kind::Read }, sector)
            }
            BlockRequest::Flush => (Kind::Flush, 0),
            BlockRequest::Discard { sector, count } => {
                if self.read_only {
                    return Err(BlockError::ReadOnly);
                }
                check_range(sectors, sector, count)?;
                (Kind::Discard { count }, sector)
            }
        };
        Ok((kind, sector, iov))
    }

    fn move_data(&mut self, p: &Pending<'m, IOV>) -> Result<(), BlockError> {
        let start = usize::try_from(p.sector)
            .ok()
            .and_then(|s| s.checked_mul(SECTOR_SIZE))
            .ok_or(BlockError::OutOfRange)?;
        match p.kind {
            Kind::Read | Kind::Write => {
                let mut pos = start;
                for l in &p.iov {
                    let s = l.view(&p.token).ok_or(BlockError::NotLeased)?;
                    let end = pos.checked_add(s.len()).ok_or(BlockError::OutOfRange)?;
                    let disk = self.data.get_mut(pos..end).ok_or(BlockError::OutOfRange)?;
                    if p.kind == Kind::Read {
                        s.copy_from(0, disk);
                    } else {
                        s.copy_to(0, disk);
                    }
                    pos = end;
                }
                Ok(())
            }
            Kind::Flush => Ok(()),
            Kind::Discard { count } => {
                let len = usize::try_from(count)
                    .ok()
                    .and_then(|c| c.checked_mul(SECTOR_SIZE))
                    .ok_or(BlockError::OutOfRange)?;
                let end = start.checked_add(len).ok_or(BlockError::OutOfRange)?;
                self.data
                    .get_mut(start..end)
                    .ok_or(BlockError::OutOfRange)?
                    .fill(0);
                Ok(())
            }
        }
    }
}

impl<'m, const Q: usize, const IOV: usize> BlockDevice<'m> for DeferredDisk<'_, 'm, Q, IOV> {
    fn sector_count(&self) -> u64 {
        (self.data.len() / SECTOR_SIZE) as u64
    }

    fn is_read_only(&self) -> bool {
        self.read_only
    }

    fn submit(&mut self, token: RequestToken, req: BlockRequest<'_, 'm>) -> Result<(), Refused> {
        let (kind, sector, iov) = match self.accept(req) {
            Ok(accepted) => accepted,
            Err(e) => return Err(Refused::new(token, e)),
        };
        if let Some(o) = self.observer {
            o.submitted(&token, &iov);
        }
        self.pending
            .push_back(Pending {
                token,
                kind,
                sector,
                iov,
            })
            .map_err(|p| Refused::new(p.token, BlockError::QueueFull))
    }

    fn poll(&mut self) -> Option<Completion> {
        if self.released == 0 || self.pending.is_empty() {
            return None;
        }
        self.released -= 1;
        self.complete_oldest()
    }

    fn wait(&mut self) -> Option<Completion> {
        if !self.wait_completes {
            return None;
        }
        self.released = self.released.saturating_sub(1);
        self.complete_oldest()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::lease::testing::{discard, done, flush, read, write};
    use crate::memory::VolatileSlice;

    #[test]
    fn data_moves_at_completion_not_at_submit() {
        let mut buf = [0u8; SECTOR_SIZE];
        let mut disk = [0u8; 4 * SECTOR_SIZE];
        disk[SECTOR_SIZE..2 * SECTOR_SIZE].fill(0x42);
        let mut d: DeferredDisk<'_, '_, 2, 4> = DeferredDisk::new(&mut disk, false);
        let iov = [VolatileSlice::from_mut_slice(&mut buf)];
        let t = read(&mut d, 1, &iov).unwrap();
        assert_eq!(d.in_flight(), 1);
        assert!(d.poll().is_none(), "not released");
        let mut seen = [0u8; 1];
        iov[0].copy_to(0, &mut seen);
        assert_eq!(seen[0], 0, "no data before completion");
        d.release(1);
        assert_eq!(done(d.poll()), Some((t, Ok(()))));
        iov[0].copy_to(0, &mut seen);
        assert_eq!(seen[0], 0x42);
        assert!(d.poll().is_none());
        flush(&mut d).unwrap();
        flush(&mut d).unwrap();
        assert_eq!(flush(&mut d), Err(BlockError::QueueFull));
        d.set_wait_completes(false);
        assert!(d.wait().is_none());
        d.set_wait_completes(true);
        d.fail_next(1);
        assert_eq!(d.wait().map(|c| c.result), Some(Err(BlockError::Io(5))));
        assert!(d.wait().is_some());
        assert!(d.wait().is_none(), "nothing in flight");
        assert_eq!(d.completed(), 3);
    }

    #[test]
    fn refusals_produce_no_request() {
        let mut buf = [0u8; SECTOR_SIZE];
        let mut disk = [0u8; 2 * SECTOR_SIZE];
        let mut d: DeferredDisk<'_, '_> = DeferredDisk::new(&mut disk, true);
        let iov = [VolatileSlice::from_mut_slice(&mut buf)];
        assert_eq!(write(&mut d, 0, &iov), Err(BlockError::ReadOnly));
        assert_eq!(read(&mut d, 2, &iov), Err(BlockError::OutOfRange));
        assert_eq!(discard(&mut d, 0, 1), Err(BlockError::ReadOnly));
        assert_eq!(d.in_flight(), 0);
    }
}
