//! Device identities: handed out by the region map (and the address space
//! that freezes it), so two devices can never share one.

use core::sync::atomic::{AtomicU16, Ordering};

use super::error::MemError;

/// Identifies a device that performs DMA, owns an MMIO region, or waits for
/// bounce space (the retry queue names its clients by `DeviceId` too).
///
/// Ids come only from [`RegionMap::new_device`](super::RegionMap::new_device)
/// (or [`AddressSpace::new_device`](crate::dma::AddressSpace::new_device),
/// which continues the same sequence): the field is private, so an
/// embedder cannot forge a colliding id.
/// Ownership of an MMIO region by a device is what lets the memory layer
/// refuse DMA into that device's own registers (the re-entrancy class of
/// bugs: CVE-2021-3750, CVE-2023-0330).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(u16);

impl DeviceId {
    /// The host (VMM) itself or a vCPU: owns no MMIO region, never waits
    /// for bounce space.
    pub const HOST: DeviceId = DeviceId(u16::MAX);

    /// The raw number (for logs and counters).
    pub const fn raw(self) -> u16 {
        self.0
    }

    /// An id for tests inside the crate (no allocator involved).
    #[cfg(test)]
    pub(crate) const fn test(n: u16) -> Self {
        DeviceId(n)
    }
}

impl core::fmt::Display for DeviceId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if *self == DeviceId::HOST {
            f.write_str("host")
        } else {
            write!(f, "device {}", self.0)
        }
    }
}

/// Hands out [`DeviceId`]s `1..=0xFFFE` in order, never twice.
#[derive(Debug)]
pub(crate) struct DeviceIds {
    next: AtomicU16,
}

/// Ids at or above this are never handed out (`0xFFFF` is the host).
const LIMIT: u16 = u16::MAX;

impl DeviceIds {
    pub(crate) const fn new() -> Self {
        DeviceIds {
            next: AtomicU16::new(1),
        }
    }

    /// The next unused id, or [`MemError::TooManyDevices`].
    pub(crate) fn allocate(&self) -> Result<DeviceId, MemError> {
        self.next
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < LIMIT).then(|| n + 1)
            })
            .map(DeviceId)
            .map_err(|_| MemError::TooManyDevices)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_bounded() {
        let ids = DeviceIds::new();
        let a = ids.allocate().unwrap();
        let b = ids.allocate().unwrap();
        assert_ne!(a, b);
        assert_ne!(a, DeviceId::HOST);
        ids.next.store(LIMIT - 1, Ordering::Relaxed);
        assert_eq!(ids.allocate().unwrap().raw(), LIMIT - 1);
        assert_eq!(ids.allocate(), Err(MemError::TooManyDevices));
        assert_eq!(ids.allocate(), Err(MemError::TooManyDevices));
    }
}
