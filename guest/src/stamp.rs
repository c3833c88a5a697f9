//! Sector stamps: the only data the guest ever writes to the disk.
//!
//! Sector `lba` written with pattern `p` is exactly
//! [`vmdma_protocol::stamp_sector`]`(lba, p)`: a 16-byte header (LBA,
//! pattern, magic) and a body that depends only on the pattern. The guest
//! builds one [`Template`] per pattern and stamps headers per sector, which
//! keeps the (slow, emulated) per-byte work small.

use core::fmt;

use vmdma_protocol::{STAMP_MAGIC, STAMP_SECTOR};

/// Sector size.
pub const SECTOR: usize = STAMP_SECTOR;
/// Length of the per-sector header.
pub const HEADER_LEN: usize = 16;

/// A sector of pattern `pattern` with a zero header: copy it, then
/// [`write_header`].
#[derive(Clone)]
pub struct Template {
    pattern: u32,
    sector: [u8; SECTOR],
}

impl Template {
    /// Builds the template of `pattern`, eight bytes at a time: body byte
    /// `j` is `j as u8 ^ pattern as u8`
    /// ([`stamp_byte`](vmdma_protocol::stamp_byte)), so word `k`
    /// (bytes `8k .. 8k + 8`) is the byte sequence `8k % 256 ..` XOR the
    /// pattern byte in every lane. (Guest instructions may be emulated one
    /// by one; a byte loop here cost milliseconds of every boot.)
    pub fn new(pattern: u32) -> Self {
        /// Bytes 0, 1, .., 7 of a word.
        const IOTA: u64 = 0x0706_0504_0302_0100;
        /// Adds 8 to every byte lane.
        const STEP: u64 = 0x0808_0808_0808_0808;
        let lanes = u64::from_ne_bytes([pattern.to_le_bytes()[0]; 8]);
        let mut sector = [0u8; SECTOR];
        for (k, w) in sector.chunks_exact_mut(8).enumerate().skip(HEADER_LEN / 8) {
            // Byte lanes never carry: (k % 32) * 8 + 7 <= 255.
            let bytes = IOTA + (k as u64 % 32) * STEP;
            w.copy_from_slice(&(bytes ^ lanes).to_le_bytes());
        }
        Template { pattern, sector }
    }

    /// The pattern.
    pub fn pattern(&self) -> u32 {
        self.pattern
    }

    /// The whole sector (header bytes zero).
    pub fn sector(&self) -> &[u8; SECTOR] {
        &self.sector
    }

    /// The body (bytes 16..512).
    pub fn body(&self) -> &[u8] {
        self.sector.get(HEADER_LEN..).unwrap_or(&[])
    }
}

/// The header of sector `lba` with `pattern`.
pub fn header(lba: u64, pattern: u32) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    let (a, rest) = h.split_at_mut(LBA_LEN);
    a.copy_from_slice(&lba.to_le_bytes());
    let (b, c) = rest.split_at_mut(4);
    b.copy_from_slice(&pattern.to_le_bytes());
    c.copy_from_slice(&STAMP_MAGIC);
    h
}

/// Writes the header of (`lba`, `pattern`) into the first 16 bytes of
/// `sector` (no-op if it is shorter).
pub fn write_header(sector: &mut [u8], lba: u64, pattern: u32) {
    if let Some(dst) = sector.get_mut(..HEADER_LEN) {
        dst.copy_from_slice(&header(lba, pattern));
    }
}

/// Length of the LBA field at the start of a header.
const LBA_LEN: usize = 8;

/// Rewrites only the LBA field of a header that [`write_header`] wrote, so
/// that the sector becomes the stamp of (`lba`, same pattern): one 8-byte
/// store instead of a whole header (no-op if `sector` is shorter).
pub fn restamp_lba(sector: &mut [u8], lba: u64) {
    if let Some(dst) = sector.get_mut(..LBA_LEN) {
        dst.copy_from_slice(&lba.to_le_bytes());
    }
}

