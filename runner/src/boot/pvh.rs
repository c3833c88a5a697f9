//! The PVH boot protocol: `struct hvm_start_info` (version 1), its memory
//! map and the command line, written into the fixed boot area.
//!
//! Structures are serialized field by field in little-endian order (no
//! `repr(C)` transmutes), following `xen/include/public/arch-x86/hvm/start_info.h`.

use thiserror::Error;

use crate::kvm::memory::{GuestRam, MemoryError};
use crate::layout::{
    BOOT_AREA_END, BOOT_AREA_START, CMDLINE_ADDR, CMDLINE_MAX, GDT, GDT_ADDR, HIGH_RAM_START,
    IOAPIC_ADDR, KVM_IDENTITY_MAP_ADDR, KVM_PRIVATE_END, LAPIC_ADDR, LEGACY_HOLE_START,
    MEMMAP_ADDR, MEMMAP_MAX_ENTRIES, START_INFO_ADDR,
};

/// `XEN_HVM_START_MAGIC_VALUE`.
pub const HVM_START_MAGIC: u32 = 0x336e_c578;
/// Version 1 adds the memory map fields.
pub const HVM_START_VERSION: u32 = 1;
/// Size of `struct hvm_start_info` version 1.
pub const START_INFO_SIZE: usize = 56;
/// Size of `struct hvm_memmap_table_entry`.
pub const MEMMAP_ENTRY_SIZE: usize = 24;

/// Why the boot information cannot be written.
#[derive(Debug, Error)]
pub enum PvhError {
    /// The command line does not fit in the boot area.
    #[error("command line is {len} bytes, the limit is {CMDLINE_MAX}")]
    CmdlineTooLong {
        /// Length in bytes, including the runner's own keys.
        len: usize,
    },
    /// The command line contains a NUL byte.
    #[error("command line contains a NUL byte")]
    CmdlineHasNul,
    /// More memory-map entries than fit in the boot area.
    #[error("memory map has {0} entries, at most {MEMMAP_MAX_ENTRIES} fit")]
    MemmapTooLarge(usize),
    /// Guest RAM does not cover the boot area.
    #[error(transparent)]
    Memory(#[from] MemoryError),
}

/// Memory-map entry types (E820 numbering, as PVH uses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum MemType {
    /// Usable RAM.
    Ram = 1,
    /// Reserved: not RAM, not for the OS to use.
    Reserved = 2,
}

/// One memory-map entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemmapEntry {
    /// Guest-physical start.
    pub addr: u64,
    /// Length in bytes.
    pub size: u64,
    /// What the range is.
    pub kind: MemType,
}

/// The memory map the guest sees for `ram_size` bytes of RAM (at least
/// 1 MiB), sorted by address, with `mmio` ranges marked reserved.
pub fn memory_map(ram_size: u64, mmio: &[(u64, u64)]) -> Vec<MemmapEntry> {
    let e = |addr: u64, end: u64, kind| MemmapEntry {
        addr,
        size: end.saturating_sub(addr),
        kind,
    };
    let mut map = vec![
        e(0, BOOT_AREA_START, MemType::Ram),
        e(BOOT_AREA_START, BOOT_AREA_END, MemType::Reserved),
        e(BOOT_AREA_END, LEGACY_HOLE_START, MemType::Ram),
        e(LEGACY_HOLE_START, HIGH_RAM_START, MemType::Reserved),
    ];
    if ram_size > HIGH_RAM_START {
        map.push(e(HIGH_RAM_START, ram_size, MemType::Ram));
    }
    for &(addr, len) in mmio {
        map.push(e(addr, addr.saturating_add(len), MemType::Reserved));
    }
    map.push(e(IOAPIC_ADDR, IOAPIC_ADDR + 0x1000, MemType::Reserved));
    map.push(e(LAPIC_ADDR, LAPIC_ADDR + 0x1000, MemType::Reserved));
    map.push(e(KVM_IDENTITY_MAP_ADDR, KVM_PRIVATE_END, MemType::Reserved));
    map.sort_by_key(|m| m.addr);
    map
}

/// Serializes `struct hvm_start_info` for a command line and memory map at
/// their fixed addresses.
pub fn start_info(memmap_entries: u32) -> [u8; START_INFO_SIZE] {
    let mut b = [0u8; START_INFO_SIZE];
    let mut put = |at: usize, v: &[u8]| {
        if let Some(d) = b.get_mut(at..at + v.len()) {
            d.copy_from_slice(v);
        }
    };
    put(0, &HVM_START_MAGIC.to_le_bytes());
    put(4, &HVM_START_VERSION.to_le_bytes());
    put(8, &0u32.to_le_bytes()); // flags
    put(12, &0u32.to_le_bytes()); // nr_modules
    put(16, &0u64.to_le_bytes()); // modlist_paddr
    put(24, &CMDLINE_ADDR.to_le_bytes()); // cmdline_paddr
    put(32, &0u64.to_le_bytes()); // rsdp_paddr
    put(40, &MEMMAP_ADDR.to_le_bytes()); // memmap_paddr
    put(48, &memmap_entries.to_le_bytes());
    put(52, &0u32.to_le_bytes()); // reserved
    b
}

