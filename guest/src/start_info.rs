//! The PVH `hvm_start_info` structure and its memory map (Xen public ABI,
//! `xen/include/public/arch-x86/hvm/start_info.h`).
//!
//! The guest copies the structure out of guest-physical memory into a local
//! buffer and parses that copy here (read once, then validated).
//!
//! ```text
//! off  size  field
//!   0     4  magic = 0x336ec578
//!   4     4  version (0, or 1 with the memory map)
//!   8     4  flags
//!  12     4  nr_modules
//!  16     8  modlist_paddr
//!  24     8  cmdline_paddr (0 = none; NUL-terminated)
//!  32     8  rsdp_paddr
//!  40     8  memmap_paddr        (version >= 1)
//!  48     4  memmap_entries      (version >= 1)
//!  52     4  reserved
//! ```

use core::fmt;

/// `hvm_start_info.magic`.
pub const START_INFO_MAGIC: u32 = 0x336e_c578;
/// Size of the version-0 structure.
pub const START_INFO_V0_LEN: usize = 40;
/// Size of the version-1 structure (with the memory map fields).
pub const START_INFO_V1_LEN: usize = 56;
/// Size of one memory map entry (`hvm_memmap_table_entry`).
pub const MEMMAP_ENTRY_LEN: usize = 24;
/// Memory map type of usable RAM (E820 numbering).
pub const MEMMAP_TYPE_RAM: u32 = 1;

/// The fields of `hvm_start_info` the guest uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartInfo {
    /// Structure version.
    pub version: u32,
    /// `SIF_*` flags.
    pub flags: u32,
    /// Physical address of the NUL-terminated command line, 0 if none.
    pub cmdline_paddr: u64,
    /// Physical address of the ACPI RSDP, 0 if none.
    pub rsdp_paddr: u64,
    /// Physical address and entry count of the memory map (version >= 1
    /// with a non-zero address), else `None`.
    pub memmap: Option<(u64, u32)>,
}

/// Why a start info copy was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartInfoError {
    /// Fewer bytes than the structure of this version needs.
    Truncated,
    /// `magic` is not [`START_INFO_MAGIC`].
    BadMagic(u32),
}

impl fmt::Display for StartInfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartInfoError::Truncated => f.write_str("hvm_start_info is truncated"),
            StartInfoError::BadMagic(m) => write!(f, "hvm_start_info magic is {m:#x}"),
        }
    }
}

fn le32(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes(s.try_into().ok()?))
}

fn le64(b: &[u8], off: usize) -> Option<u64> {
    let s = b.get(off..off.checked_add(8)?)?;
    Some(u64::from_le_bytes(s.try_into().ok()?))
}

/// Parses a copy of `hvm_start_info` (at least [`START_INFO_V1_LEN`] bytes
/// should be copied; a version-0 structure needs only
/// [`START_INFO_V0_LEN`]).
pub fn parse(bytes: &[u8]) -> Result<StartInfo, StartInfoError> {
    let magic = le32(bytes, 0).ok_or(StartInfoError::Truncated)?;
    if magic != START_INFO_MAGIC {
        return Err(StartInfoError::BadMagic(magic));
    }
    let field32 = |off| le32(bytes, off).ok_or(StartInfoError::Truncated);
    let field64 = |off| le64(bytes, off).ok_or(StartInfoError::Truncated);
    let version = field32(4)?;
    let mut info = StartInfo {
        version,
        flags: field32(8)?,
        cmdline_paddr: field64(24)?,
        rsdp_paddr: field64(32)?,
        memmap: None,
    };
    if version >= 1 {
        let paddr = field64(40)?;
        let entries = field32(48)?;
        if paddr != 0 && entries != 0 {
            info.memmap = Some((paddr, entries));
        }
    }
    Ok(info)
}

/// One memory map entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemRange {
    /// Start address.
    pub addr: u64,
    /// Length in bytes.
    pub size: u64,
    /// E820 type ([`MEMMAP_TYPE_RAM`] = usable RAM).
    pub kind: u32,
}

impl MemRange {
    /// Parses one [`MEMMAP_ENTRY_LEN`]-byte entry.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < MEMMAP_ENTRY_LEN {
            return None;
        }
        Some(MemRange {
            addr: le64(bytes, 0)?,
            size: le64(bytes, 8)?,
            kind: le32(bytes, 16)?,
        })
    }

    /// Whether `[base, base + len)` intersects this range (saturating at the
    /// top of the address space).
    pub fn overlaps(&self, base: u64, len: u64) -> bool {
        let end = base.saturating_add(len);
        let my_end = self.addr.saturating_add(self.size);
        len != 0 && self.size != 0 && base < my_end && self.addr < end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v1(cmdline: u64, memmap: u64, entries: u32) -> [u8; START_INFO_V1_LEN] {
        let mut b = [0u8; START_INFO_V1_LEN];
        b[0..4].copy_from_slice(&START_INFO_MAGIC.to_le_bytes());
        b[4..8].copy_from_slice(&1u32.to_le_bytes());
        b[24..32].copy_from_slice(&cmdline.to_le_bytes());
        b[40..48].copy_from_slice(&memmap.to_le_bytes());
        b[48..52].copy_from_slice(&entries.to_le_bytes());
        b
    }

    #[test]
    fn parses_v1() {
        let i = parse(&v1(0x7000, 0x8000, 3)).unwrap();
        assert_eq!(i.version, 1);
        assert_eq!(i.cmdline_paddr, 0x7000);
        assert_eq!(i.memmap, Some((0x8000, 3)));
        assert_eq!(parse(&v1(0, 0, 3)).unwrap().memmap, None);
    }

    #[test]
    fn version0_ignores_memmap_and_needs_less() {
        let mut b = v1(0x7000, 0x8000, 3);
        b[4..8].copy_from_slice(&0u32.to_le_bytes());
        let i = parse(&b[..START_INFO_V0_LEN]).unwrap();
        assert_eq!(i.memmap, None);
        assert_eq!(i.cmdline_paddr, 0x7000);
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(parse(&[]), Err(StartInfoError::Truncated));
        let b = v1(0, 0, 0);
        assert_eq!(parse(&b[..30]), Err(StartInfoError::Truncated));
        assert_eq!(
            parse(&b[..START_INFO_V0_LEN]),
            Err(StartInfoError::Truncated)
        ); // v1 needs 56
        let mut bad = b;
        bad[0] = 0;
        assert!(matches!(parse(&bad), Err(StartInfoError::BadMagic(_))));
    }

    #[test]
    fn memrange() {
        let mut e = [0u8; MEMMAP_ENTRY_LEN];
        e[0..8].copy_from_slice(&0x10_0000u64.to_le_bytes());
        e[8..16].copy_from_slice(&0x10_0000u64.to_le_bytes());
        e[16..20].copy_from_slice(&1u32.to_le_bytes());
        let r = MemRange::parse(&e).unwrap();
        assert_eq!(r.kind, MEMMAP_TYPE_RAM);
        assert!(r.overlaps(0x1F_FFFF, 1));
        assert!(!r.overlaps(0x20_0000, 0x1000));
        assert!(!r.overlaps(0xF_F000, 0x1000));
        assert!(r.overlaps(0, u64::MAX));
        assert!(!r.overlaps(0x10_0000, 0));
        assert!(MemRange::parse(&e[..20]).is_none());
    }
}
