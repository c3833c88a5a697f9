//! Physical Region Descriptors: parsing and the bounded walk of a PRD
//! table into an SG list.
//!
//! A PRD is 8 little-endian bytes: dword 0 the physical address, dword 1
//! bits 15:0 the byte count (bit 0 ignored; 0 means 64 KiB) and bit 31 EOT.
//! The walk stops at EOT, after 512 entries, or once the fetch pointer is
//! 4 KiB past the table start (QEMU's one-page fail-safe), so a table
//! without EOT cannot loop. Each PRD is read once into a local copy.

use crate::dma::{DmaMemory, SgList};
use crate::memory::{DeviceId, MemError};

/// Most PRDs fetched for one DMA command.
pub const MAX_PRD_ENTRIES: usize = 512;
/// The fetch pointer may move this far past the table start.
const TABLE_WINDOW: u32 = 4096;
/// Size of one PRD.
const PRD_SIZE: u32 = 8;
/// EOT flag in dword 1.
const PRD_EOT: u32 = 1 << 31;

/// A parsed PRD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prd {
    /// Physical address (used as is; bit 0 is not masked, as in QEMU).
    pub addr: u32,
    /// Byte count, 2..=65536 and even.
    pub len: u32,
    /// Last entry of the table.
    pub eot: bool,
}

impl Prd {
    /// Parses the 8 raw bytes of an entry.
    pub const fn parse(raw: [u8; 8]) -> Self {
        let [a0, a1, a2, a3, c0, c1, c2, c3] = raw;
        let addr = u32::from_le_bytes([a0, a1, a2, a3]);
        let ctl = u32::from_le_bytes([c0, c1, c2, c3]);
        let count = ctl & 0xFFFE;
        Prd {
            addr,
            len: if count == 0 { 0x1_0000 } else { count },
            eot: ctl & PRD_EOT != 0,
        }
    }
}

/// Why a walk failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WalkError {
    /// A PRD could not be fetched (hole, MMIO refusal, IOMMU fault).
    Fetch(MemError),
    /// The SG list is full (cannot happen with `MAX_PRD_ENTRIES` slots).
    SgFull,
}

/// Walks the PRD table from `*cursor` (the fetch pointer; advanced past
/// every entry read), adding the first `limit` bytes it describes to `sg`
/// (cleared first; physically contiguous pieces are merged). Returns the
/// total bytes the walked PRDs describe, which may exceed `limit`.
pub(crate) fn walk<const N: usize>(
    mem: &(impl DmaMemory + ?Sized),
    requester: DeviceId,
    table: u32,
    cursor: &mut u32,
    limit: u64,
    sg: &mut SgList<N>,
) -> Result<u64, WalkError> {
    sg.clear();
    let mut described = 0u64;
    let mut taken = 0u64;
    let mut pending: Option<(u64, u64)> = None;
    for _ in 0..MAX_PRD_ENTRIES {
        if cursor.wrapping_sub(table) >= TABLE_WINDOW {
            break;
        }
        let mut raw = [0u8; 8];
        mem.read(requester, u64::from(*cursor), &mut raw)
            .map_err(WalkError::Fetch)?;
        *cursor = cursor.wrapping_add(PRD_SIZE);
        let prd = Prd::parse(raw);
        described += u64::from(prd.len);
        let take = (limit - taken).min(u64::from(prd.len));
        if take > 0 {
            let addr = u64::from(prd.addr);
            pending = match pending {
                Some((a, l)) if a + l == addr => Some((a, l + take)),
                Some((a, l)) => {
                    sg.push(a, l).map_err(|_| WalkError::SgFull)?;
                    Some((addr, take))
                }
                None => Some((addr, take)),
            };
            taken += take;
        }
        if prd.eot {
            break;
        }
    }
    if let Some((a, l)) = pending {
        sg.push(a, l).map_err(|_| WalkError::SgFull)?;
    }
    Ok(described)
}
