//! Buffer layouts: the fragments a PRD table describes (in RAM or in the
//! MMIO scratch region), scattering and gathering data through them, and
//! canaries around them.

use vmdma_guest::msg;
use vmdma_guest::msg::Msg;
use vmdma_guest::prd::{self, Region};

use super::fail;
use crate::arch::dma_memory::DATA_LEN;
use crate::arch::{mem, mmio};
use crate::suite::{Ctx, Fail};

/// Byte the data buffer is filled with before a read, to see what a
/// transfer touched.
pub const CANARY: u8 = 0xA5;
/// Canary bytes checked after the last fragment.
pub const CANARY_MARGIN: usize = 1024;
/// Largest number of fragments in a layout.
pub const MAX_FRAGS: usize = 64;

/// Where a fragment lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Space {
    /// The RAM data buffer (`DmaMemory::data`).
    Ram,
    /// The MMIO scratch region.
    Mmio,
}

/// One PRD region: an offset into a space and a length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frag {
    /// The space.
    pub space: Space,
    /// Offset from the start of the space.
    pub offset: usize,
    /// Length in bytes.
    pub len: u32,
}

/// The fragments of one transfer, in transfer order. RAM fragments must be
/// in ascending, non-overlapping order (for the canary check).
pub struct Layout {
    frags: [Frag; MAX_FRAGS],
    n: usize,
}

impl Layout {
    /// An empty layout.
    pub fn new() -> Self {
        Layout {
            frags: [Frag {
                space: Space::Ram,
                offset: 0,
                len: 0,
            }; MAX_FRAGS],
            n: 0,
        }
    }

    /// Appends a fragment.
    pub fn push(&mut self, space: Space, offset: usize, len: u32) -> Result<(), Fail> {
        let slot = self
            .frags
            .get_mut(self.n)
            .ok_or_else(|| fail(msg!("more than {MAX_FRAGS} fragments")))?;
        *slot = Frag { space, offset, len };
        self.n += 1;
        Ok(())
    }

    /// `bytes` contiguous bytes of the RAM buffer from `offset`, split at
    /// 64 KiB boundaries (the buffer is 64 KiB aligned).
    pub fn ram(offset: usize, bytes: usize) -> Result<Self, Fail> {
        let mut l = Layout::new();
        for (at, len) in prd::split_64k(offset, bytes) {
            l.push(Space::Ram, at, len)?;
        }
        Ok(l)
    }

    /// The fragments.
    pub fn frags(&self) -> &[Frag] {
        self.frags.get(..self.n).unwrap_or(&[])
    }
}

impl Ctx {
    pub(super) fn mmio_addr(&self, offset: usize, len: u32) -> Result<u64, Fail> {
        let s = self
            .scratch
            .ok_or_else(|| fail(Msg::from_text("no MMIO scratch region")))?;
        let end = (offset as u64).checked_add(u64::from(len));
        if end.is_none_or(|e| e > s.len) || !offset.is_multiple_of(8) || !len.is_multiple_of(8) {
            return Err(fail(msg!(
                "MMIO fragment {offset:#x}+{len:#x} outside the scratch region or not 8-byte aligned"
            )));
        }
        Ok(s.base + offset as u64)
    }

    /// Copies the staging buffer into the layout's fragments, in order.
    pub fn scatter(&mut self, layout: &Layout) -> Result<(), Fail> {
        let mut pos = 0usize;
        for f in layout.frags() {
            let len = f.len as usize;
            let src = self
                .stage
                .bytes
                .get(pos..pos + len)
                .ok_or_else(|| fail(msg!("layout exceeds the staging buffer")))?;
            match f.space {
                Space::Ram => {
                    let dst = self
                        .mem
                        .data
                        .get_mut(f.offset..f.offset + len)
                        .ok_or_else(|| {
                            fail(msg!("fragment {:#x} outside the DMA buffer", f.offset))
                        })?;
                    mem::copy(dst, src);
                }
                Space::Mmio => {
                    let base = self.mmio_addr(f.offset, f.len)?;
                    for (i, w) in src.chunks_exact(8).enumerate() {
                        let v = u64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
                        if !mmio::write64(base + 8 * i as u64, v) {
                            return Err(fail(msg!("MMIO write at {base:#x} refused")));
                        }
                    }
                }
            }
            pos += len;
        }
        Ok(())
    }

