//! The IDENTIFY DEVICE data of a hard disk (512 bytes = 256 little-endian
//! words), built once per drive and patched by SET FEATURES, SET MULTIPLE
//! MODE and INITIALIZE DEVICE PARAMETERS.
//!
//! The words follow ATA/ATAPI-6 (and ACS-2 for TRIM) and match what QEMU's
//! `ide-hd` reports, except: no SMART support is claimed (vmdma aborts
//! SMART), word 50 has its "shall be one" bit 14, word 59 tracks the current
//! multiple count, and word 255 carries the integrity signature and
//! checksum.

use super::taskfile::Geometry;

/// Number of words in IDENTIFY data.
pub const IDENTIFY_WORDS: usize = 256;
/// Largest LBA28 capacity reported in words 60–61.
/// Most 512-byte blocks of LBA range entries one DATA SET MANAGEMENT
/// command may carry (IDENTIFY word 105, ACS-2). Each block holds 64
/// ranges and every range is one synchronous discard inside the guest's
/// START write, so the limit bounds how long one command can hold the
/// vCPU (QEMU advertises none and accepts up to 65535 blocks).
pub const MAX_DSM_BLOCKS: u16 = 8;

const LBA28_MAX_SECTORS: u64 = 0x0FFF_FFFF;
/// Most sectors per DRQ block of READ/WRITE MULTIPLE.
pub(crate) const MAX_MULTIPLE: u8 = 16;

/// Strings a drive reports in IDENTIFY DEVICE (ASCII; other characters are
/// replaced by `?`, and each is truncated to its field and space-padded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DriveInfo<'a> {
    /// Model number, up to 40 characters (words 27–46).
    pub model: &'a str,
    /// Serial number, up to 20 characters (words 10–19).
    pub serial: &'a str,
    /// Firmware revision, up to 8 characters (words 23–26).
    pub firmware: &'a str,
}

impl DriveInfo<'static> {
    /// vmdma's default identity for the master disk.
    pub const MASTER: DriveInfo<'static> = DriveInfo {
        model: "VMDMA HARDDISK",
        serial: "VD00001",
        firmware: "0.1",
    };
    /// vmdma's default identity for a CD-ROM drive.
    #[cfg(feature = "atapi")]
    pub const CDROM: DriveInfo<'static> = DriveInfo {
        model: "VMDMA DVD-ROM",
        serial: "VD00003",
        firmware: "0.1",
    };
    /// vmdma's default identity for the slave disk.
    pub const SLAVE: DriveInfo<'static> = DriveInfo {
        model: "VMDMA HARDDISK",
        serial: "VD00002",
        firmware: "0.1",
    };
}

/// A transfer mode selected with SET FEATURES subcommand 0x03.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TransferMode {
    /// PIO default or PIO flow-control mode n.
    Pio,
    /// Single-word DMA mode n (0..=2).
    SingleWordDma(u8),
    /// Multiword DMA mode n (0..=2).
    MultiwordDma(u8),
    /// Ultra DMA mode n (0..=5).
    UltraDma(u8),
}

impl TransferMode {
    /// Decodes the Sector Count value of SET FEATURES 0x03 (bits 7:3 the
    /// class, bits 2:0 the mode); `None` for a class or mode the drive does
    /// not support.
    pub(crate) fn decode(v: u8) -> Option<Self> {
        let mode = v & 0x07;
        match v >> 3 {
            0 => Some(TransferMode::Pio),
            1 if mode <= 4 => Some(TransferMode::Pio),
            2 if mode <= 2 => Some(TransferMode::SingleWordDma(mode)),
            4 if mode <= 2 => Some(TransferMode::MultiwordDma(mode)),
            8 if mode <= 5 => Some(TransferMode::UltraDma(mode)),
            _ => None,
        }
    }
}

/// IDENTIFY DEVICE words.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct IdentifyData {
    words: [u16; IDENTIFY_WORDS],
}

impl core::fmt::Debug for IdentifyData {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("IdentifyData").finish_non_exhaustive()
    }
}

/// Supported and default-selected DMA modes.
const SWDMA_SUPPORTED: u16 = 0x0007;
const MWDMA_SUPPORTED: u16 = 0x0007;
const UDMA_SUPPORTED: u16 = 0x003F;
/// Word 88 as QEMU reports it after reset: UDMA 0–5 supported, UDMA5 selected.
const UDMA5_SELECTED: u16 = 1 << 13;
/// Word 85/82 bit 5: volatile write cache.
const WRITE_CACHE: u16 = 1 << 5;

