//! Physical Region Descriptors of PIIX bus-master IDE DMA.
//!
//! ```text
//! dword 0: physical base address of the region
//! dword 1: bits 15:0 byte count (bit 0 must be 0; 0 means 64 KiB),
//!          bit 31 EOT (last entry of the table), other bits reserved
//! ```
//!
//! The table itself must be dword aligned and must not cross a 64 KiB
//! boundary; so must each region (the guest keeps that rule like a real
//! driver, although QEMU does not enforce it).

use core::fmt;

/// End-of-table flag in dword 1.
pub const PRD_EOT: u32 = 1 << 31;
/// Largest region one entry describes (count field 0).
pub const PRD_MAX_LEN: u32 = 0x1_0000;
/// Entries that fit in the 4 KiB a controller reads at most.
pub const PRD_TABLE_ENTRIES: usize = 512;

/// One region to transfer: guest-physical address and byte count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// Guest-physical address.
    pub addr: u32,
    /// Length in bytes.
    pub len: u32,
}

/// Why a region cannot be described by a PRD entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrdError {
    /// Zero, odd or above 64 KiB.
    BadLength(u32),
    /// Odd address.
    OddAddress(u32),
    /// The region crosses a 64 KiB boundary (or the 4 GiB top).
    Crosses64K(Region),
    /// More entries than the table holds.
    TooManyEntries,
    /// No entries.
    Empty,
}

impl fmt::Display for PrdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrdError::BadLength(l) => write!(f, "PRD length {l} is zero, odd or > 64 KiB"),
            PrdError::OddAddress(a) => write!(f, "PRD address {a:#x} is odd"),
            PrdError::Crosses64K(r) => write!(
                f,
                "PRD region {:#x}+{:#x} crosses a 64 KiB boundary",
                r.addr, r.len
            ),
            PrdError::TooManyEntries => write!(f, "more than {PRD_TABLE_ENTRIES} PRD entries"),
            PrdError::Empty => f.write_str("empty PRD table"),
        }
    }
}

/// Encodes one entry as its two dwords.
pub fn encode(region: Region, last: bool) -> Result<[u32; 2], PrdError> {
    let Region { addr, len } = region;
    if len == 0 || len % 2 != 0 || len > PRD_MAX_LEN {
        return Err(PrdError::BadLength(len));
    }
    if addr % 2 != 0 {
        return Err(PrdError::OddAddress(addr));
    }
    let last_byte = u64::from(addr) + u64::from(len) - 1;
    if last_byte >> 16 != u64::from(addr >> 16) {
        return Err(PrdError::Crosses64K(region));
    }
    let count = len & 0xFFFF; // 64 KiB is encoded as 0
    Ok([addr, count | if last { PRD_EOT } else { 0 }])
}

/// Encodes `regions` into `table` (EOT on the last one); returns the number
/// of entries written.
pub fn encode_table(regions: &[Region], table: &mut [[u32; 2]]) -> Result<usize, PrdError> {
    if regions.is_empty() {
        return Err(PrdError::Empty);
    }
    if regions.len() > table.len() || regions.len() > PRD_TABLE_ENTRIES {
        return Err(PrdError::TooManyEntries);
    }
    let n = regions.len();
    for (i, (r, slot)) in regions.iter().zip(table.iter_mut()).enumerate() {
        *slot = encode(*r, i + 1 == n)?;
    }
    Ok(n)
}

/// Splits `[offset, offset + len)` at multiples of 64 KiB into pieces of
/// `(offset, len)`, as a driver splits a buffer into PRD regions (the
/// offsets are relative to a 64 KiB-aligned base).
pub fn split_64k(offset: usize, len: usize) -> impl Iterator<Item = (usize, u32)> {
    let block = PRD_MAX_LEN as usize;
    let end = offset.saturating_add(len);
    let mut at = offset;
    core::iter::from_fn(move || {
        if at >= end {
            return None;
        }
        let boundary = (at / block).saturating_add(1).saturating_mul(block);
        let piece = boundary.min(end) - at;
        let start = at;
        at += piece;
        // `piece <= 64 KiB` by construction.
        Some((start, piece as u32))
    })
}

/// Total bytes described by `regions` (saturating).
pub fn total_len(regions: &[Region]) -> u64 {
    regions.iter().map(|r| u64::from(r.len)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_entries() {
        assert_eq!(
            encode(
                Region {
                    addr: 0x10_0000,
                    len: 512
                },
                false
            ),
            Ok([0x10_0000, 512])
        );
        assert_eq!(
            encode(
                Region {
                    addr: 0x20_0000,
                    len: 0x1_0000
                },
                true
            ),
            Ok([0x20_0000, PRD_EOT])
        );
        assert_eq!(
            encode(
                Region {
                    addr: 0x2_FFFE,
                    len: 2
                },
                true
            ),
            Ok([0x2_FFFE, PRD_EOT | 2])
        );
    }

    #[test]
    fn rejects_bad_regions() {
        assert_eq!(
            encode(Region { addr: 0, len: 0 }, true),
            Err(PrdError::BadLength(0))
        );
        assert_eq!(
            encode(Region { addr: 0, len: 3 }, true),
            Err(PrdError::BadLength(3))
        );
        assert_eq!(
            encode(
                Region {
                    addr: 0,
                    len: 0x1_0002
                },
                true
            ),
            Err(PrdError::BadLength(0x1_0002))
        );
        assert_eq!(
            encode(Region { addr: 1, len: 2 }, true),
            Err(PrdError::OddAddress(1))
        );
        let r = Region {
            addr: 0x1_FFFE,
            len: 4,
        };
        assert_eq!(encode(r, true), Err(PrdError::Crosses64K(r)));
        let r = Region {
            addr: 0xFFFF_FFFE,
            len: 4,
        };
        assert_eq!(encode(r, true), Err(PrdError::Crosses64K(r)));
    }

    #[test]
    fn splits_at_64k_boundaries() {
        let v: Vec<_> = split_64k(0, 0x2_0000).collect();
        assert_eq!(v, [(0, 0x1_0000), (0x1_0000, 0x1_0000)]);
        let v: Vec<_> = split_64k(0xFF00, 0x200).collect();
        assert_eq!(v, [(0xFF00, 0x100), (0x1_0000, 0x100)]);
        let v: Vec<_> = split_64k(0x100, 512).collect();
        assert_eq!(v, [(0x100, 512)]);
        assert_eq!(split_64k(5, 0).count(), 0);
        for (off, len) in split_64k(0x1234, 0x3_0000) {
            assert!(
                encode(
                    Region {
                        addr: 0x20_0000 + off as u32,
                        len
                    },
                    false
                )
                .is_ok()
            );
        }
    }

    #[test]
    fn table_marks_last_entry() {
        let regions = [
            Region {
                addr: 0x1000,
                len: 510,
            },
            Region {
                addr: 0x3000,
                len: 2,
            },
        ];
        let mut t = [[0u32; 2]; 4];
        assert_eq!(encode_table(&regions, &mut t), Ok(2));
        assert_eq!(t[0], [0x1000, 510]);
        assert_eq!(t[1], [0x3000, PRD_EOT | 2]);
        assert_eq!(total_len(&regions), 512);
        assert_eq!(
            encode_table(&regions, &mut t[..1]),
            Err(PrdError::TooManyEntries)
        );
        assert_eq!(encode_table(&[], &mut t), Err(PrdError::Empty));
    }
}
