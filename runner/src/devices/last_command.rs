//! The guest's last ATA command as the runner saw it on the ports, for the
//! message printed when the disk stops answering at shutdown.
//!
//! The IDE controller keeps its operation to itself; the runner only needs
//! to *name* what was running, so it shadows the command block writes that
//! pass through the chipset (sector count, LBA, device, command) and
//! decodes the address and count the way the device does: the LBA48 (EXT)
//! forms take the previous write of each register as the high-order byte
//! (the HOB FIFO), LBA28 the low nibble of the Device register, and a count
//! of 0 means 256 (65536 for EXT). Nothing here changes what the guest sees.

use vmdma_core::ide::{AtaCommand, IoBlock};

use crate::control::LastCommand;

/// Command block offsets (`0x1F0 + offset`).
const SECTOR_COUNT: u16 = 2;
const LBA_HIGH: u16 = 5;
const DEVICE: u16 = 6;
const COMMAND: u16 = 7;
/// Device register: LBA addressing.
const DEVICE_LBA: u8 = 0x40;
/// Device register: device 1 selected.
const DEVICE_DEV1: u8 = 0x10;

/// The command block registers as last written: for sector count and the
/// three LBA registers, the last two writes (previous, current).
#[derive(Clone, Copy, Debug, Default)]
pub struct TaskFileShadow {
    fifo: [(u8, u8); 4],
    device: u8,
    last: Option<LastCommand>,
}

impl TaskFileShadow {
    /// Notes a byte write to the command block at `offset` (wider writes
    /// reach only the data register, offset 0, which is not shadowed);
    /// returns the command when it was one.
    pub fn write(&mut self, block: IoBlock, offset: u16, value: u32) -> Option<LastCommand> {
        if !matches!(block, IoBlock::Command) {
            return None;
        }
        let byte = value.to_le_bytes()[0];
        match offset {
            SECTOR_COUNT..=LBA_HIGH => {
                if let Some(r) = self.fifo.get_mut(usize::from(offset - SECTOR_COUNT)) {
                    *r = (r.1, byte);
                }
            }
            DEVICE => self.device = byte,
            COMMAND => {
                self.last = Some(self.decode(byte));
                return self.last;
            }
            _ => {}
        }
        None
    }

    /// The last command written, if any.
    pub fn last(&self) -> Option<LastCommand> {
        self.last
    }

    fn decode(&self, opcode: u8) -> LastCommand {
        let device = u8::from(self.device & DEVICE_DEV1 != 0);
        let ext = match AtaCommand::decode(opcode) {
            AtaCommand::ReadSectors { ext }
            | AtaCommand::ReadMultiple { ext }
            | AtaCommand::WriteSectors { ext }
            | AtaCommand::WriteMultiple { ext }
            | AtaCommand::ReadDma { ext }
            | AtaCommand::WriteDma { ext }
            | AtaCommand::ReadVerify { ext } => Some(ext),
            // TRIM is always the 48-bit form.
            AtaCommand::DataSetManagement => Some(true),
            _ => None,
        };
        let range = match ext {
            Some(_) if self.device & DEVICE_LBA == 0 => None,
            Some(true) => {
                let [count, low, mid, high] = self.fifo;
                let lba = [low.1, mid.1, high.1, low.0, mid.0, high.0]
                    .iter()
                    .rev()
                    .fold(0u64, |acc, &b| acc << 8 | u64::from(b));
                let n = u32::from(count.0) << 8 | u32::from(count.1);
                Some((lba, if n == 0 { 65536 } else { n }))
            }
            Some(false) => {
                let [count, low, mid, high] = self.fifo;
                let lba = u64::from(self.device & 0x0F) << 24
                    | u64::from(high.1) << 16
                    | u64::from(mid.1) << 8
                    | u64::from(low.1);
                let n = u32::from(count.1);
                Some((lba, if n == 0 { 256 } else { n }))
            }
            None => None,
        };
        LastCommand {
            opcode,
            device,
            range,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issue(s: &mut TaskFileShadow, writes: &[(u16, u8)]) -> LastCommand {
        for &(offset, v) in writes {
            s.write(IoBlock::Command, offset, u32::from(v));
        }
        s.last().unwrap()
    }

    #[test]
    fn lba28_read_dma() {
        let mut s = TaskFileShadow::default();
        let c = issue(
            &mut s,
            &[
                (6, 0xE1),
                (2, 8),
                (3, 0x00),
                (4, 0x08),
                (5, 0x00),
                (7, 0xC8),
            ],
        );
        assert_eq!(c.range, Some((0x0100_0800, 8)));
        assert_eq!(c.device, 0);
        assert_eq!(
            c.to_string(),
            "READ DMA (0xc8) on device 0, sector 16779264, 8 sector(s)"
        );
    }

    #[test]
    fn lba48_write_dma_ext_uses_the_hob_fifo() {
        let mut s = TaskFileShadow::default();
        // High-order bytes first, as a driver writes them.
        let c = issue(
            &mut s,
            &[
                (6, 0x50),
                (2, 0x00),
                (3, 0x01),
                (4, 0x00),
                (5, 0x00),
                (2, 0x00),
                (3, 0x00),
                (4, 0x08),
                (5, 0x00),
                (7, 0x35),
            ],
        );
        assert_eq!(c.range, Some(((1 << 24) | 0x800, 65536)));
        assert_eq!(c.device, 1);
    }

    #[test]
    fn chs_and_non_data_commands_have_no_range() {
        let mut s = TaskFileShadow::default();
        assert_eq!(issue(&mut s, &[(6, 0xA0), (7, 0xC8)]).range, None);
        let flush = issue(&mut s, &[(6, 0xE0), (7, 0xE7)]);
        assert_eq!(flush.range, None);
        assert_eq!(flush.to_string(), "FLUSH CACHE (0xe7) on device 0");
    }

    #[test]
    fn other_blocks_are_ignored() {
        let mut s = TaskFileShadow::default();
        s.write(IoBlock::BusMaster, 7, 0xC8);
        s.write(IoBlock::Control, 0, 0x04);
        assert_eq!(s.last(), None);
    }
}
