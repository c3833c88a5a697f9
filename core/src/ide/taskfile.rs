//! The ATA task file of one device: the command-block registers, the LBA48
//! "write twice" FIFO (HOB registers), and CHS/LBA28/LBA48 addressing.
//!
//! Both devices on a channel see every register write (they share the
//! cable), so the channel keeps one `TaskFile` per device and writes both;
//! command results land only in the addressed device's copy.

use super::registers::{AtaError, CommandBlockReg, DeviceHead, Status};

/// A CHS translation. `heads` is 1..=16 and `sectors` 1..=255, so the
/// arithmetic on it never divides by zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    /// Cylinders (0..=65535).
    pub cylinders: u16,
    /// Heads per cylinder (1..=16).
    pub heads: u8,
    /// Sectors per track (1..=255).
    pub sectors: u8,
}

impl Geometry {
    /// The default translation of a disk of `capacity` sectors: 16 heads,
    /// 63 sectors per track, 1..=16383 cylinders (the BIOS-compatible limit).
    pub(crate) fn guess(capacity: u64) -> Self {
        Geometry {
            cylinders: u16::try_from((capacity / (16 * 63)).clamp(1, 16383)).unwrap_or(16383),
            heads: 16,
            sectors: 63,
        }
    }

    /// The translation INITIALIZE DEVICE PARAMETERS asks for: `heads`
    /// (1..=16) and `sectors` (1..=255) per track, with as many cylinders as
    /// fit (at most 65535). `None` for zero heads or sectors.
    pub(crate) fn with_params(capacity: u64, heads: u8, sectors: u8) -> Option<Self> {
        if heads == 0 || heads > 16 || sectors == 0 {
            return None;
        }
        let per_cyl = u32::from(heads) * u32::from(sectors);
        // 32-bit division (no 64-bit division routine in 32-bit builds):
        // capacities past u32::MAX sectors give 65535 cylinders either way.
        let capacity = u32::try_from(capacity).unwrap_or(u32::MAX);
        Some(Geometry {
            cylinders: u16::try_from((capacity / per_cyl).min(0xFFFF)).unwrap_or(u16::MAX),
            heads,
            sectors,
        })
    }

    /// Sectors the translation addresses.
    pub(crate) fn capacity(&self) -> u64 {
        u64::from(self.cylinders) * u64::from(self.heads) * u64::from(self.sectors)
    }

    fn per_cylinder(&self) -> u32 {
        // At least 1: heads >= 1 and sectors >= 1.
        (u32::from(self.heads) * u32::from(self.sectors)).max(1)
    }
}

/// The registers of one device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TaskFile {
    pub feature: u8,
    pub hob_feature: u8,
    /// Sector Count. A command widens it to its full transfer count (up to
    /// 65536) and counts it down; reads return the low byte.
    pub nsector: u32,
    pub hob_nsector: u8,
    pub sector: u8,
    pub hob_sector: u8,
    pub lcyl: u8,
    pub hob_lcyl: u8,
    pub hcyl: u8,
    pub hob_hcyl: u8,
    pub select: DeviceHead,
    pub status: Status,
    pub error: AtaError,
    /// The current command uses 48-bit addressing.
    pub lba48: bool,
}

impl TaskFile {
    /// Registers after power-on or reset, with the device signature.
    pub(crate) const fn after_reset(present: bool) -> Self {
        let cyl = if present { 0 } else { 0xFF };
        TaskFile {
            feature: 0,
            hob_feature: 0,
            nsector: 1,
            hob_nsector: 0,
            sector: 1,
            hob_sector: 0,
            lcyl: cyl,
            hob_lcyl: 0,
            hcyl: cyl,
            hob_hcyl: 0,
            select: DeviceHead::OBSOLETE,
            status: Status::DRDY.union(Status::DSC),
            error: AtaError::empty(),
            lba48: false,
        }
    }

    /// The ATA device signature: Sector Count 1, LBA low 1, LBA mid/high 0
    /// for a disk (`0xFF`/`0xFF` where no device is present); clears the
    /// head bits.
    pub(crate) fn set_signature(&mut self, present: bool) {
        self.select.remove(DeviceHead::HEAD);
        self.nsector = 1;
        self.sector = 1;
        let cyl = if present { 0 } else { 0xFF };
        self.lcyl = cyl;
        self.hcyl = cyl;
    }

    /// The ATAPI signature: Sector Count 1, LBA low 1, LBA mid 0x14, LBA
    /// high 0xEB; clears the head bits.
    pub(crate) fn set_packet_signature(&mut self) {
        self.select.remove(DeviceHead::HEAD);
        self.nsector = 1;
        self.sector = 1;
        self.lcyl = 0x14;
        self.hcyl = 0xEB;
    }

    /// A guest write to registers 1–5: the old value moves to the HOB copy.
    pub(crate) fn write_fifo(&mut self, reg: CommandBlockReg, v: u8) {
        match reg {
            CommandBlockReg::ErrorFeatures => {
                self.hob_feature = self.feature;
                self.feature = v;
            }
            CommandBlockReg::SectorCount => {
                self.hob_nsector = low8(self.nsector);
                self.nsector = u32::from(v);
            }
            CommandBlockReg::LbaLow => {
                self.hob_sector = self.sector;
                self.sector = v;
            }
            CommandBlockReg::LbaMid => {
                self.hob_lcyl = self.lcyl;
                self.lcyl = v;
            }
            CommandBlockReg::LbaHigh => {
                self.hob_hcyl = self.hcyl;
                self.hcyl = v;
            }
            CommandBlockReg::Data | CommandBlockReg::Device | CommandBlockReg::StatusCommand => {}
        }
    }

