//! Test fixtures shared by the crate's unit tests, the fuzz targets and
//! the runner's tests (the `test-util` feature; never needed outside
//! tests, and it pulls in `std`).
//!
//! - [`RamLikeMmio`]: an MMIO region that behaves like RAM and logs its
//!   accesses.
//! - [`DenyMmio`]: an MMIO region that refuses every access.
//! - [`LeaseChecker`]: a [`DiskObserver`] that checks the lease rule on a
//!   [`DeferredDisk`](crate::block::DeferredDisk): the memory a request
//!   was given still belongs to it when its data moves.
//!
//! Helpers that submit their own buffers to a backend are in
//! [`block::lease::testing`](crate::block::lease::testing).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::format;
use std::string::String;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::vec;
use std::vec::Vec;

use crate::block::{DiskObserver, Leased, RequestToken};
use crate::dma::BounceBuffers;
use crate::memory::{MmioError, MmioHandler, VolatileSlice};

/// Locks `m`, also after a panic elsewhere poisoned it (a fixture has no
/// invariant a panic could break).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The byte range `offset .. offset + len` as indices, if it fits `usize`.
fn range(offset: u64, len: usize) -> Result<core::ops::Range<usize>, MmioError> {
    let o = usize::try_from(offset).map_err(|_| MmioError::Unmapped)?;
    let end = o.checked_add(len).ok_or(MmioError::Unmapped)?;
    Ok(o..end)
}

/// An MMIO device that behaves like RAM and logs writes `(offset, len)`.
/// An access past its end is [`MmioError::Unmapped`].
pub struct RamLikeMmio {
    /// The contents.
    pub bytes: Mutex<Vec<u8>>,
    /// Every write, as `(offset, len)`, in order.
    pub writes: Mutex<Vec<(u64, usize)>>,
    /// Reads so far.
    pub reads: Mutex<usize>,
}

impl RamLikeMmio {
    /// `len` zero bytes.
    pub fn new(len: usize) -> Self {
        Self::filled(len, 0)
    }

    /// `len` bytes of `byte`.
    pub fn filled(len: usize, byte: u8) -> Self {
        RamLikeMmio {
            bytes: Mutex::new(vec![byte; len]),
            writes: Mutex::new(Vec::new()),
            reads: Mutex::new(0),
        }
    }

    /// A copy of the contents.
    pub fn snapshot(&self) -> Vec<u8> {
        lock(&self.bytes).clone()
    }

    /// Sets byte `i` to `f(i)` for every `i`.
    pub fn fill_with(&self, f: impl Fn(usize) -> u8) {
        for (i, b) in lock(&self.bytes).iter_mut().enumerate() {
            *b = f(i);
        }
    }
}

impl MmioHandler for RamLikeMmio {
    fn read(&self, offset: u64, data: &mut [u8]) -> Result<(), MmioError> {
        *lock(&self.reads) += 1;
        let b = lock(&self.bytes);
        let src = b
            .get(range(offset, data.len())?)
            .ok_or(MmioError::Unmapped)?;
        data.copy_from_slice(src);
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), MmioError> {
        lock(&self.writes).push((offset, data.len()));
        let mut b = lock(&self.bytes);
        let dst = b
            .get_mut(range(offset, data.len())?)
            .ok_or(MmioError::Unmapped)?;
        dst.copy_from_slice(data);
        Ok(())
    }
}

/// An MMIO handler that refuses everything.
pub struct DenyMmio;

impl MmioHandler for DenyMmio {
    fn read(&self, _: u64, _: &mut [u8]) -> Result<(), MmioError> {
        Err(MmioError::Denied)
    }
    fn write(&self, _: u64, _: &[u8]) -> Result<(), MmioError> {
        Err(MmioError::Denied)
    }
}

/// Per buffer of a request: host address, and the bounce allocation ids
/// of its first and last byte (`None`: not bounce space).
type Owners = Vec<(usize, Option<u32>, Option<u32>)>;

/// Checks the lease rule on a deferred disk it observes: the memory a
/// request was given must still belong to it (same bounce allocation of
/// `arena`, whose ids are never reused, or not bounce space at all) when
/// its data moves. Violations are collected, not panicked on; a test
/// checks [`LeaseChecker::violations`] (or calls
/// [`LeaseChecker::assert_clean`]) when it is done.
pub struct LeaseChecker<'a> {
    arena: &'a dyn BounceBuffers,
    owners: RefCell<HashMap<u64, Owners>>,
    /// What went wrong, one line per request.
    pub violations: RefCell<Vec<String>>,
    /// Requests whose data moved.
    pub completions: Cell<u32>,
}

impl<'a> LeaseChecker<'a> {
    /// A checker for buffers that may be bounce space of `arena`.
    pub fn new(arena: &'a dyn BounceBuffers) -> Self {
        LeaseChecker {
            arena,
            owners: RefCell::new(HashMap::new()),
            violations: RefCell::new(Vec::new()),
            completions: Cell::new(0),
        }
    }

    /// Panics with the violations, if there were any.
    #[allow(clippy::panic, reason = "a test helper reports by panicking")]
    pub fn assert_clean(&self) {
        let v = self.violations.borrow();
        if !v.is_empty() {
            panic!("lease violations: {v:#?}");
        }
    }

    fn ids(&self, s: &VolatileSlice<'_>) -> (usize, Option<u32>, Option<u32>) {
        let first = s.as_ptr();
        let last = first.wrapping_add(s.len().saturating_sub(1));
        (
            first as usize,
            self.arena.alloc_id_at(first),
            self.arena.alloc_id_at(last),
        )
    }

    /// The owners of `iov`'s buffers; a buffer that does not open with
    /// `token` is a violation.
    fn owners_of(&self, token: &RequestToken, iov: &[Leased<'_>]) -> Owners {
        let mut out = Vec::new();
        for l in iov {
            match l.view(token) {
                Some(v) => out.push(self.ids(&v)),
                None => self.violations.borrow_mut().push(format!(
                    "request {}: a buffer that is not the request's own",
                    token.id()
                )),
            }
        }
        out
    }
}

impl<'m> DiskObserver<'m> for LeaseChecker<'_> {
    fn submitted(&self, token: &RequestToken, iov: &[Leased<'m>]) {
        let ids = self.owners_of(token, iov);
        self.owners.borrow_mut().insert(token.id().get(), ids);
    }

    fn completing(&self, token: &RequestToken, iov: &[Leased<'m>]) {
        self.completions.set(self.completions.get() + 1);
        let before = self
            .owners
            .borrow_mut()
            .remove(&token.id().get())
            .unwrap_or_default();
        let now = self.owners_of(token, iov);
        if before != now {
            self.violations.borrow_mut().push(format!(
                "request {}: memory changed hands while in flight: {before:x?} -> {now:x?}",
                token.id()
            ));
        }
    }
}
