//! Where the block backend's bytes go: straight between the image and
//! guest RAM, through the bounce arena, or through other VMM memory.
//!
//! The disk backend ([`super::Disk`]) classifies every buffer of every
//! accepted read or write request by its host address:
//!
//! - inside the guest RAM mapping: zero-copy DMA (`preadv`/`pwritev` on
//!   guest memory), counted in [`DataPath::ram_direct_bytes`];
//! - inside the bounce arena: DMA to or from MMIO, which the core copies
//!   between the slot and the region ([`DataPath::bounce_bytes`]);
//! - anywhere else: a VMM buffer ([`DataPath::vmm_buffer_bytes`]), which
//!   today means the IDE channel's PIO data buffer. A copy of RAM DMA data
//!   through any intermediate buffer would land here too, so in a run
//!   without PIO data transfers this counter is the number of RAM DMA bytes
//!   the VMM copied, and it must be 0.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};

use vmdma_core::memory::VolatileSlice;

/// A snapshot of the counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DataPath {
    /// Bytes moved between the image and guest RAM directly.
    pub ram_direct_bytes: u64,
    /// Bytes moved between the image and bounce space (MMIO DMA).
    pub bounce_bytes: u64,
    /// Bytes moved between the image and other VMM memory (PIO buffer).
    pub vmm_buffer_bytes: u64,
}

/// The counters, shared between the backend and whoever reports them.
#[derive(Debug, Default)]
pub struct DataPathCounters {
    ram_direct: AtomicU64,
    bounce: AtomicU64,
    vmm_buffer: AtomicU64,
}

impl DataPathCounters {
    /// Adds a request's tally.
    pub fn add(&self, t: DataPath) {
        self.ram_direct
            .fetch_add(t.ram_direct_bytes, Ordering::Relaxed);
        self.bounce.fetch_add(t.bounce_bytes, Ordering::Relaxed);
        self.vmm_buffer
            .fetch_add(t.vmm_buffer_bytes, Ordering::Relaxed);
    }

    /// Reads the counters.
    pub fn snapshot(&self) -> DataPath {
        DataPath {
            ram_direct_bytes: self.ram_direct.load(Ordering::Relaxed),
            bounce_bytes: self.bounce.load(Ordering::Relaxed),
            vmm_buffer_bytes: self.vmm_buffer.load(Ordering::Relaxed),
        }
    }
}

/// Host address ranges that classify a buffer.
#[derive(Clone, Debug)]
pub struct HostRanges {
    /// The guest RAM mapping.
    pub ram: Range<usize>,
    /// The bounce arena's storage.
    pub bounce: Range<usize>,
}

impl HostRanges {
    /// Counts the buffers of an accepted request.
    pub fn count_request<'a>(
        &self,
        c: &DataPathCounters,
        iov: impl IntoIterator<Item = VolatileSlice<'a>>,
    ) {
        c.add(self.tally(iov));
    }

    /// The bytes of a request's buffers by where they are (nothing counted
    /// yet: the backend adds it once the request is accepted).
    pub fn tally<'a>(&self, iov: impl IntoIterator<Item = VolatileSlice<'a>>) -> DataPath {
        let mut t = DataPath::default();
        for s in iov {
            let start = s.as_ptr() as usize;
            let len = s.len();
            let inside = |r: &Range<usize>| {
                start >= r.start && start.checked_add(len).is_some_and(|end| end <= r.end)
            };
            let counter = if inside(&self.ram) {
                &mut t.ram_direct_bytes
            } else if inside(&self.bounce) {
                &mut t.bounce_bytes
            } else {
                &mut t.vmm_buffer_bytes
            };
            *counter += len as u64;
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_classified_by_address() {
        let mut ram = vec![0u8; 4096];
        let mut bounce = vec![0u8; 1024];
        let mut other = vec![0u8; 512];
        let range = |v: &Vec<u8>| v.as_ptr() as usize..v.as_ptr() as usize + v.len();
        let ranges = HostRanges {
            ram: range(&ram),
            bounce: range(&bounce),
        };
        let counters = DataPathCounters::default();
        let r = VolatileSlice::from_mut_slice(&mut ram);
        let b = VolatileSlice::from_mut_slice(&mut bounce);
        let o = VolatileSlice::from_mut_slice(&mut other);
        let (r1, _) = r.split_at(1024).unwrap();
        ranges.count_request(&counters, [r1, b.subslice(0, 512).unwrap()]);
        ranges.count_request(&counters, [o, b.subslice(512, 512).unwrap()]);
        // A buffer straddling the end of RAM is not RAM.
        ranges.count_request(&counters, [r.subslice(4000, 96).unwrap()]);
        assert_eq!(
            counters.snapshot(),
            DataPath {
                ram_direct_bytes: 1024 + 96,
                bounce_bytes: 1024,
                vmm_buffer_bytes: 512,
            }
        );
    }
}
