//! One guest-physical region: RAM backed by host memory, or MMIO dispatched
//! to a device handler.

use super::engaged::Engaged;
use super::error::MemError;
use super::ids::DeviceId;
use super::volatile::RamBacking;

/// Why an MMIO handler refused an access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MmioError {
    /// The offset/length is not decoded by the device.
    Unmapped,
    /// The device does not accept this access (width, alignment, state).
    Denied,
}

impl core::fmt::Display for MmioError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            MmioError::Unmapped => "offset not decoded by the device",
            MmioError::Denied => "access refused by the device",
        })
    }
}

impl core::error::Error for MmioError {}

/// A device's MMIO register window.
///
/// Handlers take `&self` (they are shared by vCPUs and DMA paths) and use
/// interior mutability. `offset` is relative to the region start, and
/// `offset + data.len()` never exceeds the region length.
pub trait MmioHandler: Sync {
    /// Reads `data.len()` bytes at `offset`.
    fn read(&self, offset: u64, data: &mut [u8]) -> Result<(), MmioError>;
    /// Writes `data` at `offset`.
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), MmioError>;
}

/// What backs a region.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub enum RegionKind<'a> {
    /// Guest RAM: host memory that devices may map directly.
    Ram(RamBacking<'a>),
    /// Device registers: every access goes through the handler; DMA
    /// to it uses a bounce buffer.
    Mmio {
        /// The device's handler.
        handler: &'a dyn MmioHandler,
        /// The device that owns the region, if it may also do DMA.
        owner: Option<DeviceId>,
    },
}

impl core::fmt::Debug for RegionKind<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RegionKind::Ram(b) => write!(f, "Ram({} bytes)", b.len()),
            RegionKind::Mmio { owner, .. } => write!(f, "Mmio(owner {owner:?})"),
        }
    }
}

/// A guest-physical region `[start, start + len)`.
#[derive(Clone, Copy, Debug)]
pub struct Region<'a> {
    start: u64,
    len: u64,
    kind: RegionKind<'a>,
}

impl<'a> Region<'a> {
    /// Makes a region, checking `len > 0` and that the end fits in `u64`
    /// (`const`: a host can build its regions at compile time).
    pub const fn new(start: u64, len: u64, kind: RegionKind<'a>) -> Result<Self, MemError> {
        if len == 0 {
            return Err(MemError::ZeroLength);
        }
        if start.checked_add(len - 1).is_none() {
            return Err(MemError::Overflow { addr: start });
        }
        if let RegionKind::Ram(b) = &kind
            && b.len() as u64 != len
        {
            return Err(MemError::BackingSize);
        }
        Ok(Region { start, len, kind })
    }

    /// Guest RAM at `start`, as long as `backing`.
    pub const fn ram(start: u64, backing: RamBacking<'a>) -> Result<Self, MemError> {
        Self::new(start, backing.len() as u64, RegionKind::Ram(backing))
    }

    /// An MMIO window of `len` bytes at `start`; `owner` is the device whose
    /// registers these are, if that device can also do DMA.
    pub const fn mmio_window(
        start: u64,
        len: u64,
        handler: &'a dyn MmioHandler,
        owner: Option<DeviceId>,
    ) -> Result<Self, MemError> {
        Self::new(start, len, RegionKind::Mmio { handler, owner })
    }

    /// First address.
    pub const fn start(&self) -> u64 {
        self.start
    }

    /// Length in bytes (never 0).
    pub const fn len(&self) -> u64 {
        self.len
    }

    /// Always false (regions are never empty); for clippy's `len` rule.
    pub const fn is_empty(&self) -> bool {
        false
    }

    /// Last address (inclusive; cannot overflow).
    pub const fn last(&self) -> u64 {
        self.start + (self.len - 1)
    }

    /// What backs the region.
    pub const fn kind(&self) -> &RegionKind<'a> {
        &self.kind
    }

    /// True if `addr` is inside.
    pub const fn contains(&self, addr: u64) -> bool {
        addr >= self.start && addr <= self.last()
    }

    /// Bytes from `addr` (inside) to the region end.
    pub(crate) fn remaining_from(&self, addr: u64) -> u64 {
        self.last().saturating_sub(addr).saturating_add(1)
    }

    /// Runs an MMIO access by `requester` on this region's handler, refused
    /// when it would re-enter a device (see [`Engaged`]). `offset + len`
    /// must be inside the region.
    pub(crate) fn mmio<R>(
        &self,
        engaged: &Engaged,
        requester: DeviceId,
        addr: u64,
        f: impl FnOnce(&dyn MmioHandler, u64) -> Result<R, MmioError>,
    ) -> Result<R, MemError> {
        let RegionKind::Mmio { handler, owner } = self.kind else {
            return Err(MemError::NotMmio { addr });
        };
        let _claim = engaged.enter(requester, owner, addr)?;
        f(handler, addr - self.start).map_err(|e| MemError::Mmio { addr, error: e })
    }
}
