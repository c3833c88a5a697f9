//! Errors of the memory layer (region map and the DMA memory interface).

use super::region::MmioError;

/// Errors from guest-memory accesses, mappings and region-map changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MemError {
    /// No region contains `addr` (a hole).
    Hole {
        /// The first unbacked address.
        addr: u64,
    },
    /// `addr + len` overflows the 64-bit address space.
    Overflow {
        /// The start of the offending range.
        addr: u64,
    },
    /// A zero-length region or mapping was requested.
    ZeroLength,
    /// A new region overlaps an existing one.
    Overlap {
        /// Start of the existing region that overlaps.
        existing: u64,
    },
    /// The region map is full.
    MapFull,
    /// A RAM backing's size differs from the region length.
    BackingSize,
    /// The access would re-enter the MMIO of the device doing it.
    Reentrant {
        /// The MMIO address that was refused.
        addr: u64,
    },
    /// An MMIO handler refused the access.
    Mmio {
        /// The MMIO address.
        addr: u64,
        /// The handler's reason.
        error: MmioError,
    },
    /// `addr` is RAM where an MMIO region was expected.
    NotMmio {
        /// The address.
        addr: u64,
    },
    /// No bounce-buffer space is free right now; register for a retry.
    BounceBusy,
    /// Every device id has been handed out.
    TooManyDevices,
    /// Too many MMIO dispatches by devices are in progress at once (see
    /// [`MAX_CONCURRENT_DISPATCHES`](crate::memory::MAX_CONCURRENT_DISPATCHES)).
    DispatchLimit,
    /// An IOMMU stage refused the access.
    IommuFault {
        /// The device-visible (I/O virtual) address.
        iova: u64,
        /// Why.
        kind: IommuFaultKind,
    },
}

/// Why an IOMMU refused a DMA access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IommuFaultKind {
    /// No translation covers the address.
    Unmapped,
    /// A translation exists but does not allow this direction.
    Permission,
    /// The address is behind a second translation stage: one IOMMU per
    /// mapping is supported.
    Nested,
}

impl core::fmt::Display for MemError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            MemError::Hole { addr } => write!(f, "no memory at {addr:#x}"),
            MemError::Overflow { addr } => {
                write!(f, "range at {addr:#x} overflows the address space")
            }
            MemError::ZeroLength => f.write_str("zero-length range"),
            MemError::Overlap { existing } => {
                write!(f, "range overlaps the region at {existing:#x}")
            }
            MemError::MapFull => f.write_str("region map is full"),
            MemError::BackingSize => f.write_str("RAM backing size differs from the region length"),
            MemError::Reentrant { addr } => {
                write!(f, "re-entrant access to device MMIO at {addr:#x} refused")
            }
            MemError::Mmio { addr, error } => write!(f, "MMIO at {addr:#x}: {error}"),
            MemError::NotMmio { addr } => write!(f, "{addr:#x} is not MMIO"),
            MemError::BounceBusy => f.write_str("no bounce buffer space free"),
            MemError::TooManyDevices => f.write_str("every device id is taken"),
            MemError::DispatchLimit => {
                f.write_str("too many device MMIO dispatches in progress at once")
            }
            MemError::IommuFault { iova, kind } => write!(
                f,
                "IOMMU fault at {iova:#x}: {}",
                match kind {
                    IommuFaultKind::Unmapped => "no translation",
                    IommuFaultKind::Permission => "permission denied",
                    IommuFaultKind::Nested => "nested translation stages",
                }
            ),
        }
    }
}

impl core::error::Error for MemError {}
