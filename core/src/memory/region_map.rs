//! A fixed-capacity, sorted map of guest-physical regions.
//!
//! Regions never overlap and are kept sorted by start address, so lookup is
//! a binary search (O(log n)). All inputs are validated when a region is
//! added; lookups and the byte-level [`RegionMap::read`] / [`RegionMap::write`]
//! never panic: a hole or an overflow is a [`MemError`].

use heapless::Vec;

use super::engaged::Engaged;
use super::error::MemError;
use super::ids::{DeviceId, DeviceIds};
use super::region::{MmioHandler, Region, RegionKind};
use super::volatile::RamBacking;

/// What [`RegionMap::probe`] found at an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// Guest RAM: this many bytes from the address are RAM (at most the
    /// length asked for).
    Ram(u64),
    /// MMIO the requester may access: this many bytes from the address lie
    /// in one MMIO region.
    Mmio(u64),
}

/// Up to `N` non-overlapping regions, sorted by start address.
pub struct RegionMap<'a, const N: usize> {
    regions: Vec<Region<'a>, N>,
    /// `regions[i].last()`, kept in a dense array so the binary search
    /// touches one cache line per probe.
    lasts: Vec<u64, N>,
    /// Requesters inside an MMIO dispatch (re-entrancy checks).
    engaged: Engaged,
    /// Device ids handed out so far.
    ids: DeviceIds,
}

