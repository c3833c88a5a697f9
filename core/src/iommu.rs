//! An optional IOMMU stage between a device and guest memory.
//!
//! [`Iommu`] implements [`DmaMemory`] by translating device (I/O virtual)
//! addresses through a fixed-capacity table and delegating to the next
//! stage, so stages chain: device → IOMMU → address space. DMA to an
//! untranslated address or against a range's permissions is a
//! [`MemError::IommuFault`]; it never reaches memory. When disabled, the
//! stage passes addresses through unchanged.
//!
//! # Translations in use
//! A [`Mapping`] made through a translation *pins* it until the mapping
//! ends (unmap or drop): [`Iommu::remove`] refuses a pinned range with
//! [`IommuError::InUse`], so a device can never keep reaching the guest
//! address of a translation the guest already took away. A mapping of a
//! request whose transfer was dropped in flight keeps its pin until the
//! request's token is given to [`DmaMemory::reclaim`]. One translation
//! stage pins per mapping: an IOMMU in front of another IOMMU refuses to
//! map (`IommuFaultKind::Nested`). Not covered: mappings made while the
//! stage is disabled (pass-through) take no pin, so enabling it does not
//! wait for them; a host turns translation on before its devices map.

use core::sync::atomic::{AtomicBool, Ordering};

use bitflags::bitflags;
use heapless::Vec;
use spin::RwLock;

use crate::block::{RequestId, RequestToken};
use crate::dma::mapping::Pin;
use crate::dma::{BounceWait, DmaDirection, DmaMemory, Mapping};
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
    /// No translation starts at that address.
    NotFound,
    /// A mapping through the translation is still live (DMA may still
    /// reach its guest address).
    InUse,
}

impl core::fmt::Display for IommuError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            IommuError::ZeroLength => "zero-length translation",
            IommuError::Overflow => "translation range overflows",
            IommuError::Overlap => "translation overlaps an existing one",
            IommuError::Full => "translation table is full",
            IommuError::NotFound => "no translation starts there",
            IommuError::InUse => "translation in use by a live DMA mapping",
        })
    }
}

impl core::error::Error for IommuError {}

/// A translation and the live mappings through it.
#[derive(Clone, Copy, Debug)]
struct Slot {
    entry: IommuEntry,
    pins: u32,
}

/// A translation stage with up to `N` ranges in front of `inner`.
pub struct Iommu<'a, const N: usize> {
    inner: &'a (dyn DmaMemory + Sync),
    table: RwLock<Vec<Slot, N>>,
    /// Pins kept for requests in flight whose transfer was dropped:
    /// (range start, request). When full, a pin is kept for good.
    kept: spin::Mutex<Vec<(u64, RequestId), N>>,
    enabled: AtomicBool,
}

