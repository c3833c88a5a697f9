//! The lease of a block request: what a backend holds while a request is
//! in flight, and why a safe backend cannot break it.
//!
//! # The argument
//! A device hands a backend memory (a direct view of guest RAM, bounce
//! space, a PIO buffer) and must know when the backend is done with it, so
//! that it can free or reuse that memory. Three types carry that:
//!
//! - [`RequestToken`] names one request. It is neither `Copy` nor `Clone`
//!   and its number ([`RequestId`]) is taken from a process-wide 64-bit
//!   counter that never repeats, so at any moment exactly one token with a
//!   given id exists. The device creates it, moves it into
//!   [`BlockDevice::submit`](super::BlockDevice::submit), and gets it back
//!   only inside that request's [`Completion`](super::Completion) (or in a
//!   [`Refused`](super::Refused) when the request never started). A
//!   [`Completion`](super::Completion) can only be built from a token by
//!   value: a backend cannot complete a request it was not given, and a
//!   device matches completions by the id it recorded at submission. The
//!   same holds for refusals: only a [`Refused`](super::Refused) carrying
//!   the request's own token means "never started"; with any other token
//!   the device keeps the request in flight (its memory reserved) until its
//!   own token comes back.
//! - [`Leased`] is one buffer of the request: the memory view plus the
//!   request's id. It is `Copy`, and that is harmless, because it exposes
//!   no memory by itself: [`Leased::view`] yields the view only together
//!   with a borrow of the token of the same id, and for no longer than that
//!   borrow. Giving the token back (completing) ends every borrow of it, so
//!   a backend that compiles cannot touch the memory after the completion,
//!   whatever copies of the `Leased` values it kept.
//! - The device keeps the memory mapped and reserved from `submit` until it
//!   has the token back. The SG transfer ([`crate::dma::SgTransfer`]) does
//!   it by owning the mappings; dropped with a request in flight it
//!   quarantines their bounce space *under the request's id*; whoever ends
//!   up with the token (a device that receives the completion and has no
//!   request of that id, or the host) gives that space back by handing the
//!   token to [`DmaMemory::reclaim`](crate::dma::DmaMemory::reclaim), which
//!   consumes it: only the token's holder can, and then nobody else holds it.
//!
//! Where only `unsafe` can promise it — a backend that passes raw pointers
//! to a kernel (io_uring) — the backend takes the pointer from the view
//! while it holds the token and promises, in its `unsafe` block, to keep
//! the token until the kernel has finished with the pointer.
//!
//! Tokens may be made by anyone ([`RequestToken::new`]), for example a host
//! submitting its own buffers: a fresh token matches no request of any
//! device, so it cannot complete one.
//!
//! # What the compiler refuses
//! Each of these is a way to break the lease with safe code, and each fails
//! to compile (checked by `cargo test --doc`).
//!
//! A token cannot be copied, cloned or made with another request's id:
//! ```compile_fail,E0599
//! use vmdma_core::block::RequestToken;
//! let mine = RequestToken::new();
//! let forged = mine.clone();
//! ```
//! ```compile_fail,E0451
//! use vmdma_core::block::RequestToken;
//! let theirs = RequestToken::new();
//! let forged = RequestToken { id: theirs.id() };
//! ```
//! A request is completed at most once (the token moves into the first
//! completion):
//! ```compile_fail,E0382
//! use vmdma_core::block::{Completion, RequestToken};
//! let token = RequestToken::new();
//! let early = Completion::new(token, Ok(()));
//! let late = Completion::new(token, Ok(()));
//! ```
//! A backend cannot use a buffer after giving the token back:
//! ```compile_fail,E0505
//! use vmdma_core::block::{Completion, Leased, RequestToken};
//! fn complete_then_write(token: RequestToken, buf: Leased<'_>) -> Completion {
//!     let view = buf.view(&token).unwrap();
//!     let done = Completion::new(token, Ok(()));
//!     view.fill(0, 1, 0xFF); // the device may have freed this memory
//!     done
//! }
//! ```
//! nor keep a buffer's memory beyond the request, in any field of its own:
//! ```compile_fail,E0597
//! use std::collections::VecDeque;
//! use vmdma_core::block::{
//!     BlockDevice, BlockRequest, Completion, Leased, Refused, RequestToken,
//! };
//! use vmdma_core::memory::VolatileSlice;
//!
//! struct Keeper<'m> {
//!     kept: Vec<VolatileSlice<'m>>,
//!     done: VecDeque<Completion>,
//! }
//!
//! impl<'m> BlockDevice<'m> for Keeper<'m> {
//!     fn sector_count(&self) -> u64 { 8 }
//!     fn is_read_only(&self) -> bool { false }
//!     fn submit(&mut self, token: RequestToken, req: BlockRequest<'_, 'm>)
//!         -> Result<(), Refused> {
//!         if let BlockRequest::Read { iov, .. } = req {
//!             for l in iov {
//!                 // Kept for later, past the completion: refused.
//!                 self.kept.extend(l.view(&token));
//!             }
//!         }
//!         self.done.push_back(Completion::new(token, Ok(())));
//!         Ok(())
//!     }
//!     fn poll(&mut self) -> Option<Completion> { self.done.pop_front() }
//!     fn wait(&mut self) -> Option<Completion> { self.done.pop_front() }
//! }
//! ```
//! What such a backend does instead is keep the [`Leased`] values and the
//! token together until it completes:
//! ```
//! use std::collections::VecDeque;
//! use vmdma_core::block::{
//!     BlockDevice, BlockRequest, Completion, Leased, Refused, RequestToken,
//! };
//!
//! struct Later<'m> {
//!     held: VecDeque<(RequestToken, Vec<Leased<'m>>)>,
//! }
//!
//! impl<'m> BlockDevice<'m> for Later<'m> {
//!     fn sector_count(&self) -> u64 { 8 }
//!     fn is_read_only(&self) -> bool { false }
//!     fn submit(&mut self, token: RequestToken, req: BlockRequest<'_, 'm>)
//!         -> Result<(), Refused> {
//!         let iov = match req {
//!             BlockRequest::Read { iov, .. } => iov.to_vec(),
//!             _ => Vec::new(),
//!         };
//!         self.held.push_back((token, iov));
//!         Ok(())
//!     }
//!     fn poll(&mut self) -> Option<Completion> {
//!         let (token, iov) = self.held.pop_front()?;
//!         for l in &iov {
//!             if let Some(v) = l.view(&token) {
//!                 v.fill(0, v.len(), 0); // the data "arrives"
//!             }
//!         }
//!         Some(Completion::new(token, Ok(())))
//!     }
//!     fn wait(&mut self) -> Option<Completion> { self.poll() }
//! }
//! ```
//!
//! # Cost
//! A token is its 8-byte id; each buffer of the I/O vector grows by the
//! same 8 bytes. Making a token is one atomic add (a spin lock on targets
//! without 64-bit atomics).

