//! Where the block backend's bytes go: straight between the image and
//! guest RAM, through the bounce pool, or through other VMM memory.
//!
//! [`Accounted`] wraps any [`BlockDevice`] and classifies every buffer of
//! every accepted read or write request by its host address:
//!
//! - inside the guest RAM mapping: zero-copy DMA (`preadv`/`pwritev` on
//!   guest memory), counted in [`DataPath::ram_direct_bytes`];
//! - inside the bounce pool: DMA to or from MMIO, which the core copies
//!   between the slot and the region ([`DataPath::bounce_bytes`]);
//! - anywhere else: a VMM buffer ([`DataPath::vmm_buffer_bytes`]), which
//!   today means the IDE channel's PIO data buffer. A copy of RAM DMA data
//!   through any intermediate buffer would land here too, so in a run
//!   without PIO data transfers this counter is the number of RAM DMA bytes
//!   the VMM copied, and it must be 0.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use vmdma_core::block::{BlockDevice, BlockError, BlockRequest, Completion, RequestToken};
use vmdma_core::memory::VolatileSlice;

/// A snapshot of the counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DataPath {
    /// Bytes moved between the image and guest RAM directly.
    pub ram_direct_bytes: u64,
    /// Bytes moved between the image and bounce slots (MMIO DMA).
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
    /// The bounce pool's storage.
    pub bounce: Range<usize>,
}

impl HostRanges {
    fn count(&self, c: &DataPathCounters, s: &VolatileSlice<'_>) {
        let start = s.as_ptr() as usize;
        let len = s.len();
        let inside = |r: &Range<usize>| {
            start >= r.start && start.checked_add(len).is_some_and(|end| end <= r.end)
        };
        let counter = if inside(&self.ram) {
            &c.ram_direct
        } else if inside(&self.bounce) {
            &c.bounce
        } else {
            &c.vmm_buffer
        };
        counter.fetch_add(len as u64, Ordering::Relaxed);
    }
}

/// A block device whose data buffers are classified and counted.
#[derive(Debug)]
pub struct Accounted<B> {
    inner: B,
    ranges: HostRanges,
    counters: Arc<DataPathCounters>,
}

impl<B: BlockDevice> Accounted<B> {
    /// Wraps `inner`, counting into `counters`.
    pub fn new(inner: B, ranges: HostRanges, counters: Arc<DataPathCounters>) -> Self {
        Accounted {
            inner,
            ranges,
            counters,
        }
    }
}

impl<B: BlockDevice> BlockDevice for Accounted<B> {
    fn sector_count(&self) -> u64 {
        self.inner.sector_count()
    }

    fn is_read_only(&self) -> bool {
        self.inner.is_read_only()
    }

    fn submit(&mut self, req: BlockRequest<'_, '_>) -> Result<RequestToken, BlockError> {
        let iov = match &req {
            BlockRequest::Read { iov, .. } | BlockRequest::Write { iov, .. } => Some(*iov),
            BlockRequest::Flush | BlockRequest::Discard { .. } => None,
        };
        let token = self.inner.submit(req)?;
        for s in iov.into_iter().flatten() {
            self.ranges.count(&self.counters, s);
        }
        Ok(token)
    }

    fn poll(&mut self) -> Option<Completion> {
        self.inner.poll()
    }

    fn wait(&mut self) -> Option<Completion> {
        self.inner.wait()
    }
}

#[cfg(test)]
mod tests {
    use vmdma_core::block::MemDisk;

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
        let counters = Arc::new(DataPathCounters::default());
        let mut storage = vec![0u8; 64 * 512];
        let mut disk = Accounted::new(MemDisk::new(&mut storage, false), ranges, counters.clone());
        let r = VolatileSlice::from_mut_slice(&mut ram);
        let b = VolatileSlice::from_mut_slice(&mut bounce);
        let o = VolatileSlice::from_mut_slice(&mut other);
        let (r1, _) = r.split_at(1024).unwrap();
        disk.submit(BlockRequest::Read {
            sector: 0,
            iov: &[r1, b.subslice(0, 512).unwrap()],
        })
        .unwrap();
        disk.submit(BlockRequest::Write {
            sector: 8,
            iov: &[o, b.subslice(512, 512).unwrap()],
        })
        .unwrap();
        disk.submit(BlockRequest::Flush).unwrap();
        // A refused request counts nothing.
        assert!(
            disk.submit(BlockRequest::Read {
                sector: 64,
                iov: &[r1],
            })
            .is_err()
        );
        assert_eq!(
            counters.snapshot(),
            DataPath {
                ram_direct_bytes: 1024,
                bounce_bytes: 1024,
                vmm_buffer_bytes: 512,
            }
        );
        assert_eq!(disk.sector_count(), 64);
        assert!(disk.poll().is_some());
    }
}