impl<'a, const N: usize> Default for RegionMap<'a, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a, const N: usize> RegionMap<'a, N> {
    const CAPACITY_OK: () = assert!(N > 0, "a region map needs room for at least one region");

    /// An empty map (usable in a `static`).
    pub const fn new() -> Self {
        let () = Self::CAPACITY_OK;
        RegionMap {
            regions: Vec::new(),
            lasts: Vec::new(),
            engaged: Engaged::new(),
            ids: DeviceIds::new(),
        }
    }

    /// Checks that `regions` are sorted by start address without overlap:
    /// what [`RegionMap::from_regions`] requires. `const`, and it only
    /// borrows, so a `static` map can check its list at compile time.
    #[expect(
        clippy::indexing_slicing,
        reason = "const fn: every index is below the slice length"
    )]
    pub const fn validate(regions: &[Region<'a>]) -> Result<(), MemError> {
        if regions.len() > N {
            return Err(MemError::MapFull);
        }
        let mut i = 1;
        while i < regions.len() {
            if regions[i - 1].last() >= regions[i].start() {
                return Err(MemError::Overlap {
                    existing: regions[i - 1].start(),
                });
            }
            i += 1;
        }
        Ok(())
    }

    /// A map of `regions`, which must be sorted by start address without
    /// overlap (see [`RegionMap::validate`]).
    pub fn from_regions<const K: usize>(regions: [Region<'a>; K]) -> Result<Self, MemError> {
        Self::validate(&regions)?;
        Ok(Self::from_validated(regions))
    }

    /// [`RegionMap::from_regions`] for `const` contexts, where a `Result`
    /// holding a map cannot be unwrapped: the caller has run
    /// [`RegionMap::validate`]. (Given a list that fails it, lookups of the
    /// overlapping addresses find one of the regions: never an access
    /// outside a region's backing, but not a meaningful map either.)
    #[expect(
        clippy::indexing_slicing,
        reason = "const fn: every index is below K, the array length"
    )]
    pub const fn from_validated<const K: usize>(regions: [Region<'a>; K]) -> Self {
        let mut lasts = [0u64; K];
        let mut i = 0;
        while i < K {
            lasts[i] = regions[i].last();
            i += 1;
        }
        RegionMap {
            regions: Vec::from_array(regions),
            lasts: Vec::from_array(lasts),
            engaged: Engaged::new(),
            ids: DeviceIds::new(),
        }
    }

    /// A fresh device id, never handed out before by this map (or by the
    /// address space it becomes): use it as the `owner` of the device's MMIO
    /// regions, as the requester of its DMA and as its retry-queue client.
    pub fn new_device(&self) -> Result<DeviceId, MemError> {
        self.ids.allocate()
    }

    /// Adds guest RAM at `start`, backed by `backing` (whose length is the
    /// region length).
    pub fn add_ram(&mut self, start: u64, backing: RamBacking<'a>) -> Result<(), MemError> {
        let len = u64::try_from(backing.len()).map_err(|_| MemError::Overflow { addr: start })?;
        self.insert(Region::new(start, len, RegionKind::Ram(backing))?)
    }

    /// Adds an MMIO window of `len` bytes at `start`. `owner` is the device
    /// whose registers these are, if that device can also do DMA.
    pub fn add_mmio(
        &mut self,
        start: u64,
        len: u64,
        handler: &'a dyn MmioHandler,
        owner: Option<DeviceId>,
    ) -> Result<(), MemError> {
        self.insert(Region::new(
            start,
            len,
            RegionKind::Mmio { handler, owner },
        )?)
    }

    fn insert(&mut self, region: Region<'a>) -> Result<(), MemError> {
        let idx = self.regions.partition_point(|r| r.start() < region.start());
        if let Some(prev) = idx.checked_sub(1).and_then(|i| self.regions.get(i))
            && prev.last() >= region.start()
        {
            return Err(MemError::Overlap {
                existing: prev.start(),
            });
        }
        if let Some(next) = self.regions.get(idx)
            && region.last() >= next.start()
        {
            return Err(MemError::Overlap {
                existing: next.start(),
            });
        }
        let last = region.last();
        crate::vec_util::insert_at(&mut self.regions, idx, region)
            .map_err(|_| MemError::MapFull)?;
        // Same capacity and length as `regions`, so this cannot fail.
        crate::vec_util::insert_at(&mut self.lasts, idx, last).map_err(|_| MemError::MapFull)
    }

    /// Removes the region that starts exactly at `start`; returns whether
    /// one did. (Only while no mapping is live: the DMA layer takes the map
    /// by shared reference, so the borrow checker enforces this.)
    pub fn remove(&mut self, start: u64) -> bool {
        match self.regions.binary_search_by_key(&start, |r| r.start()) {
            Ok(i) => {
                self.regions.remove(i);
                self.lasts.remove(i);
                true
            }
            Err(_) => false,
        }
    }

    /// The region containing `addr`, if any.
    pub fn lookup(&self, addr: u64) -> Option<&Region<'a>> {
        // First region whose last byte is at or after `addr`.
        let idx = self.lasts.partition_point(|&last| last < addr);
        let r = self.regions.get(idx)?;
        (r.start() <= addr).then_some(r)
    }

    /// Number of regions.
    pub fn len(&self) -> usize {
        self.regions.len()
    }

    /// True when no region is present.
    pub fn is_empty(&self) -> bool {
        self.regions.is_empty()
    }

    /// The regions in address order.
    pub fn iter(&self) -> impl Iterator<Item = &Region<'a>> {
        self.regions.iter()
    }

    /// Copies guest memory at `addr` into `buf`, crossing region
    /// boundaries (RAM and MMIO alike). Stops with [`MemError::Hole`] at the
    /// first unbacked byte; bytes before it have been copied.
    pub fn read(&self, requester: DeviceId, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        self.for_each_chunk(addr, buf.len(), |region, at, range| {
            let chunk = buf.get_mut(range).ok_or(MemError::Overflow { addr: at })?;
            match region.kind() {
                RegionKind::Ram(b) => {
                    let view = ram_view(b, region, at, chunk.len())?;
                    view.copy_to(0, chunk);
                    Ok(())
                }
                RegionKind::Mmio { .. } => {
                    region.mmio(&self.engaged, requester, at, |h, off| h.read(off, chunk))
                }
            }
        })
    }

    /// Copies `buf` into guest memory at `addr`; see [`RegionMap::read`].
    pub fn write(&self, requester: DeviceId, addr: u64, buf: &[u8]) -> Result<(), MemError> {
        self.for_each_chunk(addr, buf.len(), |region, at, range| {
            let chunk = buf.get(range).ok_or(MemError::Overflow { addr: at })?;
            match region.kind() {
                RegionKind::Ram(b) => {
                    let view = ram_view(b, region, at, chunk.len())?;
                    view.copy_from(0, chunk);
                    Ok(())
                }
                RegionKind::Mmio { .. } => {
                    region.mmio(&self.engaged, requester, at, |h, off| h.write(off, chunk))
                }
            }
        })
    }

    /// Runs an MMIO access by `requester` at `addr` (which must lie in an
    /// MMIO region) with the re-entrancy checks.
    pub(crate) fn mmio_at<R>(
        &self,
        requester: DeviceId,
        addr: u64,
        f: impl FnOnce(&dyn MmioHandler, u64) -> Result<R, super::MmioError>,
    ) -> Result<R, MemError> {
        let region = self.lookup(addr).ok_or(MemError::Hole { addr })?;
        region.mmio(&self.engaged, requester, addr, f)
    }

    /// What is at `addr` for up to `len` bytes, without touching it (no
    /// handler runs): RAM or MMIO and how many bytes of one region follow,
    /// or why `requester` cannot reach it (a hole, the requester's own
    /// MMIO, an overflow).
    pub fn probe(&self, requester: DeviceId, addr: u64, len: u64) -> Result<Probe, MemError> {
        if len == 0 {
            return Err(MemError::ZeroLength);
        }
        addr.checked_add(len - 1)
            .ok_or(MemError::Overflow { addr })?;
        let region = self.lookup(addr).ok_or(MemError::Hole { addr })?;
        let n = len.min(region.remaining_from(addr));
        match region.kind() {
            RegionKind::Ram(_) => Ok(Probe::Ram(n)),
            RegionKind::Mmio { owner, .. } => {
                if *owner == Some(requester) {
                    return Err(MemError::Reentrant { addr });
                }
                Ok(Probe::Mmio(n))
            }
        }
    }

    /// Splits `addr..addr+len` at region boundaries and calls `f(region,
    /// chunk_addr, buf_range)` for each piece. Every call covers at least one
    /// byte, so the loop ends after at most `len` calls.
    fn for_each_chunk(
        &self,
        addr: u64,
        len: usize,
        mut f: impl FnMut(&Region<'a>, u64, core::ops::Range<usize>) -> Result<(), MemError>,
    ) -> Result<(), MemError> {
        let len64 = u64::try_from(len).map_err(|_| MemError::Overflow { addr })?;
        if len64 > 0 {
            addr.checked_add(len64 - 1)
                .ok_or(MemError::Overflow { addr })?;
        }
        let mut done = 0usize;
        while done < len {
            let at = addr + done as u64;
            let region = self.lookup(at).ok_or(MemError::Hole { addr: at })?;
            let left = len - done;
            let n = usize::try_from(region.remaining_from(at)).map_or(left, |r| r.min(left));
            f(region, at, done..done + n)?;
            done += n;
        }
        Ok(())
    }
}

/// The RAM view for `len` bytes at `addr` inside `region`.
pub(crate) fn ram_view<'a>(
    backing: &RamBacking<'a>,
    region: &Region<'a>,
    addr: u64,
    len: usize,
) -> Result<super::VolatileSlice<'a>, MemError> {
    let off = usize::try_from(addr - region.start()).map_err(|_| MemError::Overflow { addr })?;
    backing.slice(off, len).ok_or(MemError::Hole { addr })
}

#[cfg(test)]
mod tests;
