//! Task-file contents of a command and the order in which a driver writes
//! them.
//!
//! LBA48 registers are two-deep FIFOs: the driver writes the high-order
//! ("HOB") byte of each register first and the low byte second.

use core::fmt;

use super::regs::device;

/// Number of sectors addressable with LBA28.
pub const LBA28_LIMIT: u64 = 1 << 28;
/// Number of sectors addressable with LBA48.
pub const LBA48_LIMIT: u64 = 1 << 48;

/// The drive on the channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drive {
    /// Device 0 (master).
    Master,
    /// Device 1 (slave).
    Slave,
}

impl Drive {
    /// Device register value selecting this drive (LBA bit clear).
    pub const fn select_bits(self) -> u8 {
        match self {
            Drive::Master => device::OBS,
            Drive::Slave => device::OBS | device::DEV1,
        }
    }
}

/// Register bytes of a command, in write order: Features, Sector Count,
/// LBA low, LBA mid, LBA high.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Regs5 {
    /// Features.
    pub features: u8,
    /// Sector Count.
    pub count: u8,
    /// LBA low.
    pub lba_low: u8,
    /// LBA mid.
    pub lba_mid: u8,
    /// LBA high.
    pub lba_high: u8,
}

/// A command's task file, ready to be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskFile {
    /// HOB bytes (LBA48 only), written first.
    pub hob: Option<Regs5>,
    /// Low bytes.
    pub low: Regs5,
    /// Device register.
    pub device: u8,
}

/// Why a task file cannot be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressError {
    /// The LBA is not addressable in this mode.
    LbaOutOfRange(u64),
    /// The sector count is not encodable in this mode.
    BadCount(u32),
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressError::LbaOutOfRange(l) => write!(f, "LBA {l} is not addressable"),
            AddressError::BadCount(c) => write!(f, "sector count {c} is not encodable"),
        }
    }
}

/// The byte `n` (0 = least significant) of `v`.
fn byte(v: u64, n: usize) -> u8 {
    v.to_le_bytes().get(n).copied().unwrap_or(0)
}

impl TaskFile {
    /// A task file without address: Features and Sector Count only.
    pub fn plain(drive: Drive, features: u8, count: u8) -> Self {
        TaskFile {
            hob: None,
            low: Regs5 {
                features,
                count,
                ..Regs5::default()
            },
            device: drive.select_bits(),
        }
    }

    /// An LBA28 command on `drive`: `sectors` in 1..=256 (256 is encoded
    /// as 0).
    pub fn lba28(drive: Drive, lba: u64, sectors: u32, features: u8) -> Result<Self, AddressError> {
        if lba >= LBA28_LIMIT {
            return Err(AddressError::LbaOutOfRange(lba));
        }
        let count = match sectors {
            256 => 0,
            1..=255 => byte(u64::from(sectors), 0),
            _ => return Err(AddressError::BadCount(sectors)),
        };
        Ok(TaskFile {
            hob: None,
            low: Regs5 {
                features,
                count,
                lba_low: byte(lba, 0),
                lba_mid: byte(lba, 1),
                lba_high: byte(lba, 2),
            },
            device: drive.select_bits() | device::LBA | (byte(lba, 3) & 0x0F),
        })
    }

    /// An LBA48 command on `drive`: `sectors` in 1..=65536 (65536 is
    /// encoded as 0).
    pub fn lba48(drive: Drive, lba: u64, sectors: u32, features: u8) -> Result<Self, AddressError> {
        if lba >= LBA48_LIMIT {
            return Err(AddressError::LbaOutOfRange(lba));
        }
        let count = match sectors {
            65536 => 0,
            1..=65535 => u64::from(sectors),
            _ => return Err(AddressError::BadCount(sectors)),
        };
        Ok(Self::lba48_raw(drive, lba, count, u16::from(features)))
    }

