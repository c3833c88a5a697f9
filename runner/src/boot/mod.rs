//! Booting a PVH ELF kernel: parse and validate the ELF ([`elf`]), load its
//! segments into guest RAM and write the PVH start info ([`pvh`]) at the
//! fixed addresses of [`crate::layout`].

pub mod elf;
pub mod pvh;

use thiserror::Error;

use crate::kvm::memory::{GuestRam, MemoryError};

/// Why a kernel could not be loaded.
#[derive(Debug, Error)]
pub enum BootError {
    /// The ELF file is invalid.
    #[error(transparent)]
    Elf(#[from] elf::ElfError),
    /// The PVH boot information could not be written.
    #[error(transparent)]
    Pvh(#[from] pvh::PvhError),
    /// A validated segment could not be written (an internal error: the
    /// parser already checked the range).
    #[error(transparent)]
    Memory(#[from] MemoryError),
}

/// Where the vCPU starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryPoint {
    /// 32-bit PVH entry (EIP).
    pub entry: u32,
    /// Guest-physical address of `hvm_start_info` (EBX).
    pub start_info: u32,
}

/// Validates `kernel`, loads it into `ram` and writes the boot information
/// with `cmdline`; `mmio` ranges are reported as reserved in the memory map.
/// Nothing is written unless the ELF and the command line are valid.
pub fn load(
    ram: &GuestRam,
    kernel: &[u8],
    cmdline: &str,
    mmio: &[(u64, u64)],
) -> Result<EntryPoint, BootError> {
    let image = elf::parse(kernel, ram.size())?;
    pvh::check_cmdline(cmdline)?;
    for seg in &image.segments {
        ram.write(seg.paddr, seg.data)?;
        let bss = seg.mem_size - seg.data.len() as u64;
        let bss_at = seg.paddr + seg.data.len() as u64;
        let bss_len = usize::try_from(bss).map_err(|_| MemoryError::OutOfRange {
            addr: bss_at,
            len: bss,
        })?;
        ram.zero(bss_at, bss_len)?;
    }
    let start_info = pvh::write_boot_info(ram, cmdline, mmio)?;
    let start_info = u32::try_from(start_info).map_err(|_| MemoryError::OutOfRange {
        addr: start_info,
        len: pvh::START_INFO_SIZE as u64,
    })?;
    Ok(EntryPoint {
        entry: image.entry,
        start_info,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_elf::{ElfBuilder, LOAD_ADDR, code};

    #[test]
    fn load_copies_segments_and_zeroes_bss() {
        let ram = GuestRam::new(4 << 20).unwrap();
        // Dirty the bss area first: the loader must zero it.
        ram.write(LOAD_ADDR + 16, &[0xFF; 64]).unwrap();
        let mut b = ElfBuilder::new(code::hello(b"x", 7));
        b.code.truncate(16);
        b.pvh_entry = Some(LOAD_ADDR + 4);
        b.bss = 64;
        let ep = load(&ram, &b.build(), "a=b", &[]).unwrap();
        assert_eq!(ep.entry, LOAD_ADDR as u32 + 4);
        assert_eq!(ep.start_info, crate::layout::START_INFO_ADDR as u32);
        let mut got = [0u8; 80];
        ram.read(LOAD_ADDR, &mut got).unwrap();
        assert_eq!(&got[..16], &b.code[..]);
        assert!(got[16..].iter().all(|&x| x == 0));
    }

    #[test]
    fn nothing_is_written_for_a_bad_cmdline() {
        let ram = GuestRam::new(4 << 20).unwrap();
        let b = ElfBuilder::new(code::hello(b"x", 7));
        let long = "y".repeat(crate::layout::CMDLINE_MAX + 1);
        assert!(matches!(
            load(&ram, &b.build(), &long, &[]),
            Err(BootError::Pvh(pvh::PvhError::CmdlineTooLong { .. }))
        ));
        let mut first = [0u8; 4];
        ram.read(LOAD_ADDR, &mut first).unwrap();
        assert_eq!(first, [0; 4]);
    }
}