impl IdentifyData {
    /// The IDENTIFY data of a hard disk of `capacity` sectors.
    pub(crate) fn new(
        info: &DriveInfo<'_>,
        capacity: u64,
        default_geometry: Geometry,
        max_multiple: u8,
        write_cache: bool,
    ) -> Self {
        let mut d = IdentifyData {
            words: [0; IDENTIFY_WORDS],
        };
        d.set(0, 0x0040); // fixed (non-removable) ATA device
        d.set(1, default_geometry.cylinders);
        d.set(3, u16::from(default_geometry.heads));
        d.set(
            4,
            512u16.saturating_mul(u16::from(default_geometry.sectors)),
        );
        d.set(5, 512);
        d.set(6, u16::from(default_geometry.sectors));
        d.put_string(10, 10, info.serial);
        d.set(20, 3);
        d.set(21, 512);
        d.set(22, 4);
        d.put_string(23, 4, info.firmware);
        d.put_string(27, 20, info.model);
        d.set(47, 0x8000 | u16::from(max_multiple));
        d.set(48, 1); // 32-bit PIO data transfers
        d.set(49, (1 << 11) | (1 << 9) | (1 << 8)); // IORDY, LBA, DMA
        d.set(50, 1 << 14);
        d.set(51, 0x200);
        d.set(52, 0x200);
        d.set(53, 0x0007); // words 54-58, 64-70 and 88 valid
        d.set_current_geometry(default_geometry);
        d.set_multiple(max_multiple);
        let lba28 = capacity.min(LBA28_MAX_SECTORS);
        d.set(60, low16(lba28));
        d.set(61, low16(lba28 >> 16));
        d.set(62, SWDMA_SUPPORTED);
        d.set(63, MWDMA_SUPPORTED);
        d.set(64, 0x0003); // PIO 3 and 4
        for w in 65..=68 {
            d.set(w, 120);
        }
        d.set(69, 1 << 14); // deterministic read after TRIM
        d.set(80, 0x00F0); // ATA-4 .. ATA-7
        d.set(81, 0x0016);
        d.set(82, (1 << 14) | WRITE_CACHE); // NOP, write cache
        d.set(83, (1 << 14) | (1 << 13) | (1 << 12) | (1 << 10)); // FLUSH EXT, FLUSH, LBA48
        d.set(84, 1 << 14);
        d.set(86, (1 << 13) | (1 << 12) | (1 << 10));
        d.set(87, 1 << 14);
        d.set(88, UDMA_SUPPORTED | UDMA5_SELECTED);
        d.set(93, 0x6001);
        for (i, w) in (100..=103).enumerate() {
            d.set(w, low16(capacity >> (16 * i)));
        }
        d.set(105, MAX_DSM_BLOCKS); // 512-byte blocks of ranges per DSM command
        d.set(169, 1); // DATA SET MANAGEMENT / TRIM supported
        d.set_write_cache(write_cache);
        d
    }

    /// The IDENTIFY PACKET DEVICE data of a CD-ROM drive (ATA/ATAPI-6),
    /// the words QEMU's `ide-cd` reports: ATAPI CD-ROM, removable, DRQ
    /// within 50 us of PACKET (no interrupt before the packet), 12-byte
    /// packets; LBA and DMA; PIO 3-4, multiword DMA 0-2, UDMA 0-5.
    #[cfg(feature = "atapi")]
    pub(crate) fn packet(info: &DriveInfo<'_>) -> Self {
        let mut d = IdentifyData {
            words: [0; IDENTIFY_WORDS],
        };
        d.set(0, 0x85C0);
        d.put_string(10, 10, info.serial);
        d.set(20, 3);
        d.set(21, 512);
        d.set(22, 4);
        d.put_string(23, 4, info.firmware);
        d.put_string(27, 20, info.model);
        d.set(48, 1);
        d.set(49, (1 << 9) | (1 << 8)); // LBA, DMA
        d.set(53, 0x0007);
        d.set(62, SWDMA_SUPPORTED);
        d.set(63, MWDMA_SUPPORTED);
        d.set(64, 0x0003);
        d.set(65, 0xB4);
        d.set(66, 0xB4);
        d.set(67, 0x12C);
        d.set(68, 0xB4);
        d.set(71, 30);
        d.set(72, 30);
        d.set(80, 0x001E); // ATA-1 .. ATA-4
        d.set(88, UDMA_SUPPORTED | UDMA5_SELECTED);
        d
    }

    /// The ATA string of `words` words from `first`, in reading order,
    /// into `out` (as far as it reaches).
    #[cfg(feature = "atapi")]
    pub(crate) fn string(&self, first: usize, words: usize, out: &mut [u8]) {
        let src = self.words.iter().skip(first).take(words);
        for (dst, w) in out.chunks_mut(2).zip(src) {
            for (d, s) in dst.iter_mut().zip(w.to_be_bytes()) {
                *d = s;
            }
        }
    }

