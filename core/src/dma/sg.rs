//! Guest scatter/gather lists: `(address, length)` pairs in the device's
//! address space (the `QEMUSGList` of vmdma).

use heapless::Vec;

/// One guest buffer for DMA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SgEntry {
    /// Guest (device-visible) address.
    pub addr: u64,
    /// Length in bytes (0 is allowed and skipped by the transfer).
    pub len: u64,
}

/// Up to `N` SG entries with their total length.
///
/// `repr(C)` with the entries last (after the total): a new list's zeroed
/// scalars are contiguous and precede the uninitialised capacity, so
/// building one does not zero the capacity.
#[derive(Clone, Debug, Default)]
#[repr(C)]
pub struct SgList<const N: usize> {
    total: u64,
    entries: Vec<SgEntry, N>,
}

impl<const N: usize> SgList<N> {
    /// An empty list.
    pub const fn new() -> Self {
        SgList {
            entries: Vec::new(),
            total: 0,
        }
    }

    /// Appends an entry; gives it back if the list is full or the total
    /// would overflow.
    pub fn push(&mut self, addr: u64, len: u64) -> Result<(), SgEntry> {
        let e = SgEntry { addr, len };
        let total = self.total.checked_add(len).ok_or(e)?;
        self.entries.push(e)?;
        self.total = total;
        Ok(())
    }

    /// Sum of the entry lengths.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The entries.
    pub fn entries(&self) -> &[SgEntry] {
        &self.entries
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True without entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Removes all entries.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.total = 0;
    }
}
