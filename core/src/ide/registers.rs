//! Register offsets and bit layouts of the ATA task file and the PIIX
//! bus-master (BMDMA) block.
//!
//! Reserved-bit policy: registers are stored as the guest wrote them
//! (`from_bits_retain`) where the guest can read them back (Device/Head,
//! Device Control); the BMDMA Command and Status registers keep only their
//! defined bits (`from_bits_truncate`), as the hardware does.

use bitflags::bitflags;

bitflags! {
    /// ATA Status register (command block offset 7; also Alternate Status).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Status: u8 {
        /// Bit 0 ERR: the last command ended with an error (see Error).
        const ERR = 0x01;
        /// Bit 1 IDX (obsolete index mark); never set.
        const IDX = 0x02;
        /// Bit 2 CORR (obsolete corrected data); never set.
        const CORR = 0x04;
        /// Bit 3 DRQ: the device is ready to transfer a data block (or a
        /// DMA command waits for the bus master).
        const DRQ = 0x08;
        /// Bit 4 DSC/SERV: device seek complete.
        const DSC = 0x10;
        /// Bit 5 DF: device fault; never set.
        const DF = 0x20;
        /// Bit 6 DRDY: device ready to accept commands.
        const DRDY = 0x40;
        /// Bit 7 BSY: the device is busy; other bits are not valid.
        const BSY = 0x80;
    }
}

bitflags! {
    /// ATA Error register (command block offset 1, read).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct AtaError: u8 {
        /// Bit 0 AMNF (address mark not found); also "diagnostic passed"
        /// after EXECUTE DEVICE DIAGNOSTIC and reset.
        const AMNF = 0x01;
        /// Bit 1 TK0NF (track 0 not found).
        const TK0NF = 0x02;
        /// Bit 2 ABRT: command aborted (unsupported command or parameter,
        /// address out of range, or an I/O error).
        const ABRT = 0x04;
        /// Bit 3 MCR (media change requested).
        const MCR = 0x08;
        /// Bit 4 IDNF (ID not found).
        const IDNF = 0x10;
        /// Bit 5 MC (media changed).
        const MC = 0x20;
        /// Bit 6 UNC (uncorrectable data).
        const UNC = 0x40;
        /// Bit 7 ICRC (interface CRC error).
        const ICRC = 0x80;
    }
}

bitflags! {
    /// Device Control register (control block offset 0, write).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct DeviceControl: u8 {
        /// Bit 1 nIEN: interrupts from the device are disabled.
        const NIEN = 0x02;
        /// Bit 2 SRST: software reset (acted on at the rising edge).
        const SRST = 0x04;
        /// Bit 7 HOB: reads of registers 1–5 return the previous
        /// ("high order byte") values of the LBA48 FIFO.
        const HOB = 0x80;
    }
}

bitflags! {
    /// Device/Head register (command block offset 6).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct DeviceHead: u8 {
        /// Bits 3:0: head number (CHS) or LBA bits 27:24 (LBA28).
        const HEAD = 0x0F;
        /// Bit 4 DEV: selects device 1 (slave).
        const DEV = 0x10;
        /// Bit 6 LBA: the address registers hold an LBA (else CHS).
        const LBA = 0x40;
        /// Bits 7 and 5: obsolete, always read as one.
        const OBSOLETE = 0xA0;
    }
}

bitflags! {
    /// Bus Master IDE Command register (BMICX, BMDMA offset 0).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct BmCommand: u8 {
        /// Bit 0 SSBM: start (1) / stop (0) the bus master.
        const START = 0x01;
        /// Bit 3 RWCON: 1 = the bus master writes memory (an ATA read).
        /// Stored but not used: the ATA command decides the direction, as
        /// in QEMU.
        const READ = 0x08;
    }
}

bitflags! {
    /// Bus Master IDE Status register (BMISX, BMDMA offset 2).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct BmStatus: u8 {
        /// Bit 0: bus master IDE active (read-only to the guest).
        const ACTIVE = 0x01;
        /// Bit 1: DMA error (write 1 to clear). Set by vmdma when a DMA
        /// access hits no memory or bus mastering is disabled, like a PCI
        /// master abort on real hardware.
        const ERROR = 0x02;
        /// Bit 2: the IDE interrupt was raised (write 1 to clear).
        const INTERRUPT = 0x04;
        /// Bit 5: drive 0 DMA capable (software scratch).
        const DRIVE0_DMA = 0x20;
        /// Bit 6: drive 1 DMA capable (software scratch).
        const DRIVE1_DMA = 0x40;
        /// Bit 7: simplex only; always reads 0.
        const SIMPLEX = 0x80;
    }
}

/// Registers of the ATA command block (base `0x1F0` on the primary
/// channel), by offset. Reads and writes of the same offset reach different
/// registers where the names say so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum CommandBlockReg {
    /// Offset 0: PIO data (8, 16 or 32 bits).
    #[doc(alias = "DATA")]
    Data = 0,
    /// Offset 1: Error (read) / Features (write).
    #[doc(alias = "FEATURES")]
    ErrorFeatures = 1,
    /// Offset 2: Sector Count.
    #[doc(alias = "NSECTOR")]
    SectorCount = 2,
    /// Offset 3: LBA low / Sector Number.
    #[doc(alias = "SECTOR")]
    LbaLow = 3,
    /// Offset 4: LBA mid / Cylinder Low.
    #[doc(alias = "LCYL")]
    LbaMid = 4,
    /// Offset 5: LBA high / Cylinder High.
    #[doc(alias = "HCYL")]
    LbaHigh = 5,
    /// Offset 6: Device/Head.
    #[doc(alias = "SELECT")]
    Device = 6,
    /// Offset 7: Status (read) / Command (write).
    #[doc(alias = "COMMAND")]
    StatusCommand = 7,
}

impl CommandBlockReg {
    /// The register at `offset` (0..=7).
    pub const fn from_offset(offset: u16) -> Option<Self> {
        Some(match offset {
            0 => CommandBlockReg::Data,
            1 => CommandBlockReg::ErrorFeatures,
            2 => CommandBlockReg::SectorCount,
            3 => CommandBlockReg::LbaLow,
            4 => CommandBlockReg::LbaMid,
            5 => CommandBlockReg::LbaHigh,
            6 => CommandBlockReg::Device,
            7 => CommandBlockReg::StatusCommand,
            _ => return None,
        })
    }
}

/// Registers of one channel's half of the BMDMA block (BAR4 + 0 primary,
/// + 8 secondary), by offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum BmRegister {
    /// Offset 0: Command (8-bit).
    #[doc(alias = "BMICX")]
    Command = 0,
    /// Offset 2: Status (8-bit).
    #[doc(alias = "BMISX")]
    Status = 2,
    /// Offsets 4..=7: PRD table pointer (any width, byte lanes).
    #[doc(alias = "BMIDTPX")]
    PrdTable = 4,
}
