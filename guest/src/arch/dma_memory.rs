//! The guest's DMA memory: a 64 KiB-aligned data buffer and a PRD table
//! between two guard areas, plus a staging buffer for gathering and
//! checking data, and (for the hostile suite) a buffer for a copy of the
//! guest image. All of it is in `.bss`, zeroed by the loader, and handed
//! out once with [`take`] and [`take_image_copy`].
//!
//! Devices write this memory behind the compiler's back. The IDE driver
//! only starts a transfer while it holds `&mut DmaMemory`, and every port
//! access is an opaque asm block without `nomem`, so the compiler cannot
//! keep buffer contents in registers across the I/O that completes a DMA.

use vmdma_guest::prd::PRD_TABLE_ENTRIES;

use super::take_once::TakeOnce;

/// Size of the DMA data buffer (four 64 KiB blocks).
pub const DATA_LEN: usize = 256 * 1024;
/// Size of the staging buffer.
pub const STAGE_LEN: usize = 256 * 1024;
/// Size of the guard area below the data buffer.
pub const GUARD_BELOW_LEN: usize = 64 * 1024;
/// Size of the guard area after the PRD table (the rest of its 64 KiB
/// block).
pub const GUARD_ABOVE_LEN: usize = 64 * 1024 - PRD_TABLE_ENTRIES * 8;
/// Size of the buffer for a copy of the guest image (`.text` to the end of
/// `.data`).
pub const IMAGE_COPY_LEN: usize = 512 * 1024;

/// DMA-visible memory. `data` starts on a 64 KiB boundary, and so does the
/// PRD table (4 KiB), so neither a table nor an aligned region of up to
/// 64 KiB crosses a 64 KiB boundary. The guard areas are never a DMA
/// target: the hostile suite fills them with a sentinel and checks that no
/// transfer touched them.
#[repr(C, align(65536))]
pub struct DmaMemory {
    /// Sentinel area right below the data buffer.
    pub guard_below: [u8; GUARD_BELOW_LEN],
    /// Data buffer for transfers.
    pub data: [u8; DATA_LEN],
    /// The PRD table.
    pub prd: [[u32; 2]; PRD_TABLE_ENTRIES],
    /// Sentinel area right after the PRD table.
    pub guard_above: [u8; GUARD_ABOVE_LEN],
}

/// A copy of the guest image, to detect writes into it.
#[repr(C, align(4096))]
pub struct ImageCopy {
    /// The bytes.
    pub bytes: [u8; IMAGE_COPY_LEN],
}

/// A non-DMA buffer for building and checking data.
#[repr(C, align(4096))]
pub struct Stage {
    /// The bytes.
    pub bytes: [u8; STAGE_LEN],
}

impl DmaMemory {
    /// Guest-physical address of `data[offset]` (the low 4 GiB are
    /// identity-mapped and the image lies below 4 GiB), if `offset` is
    /// inside the buffer.
    pub fn data_phys(&self, offset: usize) -> Option<u32> {
        if offset > DATA_LEN {
            return None;
        }
        let base = u32::try_from(self.data.as_ptr() as usize).ok()?;
        base.checked_add(u32::try_from(offset).ok()?)
    }

    /// Guest-physical address of the PRD table.
    pub fn prd_phys(&self) -> Option<u32> {
        u32::try_from(self.prd.as_ptr() as usize).ok()
    }
}

static MEMORY: TakeOnce<DmaMemory> = TakeOnce::new(DmaMemory {
    guard_below: [0; GUARD_BELOW_LEN],
    data: [0; DATA_LEN],
    prd: [[0; 2]; PRD_TABLE_ENTRIES],
    guard_above: [0; GUARD_ABOVE_LEN],
});

static IMAGE_COPY: TakeOnce<ImageCopy> = TakeOnce::new(ImageCopy {
    bytes: [0; IMAGE_COPY_LEN],
});

static STAGE: TakeOnce<Stage> = TakeOnce::new(Stage {
    bytes: [0; STAGE_LEN],
});

/// The DMA memory and the staging buffer; `None` after the first call.
pub fn take() -> Option<(&'static mut DmaMemory, &'static mut Stage)> {
    Some((MEMORY.take()?, STAGE.take()?))
}

/// The image-copy buffer; `None` after the first call.
pub fn take_image_copy() -> Option<&'static mut ImageCopy> {
    IMAGE_COPY.take()
}
