//! The vectored block-device interface.
//!
//! Devices submit sector-addressed, vectored requests and receive completions
//! later: [`BlockDevice::submit`] takes the request's [`RequestToken`], and
//! the result arrives with that token through [`BlockDevice::poll`] (or the
//! bounded, blocking [`BlockDevice::wait`] used to drain). A synchronous
//! backend (`preadv`) does the I/O inside `submit` and queues the
//! completion; an asynchronous one (io_uring) completes later. Device models
//! are the same for both.
//!
//! # Memory of a request
//! The trait is generic over `'m`, the lifetime of the memory requests
//! point into (guest RAM, bounce space, a device's PIO buffer). The memory
//! of a request is its *lease*: the device keeps it mapped and reserved
//! from `submit` until it has the request's token back, and the backend
//! reaches it only through that token. [`lease`] states why a
//! backend written in safe Rust can neither complete a request it was not
//! given nor touch a request's memory after completing it.

mod deferred_disk;
pub mod lease;
mod mem_disk;

pub use deferred_disk::{DeferredDisk, DiskObserver};
pub use lease::{Leased, RequestId, RequestToken, iov_len};
pub use mem_disk::MemDisk;

/// Bytes per sector.
pub const SECTOR_SIZE: usize = 512;

/// A block request; its buffers are reachable only with its token.
#[derive(Debug)]
pub enum BlockRequest<'r, 'm> {
    /// Disk → memory: fill `iov` from `sector` on.
    Read {
        /// First sector.
        sector: u64,
        /// Destination buffers; total length is a multiple of [`SECTOR_SIZE`].
        iov: &'r [Leased<'m>],
    },
    /// Memory → disk: write `iov` at `sector`.
    Write {
        /// First sector.
        sector: u64,
        /// Source buffers; total length is a multiple of [`SECTOR_SIZE`].
        iov: &'r [Leased<'m>],
    },
    /// Make earlier writes durable.
    Flush,
    /// The host may forget `count` sectors from `sector` on (TRIM).
    Discard {
        /// First sector.
        sector: u64,
        /// Number of sectors.
        count: u64,
    },
}

/// Block-layer errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlockError {
    /// The request reaches past the last sector.
    OutOfRange,
    /// Write or discard on a read-only device.
    ReadOnly,
    /// The I/O vector is not a whole number of sectors.
    Misaligned,
    /// Too many requests in flight.
    QueueFull,
    /// The backend does not support the operation.
    Unsupported,
    /// The backend failed; the value is an OS error number where there is one.
    Io(i32),
    /// A buffer of the request belongs to another request (its token does
    /// not open it).
    NotLeased,
}

impl core::fmt::Display for BlockError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BlockError::OutOfRange => f.write_str("request past the end of the device"),
            BlockError::ReadOnly => f.write_str("device is read-only"),
            BlockError::Misaligned => f.write_str("request is not a whole number of sectors"),
            BlockError::QueueFull => f.write_str("too many requests in flight"),
            BlockError::Unsupported => f.write_str("operation not supported"),
            BlockError::Io(e) => write!(f, "I/O error (errno {e})"),
            BlockError::NotLeased => f.write_str("a buffer of another request"),
        }
    }
}

impl core::error::Error for BlockError {}

/// A finished request: its token, given back, and the result.
#[derive(Debug)]
#[non_exhaustive]
pub struct Completion {
    /// The token `submit` took.
    pub token: RequestToken,
    /// Success (every byte transferred) or the error.
    pub result: Result<(), BlockError>,
}

impl Completion {
    /// The completion of the request of `token` with `result`.
    pub const fn new(token: RequestToken, result: Result<(), BlockError>) -> Self {
        Completion { token, result }
    }

    /// The id of the request that finished.
    pub const fn id(&self) -> RequestId {
        self.token.id()
    }
}

/// A request refused before any I/O: its token, given back (the backend
/// keeps nothing of it), and why.
#[derive(Debug)]
#[non_exhaustive]
pub struct Refused {
    /// The request's token.
    pub token: RequestToken,
    /// Why it was refused.
    pub error: BlockError,
}

impl Refused {
    /// `token`'s request was refused with `error`.
    pub const fn new(token: RequestToken, error: BlockError) -> Self {
        Refused { token, error }
    }
}

/// A sector-addressed block device with vectored, asynchronous requests
/// into memory of lifetime `'m` (see the module docs for who owns that
/// memory while a request is in flight).
pub trait BlockDevice<'m> {
    /// Capacity in sectors.
    fn sector_count(&self) -> u64;

    /// True when writes and discards are refused.
    fn is_read_only(&self) -> bool;

    /// Starts the request of `token`. Errors found before any I/O (range,
    /// alignment, read-only) give the token back in [`Refused`] and produce
    /// no completion; otherwise the token comes back in the completion.
    fn submit(&mut self, token: RequestToken, req: BlockRequest<'_, 'm>) -> Result<(), Refused>;

    /// The next finished request, if any (never blocks).
    fn poll(&mut self) -> Option<Completion>;

    /// Blocks until a request finishes, for at most a bound the backend
    /// chooses and documents; `None` when nothing finished within it (or
    /// nothing is in flight). Devices use it to drain (BMDMA stop, reset);
    /// `None` never means the request is gone: its completion still comes
    /// through `poll` or a later `wait`. There is deliberately no default:
    /// a backend that completes later must say how it waits.
    fn wait(&mut self) -> Option<Completion>;
}

/// A borrowed device is a device: a host can give the controller
/// `&mut dyn BlockDevice` drives of different concrete types (or keep the
/// drives itself and lend them).
impl<'m, T: BlockDevice<'m> + ?Sized> BlockDevice<'m> for &mut T {
    fn sector_count(&self) -> u64 {
        (**self).sector_count()
    }

    fn is_read_only(&self) -> bool {
        (**self).is_read_only()
    }

    fn submit(&mut self, token: RequestToken, req: BlockRequest<'_, 'm>) -> Result<(), Refused> {
        (**self).submit(token, req)
    }

    fn poll(&mut self) -> Option<Completion> {
        (**self).poll()
    }

    fn wait(&mut self) -> Option<Completion> {
        (**self).wait()
    }
}

/// Checks a vectored request against a device of `sectors` sectors and
/// returns `(byte_offset, byte_len)`. Shared by backends.
pub fn check_rw(sectors: u64, sector: u64, iov: &[Leased<'_>]) -> Result<(u64, u64), BlockError> {
    let bytes = iov
        .iter()
        .try_fold(0u64, |acc, s| acc.checked_add(s.len() as u64))
        .ok_or(BlockError::OutOfRange)?;
    if bytes % SECTOR_SIZE as u64 != 0 {
        return Err(BlockError::Misaligned);
    }
    check_range(sectors, sector, bytes / SECTOR_SIZE as u64)?;
    Ok((sector * SECTOR_SIZE as u64, bytes))
}

/// Checks that `count` sectors from `sector` fit in `sectors`.
pub fn check_range(sectors: u64, sector: u64, count: u64) -> Result<(), BlockError> {
    if sector > sectors || count > sectors - sector {
        return Err(BlockError::OutOfRange);
    }
    Ok(())
}