    /// Copies the 512 bytes (little-endian words) into `out`.
    pub(crate) fn copy_to(&self, out: &mut [u8]) {
        for (dst, w) in out.chunks_exact_mut(2).zip(self.words.iter()) {
            dst.copy_from_slice(&w.to_le_bytes());
        }
    }

    /// Records a SET FEATURES transfer-mode selection (words 62, 63, 88).
    pub(crate) fn set_transfer_mode(&mut self, mode: TransferMode) {
        let [w62, w63, w88] = transfer_words(mode);
        self.set(62, w62);
        self.set(63, w63);
        self.set(88, w88);
    }

    /// Words 62, 63 and 88 (the selected transfer mode).
    #[cfg(feature = "snapshot")]
    pub(crate) fn transfer_mode_words(&self) -> [u16; 3] {
        let w = |i: usize| self.words.get(i).copied().unwrap_or(0);
        [w(62), w(63), w(88)]
    }

    /// Records the write-cache state (word 85 bit 5).
    pub(crate) fn set_write_cache(&mut self, on: bool) {
        self.set(85, (1 << 14) | if on { WRITE_CACHE } else { 0 });
    }

    /// Records the current multiple count (word 59).
    pub(crate) fn set_multiple(&mut self, multiple: u8) {
        self.set(
            59,
            if multiple == 0 {
                0
            } else {
                0x100 | u16::from(multiple)
            },
        );
    }

    /// Records the current CHS translation (words 54–58).
    pub(crate) fn set_current_geometry(&mut self, g: Geometry) {
        self.set(54, g.cylinders);
        self.set(55, u16::from(g.heads));
        self.set(56, u16::from(g.sectors));
        let cap = g.capacity().min(u64::from(u32::MAX));
        self.set(57, low16(cap));
        self.set(58, low16(cap >> 16));
    }

    fn set(&mut self, index: usize, v: u16) {
        if let Some(w) = self.words.get_mut(index) {
            *w = v;
        }
        self.seal();
    }

    /// Writes `s` into `words` words from `first`, two characters per word
    /// with the first in the high byte (ATA string order), space-padded.
    fn put_string(&mut self, first: usize, words: usize, s: &str) {
        let mut chars = s.bytes().map(|b| {
            if b.is_ascii_graphic() || b == b' ' {
                b
            } else {
                b'?'
            }
        });
        for i in 0..words {
            let hi = chars.next().unwrap_or(b' ');
            let lo = chars.next().unwrap_or(b' ');
            if let Some(w) = self.words.get_mut(first + i) {
                *w = u16::from_be_bytes([hi, lo]);
            }
        }
        self.seal();
    }

    /// Word 255: signature 0xA5 in bits 7:0 and, in bits 15:8, the byte that
    /// makes all 512 bytes sum to zero (mod 256).
    fn seal(&mut self) {
        let sum = self
            .words
            .iter()
            .take(IDENTIFY_WORDS - 1)
            .fold(0xA5u8, |acc, w| {
                let [lo, hi] = w.to_le_bytes();
                acc.wrapping_add(lo).wrapping_add(hi)
            });
        if let Some(w) = self.words.get_mut(IDENTIFY_WORDS - 1) {
            *w = u16::from_le_bytes([0xA5, 0u8.wrapping_sub(sum)]);
        }
    }
}

/// Words 62, 63 and 88 with `mode` selected.
fn transfer_words(mode: TransferMode) -> [u16; 3] {
    let (sw, mw, udma) = match mode {
        TransferMode::Pio => (0, 0, 0),
        TransferMode::SingleWordDma(n) => (1u16 << (8 + n), 0, 0),
        TransferMode::MultiwordDma(n) => (0, 1u16 << (8 + n), 0),
        TransferMode::UltraDma(n) => (0, 0, 1u16 << (8 + n)),
    };
    [
        SWDMA_SUPPORTED | sw,
        MWDMA_SUPPORTED | mw,
        UDMA_SUPPORTED | udma,
    ]
}

/// The transfer mode whose words 62, 63 and 88 are `words`, if any (the
/// power-on words select UDMA5).
#[cfg(feature = "snapshot")]
pub(crate) fn transfer_mode_of(words: [u16; 3]) -> Option<TransferMode> {
    (0u8..=0x47)
        .filter_map(TransferMode::decode)
        .find(|&m| transfer_words(m) == words)
}

/// The low 16 bits of `v` (the mask makes the cast lossless).
const fn low16(v: u64) -> u16 {
    (v & 0xFFFF) as u16
}
