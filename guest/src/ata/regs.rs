//! ATA register bits and command opcodes (ATA/ATAPI-6 numbering), and the
//! PIIX bus-master register bits.

/// Status register bits (command block +7, control block +0 as Alternate
/// Status).
pub mod status {
    /// ERR: the last command failed (see the Error register).
    pub const ERR: u8 = 0x01;
    /// DRQ: the device is ready to transfer data (or a DMA is pending).
    pub const DRQ: u8 = 0x08;
    /// DSC/SERV: seek complete.
    pub const DSC: u8 = 0x10;
    /// DF: device fault.
    pub const DF: u8 = 0x20;
    /// DRDY: the device accepts commands.
    pub const DRDY: u8 = 0x40;
    /// BSY: the device owns the task file.
    pub const BSY: u8 = 0x80;
    /// DRDY | DSC: idle after a successful command.
    pub const READY: u8 = DRDY | DSC;
    /// DRDY | ERR: a command was aborted.
    pub const ABORTED: u8 = DRDY | ERR;
}

/// Error register bits.
pub mod error {
    /// ABRT: command aborted (also "EXECUTE DEVICE DIAGNOSTIC passed" = 0x01
    /// is a code, not this bit).
    pub const ABRT: u8 = 0x04;
    /// Diagnostic code "device 0 passed, device 1 passed or not present".
    pub const DIAG_PASSED: u8 = 0x01;
}

/// Device Control register bits (control block +0, write).
pub mod devctl {
    /// nIEN: the device must not assert INTRQ.
    pub const NIEN: u8 = 0x02;
    /// SRST: software reset of both devices on the channel.
    pub const SRST: u8 = 0x04;
    /// Bit 3: obsolete, written as 1 by Linux (`ATA_DEVCTL_OBS`).
    pub const OBS: u8 = 0x08;
    /// HOB: reads of registers 1-5 return the previous ("high order") bytes.
    pub const HOB: u8 = 0x80;
}

/// Device/Head register bits.
pub mod device {
    /// Obsolete bits 7 and 5, written as 1.
    pub const OBS: u8 = 0xA0;
    /// LBA addressing.
    pub const LBA: u8 = 0x40;
    /// DEV: selects device 1 (slave).
    pub const DEV1: u8 = 0x10;
}

/// Offsets of the command block registers from the command block base.
pub mod reg {
    /// Data (16/32-bit).
    pub const DATA: u16 = 0;
    /// Error (read) / Features (write).
    pub const ERROR_FEATURES: u16 = 1;
    /// Sector Count.
    pub const COUNT: u16 = 2;
    /// LBA low / Sector Number.
    pub const LBA_LOW: u16 = 3;
    /// LBA mid / Cylinder low.
    pub const LBA_MID: u16 = 4;
    /// LBA high / Cylinder high.
    pub const LBA_HIGH: u16 = 5;
    /// Device/Head.
    pub const DEVICE: u16 = 6;
    /// Status (read, clears INTRQ) / Command (write).
    pub const STATUS_COMMAND: u16 = 7;
}

