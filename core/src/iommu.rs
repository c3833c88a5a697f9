//! An optional IOMMU stage between a device and guest memory.
//!
//! [`Iommu`] implements [`DmaMemory`] by translating device (I/O virtual)
//! addresses through a fixed-capacity table and delegating to the next
//! stage, so stages chain: device → IOMMU → address space. DMA to an
//! untranslated address or against a range's permissions is a
//! [`MemError::IommuFault`]; it never reaches memory. When disabled, the
//! stage passes addresses through unchanged.

use core::sync::atomic::{AtomicBool, Ordering};

use bitflags::bitflags;
use heapless::Vec;
use spin::RwLock;

use crate::block::RequestToken;
use crate::dma::{DmaDirection, DmaMemory, Mapping, RetryError, RetryStatus};
use crate::memory::{DeviceId, IommuFaultKind, MemError, Probe};

bitflags! {
    /// What a device may do through a translation.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct IommuPerm: u8 {
        /// The device may read memory.
        const READ = 1 << 0;
        /// The device may write memory.
        const WRITE = 1 << 1;
    }
}

/// One translation: `iova .. iova + len` → `gpa .. gpa + len`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IommuEntry {
    /// Device-visible start.
    pub iova: u64,
    /// Guest-physical start.
    pub gpa: u64,
    /// Length in bytes (> 0).
    pub len: u64,
    /// Allowed directions.
    pub perm: IommuPerm,
}

impl IommuEntry {
    fn last(&self) -> u64 {
        self.iova + (self.len - 1)
    }
}

/// Translation table errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IommuError {
    /// Zero-length translation.
    ZeroLength,
    /// The IOVA or GPA range overflows 64 bits.
    Overflow,
    /// The IOVA range overlaps an existing translation.
    Overlap,
    /// The table is full.
    Full,
}

impl core::fmt::Display for IommuError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            IommuError::ZeroLength => "zero-length translation",
            IommuError::Overflow => "translation range overflows",
            IommuError::Overlap => "translation overlaps an existing one",
            IommuError::Full => "translation table is full",
        })
    }
}

impl core::error::Error for IommuError {}

/// A translation stage with up to `N` ranges in front of `inner`.
pub struct Iommu<'a, const N: usize> {
    inner: &'a dyn DmaMemory,
    table: RwLock<Vec<IommuEntry, N>>,
    enabled: AtomicBool,
}

impl<'a, const N: usize> Iommu<'a, N> {
    /// An enabled IOMMU with an empty table (all DMA faults) in front of
    /// `inner`.
    pub const fn new(inner: &'a dyn DmaMemory) -> Self {
        Iommu {
            inner,
            table: RwLock::new(Vec::new()),
            enabled: AtomicBool::new(true),
        }
    }