/// A byte that differs from the expected stamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// The LBA of the sector.
    pub lba: u64,
    /// Offset within the sector.
    pub offset: usize,
    /// The byte found.
    pub got: u8,
    /// The byte expected.
    pub want: u8,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sector {} byte {}: got {:#04x}, want {:#04x}",
            self.lba, self.offset, self.got, self.want
        )
    }
}

/// Checks the header of a sector that should hold (`lba`, `pattern`). On a
/// mismatch, describes what the header actually holds when it is a stamp of
/// another LBA or pattern (useful for diagnosing misplaced data).
pub fn check_header(sector: &[u8], lba: u64, pattern: u32) -> Result<(), Mismatch> {
    let want = header(lba, pattern);
    for (i, w) in want.iter().enumerate() {
        let got = sector.get(i).copied();
        if got != Some(*w) {
            // A missing byte (short slice) is reported as 0.
            let got = got.unwrap_or(0);
            return Err(Mismatch {
                lba,
                offset: i,
                got,
                want: *w,
            });
        }
    }
    Ok(())
}

/// The (LBA, pattern) of a stamped sector, if its header carries the magic.
pub fn decode_header(sector: &[u8]) -> Option<(u64, u32)> {
    let h = sector.get(..HEADER_LEN)?;
    if h.get(12..16)? != STAMP_MAGIC {
        return None;
    }
    let lba = u64::from_le_bytes(h.get(0..8)?.try_into().ok()?);
    let pattern = u32::from_le_bytes(h.get(8..12)?.try_into().ok()?);
    Some((lba, pattern))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vmdma_protocol::stamp_sector;

    #[test]
    fn template_plus_header_is_the_protocol_stamp() {
        for (lba, pattern) in [(0u64, 0u32), (0x0012_3456_789a, 0xdead_beef), (u64::MAX, 7)] {
            let t = Template::new(pattern);
            let mut s = *t.sector();
            write_header(&mut s, lba, pattern);
            let mut want = [0u8; SECTOR];
            stamp_sector(lba, pattern, &mut want);
            assert_eq!(s, want);
            assert_eq!(t.body(), &want[HEADER_LEN..]);
            assert_eq!(check_header(&s, lba, pattern), Ok(()));
            assert_eq!(decode_header(&s), Some((lba, pattern)));
        }
    }

    #[test]
    fn template_body_for_every_pattern_byte() {
        for low in 0..=255u32 {
            let pattern = low | 0xAB00_0000;
            let t = Template::new(pattern);
            for (i, b) in t.sector().iter().enumerate() {
                let want = if i < HEADER_LEN {
                    0
                } else {
                    vmdma_protocol::stamp_byte(0, pattern, i)
                };
                assert_eq!(*b, want, "pattern {pattern:#x} byte {i}");
            }
        }
    }

    #[test]
    fn restamp_lba_keeps_pattern_and_magic() {
        let t = Template::new(0x1234_5678);
        let mut s = *t.sector();
        write_header(&mut s, 2048, 0x1234_5678);
        restamp_lba(&mut s, 0x0fff_ffff);
        let mut want = [0u8; SECTOR];
        stamp_sector(0x0fff_ffff, 0x1234_5678, &mut want);
        assert_eq!(s, want);
        let mut short = [0u8; 7];
        restamp_lba(&mut short, u64::MAX);
        assert_eq!(short, [0u8; 7]);
    }

    #[test]
    fn header_mismatch_reports_first_byte() {
        let mut s = [0u8; SECTOR];
        write_header(&mut s, 5, 9);
        assert_eq!(
            check_header(&s, 6, 9),
            Err(Mismatch {
                lba: 6,
                offset: 0,
                got: 5,
                want: 6
            })
        );
        assert_eq!(check_header(&s[..3], 5, 9).unwrap_err().offset, 3);
        assert_eq!(decode_header(&[0u8; 16]), None);
        assert_eq!(decode_header(&[0u8; 3]), None);
    }
}