    /// An LBA48 task file with raw 16-bit count and features (any values,
    /// for register tests). Bits above 48 of `lba` are ignored.
    pub fn lba48_raw(drive: Drive, lba: u64, count: u64, features: u16) -> Self {
        let f = u64::from(features);
        TaskFile {
            hob: Some(Regs5 {
                features: byte(f, 1),
                count: byte(count, 1),
                lba_low: byte(lba, 3),
                lba_mid: byte(lba, 4),
                lba_high: byte(lba, 5),
            }),
            low: Regs5 {
                features: byte(f, 0),
                count: byte(count, 0),
                lba_low: byte(lba, 0),
                lba_mid: byte(lba, 1),
                lba_high: byte(lba, 2),
            },
            device: drive.select_bits() | device::LBA,
        }
    }
}

/// LBA48 address held by HOB and low LBA bytes.
pub fn lba48_from(hob: &Regs5, low: &Regs5) -> u64 {
    u64::from_le_bytes([
        low.lba_low,
        low.lba_mid,
        low.lba_high,
        hob.lba_low,
        hob.lba_mid,
        hob.lba_high,
        0,
        0,
    ])
}

/// LBA28 address held by the low LBA bytes and the Device register.
pub fn lba28_from(low: &Regs5, device: u8) -> u64 {
    u64::from_le_bytes([
        low.lba_low,
        low.lba_mid,
        low.lba_high,
        device & 0x0F,
        0,
        0,
        0,
        0,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lba28_encoding() {
        let tf = TaskFile::lba28(Drive::Master, 0x0FFF_FFFF, 256, 0).unwrap();
        assert_eq!(tf.hob, None);
        assert_eq!(tf.low.count, 0);
        assert_eq!(
            (tf.low.lba_low, tf.low.lba_mid, tf.low.lba_high),
            (0xFF, 0xFF, 0xFF)
        );
        assert_eq!(tf.device, 0xEF);
        assert_eq!(lba28_from(&tf.low, tf.device), 0x0FFF_FFFF);
        let tf = TaskFile::lba28(Drive::Slave, 0x0123_4567, 1, 3).unwrap();
        assert_eq!(tf.device, 0xF1);
        assert_eq!(tf.low.features, 3);
        assert_eq!(tf.low.count, 1);
        assert_eq!(
            TaskFile::lba28(Drive::Master, LBA28_LIMIT, 1, 0),
            Err(AddressError::LbaOutOfRange(LBA28_LIMIT))
        );
        assert_eq!(
            TaskFile::lba28(Drive::Master, 0, 0, 0),
            Err(AddressError::BadCount(0))
        );
        assert_eq!(
            TaskFile::lba28(Drive::Master, 0, 257, 0),
            Err(AddressError::BadCount(257))
        );
    }

    #[test]
    fn lba48_encoding() {
        let tf = TaskFile::lba48(Drive::Master, 0x0000_ABCD_1000_0123, 0x1_0000, 0).unwrap();
        let hob = tf.hob.unwrap();
        assert_eq!((hob.lba_low, hob.lba_mid, hob.lba_high), (0x10, 0xCD, 0xAB));
        assert_eq!(
            (tf.low.lba_low, tf.low.lba_mid, tf.low.lba_high),
            (0x23, 0x01, 0x00)
        );
        assert_eq!((hob.count, tf.low.count), (0, 0));
        assert_eq!(tf.device, 0xE0);
        assert_eq!(lba48_from(&hob, &tf.low), 0xABCD_1000_0123);
        let tf = TaskFile::lba48(Drive::Master, 5, 300, 0).unwrap();
        assert_eq!((tf.hob.unwrap().count, tf.low.count), (1, 44));
        assert_eq!(
            TaskFile::lba48(Drive::Master, LBA48_LIMIT, 1, 0),
            Err(AddressError::LbaOutOfRange(LBA48_LIMIT))
        );
        assert_eq!(
            TaskFile::lba48(Drive::Master, 0, 65537, 0),
            Err(AddressError::BadCount(65537))
        );
        let raw = TaskFile::lba48_raw(Drive::Master, 0, 0xBEEF, 0x1234);
        assert_eq!((raw.hob.unwrap().features, raw.low.features), (0x12, 0x34));
        assert_eq!((raw.hob.unwrap().count, raw.low.count), (0xBE, 0xEF));
    }

    #[test]
    fn plain() {
        let tf = TaskFile::plain(Drive::Slave, 0x03, 0x22);
        assert_eq!(tf.device, 0xB0);
        assert_eq!((tf.low.features, tf.low.count), (0x03, 0x22));
    }
}