/// Serializes memory-map entries.
pub fn memmap_bytes(map: &[MemmapEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(map.len() * MEMMAP_ENTRY_SIZE);
    for m in map {
        out.extend_from_slice(&m.addr.to_le_bytes());
        out.extend_from_slice(&m.size.to_le_bytes());
        out.extend_from_slice(&(m.kind as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
    }
    out
}

/// Checks that `cmdline` can be passed to the guest.
pub fn check_cmdline(cmdline: &str) -> Result<(), PvhError> {
    if cmdline.len() > CMDLINE_MAX {
        return Err(PvhError::CmdlineTooLong { len: cmdline.len() });
    }
    if cmdline.as_bytes().contains(&0) {
        return Err(PvhError::CmdlineHasNul);
    }
    Ok(())
}

/// Writes the GDT, start info, memory map and command line into `ram`.
/// Returns the guest-physical address of the start info (for EBX).
pub fn write_boot_info(
    ram: &GuestRam,
    cmdline: &str,
    mmio: &[(u64, u64)],
) -> Result<u64, PvhError> {
    check_cmdline(cmdline)?;
    let map = memory_map(ram.size(), mmio);
    if map.len() > MEMMAP_MAX_ENTRIES {
        return Err(PvhError::MemmapTooLarge(map.len()));
    }
    ram.zero(BOOT_AREA_START, (BOOT_AREA_END - BOOT_AREA_START) as usize)?;
    let gdt: Vec<u8> = GDT.iter().flat_map(|d| d.to_le_bytes()).collect();
    ram.write(GDT_ADDR, &gdt)?;
    let entries = u32::try_from(map.len()).map_err(|_| PvhError::MemmapTooLarge(map.len()))?;
    ram.write(START_INFO_ADDR, &start_info(entries))?;
    ram.write(MEMMAP_ADDR, &memmap_bytes(&map))?;
    // The area was zeroed, so the terminating NUL is already there.
    ram.write(CMDLINE_ADDR, cmdline.as_bytes())?;
    Ok(START_INFO_ADDR)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u32_at(ram: &GuestRam, addr: u64) -> u32 {
        let mut b = [0u8; 4];
        ram.read(addr, &mut b).unwrap();
        u32::from_le_bytes(b)
    }

    fn u64_at(ram: &GuestRam, addr: u64) -> u64 {
        let mut b = [0u8; 8];
        ram.read(addr, &mut b).unwrap();
        u64::from_le_bytes(b)
    }

    #[test]
    fn start_info_layout() {
        let ram = GuestRam::new(4 << 20).unwrap();
        let at = write_boot_info(&ram, "console=ttyS0", &[(0xD000_0000, 0x1_0000)]).unwrap();
        assert_eq!(at, START_INFO_ADDR);
        assert_eq!(u32_at(&ram, at), 0x336e_c578);
        assert_eq!(u32_at(&ram, at + 4), 1);
        assert_eq!(u64_at(&ram, at + 24), CMDLINE_ADDR);
        assert_eq!(u64_at(&ram, at + 40), MEMMAP_ADDR);
        let n = u32_at(&ram, at + 48) as u64;
        let mut cmd = [0u8; 14];
        ram.read(CMDLINE_ADDR, &mut cmd).unwrap();
        assert_eq!(&cmd, b"console=ttyS0\0");

        // Memory map: sorted, RAM above 1 MiB up to the RAM size, scratch
        // reserved.
        let entries: Vec<(u64, u64, u32)> = (0..n)
            .map(|i| {
                let e = MEMMAP_ADDR + i * 24;
                (u64_at(&ram, e), u64_at(&ram, e + 8), u32_at(&ram, e + 16))
            })
            .collect();
        assert!(entries.windows(2).all(|w| w[0].0 + w[0].1 <= w[1].0));
        assert!(entries.contains(&(0x10_0000, (4 << 20) - 0x10_0000, 1)));
        assert!(entries.contains(&(0x6000, 0x2000, 2)));
        assert!(entries.contains(&(0xD000_0000, 0x1_0000, 2)));
        assert_eq!(entries[0], (0, 0x6000, 1));
    }

    #[test]
    fn gdt_is_written() {
        let ram = GuestRam::new(4 << 20).unwrap();
        write_boot_info(&ram, "", &[]).unwrap();
        assert_eq!(u64_at(&ram, GDT_ADDR + 8), GDT[1]);
        assert_eq!(u64_at(&ram, GDT_ADDR + 16), GDT[2]);
    }

    #[test]
    fn cmdline_limits() {
        let ram = GuestRam::new(4 << 20).unwrap();
        let long = "x".repeat(CMDLINE_MAX);
        write_boot_info(&ram, &long, &[]).unwrap();
        let mut last = [0u8; 2];
        ram.read(CMDLINE_ADDR + CMDLINE_MAX as u64 - 1, &mut last)
            .unwrap();
        assert_eq!(last, [b'x', 0]);
        let too_long = "x".repeat(CMDLINE_MAX + 1);
        assert!(matches!(
            write_boot_info(&ram, &too_long, &[]),
            Err(PvhError::CmdlineTooLong { len }) if len == CMDLINE_MAX + 1
        ));
        assert!(matches!(
            check_cmdline("a\0b"),
            Err(PvhError::CmdlineHasNul)
        ));
    }

    #[test]
    fn boot_area_must_be_in_ram() {
        let ram = GuestRam::new(0x4000).unwrap();
        assert!(matches!(
            write_boot_info(&ram, "", &[]),
            Err(PvhError::Memory(_))
        ));
    }
}
