//! IDENTIFY DEVICE data (256 little-endian words).
//!
//! Words used by the guest:
//!
//! | word | meaning |
//! |---|---|
//! | 0 | bit 15 clear = ATA device |
//! | 10-19 | serial number, 20 ASCII chars, two per word, first char in the high byte |
//! | 23-26 | firmware revision, 8 chars |
//! | 27-46 | model number, 40 chars |
//! | 47 | bits 7:0 max sectors per READ/WRITE MULTIPLE block |
//! | 49 | bit 9 LBA, bit 8 DMA supported |
//! | 60-61 | LBA28 capacity (clamped to 0x0FFFFFFF) |
//! | 63 | multiword DMA: bits 2:0 supported, bits 10:8 selected |
//! | 83 | bit 10 LBA48, 12 FLUSH CACHE, 13 FLUSH CACHE EXT supported |
//! | 86 | bit 10 LBA48, 12 FLUSH CACHE, 13 FLUSH CACHE EXT enabled |
//! | 88 | Ultra DMA: bits 6:0 supported, bits 14:8 selected |
//! | 100-103 | LBA48 capacity |
//! | 169 | bit 0 DATA SET MANAGEMENT TRIM supported |

/// Number of words.
pub const IDENTIFY_WORDS: usize = 256;

/// Parsed IDENTIFY DEVICE data.
#[derive(Clone)]
pub struct Identify {
    words: [u16; IDENTIFY_WORDS],
}

/// An ATA string field decoded into bytes (fixed capacity).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AtaString {
    bytes: [u8; 40],
    len: usize,
}

impl AtaString {
    /// The raw bytes (trailing spaces included).
    pub fn raw(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }

    /// Whether every byte is printable ASCII (0x20..=0x7E).
    pub fn is_printable(&self) -> bool {
        self.raw().iter().all(|b| (0x20..=0x7E).contains(b))
    }

    /// The text without trailing spaces (`"?"` if not ASCII).
    pub fn trimmed(&self) -> &str {
        core::str::from_utf8(self.raw()).map_or("?", |s| s.trim_end_matches(' '))
    }
}

impl Identify {
    /// Parses 512 bytes (little-endian words).
    pub fn from_bytes(bytes: &[u8; 512]) -> Self {
        let mut words = [0u16; IDENTIFY_WORDS];
        for (w, pair) in words.iter_mut().zip(bytes.chunks_exact(2)) {
            *w = u16::from_le_bytes([
                pair.first().copied().unwrap_or(0),
                pair.get(1).copied().unwrap_or(0),
            ]);
        }
        Identify { words }
    }

    /// Word `i` (0 if `i` >= 256).
    pub fn word(&self, i: usize) -> u16 {
        self.words.get(i).copied().unwrap_or(0)
    }

    fn dword(&self, i: usize) -> u32 {
        u32::from(self.word(i)) | (u32::from(self.word(i + 1)) << 16)
    }

    /// Words 60-61: user-addressable sectors in LBA28 mode.
    pub fn lba28_sectors(&self) -> u32 {
        self.dword(60)
    }

    /// Words 100-103: user-addressable sectors in LBA48 mode.
    pub fn lba48_sectors(&self) -> u64 {
        u64::from(self.dword(100)) | (u64::from(self.dword(102)) << 32)
    }

    /// Word 83 and 86 bit 10: the 48-bit feature set is supported and enabled.
    pub fn lba48(&self) -> bool {
        self.word(83) & (1 << 10) != 0 && self.word(86) & (1 << 10) != 0
    }

    /// The device capacity in sectors: the LBA48 value if supported, else LBA28.
    pub fn capacity(&self) -> u64 {
        if self.lba48() {
            self.lba48_sectors()
        } else {
            u64::from(self.lba28_sectors())
        }
    }

    /// Word 47 bits 7:0: the largest READ/WRITE MULTIPLE block.
    pub fn max_multiple(&self) -> u8 {
        self.word(47).to_le_bytes().first().copied().unwrap_or(0)
    }

    /// Word 169 bit 0: TRIM supported.
    pub fn trim(&self) -> bool {
        self.word(169) & 1 != 0
    }

    /// Decodes `n_words` words from `first` as an ATA string (each word holds
    /// two characters, the first in its high byte).
    pub fn string(&self, first: usize, n_words: usize) -> AtaString {
        let mut s = AtaString {
            bytes: [0; 40],
            len: 0,
        };
        for (i, pair) in s.bytes.chunks_exact_mut(2).take(n_words).enumerate() {
            let w = self.word(first.saturating_add(i)).to_be_bytes();
            pair.copy_from_slice(&w);
            s.len += 2;
        }
        s
    }

    /// Words 10-19: serial number.
    pub fn serial(&self) -> AtaString {
        self.string(10, 10)
    }

    /// Words 23-26: firmware revision.
    pub fn firmware(&self) -> AtaString {
        self.string(23, 4)
    }

    /// Words 27-46: model number.
    pub fn model(&self) -> AtaString {
        self.string(27, 20)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(b: &mut [u8; 512], w: usize, v: u16) {
        b[2 * w..2 * w + 2].copy_from_slice(&v.to_le_bytes());
    }

    /// Stores `s` the way a device does (byte-swapped within words).
    fn put_str(b: &mut [u8; 512], first: usize, n_words: usize, s: &str) {
        let mut padded = [b' '; 40];
        padded[..s.len()].copy_from_slice(s.as_bytes());
        for i in 0..n_words {
            put(
                b,
                first + i,
                u16::from_be_bytes([padded[2 * i], padded[2 * i + 1]]),
            );
        }
    }

    #[test]
    fn capacity_and_features() {
        let mut b = [0u8; 512];
        put(&mut b, 60, 0xFFFF);
        put(&mut b, 61, 0x0FFF);
        put(&mut b, 100, 0x0000);
        put(&mut b, 101, 0x1041);
        put(&mut b, 102, 0x0001);
        put(&mut b, 83, 0x7400);
        put(&mut b, 86, 0x3400);
        put(&mut b, 47, 0x8010);
        put(&mut b, 169, 1);
        let id = Identify::from_bytes(&b);
        assert_eq!(id.lba28_sectors(), 0x0FFF_FFFF);
        assert_eq!(id.lba48_sectors(), 0x1_1041_0000);
        assert!(id.lba48());
        assert_eq!(id.capacity(), 0x1_1041_0000);
        assert_eq!(id.max_multiple(), 16);
        assert!(id.trim());
        assert_eq!(id.word(256), 0);
        put(&mut b, 86, 0);
        assert_eq!(Identify::from_bytes(&b).capacity(), 0x0FFF_FFFF);
    }

    #[test]
    fn strings_are_byte_swapped() {
        let mut b = [0u8; 512];
        put_str(&mut b, 27, 20, "QEMU HARDDISK");
        put_str(&mut b, 10, 10, "QM00001");
        put_str(&mut b, 23, 4, "2.5+");
        let id = Identify::from_bytes(&b);
        assert_eq!(id.model().trimmed(), "QEMU HARDDISK");
        assert_eq!(id.model().raw().len(), 40);
        assert_eq!(id.serial().trimmed(), "QM00001");
        assert_eq!(id.firmware().trimmed(), "2.5+");
        assert!(id.model().is_printable());
        put(&mut b, 27, 0x0001);
        assert!(!Identify::from_bytes(&b).model().is_printable());
    }
}
