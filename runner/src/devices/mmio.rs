//! The MMIO path for exits KVM did not handle (addresses outside the RAM
//! slot): they go to the guest address space of `vmdma-core`, the same one
//! device DMA uses, so the MMIO scratch region is one handler for both.

use vmdma_core::dma::{AddressSpace, BouncePool, DmaMemory};
use vmdma_core::memory::DeviceId;

/// Regions in the guest address space: RAM, the MMIO scratch region, and
/// room for device windows.
pub const MAX_REGIONS: usize = 8;
/// Devices that may wait for bounce space at once.
pub const MAX_RETRY_WAITERS: usize = 8;
/// Bytes per bounce slot: one page, QEMU's default bounce budget.
pub const BOUNCE_SLOT: usize = 4096;
/// Bounce slots: up to 16 KiB of MMIO DMA in flight at once; a larger
/// transfer is split into several block requests as slots free up.
pub const BOUNCE_SLOTS: usize = 4;

/// The runner's guest address space type.
pub type GuestSpace<'a> = AddressSpace<'a, MAX_REGIONS, MAX_RETRY_WAITERS>;
/// The runner's bounce pool type.
pub type GuestBouncePool = BouncePool<BOUNCE_SLOT, BOUNCE_SLOTS>;

/// Guest-physical accesses from a vCPU that were not RAM.
pub trait MmioSpace: Sync {
    /// Reads at `addr`; `false` when nothing there accepts the whole access.
    fn read(&self, addr: u64, data: &mut [u8]) -> bool;
    /// Writes at `addr`; `false` when nothing there accepts the whole access.
    fn write(&self, addr: u64, data: &[u8]) -> bool;
}

impl<const R: usize, const W: usize> MmioSpace for AddressSpace<'_, R, W> {
    fn read(&self, addr: u64, data: &mut [u8]) -> bool {
        DmaMemory::read(self, DeviceId::HOST, addr, data).is_ok()
    }

    fn write(&self, addr: u64, data: &[u8]) -> bool {
        DmaMemory::write(self, DeviceId::HOST, addr, data).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use vmdma_core::memory::RegionMap;

    use super::*;
    use crate::devices::mmio_scratch::MmioScratch;

    #[test]
    fn vcpu_accesses_reach_mmio_regions() {
        let s = MmioScratch::new(0x100);
        let mut map = RegionMap::new();
        map.add_mmio(0x1000, 0x100, &s, None).unwrap();
        let bounce = GuestBouncePool::new();
        let space: GuestSpace<'_> = AddressSpace::new(map, &bounce);
        assert!(MmioSpace::write(&space, 0x1004, &[1, 2, 3, 4]));
        let mut b = [0u8; 4];
        assert!(MmioSpace::read(&space, 0x1004, &mut b));
        assert_eq!(b, [1, 2, 3, 4]);
        assert!(
            !MmioSpace::read(&space, 0x10FE, &mut b),
            "straddles the end"
        );
        assert!(!MmioSpace::read(&space, 0x2000, &mut b));
        assert!(!MmioSpace::write(&space, u64::MAX - 1, &b));
    }
}
