//! The fixed guest-physical layout the runner sets up before the guest runs.
//!
//! ```text
//! 0x0000_0000 .. 0x0000_6000   RAM
//! 0x0000_6000 .. 0x0000_8000   boot area (reserved): GDT, hvm_start_info,
//!                              memory map, command line
//! 0x0000_8000 .. 0x000A_0000   RAM
//! 0x000A_0000 .. 0x0010_0000   legacy VGA/ROM hole (reserved, no segments)
//! 0x0010_0000 .. RAM end       RAM (kernel segments go here)
//! 0xD000_0000 .. +64 KiB       MMIO scratch region (reserved)
//! 0xFEC0_0000, 0xFEE0_0000     IOAPIC, LAPIC (reserved)
//! 0xFFFB_C000 .. 0xFFFC_0000   KVM identity-map page and TSS (reserved)
//! ```

/// Start of the boot area (inclusive).
pub const BOOT_AREA_START: u64 = 0x6000;
/// End of the boot area (exclusive).
pub const BOOT_AREA_END: u64 = 0x8000;
/// GDT: null, flat 32-bit code (0x08), flat data (0x10), TSS (0x18).
pub const GDT_ADDR: u64 = 0x6000;
/// `struct hvm_start_info` (56 bytes).
pub const START_INFO_ADDR: u64 = 0x6040;
/// `struct hvm_memmap_table_entry` array.
pub const MEMMAP_ADDR: u64 = 0x6080;
/// Room for memory-map entries (24 bytes each) before the command line.
pub const MEMMAP_MAX_ENTRIES: usize = ((CMDLINE_ADDR - MEMMAP_ADDR) / 24) as usize;
/// NUL-terminated command line.
pub const CMDLINE_ADDR: u64 = 0x7000;
/// Longest command line in bytes, excluding the terminating NUL.
pub const CMDLINE_MAX: usize = (BOOT_AREA_END - CMDLINE_ADDR) as usize - 1;

/// End of low RAM: the legacy hole starts here.
pub const LEGACY_HOLE_START: u64 = 0xA_0000;
/// Start of high RAM, where kernels are loaded.
pub const HIGH_RAM_START: u64 = 0x10_0000;

/// KVM's identity-map page (`KVM_SET_IDENTITY_MAP_ADDR`).
pub const KVM_IDENTITY_MAP_ADDR: u64 = 0xFFFB_C000;
/// KVM's three-page TSS area (`KVM_SET_TSS_ADDR`).
pub const KVM_TSS_ADDR: u64 = 0xFFFB_D000;
/// End of the KVM-private pages.
pub const KVM_PRIVATE_END: u64 = 0xFFFC_0000;
/// IOAPIC register window.
pub const IOAPIC_ADDR: u64 = 0xFEC0_0000;
/// Local APIC register window.
pub const LAPIC_ADDR: u64 = 0xFEE0_0000;

/// GDT selector of the flat 32-bit code segment.
pub const CODE_SELECTOR: u16 = 0x08;
/// GDT selector of the flat data segment.
pub const DATA_SELECTOR: u16 = 0x10;
/// GDT selector of the TSS.
pub const TSS_SELECTOR: u16 = 0x18;

/// The GDT written at [`GDT_ADDR`], matching the segment registers the vCPU
/// starts with.
pub const GDT: [u64; 4] = [
    0,
    // base 0, limit 0xFFFFF pages, G, D/B, P, DPL 0, code exec/read accessed
    0x00CF_9B00_0000_FFFF,
    // base 0, limit 0xFFFFF pages, G, D/B, P, DPL 0, data read/write accessed
    0x00CF_9300_0000_FFFF,
    // base 0, limit 0x67, P, 32-bit busy TSS
    0x0000_8B00_0000_0067,
];