    /// A guest read of registers 1–6 (`hob`: Device Control HOB is set).
    /// Status (7) and Data (0) are read elsewhere.
    pub(crate) fn read(&self, reg: CommandBlockReg, hob: bool) -> u8 {
        match (reg, hob) {
            (CommandBlockReg::ErrorFeatures, false) => self.error.bits(),
            (CommandBlockReg::ErrorFeatures, true) => self.hob_feature,
            (CommandBlockReg::SectorCount, false) => low8(self.nsector),
            (CommandBlockReg::SectorCount, true) => self.hob_nsector,
            (CommandBlockReg::LbaLow, false) => self.sector,
            (CommandBlockReg::LbaLow, true) => self.hob_sector,
            (CommandBlockReg::LbaMid, false) => self.lcyl,
            (CommandBlockReg::LbaMid, true) => self.hob_lcyl,
            (CommandBlockReg::LbaHigh, false) => self.hcyl,
            (CommandBlockReg::LbaHigh, true) => self.hob_hcyl,
            (CommandBlockReg::Device, _) => self.select.bits(),
            (CommandBlockReg::StatusCommand, _) => self.status.bits(),
            (CommandBlockReg::Data, _) => 0xFF,
        }
    }

    /// Widens the Sector Count for a command: LBA28 forms take 8 bits (0 =
    /// 256), LBA48 forms 16 bits from the FIFO (0 = 65536).
    pub(crate) fn begin_command(&mut self, ext: bool) {
        self.lba48 = ext;
        let lo = self.nsector & 0xFF;
        self.nsector = if ext {
            match (u32::from(self.hob_nsector) << 8) | lo {
                0 => 65536,
                n => n,
            }
        } else if lo == 0 {
            256
        } else {
            lo
        };
    }

    /// The address the registers hold for the current command, or `None`
    /// for a CHS address with sector number 0.
    pub(crate) fn lba(&self, geometry: Geometry) -> Option<u64> {
        if self.select.contains(DeviceHead::LBA) {
            let low =
                u64::from(self.sector) | (u64::from(self.lcyl) << 8) | (u64::from(self.hcyl) << 16);
            Some(if self.lba48 {
                low | (u64::from(self.hob_sector) << 24)
                    | (u64::from(self.hob_lcyl) << 32)
                    | (u64::from(self.hob_hcyl) << 40)
            } else {
                low | (u64::from((self.select & DeviceHead::HEAD).bits()) << 24)
            })
        } else {
            let sector = u64::from(self.sector).checked_sub(1)?;
            let cyl = u64::from(self.lcyl) | (u64::from(self.hcyl) << 8);
            let head = u64::from((self.select & DeviceHead::HEAD).bits());
            let spt = u64::from(geometry.sectors);
            Some(cyl * u64::from(geometry.per_cylinder()) + head * spt + sector)
        }
    }

    /// Writes `lba` back into the address registers in the current mode
    /// (after a transfer they show the next sector; the registers keep only
    /// the bits the mode has).
    pub(crate) fn set_lba(&mut self, lba: u64, geometry: Geometry) {
        if self.select.contains(DeviceHead::LBA) {
            let b = lba.to_le_bytes();
            let [s, l, h, s2, l2, h2, ..] = b;
            self.sector = s;
            self.lcyl = l;
            self.hcyl = h;
            if self.lba48 {
                self.hob_sector = s2;
                self.hob_lcyl = l2;
                self.hob_hcyl = h2;
            } else {
                self.select = (self.select - DeviceHead::HEAD)
                    | DeviceHead::from_bits_retain(s2 & DeviceHead::HEAD.bits());
            }
        } else {
            // CHS addresses stay below 2^32 (16-bit cylinder, 4-bit head,
            // 8-bit sector, plus at most 256 sectors transferred), so 32-bit
            // division is exact; it also keeps a 64-bit division routine
            // out of 32-bit builds.
            let lba = u32::try_from(lba).unwrap_or(u32::MAX);
            let per_cyl = geometry.per_cylinder();
            let spt = u32::from(geometry.sectors).max(1);
            let [c0, c1, ..] = (lba / per_cyl).to_le_bytes();
            let r = lba % per_cyl;
            self.lcyl = c0;
            self.hcyl = c1;
            self.select = (self.select - DeviceHead::HEAD)
                | DeviceHead::from_bits_retain(low8(r / spt) & DeviceHead::HEAD.bits());
            self.sector = low8(r % spt).wrapping_add(1);
        }
    }

    /// ABRT: Status DRDY|ERR, Error ABRT (DRQ and BSY cleared).
    pub(crate) fn abort(&mut self) {
        self.status = Status::DRDY | Status::ERR;
        self.error = AtaError::ABRT;
    }
}

/// The low byte of `v`.
fn low8<T: Into<u64>>(v: T) -> u8 {
    v.into().to_le_bytes().first().copied().unwrap_or(0)
}
