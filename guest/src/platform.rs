//! What the loader told the guest: the PVH start info, the command line and
//! the memory map, each copied out of guest memory once and then parsed.

use core::fmt;

use vmdma_guest::cmdline::MmioScratch;
use vmdma_guest::start_info::{
    self, MEMMAP_ENTRY_LEN, MEMMAP_TYPE_RAM, MemRange, START_INFO_V1_LEN, StartInfo, StartInfoError,
};

use crate::arch::mmio;
use crate::arch::take_once::TakeOnce;

/// Longest command line accepted (bytes, without the NUL).
pub const CMDLINE_MAX: usize = 1023;
/// Memory map entries kept.
pub const MEMMAP_MAX: usize = 64;

/// The loader's information, copied.
pub struct BootInfo {
    /// The parsed start info.
    pub info: StartInfo,
    cmdline: [u8; CMDLINE_MAX],
    cmdline_len: usize,
    memmap: [MemRange; MEMMAP_MAX],
    memmap_len: usize,
}

/// Why the loader's information is unusable.
#[derive(Clone, Copy, Debug)]
pub enum BootError {
    /// The start info address is outside the identity map.
    StartInfoUnmapped(u64),
    /// The start info is invalid.
    StartInfo(StartInfoError),
    /// The command line is unmapped, longer than [`CMDLINE_MAX`] or not UTF-8.
    Cmdline(u64),
    /// The memory map is unmapped or has more than [`MEMMAP_MAX`] entries.
    Memmap(u64, u32),
    /// The start info was read before.
    AlreadyRead,
}

impl fmt::Display for BootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BootError::StartInfoUnmapped(a) => write!(f, "start info at {a:#x} is not mapped"),
            BootError::StartInfo(e) => write!(f, "{e}"),
            BootError::Cmdline(a) => write!(
                f,
                "command line at {a:#x} is unmapped, longer than {CMDLINE_MAX} bytes or not UTF-8"
            ),
            BootError::Memmap(a, n) => write!(
                f,
                "memory map at {a:#x} with {n} entries is unmapped or has more than {MEMMAP_MAX}"
            ),
            BootError::AlreadyRead => write!(f, "the start info was read before"),
        }
    }
}

/// Where [`BootInfo::read`] puts what it copies: a static with a constant
/// initial value, filled in place. A `BootInfo` built on the stack and
/// returned would be zeroed and then moved (about 2.6 KiB, twice), which
/// cost about 1.5 ms of the boot where ring-0 code is emulated.
static STORE: TakeOnce<BootInfo> = TakeOnce::new(BootInfo {
    info: StartInfo {
        version: 0,
        flags: 0,
        cmdline_paddr: 0,
        rsdp_paddr: 0,
        memmap: None,
    },
    cmdline: [0; CMDLINE_MAX],
    cmdline_len: 0,
    memmap: [MemRange {
        addr: 0,
        size: 0,
        kind: 0,
    }; MEMMAP_MAX],
    memmap_len: 0,
});

impl BootInfo {
    /// Copies and parses everything the start info at `paddr` points to
    /// (once: a second call is refused as `AlreadyRead`).
    pub fn read(paddr: u32) -> Result<&'static Self, BootError> {
        let paddr = u64::from(paddr);
        let mut raw = [0u8; START_INFO_V1_LEN];
        if !mmio::read_phys(paddr, &mut raw) {
            return Err(BootError::StartInfoUnmapped(paddr));
        }
        let info = start_info::parse(&raw).map_err(BootError::StartInfo)?;
        let boot = STORE.take().ok_or(BootError::AlreadyRead)?;
        boot.info = info;
        boot.read_cmdline()?;
        boot.read_memmap()?;
        Ok(boot)
    }

    fn read_cmdline(&mut self) -> Result<(), BootError> {
        let addr = self.info.cmdline_paddr;
        if addr == 0 {
            return Ok(());
        }
        let err = BootError::Cmdline(addr);
        let mut chunk = [0u8; 64];
        let mut len = 0usize;
        loop {
            let at = addr.checked_add(len as u64).ok_or(err)?;
            if !mmio::read_phys(at, &mut chunk) {
                return Err(err);
            }
            let nul = chunk.iter().position(|b| *b == 0);
            let take = nul.unwrap_or(chunk.len());
            let dst = self.cmdline.get_mut(len..len + take).ok_or(err)?;
            dst.copy_from_slice(chunk.get(..take).ok_or(err)?);
            len += take;
            if nul.is_some() {
                break;
            }
        }
        self.cmdline_len = len;
        core::str::from_utf8(self.cmdline.get(..len).ok_or(err)?).map_err(|_| err)?;
        Ok(())
    }

    fn read_memmap(&mut self) -> Result<(), BootError> {
        let Some((addr, entries)) = self.info.memmap else {
            return Ok(());
        };
        let err = BootError::Memmap(addr, entries);
        let n = usize::try_from(entries).map_err(|_| err)?;
        if n > MEMMAP_MAX {
            return Err(err);
        }
        for i in 0..n {
            let mut raw = [0u8; MEMMAP_ENTRY_LEN];
            let at = addr.checked_add((i * MEMMAP_ENTRY_LEN) as u64).ok_or(err)?;
            if !mmio::read_phys(at, &mut raw) {
                return Err(err);
            }
            let slot = self.memmap.get_mut(i).ok_or(err)?;
            *slot = MemRange::parse(&raw).ok_or(err)?;
        }
        self.memmap_len = n;
        Ok(())
    }

    /// The command line (empty if none).
    pub fn cmdline(&self) -> &str {
        let bytes = self.cmdline.get(..self.cmdline_len).unwrap_or(&[]);
        core::str::from_utf8(bytes).unwrap_or("")
    }

    /// The memory map entries (empty for a version-0 start info).
    pub fn memmap(&self) -> &[MemRange] {
        self.memmap.get(..self.memmap_len).unwrap_or(&[])
    }

    /// Total usable RAM in the memory map, in bytes.
    pub fn ram_bytes(&self) -> u64 {
        self.memmap()
            .iter()
            .filter(|r| r.kind == MEMMAP_TYPE_RAM)
            .fold(0u64, |a, r| a.saturating_add(r.size))
    }

    /// Why `scratch` cannot be an MMIO region: it overlaps RAM in the memory
    /// map or the guest image.
    pub fn scratch_conflict(&self, scratch: &MmioScratch) -> Option<&'static str> {
        if mmio::overlaps_image(scratch.base, scratch.len) {
            return Some("overlaps the guest image");
        }
        if self
            .memmap()
            .iter()
            .any(|r| r.kind == MEMMAP_TYPE_RAM && r.overlaps(scratch.base, scratch.len))
        {
            return Some("overlaps RAM in the memory map");
        }
        None
    }
}
