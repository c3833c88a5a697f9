//! One ATA hard disk on a channel: its block device and the per-drive
//! settings the guest can change.

use crate::block::{BlockDevice, check_range};

use super::identify::{DriveInfo, IdentifyData, MAX_MULTIPLE};
use super::taskfile::Geometry;

/// A disk: backend, CHS translation, multiple count, write-cache state and
/// IDENTIFY data.
#[derive(Debug)]
pub(crate) struct Drive<B> {
    pub block: B,
    /// The geometry reported as default (IDENTIFY words 1, 3, 6).
    pub default_geometry: Geometry,
    /// The CHS translation in use (INITIALIZE DEVICE PARAMETERS).
    pub geometry: Geometry,
    /// Sectors per DRQ block of READ/WRITE MULTIPLE (0 = disabled).
    pub multiple: u8,
    /// Volatile write cache enabled; when disabled every write is followed
    /// by a flush before it completes (write-through).
    pub write_cache: bool,
    pub identify: IdentifyData,
}

impl<B: BlockDevice> Drive<B> {
    /// A disk with reset settings (multiple count 16, write cache on).
    pub(crate) fn new(block: B, info: &DriveInfo<'_>) -> Self {
        let capacity = block.sector_count();
        let geometry = Geometry::guess(capacity);
        let identify = IdentifyData::new(info, capacity, geometry, MAX_MULTIPLE, true);
        Drive {
            block,
            default_geometry: geometry,
            geometry,
            multiple: MAX_MULTIPLE,
            write_cache: true,
            identify,
        }
    }

    /// Current capacity in sectors (asked from the backend each time).
    pub(crate) fn sectors(&self) -> u64 {
        self.block.sector_count()
    }

    /// True if `count` sectors from `lba` are on the disk.
    pub(crate) fn range_ok(&self, lba: u64, count: u64) -> bool {
        check_range(self.sectors(), lba, count).is_ok()
    }

    /// What a software reset restores: the multiple count and the default
    /// CHS translation (the write cache and transfer mode persist, as in
    /// QEMU).
    pub(crate) fn soft_reset(&mut self) {
        self.multiple = MAX_MULTIPLE;
        self.identify.set_multiple(MAX_MULTIPLE);
        self.geometry = self.default_geometry;
        self.identify.set_current_geometry(self.geometry);
    }
}
