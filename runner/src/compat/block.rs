//! Stand-in for `vmdma_core::block`: the vectored block-device interface.

use std::fmt;

use super::memory::VolatileSlice;

/// Bytes per sector.
pub const SECTOR_SIZE: usize = 512;

/// Names one submitted request; completions carry it back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RequestToken(pub u32);

/// A block request. The I/O vector's memory must stay valid until the
/// completion for the request's token has been delivered.
#[derive(Debug)]
pub enum BlockRequest<'r, 'm> {
    /// Disk → memory: fill `iov` from `sector` on.
    Read {
        /// First sector.
        sector: u64,
        /// Destination buffers.
        iov: &'r [VolatileSlice<'m>],
    },
    /// Memory → disk: write `iov` at `sector`.
    Write {
        /// First sector.
        sector: u64,
        /// Source buffers.
        iov: &'r [VolatileSlice<'m>],
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

/// Why a block request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockError {
    /// The request reaches past the end of the device.
    OutOfRange,
    /// The device is read-only.
    ReadOnly,
    /// The I/O vector is not a whole number of sectors.
    Misaligned,
    /// Too many requests in flight.
    QueueFull,
    /// The backend does not support the operation.
    Unsupported,
    /// The backend failed; the value is an OS error number.
    Io(i32),
}

impl fmt::Display for BlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockError::OutOfRange => f.write_str("request past the end of the device"),
            BlockError::ReadOnly => f.write_str("device is read-only"),
            BlockError::Misaligned => f.write_str("request is not a whole number of sectors"),
            BlockError::QueueFull => f.write_str("too many requests in flight"),
            BlockError::Unsupported => f.write_str("operation not supported"),
            BlockError::Io(e) => write!(f, "I/O error (errno {e})"),
        }
    }
}

/// A finished request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    /// The token `submit` returned.
    pub token: RequestToken,
    /// Success (every byte transferred) or the error.
    pub result: Result<(), BlockError>,
}

/// A sector-addressed block device with vectored, asynchronous requests.
pub trait BlockDevice {
    /// Capacity in sectors.
    fn sector_count(&self) -> u64;
    /// True when writes and discards are refused.
    fn is_read_only(&self) -> bool;
    /// Starts a request. Errors found before any I/O are returned here and
    /// produce no completion.
    fn submit(&mut self, req: BlockRequest<'_, '_>) -> Result<RequestToken, BlockError>;
    /// The next finished request, if any (never blocks).
    fn poll(&mut self) -> Option<Completion>;
    /// Blocks until a request finishes; `None` when nothing is in flight.
    fn wait(&mut self) -> Option<Completion> {
        self.poll()
    }
}

/// Checks a vectored request against a device of `sectors` sectors and
/// returns `(byte_offset, byte_len)`.
pub fn check_rw(
    sectors: u64,
    sector: u64,
    iov: &[VolatileSlice<'_>],
) -> Result<(u64, u64), BlockError> {
    let bytes = iov
        .iter()
        .try_fold(0u64, |acc, s| acc.checked_add(s.len() as u64))
        .ok_or(BlockError::OutOfRange)?;
    if bytes % SECTOR_SIZE as u64 != 0 {
        return Err(BlockError::Misaligned);
    }
    check_range(sectors, sector, bytes / SECTOR_SIZE as u64)?;
    let off = sector
        .checked_mul(SECTOR_SIZE as u64)
        .ok_or(BlockError::OutOfRange)?;
    Ok((off, bytes))
}

/// Checks that `count` sectors from `sector` fit in `sectors`.
pub fn check_range(sectors: u64, sector: u64, count: u64) -> Result<(), BlockError> {
    if sector > sectors || count > sectors - sector {
        return Err(BlockError::OutOfRange);
    }
    Ok(())
}
