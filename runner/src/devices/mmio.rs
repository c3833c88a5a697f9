//! The MMIO path for exits KVM did not handle (addresses outside the RAM
//! slot). [`MmioSpace`] is what the exit dispatcher needs; the guest
//! address space implements it.

use crate::compat::memory::MmioHandler;

/// Guest-physical accesses from a vCPU that were not RAM.
pub trait MmioSpace: Sync {
    /// Reads at `addr`; `false` (and `data` untouched) when nothing there
    /// accepts the access.
    fn read(&self, addr: u64, data: &mut [u8]) -> bool;
    /// Writes at `addr`; `false` when nothing there accepts the access.
    fn write(&self, addr: u64, data: &[u8]) -> bool;
}

struct Region<'a> {
    base: u64,
    len: u64,
    handler: &'a dyn MmioHandler,
}

/// MMIO regions by guest-physical address.
#[derive(Default)]
pub struct MmioMap<'a> {
    regions: Vec<Region<'a>>,
}

impl std::fmt::Debug for MmioMap<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.regions.iter().map(|r| (r.base, r.len)))
            .finish()
    }
}

impl<'a> MmioMap<'a> {
    /// An empty map.
    pub fn new() -> Self {
        MmioMap::default()
    }

    /// Adds `handler` at `base..base + len`; `false` if the range is empty,
    /// overflows or overlaps an existing region.
    pub fn add(&mut self, base: u64, len: u64, handler: &'a dyn MmioHandler) -> bool {
        let Some(end) = base.checked_add(len).filter(|_| len > 0) else {
            return false;
        };
        if self
            .regions
            .iter()
            .any(|r| base < r.base + r.len && end > r.base)
        {
            return false;
        }
        self.regions.push(Region { base, len, handler });
        true
    }

    /// The region holding the whole access, and the offset in it.
    fn route(&self, addr: u64, len: usize) -> Option<(&Region<'a>, u64)> {
        let end = addr.checked_add(len as u64)?;
        self.regions
            .iter()
            .find(|r| addr >= r.base && end <= r.base + r.len)
            .map(|r| (r, addr - r.base))
    }
}

impl MmioSpace for MmioMap<'_> {
    fn read(&self, addr: u64, data: &mut [u8]) -> bool {
        self.route(addr, data.len())
            .is_some_and(|(r, off)| r.handler.read(off, data).is_ok())
    }

    fn write(&self, addr: u64, data: &[u8]) -> bool {
        self.route(addr, data.len())
            .is_some_and(|(r, off)| r.handler.write(off, data).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::mmio_scratch::MmioScratch;

    #[test]
    fn routes_whole_accesses_only() {
        let s = MmioScratch::new(0x100);
        let mut m = MmioMap::new();
        assert!(m.add(0x1000, 0x100, &s));
        assert!(!m.add(0x10FF, 1, &s));
        assert!(!m.add(u64::MAX, 2, &s));
        assert!(m.write(0x1004, &[1, 2, 3, 4]));
        let mut b = [0u8; 4];
        assert!(m.read(0x1004, &mut b));
        assert_eq!(b, [1, 2, 3, 4]);
        assert!(!m.read(0x10FE, &mut b), "straddles the end");
        assert!(!m.read(0x2000, &mut b));
        assert!(!m.write(u64::MAX - 1, &b));
    }
}
