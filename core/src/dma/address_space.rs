//! Guest-physical memory as DMA sees it: a frozen [`RegionMap`] plus a
//! bounce arena with its retry queue.

use crate::memory::{DeviceId, MemError, Probe, RegionKind, RegionMap, VolatileSlice, ram_view};
use crate::memory::{MmioError, MmioHandler};

use super::arena::BounceBuffers;
use super::arena::sealed::Key;
use super::mapping::{Bounce, Mapping, Unmapper};
use super::{BounceWait, DmaDirection, DmaMemory};
use crate::block::{RequestId, RequestToken};

/// MMIO is reached in chunks of this many bytes through a stack buffer.
const MMIO_CHUNK: usize = 256;
/// A mapping of MMIO asks the arena for at least this much (or the whole
/// piece if shorter), so bounce space is not shredded into slivers.
const MIN_BOUNCE: usize = 512;

/// A guest-physical address space for DMA: regions fixed at construction
/// (so no region can disappear under a live mapping), `R` regions at most.
///
/// Small (the region table and two references), so a host builds it at run
/// time; an embedder that wants it in a `static` puts it in a
/// `spin::Once`.
pub struct AddressSpace<'a, const R: usize> {
    regions: RegionMap<'a, R>,
    bounce: &'a dyn BounceBuffers,
}

impl<'a, const R: usize> AddressSpace<'a, R> {
    /// Freezes `regions` into an address space that bounces MMIO DMA
    /// through `bounce`. Device ids handed out by the map before stay
    /// valid, and [`AddressSpace::new_device`] continues from them.
    pub const fn new(regions: RegionMap<'a, R>, bounce: &'a dyn BounceBuffers) -> Self {
        AddressSpace { regions, bounce }
    }

    /// The regions (read-only: the map is frozen).
    pub fn regions(&self) -> &RegionMap<'a, R> {
        &self.regions
    }

    /// The bounce arena.
    pub fn bounce(&self) -> &'a dyn BounceBuffers {
        self.bounce
    }

    /// A device id never handed out before by this address space or the map
    /// it was built from (see [`RegionMap::new_device`]).
    pub fn new_device(&self) -> Result<DeviceId, MemError> {
        self.regions.new_device()
    }
}

/// Moves `len` bytes between a bounce view and MMIO through a stack buffer.
fn mmio_copy(
    h: &dyn MmioHandler,
    off: u64,
    view: VolatileSlice<'_>,
    len: usize,
    to_mmio: bool,
) -> Result<(), MmioError> {
    let mut tmp = [0u8; MMIO_CHUNK];
    let mut done = 0usize;
    while done < len {
        let k = (len - done).min(MMIO_CHUNK);
        let chunk = tmp.get_mut(..k).unwrap_or_default();
        let at = off + done as u64;
        if to_mmio {
            view.copy_to(done, chunk);
            h.write(at, chunk)?;
        } else {
            h.read(at, chunk)?;
            view.copy_from(done, chunk);
        }
        done += k;
    }
    Ok(())
}

impl<const R: usize> DmaMemory for AddressSpace<'_, R> {
    fn map(
        &self,
        requester: DeviceId,
        addr: u64,
        len: u64,
        dir: DmaDirection,
    ) -> Result<Mapping<'_>, MemError> {
        let map = &self.regions;
        let n = match map.probe(requester, addr, len)? {
            Probe::Ram(n) | Probe::Mmio(n) => n,
        };
        let region = map.lookup(addr).ok_or(MemError::Hole { addr })?;
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        match region.kind() {
            RegionKind::Ram(backing) => {
                Ok(Mapping::direct(addr, ram_view(backing, region, addr, n)?))
            }
            RegionKind::Mmio { .. } => {
                let (alloc, view) = self
                    .bounce
                    .alloc(Key(()), requester, n.min(MIN_BOUNCE), n)?;
                let bounce = Bounce {
                    alloc,
                    addr: Some(addr),
                    dir,
                    requester,
                };
                if dir == DmaDirection::DeviceReadsMemory {
                    let filled = map.mmio_at(requester, addr, |h, off| {
                        mmio_copy(h, off, view, view.len(), false)
                    });
                    if let Err(e) = filled {
                        self.bounce.free(Key(()), alloc);
                        return Err(e);
                    }
                }
                Ok(Mapping::bounced(view, bounce, self))
            }
        }
    }

    fn map_staging(&self, requester: DeviceId, len: usize) -> Result<Mapping<'_>, MemError> {
        let (alloc, view) = self.bounce.alloc(Key(()), requester, len, len)?;
        let bounce = Bounce {
            alloc,
            addr: None,
            dir: DmaDirection::DeviceWritesMemory,
            requester,
        };
        Ok(Mapping::bounced(view, bounce, self))
    }

    fn probe(
        &self,
        requester: DeviceId,
        addr: u64,
        len: u64,
        _dir: DmaDirection,
    ) -> Result<Probe, MemError> {
        self.regions.probe(requester, addr, len)
    }

    fn read(&self, requester: DeviceId, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        self.regions.read(requester, addr, buf)
    }

    fn write(&self, requester: DeviceId, addr: u64, buf: &[u8]) -> Result<(), MemError> {
        self.regions.write(requester, addr, buf)
    }

    fn bounce_wait(&self) -> &dyn BounceWait {
        self.bounce
    }

    fn reclaim(&self, token: RequestToken) {
        self.bounce.reclaim(Key(()), token.id());
    }
}

impl<const R: usize> Unmapper for AddressSpace<'_, R> {
    fn release(
        &self,
        bounce: &Bounce,
        data: VolatileSlice<'_>,
        access_len: usize,
    ) -> Result<(), MemError> {
        let len = access_len.min(data.len());
        let result = match bounce.addr {
            Some(addr) if bounce.dir == DmaDirection::DeviceWritesMemory && len > 0 => {
                self.regions.mmio_at(bounce.requester, addr, |h, off| {
                    mmio_copy(h, off, data, len, true)
                })
            }
            _ => Ok(()),
        };
        // The only views of this space were held by its `Mapping`, whose
        // `slice()` borrows the mapping; the mapping is being consumed, so
        // no view is used after this.
        self.bounce.free(Key(()), bounce.alloc);
        result
    }

    fn quarantine(&self, bounce: &Bounce, request: RequestId) {
        self.bounce.quarantine(Key(()), bounce.alloc, request);
    }
}

#[cfg(test)]
mod tests;
