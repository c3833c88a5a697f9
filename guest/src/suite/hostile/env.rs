//! [`Hx`]: what the hostile cases share on top of the suite's [`Ctx`]: the
//! PCI function and its configuration as set up at boot, the RAM layout
//! (for addresses beyond RAM and the low-memory sentinel), the drive's
//! default geometry, the probe sectors of the known-good DMA, the sectors a
//! case dirtied, and the image copy.

use vmdma_guest::ata::taskfile::TaskFile;
use vmdma_guest::msg;
use vmdma_guest::msg::Msg;
use vmdma_guest::start_info::MEMMAP_TYPE_RAM;

use super::super::{Ctx, Fail};
use crate::arch::dma_memory::{self, ImageCopy};
use crate::arch::{mem, phys};
use crate::pci::{Function, IdeSetup, REG_BAR4, REG_COMMAND};
use crate::platform::BootInfo;

/// Byte the guard areas around the DMA memory hold.
pub const GUARD: u8 = 0x5A;
/// Byte the free RAM below 1 MiB holds.
pub const LOW_SENTINEL: u8 = 0xC3;
/// The low-memory sentinel covers RAM in `[0, LOW_END)` (below the EBDA
/// that PC firmware keeps under 640 KiB).
const LOW_END: u64 = 0x9_F000;
/// Sectors of the known-good DMA read.
pub const PROBE_SECTORS: u32 = 8;
/// Dirty ranges remembered per case.
const MAX_DIRTY: usize = 8;
/// Low-memory sentinel ranges kept.
const MAX_LOW: usize = 4;

/// PCI configuration dwords saved at start and written back after every
/// case (command, BAR4, interrupt line, the PIIX timing registers).
pub const SAVED_CONFIG: [u8; 6] = [REG_COMMAND, REG_BAR4, 0x3C, 0x40, 0x44, 0x48];

/// The hostile suite's state.
pub struct Hx {
    /// The suite context (channel, DMA memory, IDENTIFY, allocation).
    pub ctx: Ctx,
    /// The IDE function and the BAR4 address set up at boot.
    pub ide: IdeSetup,
    /// The saved configuration dwords, in [`SAVED_CONFIG`] order.
    pub(super) config: [u32; SAVED_CONFIG.len()],
    /// End of the highest RAM range below 4 GiB.
    pub ram_end: u64,
    /// Default heads and sectors per track (IDENTIFY words 3 and 6).
    pub geometry: (u16, u16),
    pub(super) low: [(u64, u64); MAX_LOW],
    pub(super) low_n: usize,
    pub(super) probe_lba: u64,
    pub(super) probe_pattern: u32,
    /// 4 sectors reserved at a low LBA (below cylinder 65535 of a 1x1 CHS
    /// geometry) for the CHS cases.
    pub low_lba: u64,
    dirty: [(u64, u32); MAX_DIRTY],
    dirty_n: usize,
    pub(super) image: &'static mut ImageCopy,
    pub(super) image_len: usize,
}

impl Hx {
    /// Saves the platform state, sets up the sentinels and the image copy,
    /// and writes the probe sectors.
    pub fn new(ctx: Ctx, boot: &BootInfo, ide: &IdeSetup) -> Result<Self, Fail> {
        let image = dma_memory::take_image_copy()
            .ok_or_else(|| Fail(Msg::from_text("image copy buffer already taken")))?;
        let mut low = [(0, 0); MAX_LOW];
        let mut low_n = 0;
        let mut ram_end = 0u64;
        for r in boot.memmap().iter().filter(|r| r.kind == MEMMAP_TYPE_RAM) {
            let end = r.addr.saturating_add(r.size);
            if end <= 1 << 32 {
                ram_end = ram_end.max(end);
            }
            let (a, b) = (r.addr.next_multiple_of(8), end.min(LOW_END) & !7);
            if a < b
                && let Some(slot) = low.get_mut(low_n)
            {
                *slot = (a, b - a);
                low_n += 1;
            }
        }
        if ram_end == 0 {
            return Err(Fail(Msg::from_text(
                "the memory map has no RAM below 4 GiB (hostile cases need its end)",
            )));
        }
        let id = &ctx.id;
        let geometry = (id.word(3), id.word(6));
        let f = ide.function;
        let mut config = [0u32; SAVED_CONFIG.len()];
        for (v, reg) in config.iter_mut().zip(SAVED_CONFIG) {
            *v = f.read32(reg);
        }
        let mut hx = Hx {
            ctx,
            ide: *ide,
            config,
            ram_end,
            geometry,
            low,
            low_n,
            probe_lba: 0,
            probe_pattern: 0,
            low_lba: 0,
            dirty: [(0, 0); MAX_DIRTY],
            dirty_n: 0,
            image,
            image_len: 0,
        };
        hx.image_len = phys::copy_image(&mut hx.image.bytes).ok_or_else(|| {
            Fail(msg!(
                "the guest image is larger than the {} KiB image copy",
                dma_memory::IMAGE_COPY_LEN / 1024
            ))
        })?;
        hx.fill_sentinels();
        let lba = hx.ctx.alloc(u64::from(PROBE_SECTORS))?;
        hx.probe_pattern = hx.ctx.write_dma(lba, PROBE_SECTORS)?;
        hx.probe_lba = lba;
        hx.low_lba = hx.ctx.alloc(4)?;
        Ok(hx)
    }

    /// The IDE function.
    pub fn pci(&self) -> Function {
        self.ide.function
    }

    /// The low-memory sentinel ranges.
    pub fn low_ranges(&self) -> &[(u64, u64)] {
        self.low.get(..self.low_n).unwrap_or(&[])
    }

    /// Fills the guard areas and the low-memory ranges with their bytes.
    pub(super) fn fill_sentinels(&mut self) {
        mem::fill(&mut self.ctx.mem.guard_below, GUARD);
        mem::fill(&mut self.ctx.mem.guard_above, GUARD);
        for &(a, l) in self.low.get(..self.low_n).unwrap_or(&[]) {
            let _ = phys::fill(a, l, LOW_SENTINEL);
        }
    }

    /// Remembers that `sectors` at `lba` may hold unpredictable content
    /// after this case; the runner re-stamps them (announced) afterwards.
    pub fn dirty(&mut self, lba: u64, sectors: u32) -> Result<(), Fail> {
        let slot = self
            .dirty
            .get_mut(self.dirty_n)
            .ok_or_else(|| Fail(Msg::from_text("more than 8 dirty ranges in one case")))?;
        *slot = (lba, sectors);
        self.dirty_n += 1;
        Ok(())
    }

    /// Takes the dirty ranges of this case.
    pub(super) fn take_dirty(&mut self) -> ([(u64, u32); MAX_DIRTY], usize) {
        let r = (self.dirty, self.dirty_n);
        self.dirty_n = 0;
        r
    }

    /// The default-geometry INITIALIZE DEVICE PARAMETERS task file.
    pub fn default_geometry_tf(&self) -> TaskFile {
        let (heads, sectors) = self.geometry;
        let mut tf = TaskFile::plain(
            vmdma_guest::ata::taskfile::Drive::Master,
            0,
            u8::try_from(sectors).unwrap_or(63),
        );
        let h = u8::try_from(heads.saturating_sub(1) & 0x0F).unwrap_or(15);
        tf.device |= h;
        tf
    }
}