impl<'a, const N: usize> Iommu<'a, N> {
    /// An enabled IOMMU with an empty table (all DMA faults) in front of
    /// `inner`.
    pub const fn new(inner: &'a (dyn DmaMemory + Sync)) -> Self {
        Iommu {
            inner,
            table: RwLock::new(Vec::new()),
            kept: spin::Mutex::new(Vec::new()),
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
        let idx = t.partition_point(|s| s.entry.iova < iova);
        let overlaps_prev = idx
            .checked_sub(1)
            .and_then(|i| t.get(i))
            .is_some_and(|p| p.entry.last() >= iova);
        let overlaps_next = t.get(idx).is_some_and(|n| last >= n.entry.iova);
        if overlaps_prev || overlaps_next {
            return Err(IommuError::Overlap);
        }
        let entry = IommuEntry {
            iova,
            gpa,
            len,
            perm,
        };
        t.insert(idx, Slot { entry, pins: 0 })
            .map_err(|_| IommuError::Full)
    }

    /// Removes the translation starting at `iova`. Refused with
    /// [`IommuError::InUse`] while a mapping through it is live (see the
    /// module docs); [`IommuError::NotFound`] when none starts there.
    pub fn remove(&self, iova: u64) -> Result<(), IommuError> {
        let mut t = self.table.write();
        let i = t
            .binary_search_by_key(&iova, |s| s.entry.iova)
            .map_err(|_| IommuError::NotFound)?;
        if t.get(i).is_some_and(|s| s.pins > 0) {
            return Err(IommuError::InUse);
        }
        t.remove(i);
        Ok(())
    }

    /// Live mappings through the translation starting at `iova`.
    pub fn pins(&self, iova: u64) -> u32 {
        let t = self.table.read();
        t.binary_search_by_key(&iova, |s| s.entry.iova)
            .ok()
            .and_then(|i| t.get(i))
            .map_or(0, |s| s.pins)
    }

    /// Translates `iova` for `need`; returns the guest address, the bytes
    /// left in that translation, and the translation's start (`None` when
    /// passing through).
    fn translate(&self, iova: u64, need: IommuPerm) -> Result<(u64, u64, Option<u64>), MemError> {
        if !self.enabled.load(Ordering::Acquire) {
            return Ok((iova, (u64::MAX - iova).saturating_add(1), None));
        }
        let t = self.table.read();
        let e = lookup(&t, iova, need)?;
        let off = iova - e.iova;
        Ok((e.gpa + off, e.len - off, Some(e.iova)))
    }

    /// [`Self::translate`] and, atomically with it, one more pin on the
    /// translation found (so it cannot change between the two).
    fn translate_pinned(
        &self,
        iova: u64,
        need: IommuPerm,
    ) -> Result<(u64, u64, Option<u64>), MemError> {
        if !self.enabled.load(Ordering::Acquire) {
            return Ok((iova, (u64::MAX - iova).saturating_add(1), None));
        }
        let mut t = self.table.write();
        let e = lookup(&t, iova, need)?;
        let off = iova - e.iova;
        let found = (e.gpa + off, e.len - off, Some(e.iova));
        if let Some(s) = t.iter_mut().find(|s| s.entry.iova == e.iova) {
            s.pins = s.pins.saturating_add(1);
        }
        Ok(found)
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
            let (gpa, room, _) = self.translate(at, need)?;
            let n = usize::try_from(room).map_or(len - done, |r| r.min(len - done));
            f(gpa, done..done + n)?;
            done += n;
        }
        Ok(())
    }
}

/// The translation covering `iova` that allows `need`.
fn lookup(t: &[Slot], iova: u64, need: IommuPerm) -> Result<IommuEntry, MemError> {
    let idx = t.partition_point(|s| s.entry.iova <= iova);
    let e = idx
        .checked_sub(1)
        .and_then(|i| t.get(i))
        .map(|s| s.entry)
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
    Ok(e)
}

/// Pins end by unmap or drop (`unpin`), or move to the kept list when their
/// request is in flight and its transfer went away (`keep`).
impl<const N: usize> Pin for Iommu<'_, N> {
    fn unpin(&self, key: u64) {
        let mut t = self.table.write();
        if let Some(s) = t.iter_mut().find(|s| s.entry.iova == key) {
            s.pins = s.pins.saturating_sub(1);
        }
    }

    fn keep(&self, key: u64, request: RequestId) {
        // When the list is full the pin is never ended: the range stays
        // in place for good, which is safe.
        let _ = self.kept.lock().push((key, request));
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
        let (gpa, room, key) = self.translate_pinned(addr, perm_for(dir))?;
        let Some(key) = key else {
            return self.inner.map(requester, gpa, len.min(room), dir);
        };
        match self.inner.map(requester, gpa, len.min(room), dir) {
            Ok(m) => m.pinned(self, key).map_err(|_| {
                // Dropping the inner mapping ends it; this pin ends here.
                self.unpin(key);
                MemError::IommuFault {
                    iova: addr,
                    kind: IommuFaultKind::Nested,
                }
            }),
            Err(e) => {
                self.unpin(key);
                Err(e)
            }
        }
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
        let (gpa, room, _) = self.translate(addr, perm_for(dir))?;
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

    fn bounce_wait(&self) -> &dyn BounceWait {
        self.inner.bounce_wait()
    }

    fn reclaim(&self, token: RequestToken) {
        let id = token.id();
        // At most N rounds: each ends one kept pin.
        loop {
            let key = {
                let mut kept = self.kept.lock();
                let Some(i) = kept.iter().position(|&(_, r)| r == id) else {
                    break;
                };
                kept.swap_remove(i).0
            };
            self.unpin(key);
        }
        self.inner.reclaim(token);
    }
}

#[cfg(test)]
mod tests;