    /// Copies the layout's fragments, in order, into the staging buffer.
    pub fn gather(&mut self, layout: &Layout) -> Result<(), Fail> {
        let mut pos = 0usize;
        for f in layout.frags() {
            let len = f.len as usize;
            let base = match f.space {
                Space::Mmio => Some(self.mmio_addr(f.offset, f.len)?),
                Space::Ram => None,
            };
            let dst = self
                .stage
                .bytes
                .get_mut(pos..pos + len)
                .ok_or_else(|| fail(msg!("layout exceeds the staging buffer")))?;
            match base {
                None => {
                    let src = self.mem.data.get(f.offset..f.offset + len).ok_or_else(|| {
                        fail(msg!("fragment {:#x} outside the DMA buffer", f.offset))
                    })?;
                    mem::copy(dst, src);
                }
                Some(base) => {
                    for (i, w) in dst.chunks_exact_mut(8).enumerate() {
                        let v = mmio::read64(base + 8 * i as u64)
                            .ok_or_else(|| fail(msg!("MMIO read at {base:#x} refused")))?;
                        w.copy_from_slice(&v.to_le_bytes());
                    }
                }
            }
            pos += len;
        }
        Ok(())
    }

    /// One past the last RAM byte the layout's canary check covers.
    fn canary_end(layout: &Layout) -> usize {
        let end = layout
            .frags()
            .iter()
            .filter(|f| f.space == Space::Ram)
            .map(|f| f.offset + f.len as usize)
            .max()
            .unwrap_or(0);
        (end + CANARY_MARGIN).min(DATA_LEN)
    }

    /// Fills the RAM span of the layout (plus a margin) and its MMIO
    /// fragments with [`CANARY`].
    pub fn fill_canary(&mut self, layout: &Layout) -> Result<(), Fail> {
        let end = Self::canary_end(layout);
        mem::fill(self.mem.data.get_mut(..end).unwrap_or(&mut []), CANARY);
        for f in layout.frags().iter().filter(|f| f.space == Space::Mmio) {
            let base = self.mmio_addr(f.offset, f.len)?;
            let word = u64::from_ne_bytes([CANARY; 8]);
            for i in 0..u64::from(f.len / 8) {
                if !mmio::write64(base + 8 * i, word) {
                    return Err(fail(msg!("MMIO write at {base:#x} refused")));
                }
            }
        }
        Ok(())
    }

    /// Checks that RAM outside the layout's fragments (up to the margin
    /// after the last one) still holds [`CANARY`].
    pub fn check_canary(&self, layout: &Layout) -> Result<(), Fail> {
        let end = Self::canary_end(layout);
        let mut at = 0usize;
        let check = |from: usize, to: usize| -> Result<(), Fail> {
            let gap = self.mem.data.get(from..to).unwrap_or(&[]);
            match mem::first_not(gap, CANARY) {
                None => Ok(()),
                Some(i) => Err(fail(msg!(
                    "DMA wrote outside its PRD regions: data buffer offset {:#x} is {:#04x}",
                    from + i,
                    gap.get(i).copied().unwrap_or(0)
                ))),
            }
        };
        for f in layout.frags().iter().filter(|f| f.space == Space::Ram) {
            if f.offset > at {
                check(at, f.offset)?;
            }
            at = at.max(f.offset + f.len as usize);
        }
        check(at, end)
    }

    /// Checks that the RAM fragments of the layout still hold [`CANARY`]
    /// (no data moved).
    pub fn check_untouched(&self, layout: &Layout) -> Result<(), Fail> {
        for f in layout.frags().iter().filter(|f| f.space == Space::Ram) {
            let region = self
                .mem
                .data
                .get(f.offset..f.offset + f.len as usize)
                .unwrap_or(&[]);
            if let Some(i) = mem::first_not(region, CANARY) {
                return Err(fail(msg!(
                    "data moved into PRD region at offset {:#x}",
                    f.offset + i
                )));
            }
        }
        Ok(())
    }

    /// Writes the layout as the PRD table.
    pub fn load_prds(&mut self, layout: &Layout) -> Result<(), Fail> {
        let mut regions = [Region { addr: 0, len: 0 }; MAX_FRAGS];
        for (r, f) in regions.iter_mut().zip(layout.frags()) {
            let addr = match f.space {
                Space::Ram => self
                    .mem
                    .data_phys(f.offset)
                    .ok_or_else(|| fail(msg!("fragment {:#x} outside the DMA buffer", f.offset)))?,
                Space::Mmio => u32::try_from(self.mmio_addr(f.offset, f.len)?)
                    .map_err(|_| fail(msg!("MMIO scratch above 4 GiB")))?,
            };
            *r = Region { addr, len: f.len };
        }
        let regions = regions.get(..layout.frags().len()).unwrap_or(&[]);
        prd::encode_table(regions, &mut self.mem.prd).map_err(|e| fail(msg!("{e}")))?;
        Ok(())
    }
}