use core::fmt;

use crate::memory::VolatileSlice;

/// The number of a request: what devices record to match completions.
/// Knowing it grants nothing (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(u64);

impl RequestId {
    /// The number.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// The next id, from a counter that does not wrap in practice (2^64).
fn next_id() -> RequestId {
    #[cfg(target_has_atomic = "64")]
    {
        use core::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(1);
        RequestId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
    #[cfg(not(target_has_atomic = "64"))]
    {
        static NEXT: spin::Mutex<u64> = spin::Mutex::new(1);
        let mut n = NEXT.lock();
        let id = *n;
        *n = n.wrapping_add(1);
        RequestId(id)
    }
}

/// The one handle of a request in flight (see the module docs): neither
/// `Copy` nor `Clone`, moved into `submit` and back out in the completion.
#[must_use = "a request's token is how its memory is given back"]
#[derive(Debug)]
pub struct RequestToken {
    id: RequestId,
}

impl Default for RequestToken {
    fn default() -> Self {
        Self::new()
    }
}

impl RequestToken {
    /// A token for a new request, with an id no other token has.
    pub fn new() -> Self {
        RequestToken { id: next_id() }
    }

    /// Its id.
    pub const fn id(&self) -> RequestId {
        self.id
    }
}

/// One buffer of a request: a view of memory that can be reached only with
/// the request's token (see the module docs).
#[derive(Clone, Copy)]
pub struct Leased<'m> {
    view: VolatileSlice<'m>,
    id: RequestId,
}

impl fmt::Debug for Leased<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Leased")
            .field("len", &self.view.len())
            .field("request", &self.id.0)
            .finish()
    }
}

