//! The MMIO path for exits KVM did not handle (addresses outside the RAM
//! slot): they go to the guest address space of `vmdma-core`, the same one
//! device DMA uses, so the MMIO scratch region is one handler for both.

use vmdma_core::dma::{AddressSpace, BounceArena, DmaMemory};
use vmdma_core::memory::DeviceId;

/// Regions in the guest address space: RAM, the MMIO scratch region, and
/// room for device windows.
pub const MAX_REGIONS: usize = 8;
/// Devices that may wait for bounce space at once.
pub const MAX_RETRY_WAITERS: usize = 8;
/// Bytes of bounce space: up to 16 KiB of MMIO DMA in flight at once (four
/// times QEMU's default one-page budget); a larger transfer is split into
/// several block requests as space frees up.
pub const BOUNCE_BYTES: usize = 16 * 1024;
/// Bounce mappings live at once (the IDE channel's I/O vector holds up to
/// 256, but 16 KiB of MMIO rarely comes in more than a few pieces; more
/// pieces than this are staged or wait).
pub const BOUNCE_LIVE: usize = 64;

/// The runner's guest address space type.
pub type GuestSpace<'a> = AddressSpace<'a, MAX_REGIONS>;
/// The runner's bounce arena type.
pub type GuestBounceArena = BounceArena<BOUNCE_BYTES, BOUNCE_LIVE, MAX_RETRY_WAITERS>;

/// Guest-physical accesses from a vCPU that were not RAM.
pub trait MmioSpace: Sync {
    /// Reads at `addr`; `false` when nothing there accepts the whole access.
    fn read(&self, addr: u64, data: &mut [u8]) -> bool;
    /// Writes at `addr`; `false` when nothing there accepts the whole access.
    fn write(&self, addr: u64, data: &[u8]) -> bool;
}

impl<const R: usize> MmioSpace for AddressSpace<'_, R> {
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
        let bounce = GuestBounceArena::new();
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
