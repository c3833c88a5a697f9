//! Guest-physical memory as DMA sees it: a frozen [`RegionMap`] plus a
//! bounce pool and a retry queue.

use core::sync::atomic::{AtomicU32, Ordering};

use spin::Mutex;

use crate::memory::{DeviceId, MemError, RegionKind, RegionMap, VolatileSlice, ram_view};

use super::bounce::BounceBuffers;
use super::bounce::sealed::Key;
use super::mapping::{BounceTicket, Mapping, Unmapper};
use super::retry::{ClientId, RetryError, RetryQueue, RetryStatus};
use super::{DmaDirection, DmaMemory};

/// MMIO is reached in chunks of this many bytes through a stack buffer.
const MMIO_CHUNK: usize = 256;

/// A guest-physical address space for DMA: regions fixed at construction
/// (so no region can disappear under a live mapping), `R` regions at most,
/// `W` retry waiters at most.
pub struct AddressSpace<'a, const R: usize, const W: usize> {
    regions: RegionMap<'a, R>,
    bounce: &'a dyn BounceBuffers,
    generation: AtomicU32,
    retry: Mutex<RetryQueue<W>>,
}

impl<'a, const R: usize, const W: usize> AddressSpace<'a, R, W> {
    /// Freezes `regions` into an address space that bounces MMIO DMA through
    /// `bounce`.
    pub const fn new(regions: RegionMap<'a, R>, bounce: &'a dyn BounceBuffers) -> Self {
        AddressSpace {
            regions,
            bounce,
            generation: AtomicU32::new(0),
            retry: Mutex::new(RetryQueue::new()),
        }
    }

    /// The regions (read-only: the map is frozen).
    pub fn regions(&self) -> &RegionMap<'a, R> {
        &self.regions
    }

    /// The bounce pool.
    pub fn bounce(&self) -> &'a dyn BounceBuffers {
        self.bounce
    }
}

impl<const R: usize, const W: usize> DmaMemory for AddressSpace<'_, R, W> {
    fn map(
        &self,
        requester: DeviceId,
        addr: u64,
        len: u64,
        dir: DmaDirection,
    ) -> Result<Mapping<'_>, MemError> {
        if len == 0 {
            return Err(MemError::ZeroLength);
        }
        addr.checked_add(len - 1)
            .ok_or(MemError::Overflow { addr })?;
        let region = self.regions.lookup(addr).ok_or(MemError::Hole { addr })?;
        let n = usize::try_from(len.min(region.remaining_from(addr))).unwrap_or(usize::MAX);
        match region.kind() {
            RegionKind::Ram(backing) => {
                Ok(Mapping::direct(addr, ram_view(backing, region, addr, n)?))
            }
            RegionKind::Mmio { owner, .. } => {
                if *owner == Some(requester) {
                    return Err(MemError::Reentrant { addr });
                }
                let (slot, view) = self
                    .bounce
                    .acquire(Key(()), n)
                    .ok_or(MemError::BounceBusy)?;
                let ticket = BounceTicket {
                    slot,
                    addr,
                    dir,
                    requester,
                };
                if dir == DmaDirection::DeviceReadsMemory {
                    let filled = region.mmio(requester, addr, |h, off| {
                        let mut tmp = [0u8; MMIO_CHUNK];
                        let mut done = 0usize;
                        while done < view.len() {
                            let k = (view.len() - done).min(MMIO_CHUNK);
                            let chunk = tmp.get_mut(..k).unwrap_or_default();
                            h.read(off + done as u64, chunk)?;
                            view.copy_from(done, chunk);
                            done += k;
                        }
                        Ok(())
                    });
                    if let Err(e) = filled {
                        self.free_slot(slot);
                        return Err(e);
                    }
                }
                Ok(Mapping::bounced(view, ticket, self))
            }
        }
    }

    fn read(&self, requester: DeviceId, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        self.regions.read(requester, addr, buf)
    }

    fn write(&self, requester: DeviceId, addr: u64, buf: &[u8]) -> Result<(), MemError> {
        self.regions.write(requester, addr, buf)
    }

    fn bounce_generation(&self) -> u32 {
        self.generation.load(Ordering::Acquire)
    }

    fn bounce_in_use(&self) -> bool {
        self.bounce.in_use() > 0
    }

    fn register_retry(
        &self,
        client: ClientId,
        seen_generation: u32,
    ) -> Result<RetryStatus, RetryError> {
        let mut q = self.retry.lock();
        // Checked under the queue lock: a release either bumped the
        // generation before this check (retry now) or will take the lock
        // after us and notify the registration (no lost wake-up).
        if self.generation.load(Ordering::Acquire) != seen_generation {
            return Ok(RetryStatus::RetryNow);
        }
        q.register(client)?;
        Ok(RetryStatus::Queued)
    }

    fn cancel_retry(&self, client: ClientId) -> bool {
        self.retry.lock().unregister(client)
    }

    fn poll_retry(&self) -> Option<ClientId> {
        self.retry.lock().pop_notified()
    }
}

impl<const R: usize, const W: usize> AddressSpace<'_, R, W> {
    /// Frees a bounce slot and wakes retry clients. Called only when the
    /// mapping that owned the slot is gone (consumed by `unmap`, dropped, or
    /// never handed out after a failed pre-fill).
    fn free_slot(&self, slot: u16) {
        // The only views of `slot` were held by its `Mapping`, whose
        // `slice()` borrows the mapping; the mapping is being consumed (or
        // was never returned), so no view is used after this.
        self.bounce.release(Key(()), slot);
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.retry.lock().notify_all();
    }
}

impl<const R: usize, const W: usize> Unmapper for AddressSpace<'_, R, W> {
    fn release(
        &self,
        ticket: &BounceTicket,
        data: VolatileSlice<'_>,
        access_len: usize,
    ) -> Result<(), MemError> {
        let len = access_len.min(data.len());
        let result = if ticket.dir == DmaDirection::DeviceWritesMemory && len > 0 {
            match self.regions.lookup(ticket.addr) {
                Some(region) => region.mmio(ticket.requester, ticket.addr, |h, off| {
                    let mut tmp = [0u8; MMIO_CHUNK];
                    let mut done = 0usize;
                    while done < len {
                        let k = (len - done).min(MMIO_CHUNK);
                        let chunk = tmp.get_mut(..k).unwrap_or_default();
                        data.copy_to(done, chunk);
                        h.write(off + done as u64, chunk)?;
                        done += k;
                    }
                    Ok(())
                }),
                None => Err(MemError::Hole { addr: ticket.addr }),
            }
        } else {
            Ok(())
        };
        self.free_slot(ticket.slot);
        result
    }
}

#[cfg(test)]
mod tests;