/// Command opcodes used by the guest.
pub mod cmd {
    /// NOP (always aborted by a device without the overlapped feature set).
    pub const NOP: u8 = 0x00;
    /// DATA SET MANAGEMENT (feature 1 = TRIM), DMA.
    pub const DATA_SET_MANAGEMENT: u8 = 0x06;
    /// READ SECTORS (PIO).
    pub const READ_SECTORS: u8 = 0x20;
    /// READ SECTORS EXT (PIO, LBA48).
    pub const READ_SECTORS_EXT: u8 = 0x24;
    /// READ DMA EXT.
    pub const READ_DMA_EXT: u8 = 0x25;
    /// READ NATIVE MAX ADDRESS EXT.
    pub const READ_NATIVE_MAX_EXT: u8 = 0x27;
    /// WRITE SECTORS (PIO).
    pub const WRITE_SECTORS: u8 = 0x30;
    /// WRITE SECTORS EXT (PIO, LBA48).
    pub const WRITE_SECTORS_EXT: u8 = 0x34;
    /// WRITE DMA EXT.
    pub const WRITE_DMA_EXT: u8 = 0x35;
    /// READ VERIFY SECTORS.
    pub const READ_VERIFY: u8 = 0x40;
    /// READ VERIFY SECTORS EXT.
    pub const READ_VERIFY_EXT: u8 = 0x42;
    /// SEEK.
    pub const SEEK: u8 = 0x70;
    /// EXECUTE DEVICE DIAGNOSTIC.
    pub const EXECUTE_DEVICE_DIAGNOSTIC: u8 = 0x90;
    /// INITIALIZE DEVICE PARAMETERS (heads from Device bits 3:0 + 1,
    /// sectors per track from Sector Count).
    pub const INITIALIZE_DEVICE_PARAMETERS: u8 = 0x91;
    /// READ MULTIPLE.
    pub const READ_MULTIPLE: u8 = 0xC4;
    /// WRITE MULTIPLE.
    pub const WRITE_MULTIPLE: u8 = 0xC5;
    /// SET MULTIPLE MODE.
    pub const SET_MULTIPLE_MODE: u8 = 0xC6;
    /// READ DMA.
    pub const READ_DMA: u8 = 0xC8;
    /// WRITE DMA.
    pub const WRITE_DMA: u8 = 0xCA;
    /// CHECK POWER MODE.
    pub const CHECK_POWER_MODE: u8 = 0xE5;
    /// FLUSH CACHE.
    pub const FLUSH_CACHE: u8 = 0xE7;
    /// FLUSH CACHE EXT.
    pub const FLUSH_CACHE_EXT: u8 = 0xEA;
    /// IDENTIFY DEVICE.
    pub const IDENTIFY: u8 = 0xEC;
    /// SET FEATURES.
    pub const SET_FEATURES: u8 = 0xEF;
    /// READ NATIVE MAX ADDRESS.
    pub const READ_NATIVE_MAX: u8 = 0xF8;
}

/// SET FEATURES subcommands and DATA SET MANAGEMENT features.
pub mod feature {
    /// SET FEATURES: enable the write cache.
    pub const ENABLE_WRITE_CACHE: u8 = 0x02;
    /// SET FEATURES: disable the write cache (flushes it).
    pub const DISABLE_WRITE_CACHE: u8 = 0x82;
    /// SET FEATURES: set transfer mode (mode in Sector Count).
    pub const SET_TRANSFER_MODE: u8 = 0x03;
    /// Transfer mode value of multiword DMA mode 2.
    pub const MODE_MWDMA2: u8 = 0x22;
    /// Transfer mode value of Ultra DMA mode 5.
    pub const MODE_UDMA5: u8 = 0x45;
    /// DATA SET MANAGEMENT feature: TRIM.
    pub const DSM_TRIM: u8 = 0x01;
}

/// PIIX bus-master IDE registers (offsets from BAR4 + 8 * channel).
pub mod bm {
    /// Command register (8-bit).
    pub const CMD: u16 = 0;
    /// Status register (8-bit).
    pub const STATUS: u16 = 2;
    /// PRD table pointer (32-bit).
    pub const PRD_ADDR: u16 = 4;

    /// Command: start/stop bus master.
    pub const CMD_START: u8 = 0x01;
    /// Command: direction, 1 = the controller writes memory (ATA read).
    pub const CMD_WRITE_MEMORY: u8 = 0x08;

    /// Status: bus master active.
    pub const STATUS_ACTIVE: u8 = 0x01;
    /// Status: error (write 1 to clear).
    pub const STATUS_ERR: u8 = 0x02;
    /// Status: the device raised its interrupt (write 1 to clear).
    pub const STATUS_INT: u8 = 0x04;
    /// Status: drive 0 / drive 1 DMA capable (plain read/write bits).
    pub const STATUS_DRIVES_DMA: u8 = 0x60;
    /// Status: simplex only (read-only).
    pub const STATUS_SIMPLEX: u8 = 0x80;
}
