//! The configuration space of the PIIX3 IDE function (`8086:7010`).
//!
//! Compatibility ("legacy") mode on both channels (prog-if `0x80`: both
//! channels at the ISA addresses, bus-master capable), so the task-file
//! ports are fixed and only the bus-master (BMDMA) block is relocatable
//! through BAR4.

use super::{AccessWidth, ConfigSpace, PciCommand, PciError, PciFunction, header};

/// IDETIM, primary channel (16 bits at 0x40); SIDETIM is at 0x44, UDMACTL at
/// 0x48, UDMATIM at 0x4A.
const IDETIM_PRIMARY: u8 = 0x40;
/// First byte past the timing registers Linux writes (0x40..=0x4B).
const TIMING_LEN: usize = 12;
/// IDETIM bit 15: IDE decode enable (high byte bit 7).
const IDETIM_DECODE_ENABLE: u16 = 0x8000;
/// IDETIM, secondary channel.
const IDETIM_SECONDARY: u8 = 0x42;

/// The PIIX3 IDE function's configuration space.
///
/// Reset state (as QEMU's `piix_ide_reset` plus the IDE decode-enable bits
/// that firmware sets): Command `0x0000` (no I/O decode, no bus mastering),
/// Status `0x0280`, BAR4 `0x0000_0001` (an unassigned 16-byte I/O BAR),
/// IDETIM primary/secondary = `0x8000`. BARs 0–3 are hard-wired to zero.
///
/// Writable: Command bits IO, MEMORY, MASTER, INTX_DISABLE; BAR4 bits 31:4
/// (so a size probe with all ones reads back `0xFFFF_FFF1`); cache line size,
/// latency timer, interrupt line; and all bits of 0x40–0x4B (IDETIM,
/// SIDETIM, UDMACTL, UDMATIM), which this model stores but does not
/// interpret, like QEMU.
#[derive(Clone, Debug)]
pub struct Piix3Ide {
    pub(super) config: ConfigSpace,
}

impl Default for Piix3Ide {
    fn default() -> Self {
        Self::new()
    }
}

impl Piix3Ide {
    /// Intel vendor ID.
    pub const VENDOR_ID: u16 = 0x8086;
    /// 82371SB PIIX3 IDE.
    pub const DEVICE_ID: u16 = 0x7010;
    /// Size of the BMDMA I/O BAR (BAR4): 8 bytes per channel.
    pub const BMDMA_BAR_SIZE: u16 = 16;

    /// The function in its reset state.
    pub const fn new() -> Self {
        let mut config = ConfigSpace::with_identity(
            Self::VENDOR_ID,
            Self::DEVICE_ID,
            0x01,
            0x01,
            0x80,
            0x00,
            header::TYPE_NORMAL,
        );
        let cmd = PciCommand::IO
            .union(PciCommand::MEMORY)
            .union(PciCommand::MASTER)
            .union(PciCommand::INTX_DISABLE);
        config.set_wmask(header::COMMAND, &cmd.bits().to_le_bytes());
        config.set_u16(
            header::STATUS,
            header::STATUS_DEVSEL_MEDIUM | header::STATUS_FAST_BACK,
        );
        config.set_u32(header::BAR4, header::BAR_IO);
        let bar_mask = !(Self::BMDMA_BAR_SIZE as u32 - 1);
        config.set_wmask(header::BAR4, &bar_mask.to_le_bytes());
        config.set_wmask(IDETIM_PRIMARY, &[0xFF; TIMING_LEN]);
        // Linux's ata_piix treats a channel whose decode-enable bit is clear
        // as disabled; firmware (SeaBIOS: 0x8000 to 0x40 and 0x42) sets them,
        // and vmdma has no firmware, so the bits are preset.
        config.set_u16(IDETIM_PRIMARY, IDETIM_DECODE_ENABLE);
        config.set_u16(IDETIM_SECONDARY, IDETIM_DECODE_ENABLE);
        Piix3Ide { config }
    }

    /// The configuration space.
    pub fn config(&self) -> &ConfigSpace {
        &self.config
    }

    /// True while the Command register enables I/O decode.
    pub fn io_enabled(&self) -> bool {
        self.config.command().contains(PciCommand::IO)
    }

    /// True while the Command register allows bus mastering (DMA).
    pub fn bus_master_enabled(&self) -> bool {
        self.config.command().contains(PciCommand::MASTER)
    }

    /// The port base of the BMDMA block, if it currently decodes: I/O decode
    /// enabled, BAR4 assigned (non-zero) and all 16 ports below 64 KiB.
    pub fn bmdma_base(&self) -> Option<u16> {
        if !self.io_enabled() {
            return None;
        }
        let bar = self.config.u32_at(header::BAR4) & !(u32::from(Self::BMDMA_BAR_SIZE) - 1);
        let base = u16::try_from(bar).ok().filter(|b| *b != 0)?;
        base.checked_add(Self::BMDMA_BAR_SIZE - 1)?;
        Some(base)
    }

    /// Does what PC firmware does before the OS runs: assigns BAR4 to
    /// `base` and enables I/O decode. Bus mastering stays off (the OS driver
    /// turns it on).
    pub fn firmware_init(&mut self, base: u16) -> Result<(), PciError> {
        if base == 0
            || !base.is_multiple_of(Self::BMDMA_BAR_SIZE)
            || base.checked_add(Self::BMDMA_BAR_SIZE - 1).is_none()
        {
            return Err(PciError::BadIoBase { base });
        }
        self.config
            .set_u32(header::BAR4, u32::from(base) | header::BAR_IO);
        let cmd = self.config.command() | PciCommand::IO;
        self.config.set_u16(header::COMMAND, cmd.bits());
        Ok(())
    }
}

impl PciFunction for Piix3Ide {
    fn config_read(&self, offset: u8, width: AccessWidth) -> u32 {
        self.config.read(offset, width)
    }

    fn config_write(&mut self, offset: u8, width: AccessWidth, value: u32) {
        self.config.write(offset, width, value);
    }
}
