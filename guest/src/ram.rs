//! Placing a bulk buffer in RAM the loader announced: the benchmarks need
//! more DMA memory (up to 16 MiB and more) than the guest image carries, so
//! they take a range of the PVH memory map beyond the image.

use crate::start_info::{MEMMAP_TYPE_RAM, MemRange};

/// The lowest address `a` with `a % align == 0`, `a >= floor` and
/// `a + len <= limit` such that `a .. a + len` lies inside one RAM range of
/// `memmap`; `None` if there is none (or `align` is not a power of two, or
/// `len` is 0).
pub fn place(memmap: &[MemRange], floor: u64, len: u64, align: u64, limit: u64) -> Option<u64> {
    if len == 0 || !align.is_power_of_two() {
        return None;
    }
    memmap
        .iter()
        .filter(|r| r.kind == MEMMAP_TYPE_RAM)
        .filter_map(|r| {
            let end = r.addr.checked_add(r.size)?.min(limit);
            let start = r.addr.max(floor).checked_next_multiple_of(align)?;
            let stop = start.checked_add(len)?;
            (stop <= end).then_some(start)
        })
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ram(addr: u64, size: u64) -> MemRange {
        MemRange {
            addr,
            size,
            kind: MEMMAP_TYPE_RAM,
        }
    }

    #[test]
    fn first_fit_above_the_floor() {
        let map = [
            ram(0, 0x9_FC00),
            MemRange {
                addr: 0x10_0000,
                size: 0x100_0000,
                kind: 2,
            },
            ram(0x10_0000, 0x3F0_0000),
        ];
        // Above an image ending at 0x18_1234: the next 64 KiB boundary.
        assert_eq!(
            place(&map, 0x18_1234, 16 << 20, 0x1_0000, 3 << 30),
            Some(0x19_0000)
        );
        // Too big for what is left above the floor.
        assert_eq!(place(&map, 0x18_1234, 63 << 20, 0x1_0000, 3 << 30), None);
        // The limit cuts the range.
        assert_eq!(place(&map, 0x18_1234, 16 << 20, 0x1_0000, 0x100_0000), None);
        // Below the floor in the low range: no.
        assert_eq!(
            place(&map, 0x18_0000, 0x1000, 0x1000, 3 << 30),
            Some(0x18_0000)
        );
        assert_eq!(place(&map, 0, 0x1000, 0x1000, 3 << 30), Some(0));
    }

    #[test]
    fn refuses_nonsense() {
        let map = [ram(0, u64::MAX)];
        assert_eq!(place(&map, 0, 0, 0x1000, u64::MAX), None);
        assert_eq!(place(&map, 0, 8, 3, u64::MAX), None);
        assert_eq!(place(&map, u64::MAX - 1, 8, 0x1000, u64::MAX), None);
        assert_eq!(place(&[], 0, 8, 8, u64::MAX), None);
    }
}