    /// Turns translation on, or off (pass-through).
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Release);
    }

    /// Adds a translation.
    pub fn add(&self, iova: u64, gpa: u64, len: u64, perm: IommuPerm) -> Result<(), IommuError> {
        if len == 0 {
            return Err(IommuError::ZeroLength);
        }
        let last = iova.checked_add(len - 1).ok_or(IommuError::Overflow)?;
        gpa.checked_add(len - 1).ok_or(IommuError::Overflow)?;
        let mut t = self.table.write();
        let idx = t.partition_point(|e| e.iova < iova);
        let overlaps_prev = idx
            .checked_sub(1)
            .and_then(|i| t.get(i))
            .is_some_and(|p| p.last() >= iova);
        let overlaps_next = t.get(idx).is_some_and(|n| last >= n.iova);
        if overlaps_prev || overlaps_next {
            return Err(IommuError::Overlap);
        }
        t.insert(
            idx,
            IommuEntry {
                iova,
                gpa,
                len,
                perm,
            },
        )
        .map_err(|_| IommuError::Full)
    }

    /// Removes the translation starting at `iova`; returns whether one did.
    pub fn remove(&self, iova: u64) -> bool {
        let mut t = self.table.write();
        match t.binary_search_by_key(&iova, |e| e.iova) {
            Ok(i) => {
                t.remove(i);
                true
            }
            Err(_) => false,
        }
    }

    /// Translates `iova` for `need`; returns the guest address and the
    /// bytes left in that translation.
    fn translate(&self, iova: u64, need: IommuPerm) -> Result<(u64, u64), MemError> {
        if !self.enabled.load(Ordering::Acquire) {
            return Ok((iova, (u64::MAX - iova).saturating_add(1)));
        }
        let t = self.table.read();
        let idx = t.partition_point(|e| e.iova <= iova);
        let e = idx
            .checked_sub(1)
            .and_then(|i| t.get(i))
            .filter(|e| iova <= e.last())
            .ok_or(MemError::IommuFault {
                iova,
                kind: IommuFaultKind::Unmapped,
            })?;
        if !e.perm.contains(need) {
            return Err(MemError::IommuFault {
                iova,
                kind: IommuFaultKind::Permission,
            });
        }
        let off = iova - e.iova;
        Ok((e.gpa + off, e.len - off))
    }

    fn each_chunk(
        &self,
        iova: u64,
        len: usize,
        need: IommuPerm,
        mut f: impl FnMut(u64, core::ops::Range<usize>) -> Result<(), MemError>,
    ) -> Result<(), MemError> {
        let mut done = 0usize;
        while done < len {
            let at = iova
                .checked_add(done as u64)
                .ok_or(MemError::Overflow { addr: iova })?;
            let (gpa, room) = self.translate(at, need)?;
            let n = usize::try_from(room).map_or(len - done, |r| r.min(len - done));
            f(gpa, done..done + n)?;
            done += n;
        }
        Ok(())
    }
}

fn perm_for(dir: DmaDirection) -> IommuPerm {
    match dir {
        DmaDirection::DeviceReadsMemory => IommuPerm::READ,
        DmaDirection::DeviceWritesMemory => IommuPerm::WRITE,
    }
}

impl<const N: usize> DmaMemory for Iommu<'_, N> {
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
        let (gpa, room) = self.translate(addr, perm_for(dir))?;
        self.inner.map(requester, gpa, len.min(room), dir)
    }

    fn map_staging(&self, requester: DeviceId, len: usize) -> Result<Mapping<'_>, MemError> {
        self.inner.map_staging(requester, len)
    }

    fn probe(
        &self,
        requester: DeviceId,
        addr: u64,
        len: u64,
        dir: DmaDirection,
    ) -> Result<Probe, MemError> {
        if len == 0 {
            return Err(MemError::ZeroLength);
        }
        let (gpa, room) = self.translate(addr, perm_for(dir))?;
        self.inner.probe(requester, gpa, len.min(room), dir)
    }

    fn read(&self, requester: DeviceId, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        self.each_chunk(addr, buf.len(), IommuPerm::READ, |gpa, r| {
            let chunk = buf.get_mut(r).ok_or(MemError::Overflow { addr: gpa })?;
            self.inner.read(requester, gpa, chunk)
        })
    }

    fn write(&self, requester: DeviceId, addr: u64, buf: &[u8]) -> Result<(), MemError> {
        self.each_chunk(addr, buf.len(), IommuPerm::WRITE, |gpa, r| {
            let chunk = buf.get(r).ok_or(MemError::Overflow { addr: gpa })?;
            self.inner.write(requester, gpa, chunk)
        })
    }

    fn bounce_capacity(&self) -> usize {
        self.inner.bounce_capacity()
    }

    fn bounce_generation(&self) -> u32 {
        self.inner.bounce_generation()
    }

    fn register_retry(&self, client: DeviceId, seen: u32) -> Result<RetryStatus, RetryError> {
        self.inner.register_retry(client, seen)
    }

    fn cancel_retry(&self, client: DeviceId) -> bool {
        self.inner.cancel_retry(client)
    }

    fn poll_retry(&self) -> Option<DeviceId> {
        self.inner.poll_retry()
    }

    fn reclaim(&self, token: RequestToken) {
        self.inner.reclaim(token);
    }
}

#[cfg(test)]
mod tests;
