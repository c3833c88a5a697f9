//! The registers of one channel's half of the PIIX bus-master (BMDMA)
//! block: Command, Status and the PRD table pointer.
//!
//! This type only stores and masks; the channel acts on the START edges it
//! reports (kicking a pending DMA command, or draining a running one).

use crate::pci::AccessWidth;

use super::registers::{BmCommand, BmRegister, BmStatus};

/// A START edge caused by a Command register write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StartEdge {
    /// START went 0 → 1.
    Rising,
    /// START went 1 → 0.
    Falling,
}

/// Command, Status, PRD pointer, and the PRD fetch cursor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BusMaster {
    pub command: BmCommand,
    pub status: BmStatus,
    /// PRD table pointer (dword aligned).
    pub table: u32,
    /// Where the next PRD is fetched; reset to `table` on every START
    /// 0 → 1 and kept across commands otherwise (as in QEMU).
    pub cursor: u32,
}

/// Bits of the status register the guest may write as plain storage.
const STATUS_RW: BmStatus = BmStatus::DRIVE0_DMA.union(BmStatus::DRIVE1_DMA);
/// Write-1-to-clear status bits.
const STATUS_W1C: BmStatus = BmStatus::ERROR.union(BmStatus::INTERRUPT);

impl BusMaster {
    /// Reset state: everything zero.
    pub(crate) const fn new() -> Self {
        BusMaster {
            command: BmCommand::empty(),
            status: BmStatus::empty(),
            table: 0,
            cursor: 0,
        }
    }

    /// A read of `width` at `offset` (0..8). Command and Status answer only
    /// 8-bit reads (others read as all ones, as in QEMU); offsets 1 and 3
    /// read `0xFF`; the pointer answers any width, byte lane by byte lane.
    pub(crate) fn read(&self, offset: u16, width: AccessWidth) -> u32 {
        if offset < BmRegister::PrdTable as u16 {
            if width != AccessWidth::Byte {
                return width.all_ones();
            }
            return u32::from(match offset {
                o if o == BmRegister::Command as u16 => self.command.bits(),
                o if o == BmRegister::Status as u16 => self.status.bits(),
                _ => 0xFF,
            });
        }
        let bytes = self.table.to_le_bytes();
        let mut v = 0u32;
        for i in 0..width.bytes() {
            let lane = usize::from(offset - BmRegister::PrdTable as u16) + i;
            let b = bytes.get(lane).copied().unwrap_or(0xFF);
            v |= u32::from(b) << (8 * i);
        }
        v
    }

    /// A write of the low `width` bytes of `value` at `offset` (0..8).
    /// Returns the START edge it caused, if any; the caller acts on it.
    pub(crate) fn write(
        &mut self,
        offset: u16,
        width: AccessWidth,
        value: u32,
    ) -> Option<StartEdge> {
        let [byte, ..] = value.to_le_bytes();
        if offset < BmRegister::PrdTable as u16 {
            if width != AccessWidth::Byte {
                return None;
            }
            match offset {
                o if o == BmRegister::Command as u16 => {
                    let new = BmCommand::from_bits_truncate(byte);
                    let edge = match (
                        self.command.contains(BmCommand::START),
                        new.contains(BmCommand::START),
                    ) {
                        (false, true) => Some(StartEdge::Rising),
                        (true, false) => Some(StartEdge::Falling),
                        _ => None,
                    };
                    self.command = new;
                    return edge;
                }
                o if o == BmRegister::Status as u16 => {
                    let v = BmStatus::from_bits_truncate(byte);
                    self.status = (v & STATUS_RW)
                        | (self.status & BmStatus::ACTIVE)
                        | (self.status & STATUS_W1C).difference(v);
                }
                _ => {}
            }
            return None;
        }
        let mut bytes = self.table.to_le_bytes();
        for (i, b) in value
            .to_le_bytes()
            .into_iter()
            .take(width.bytes())
            .enumerate()
        {
            let lane = usize::from(offset - BmRegister::PrdTable as u16) + i;
            if let Some(dst) = bytes.get_mut(lane) {
                *dst = b;
            }
        }
        self.table = u32::from_le_bytes(bytes) & !3;
        None
    }

    /// The state of a channel with no engine behind it (the secondary
    /// channel): START edges just set or clear ACTIVE.
    pub(crate) fn apply_idle_edge(&mut self, edge: Option<StartEdge>) {
        match edge {
            Some(StartEdge::Rising) => {
                self.cursor = self.table;
                self.status.insert(BmStatus::ACTIVE);
            }
            Some(StartEdge::Falling) => self.status.remove(BmStatus::ACTIVE),
            None => {}
        }
    }

    /// Sets or clears ACTIVE.
    pub(crate) fn set_active(&mut self, active: bool) {
        self.status.set(BmStatus::ACTIVE, active);
    }

    /// True while ACTIVE is set.
    pub(crate) fn active(&self) -> bool {
        self.status.contains(BmStatus::ACTIVE)
    }
}
