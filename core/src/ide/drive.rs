//! One ATA hard disk on a channel: its block device and the per-drive
//! settings the guest can change.

use crate::block::{BlockDevice, check_range};

use super::identify::{DriveInfo, IdentifyData};
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
    /// Largest multiple count: what the channel's PIO buffer holds, at
    /// most 16 (IDENTIFY word 47).
    pub max_multiple: u8,
    /// Sectors per DRQ block of READ/WRITE MULTIPLE (0 = disabled).
    pub multiple: u8,
    /// Volatile write cache enabled; when disabled every write is followed
    /// by a flush before it completes (write-through).
    pub write_cache: bool,
    pub identify: IdentifyData,
    /// The ATAPI state of a CD-ROM drive (`None`: an ATA disk).
    #[cfg(feature = "atapi")]
    pub atapi: Option<super::atapi::AtapiState>,
}

impl<B> Drive<B> {
    /// A disk with reset settings (multiple count `max_multiple`, write
    /// cache on).
    pub(crate) fn new<'m>(block: B, info: &DriveInfo<'_>, max_multiple: u8) -> Self
    where
        B: BlockDevice<'m>,
    {
        let capacity = block.sector_count();
        let geometry = Geometry::guess(capacity);
        let identify = IdentifyData::new(info, capacity, geometry, max_multiple, true);
        Drive {
            block,
            default_geometry: geometry,
            geometry,
            max_multiple,
            multiple: max_multiple,
            write_cache: true,
            identify,
            #[cfg(feature = "atapi")]
            atapi: None,
        }
    }

    /// A CD-ROM drive whose medium is `block` (a backend of 0 sectors is
    /// an empty drive).
    #[cfg(feature = "atapi")]
    pub(crate) fn cdrom(block: B, info: &DriveInfo<'_>) -> Self {
        let geometry = Geometry::guess(0);
        Drive {
            block,
            default_geometry: geometry,
            geometry,
            max_multiple: 0,
            multiple: 0,
            write_cache: false,
            identify: IdentifyData::packet(info),
            atapi: Some(super::atapi::AtapiState::default()),
        }
    }

    /// True for an ATAPI (CD-ROM) drive.
    pub(crate) fn is_atapi(&self) -> bool {
        #[cfg(feature = "atapi")]
        return self.atapi.is_some();
        #[cfg(not(feature = "atapi"))]
        false
    }

    /// 2048-byte blocks on the medium (whole blocks of the backend).
    #[cfg(feature = "atapi")]
    pub(crate) fn cd_blocks<'m>(&self) -> u64
    where
        B: BlockDevice<'m>,
    {
        self.sectors() / super::atapi::SECTORS_PER_BLOCK
    }

    /// Current capacity in sectors (asked from the backend each time).
    pub(crate) fn sectors<'m>(&self) -> u64
    where
        B: BlockDevice<'m>,
    {
        self.block.sector_count()
    }

    /// True if `count` sectors from `lba` are on the disk.
    pub(crate) fn range_ok<'m>(&self, lba: u64, count: u64) -> bool
    where
        B: BlockDevice<'m>,
    {
        check_range(self.sectors(), lba, count).is_ok()
    }

    /// What a software reset restores: the multiple count and the default
    /// CHS translation (the write cache and transfer mode persist, as in
    /// QEMU).
    pub(crate) fn soft_reset(&mut self) {
        #[cfg(feature = "atapi")]
        if let Some(a) = self.atapi.as_mut() {
            a.reset();
            return;
        }
        self.multiple = self.max_multiple;
        self.identify.set_multiple(self.max_multiple);
        self.geometry = self.default_geometry;
        self.identify.set_current_geometry(self.geometry);
    }
}