impl<'m> Leased<'m> {
    /// Lends `view` to the request of `token`.
    pub fn new(view: VolatileSlice<'m>, token: &RequestToken) -> Self {
        Leased { view, id: token.id }
    }

    /// Length in bytes.
    pub const fn len(&self) -> usize {
        self.view.len()
    }

    /// True for an empty buffer.
    pub const fn is_empty(&self) -> bool {
        self.view.is_empty()
    }

    /// The request this buffer belongs to.
    pub const fn request(&self) -> RequestId {
        self.id
    }

    /// The memory, for as long as `token` is borrowed; `None` when `token`
    /// is not this buffer's request.
    pub fn view<'a>(&'a self, token: &'a RequestToken) -> Option<VolatileSlice<'a>> {
        (token.id == self.id).then_some(self.view)
    }
}

/// The total length of `iov` (saturating), readable without the token.
pub fn iov_len(iov: &[Leased<'_>]) -> u64 {
    iov.iter()
        .fold(0u64, |acc, l| acc.saturating_add(l.len() as u64))
}

/// Helpers for tests that submit their own buffers to a backend (enabled
/// by the `test-util` feature, and in the crate's own tests).
#[cfg(any(test, feature = "test-util"))]
pub mod testing {
    use super::{Leased, RequestId, RequestToken};
    use crate::block::{BlockDevice, BlockError, BlockRequest, Completion};
    use crate::memory::VolatileSlice;

    /// The most buffers one helper request lends.
    pub const MAX_VIEWS: usize = 2048;

    fn lend<'m>(
        token: &RequestToken,
        views: &[VolatileSlice<'m>],
    ) -> Result<heapless::Vec<Leased<'m>, MAX_VIEWS>, BlockError> {
        let mut v = heapless::Vec::new();
        for s in views {
            v.push(Leased::new(*s, token))
                .map_err(|_| BlockError::Unsupported)?;
        }
        Ok(v)
    }

    /// Submits a read of `views` from `sector`.
    pub fn read<'m, B: BlockDevice<'m> + ?Sized>(
        dev: &mut B,
        sector: u64,
        views: &[VolatileSlice<'m>],
    ) -> Result<RequestId, BlockError> {
        rw(dev, false, sector, views)
    }

    /// Submits a write of `views` at `sector`.
    pub fn write<'m, B: BlockDevice<'m> + ?Sized>(
        dev: &mut B,
        sector: u64,
        views: &[VolatileSlice<'m>],
    ) -> Result<RequestId, BlockError> {
        rw(dev, true, sector, views)
    }

    fn rw<'m, B: BlockDevice<'m> + ?Sized>(
        dev: &mut B,
        write: bool,
        sector: u64,
        views: &[VolatileSlice<'m>],
    ) -> Result<RequestId, BlockError> {
        let token = RequestToken::new();
        let (id, iov) = (token.id(), lend(&token, views)?);
        let iov = iov.as_slice();
        let req = if write {
            BlockRequest::Write { sector, iov }
        } else {
            BlockRequest::Read { sector, iov }
        };
        dev.submit(token, req).map(|()| id).map_err(|r| r.error)
    }

    /// Submits a flush.
    pub fn flush<'m, B: BlockDevice<'m> + ?Sized>(dev: &mut B) -> Result<RequestId, BlockError> {
        submit(dev, BlockRequest::Flush)
    }

    /// Submits a discard of `count` sectors from `sector`.
    pub fn discard<'m, B: BlockDevice<'m> + ?Sized>(
        dev: &mut B,
        sector: u64,
        count: u64,
    ) -> Result<RequestId, BlockError> {
        submit(dev, BlockRequest::Discard { sector, count })
    }

    fn submit<'m, B: BlockDevice<'m> + ?Sized>(
        dev: &mut B,
        req: BlockRequest<'_, 'm>,
    ) -> Result<RequestId, BlockError> {
        let token = RequestToken::new();
        let id = token.id();
        dev.submit(token, req).map(|()| id).map_err(|r| r.error)
    }

    /// A completion as `(id, result)`, for comparisons.
    pub fn done(c: Option<Completion>) -> Option<(RequestId, Result<(), BlockError>)> {
        c.map(|c| (c.id(), c.result))
    }
}
