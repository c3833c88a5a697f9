//! ATA command opcodes and their decoding into an open enum.
//!
//! Every byte a guest writes to the Command register decodes to an
//! [`AtaCommand`]; opcodes vmdma does not implement become
//! [`AtaCommand::Unknown`] and are answered with ABRT, never a panic.

/// ATA opcodes (ACS-2 Table B.2 and older ATA for the retry variants).
pub mod opcode {
    /// DATA SET MANAGEMENT (TRIM, DMA).
    pub const DATA_SET_MANAGEMENT: u8 = 0x06;
    /// RECALIBRATE (obsolete; no-op).
    pub const RECALIBRATE: u8 = 0x10;
    /// READ SECTORS (PIO, LBA28).
    pub const READ_SECTORS: u8 = 0x20;
    /// READ SECTORS without retry (obsolete alias).
    pub const READ_SECTORS_NO_RETRY: u8 = 0x21;
    /// READ SECTORS EXT (PIO, LBA48).
    pub const READ_SECTORS_EXT: u8 = 0x24;
    /// READ DMA EXT.
    pub const READ_DMA_EXT: u8 = 0x25;
    /// READ NATIVE MAX ADDRESS EXT.
    pub const READ_NATIVE_MAX_ADDRESS_EXT: u8 = 0x27;
    /// READ MULTIPLE EXT.
    pub const READ_MULTIPLE_EXT: u8 = 0x29;
    /// WRITE SECTORS (PIO, LBA28).
    pub const WRITE_SECTORS: u8 = 0x30;
    /// WRITE SECTORS without retry (obsolete alias).
    pub const WRITE_SECTORS_NO_RETRY: u8 = 0x31;
    /// WRITE SECTORS EXT (PIO, LBA48).
    pub const WRITE_SECTORS_EXT: u8 = 0x34;
    /// WRITE DMA EXT.
    pub const WRITE_DMA_EXT: u8 = 0x35;
    /// WRITE MULTIPLE EXT.
    pub const WRITE_MULTIPLE_EXT: u8 = 0x39;
    /// WRITE VERIFY (obsolete; a PIO write).
    pub const WRITE_VERIFY: u8 = 0x3C;
    /// READ VERIFY SECTORS.
    pub const READ_VERIFY_SECTORS: u8 = 0x40;
    /// READ VERIFY SECTORS without retry (obsolete alias).
    pub const READ_VERIFY_SECTORS_NO_RETRY: u8 = 0x41;
    /// READ VERIFY SECTORS EXT.
    pub const READ_VERIFY_SECTORS_EXT: u8 = 0x42;
    /// SEEK (obsolete; no-op).
    pub const SEEK: u8 = 0x70;
    /// EXECUTE DEVICE DIAGNOSTIC.
    pub const EXECUTE_DEVICE_DIAGNOSTIC: u8 = 0x90;
    /// INITIALIZE DEVICE PARAMETERS (CHS translation).
    pub const INITIALIZE_DEVICE_PARAMETERS: u8 = 0x91;
    /// STANDBY IMMEDIATE (old opcode).
    pub const STANDBY_IMMEDIATE_OLD: u8 = 0x94;
    /// IDLE IMMEDIATE (old opcode).
    pub const IDLE_IMMEDIATE_OLD: u8 = 0x95;
    /// STANDBY (old opcode).
    pub const STANDBY_OLD: u8 = 0x96;
    /// IDLE (old opcode).
    pub const IDLE_OLD: u8 = 0x97;
    /// CHECK POWER MODE (old opcode).
    pub const CHECK_POWER_MODE_OLD: u8 = 0x98;
    /// SLEEP (old opcode).
    pub const SLEEP_OLD: u8 = 0x99;
    /// SMART (not implemented: ABRT).
    pub const SMART: u8 = 0xB0;
    /// READ MULTIPLE.
    pub const READ_MULTIPLE: u8 = 0xC4;
    /// WRITE MULTIPLE.
    pub const WRITE_MULTIPLE: u8 = 0xC5;
    /// SET MULTIPLE MODE.
    pub const SET_MULTIPLE_MODE: u8 = 0xC6;
    /// READ DMA (LBA28).
    pub const READ_DMA: u8 = 0xC8;
    /// READ DMA without retry (obsolete alias).
    pub const READ_DMA_NO_RETRY: u8 = 0xC9;
    /// WRITE DMA (LBA28).
    pub const WRITE_DMA: u8 = 0xCA;
    /// WRITE DMA without retry (obsolete alias).
    pub const WRITE_DMA_NO_RETRY: u8 = 0xCB;
    /// STANDBY IMMEDIATE.
    pub const STANDBY_IMMEDIATE: u8 = 0xE0;
    /// IDLE IMMEDIATE.
    pub const IDLE_IMMEDIATE: u8 = 0xE1;
    /// STANDBY.
    pub const STANDBY: u8 = 0xE2;
    /// IDLE.
    pub const IDLE: u8 = 0xE3;
    /// CHECK POWER MODE.
    pub const CHECK_POWER_MODE: u8 = 0xE5;
    /// SLEEP.
    pub const SLEEP: u8 = 0xE6;
    /// FLUSH CACHE.
    pub const FLUSH_CACHE: u8 = 0xE7;
    /// FLUSH CACHE EXT.
    pub const FLUSH_CACHE_EXT: u8 = 0xEA;
    /// IDENTIFY DEVICE.
    pub const IDENTIFY_DEVICE: u8 = 0xEC;
    /// SET FEATURES.
    pub const SET_FEATURES: u8 = 0xEF;
    /// SECURITY FREEZE LOCK (= CFA WEAR LEVEL; accepted as a no-op, as
    /// QEMU does for Windows).
    pub const SECURITY_FREEZE_LOCK: u8 = 0xF5;
    /// READ NATIVE MAX ADDRESS.
    pub const READ_NATIVE_MAX_ADDRESS: u8 = 0xF8;
}

/// A decoded ATA command. `ext` marks the 48-bit (EXT) forms, which take
/// their address and count from the HOB FIFO.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AtaCommand {
    /// READ SECTORS (/EXT): PIO in, one sector per DRQ block.
    ReadSectors {
        /// LBA48 form.
        ext: bool,
    },
    /// READ MULTIPLE (/EXT): PIO in, the multiple count per DRQ block.
    ReadMultiple {
        /// LBA48 form.
        ext: bool,
    },
    /// WRITE SECTORS (/EXT), WRITE VERIFY: PIO out, one sector per block.
    WriteSectors {
        /// LBA48 form.
        ext: bool,
    },
    /// WRITE MULTIPLE (/EXT): PIO out, the multiple count per block.
    WriteMultiple {
        /// LBA48 form.
        ext: bool,
    },
    /// READ DMA (/EXT).
    ReadDma {
        /// LBA48 form.
        ext: bool,
    },
    /// WRITE DMA (/EXT).
    WriteDma {
        /// LBA48 form.
        ext: bool,
    },
    /// READ VERIFY SECTORS (/EXT): completes at once.
    ReadVerify {
        /// LBA48 form.
        ext: bool,
    },
    /// FLUSH CACHE (/EXT).
    FlushCache {
        /// LBA48 form (0xEA).
        ext: bool,
    },
    /// IDENTIFY DEVICE.
    IdentifyDevice,
    /// SET FEATURES (subcommand in the Features register).
    SetFeatures,
    /// SET MULTIPLE MODE.
    SetMultipleMode,
    /// INITIALIZE DEVICE PARAMETERS.
    InitializeDeviceParameters,
    /// READ NATIVE MAX ADDRESS (/EXT).
    ReadNativeMaxAddress {
        /// LBA48 form.
        ext: bool,
    },
    /// EXECUTE DEVICE DIAGNOSTIC.
    ExecuteDeviceDiagnostic,
    /// IDLE, IDLE IMMEDIATE, STANDBY, STANDBY IMMEDIATE, SLEEP (old and new
    /// opcodes): accepted, no state change.
    PowerManagement,
    /// CHECK POWER MODE (old and new opcodes): reports "active or idle".
    CheckPowerMode,
    /// SEEK and RECALIBRATE: no-ops that set DSC.
    Seek,
    /// DATA SET MANAGEMENT (TRIM when Features = 1).
    DataSetManagement,
    /// SECURITY FREEZE LOCK: accepted, no state change.
    SecurityFreezeLock,
    /// Anything else: answered with ABRT.
    Unknown(u8),
}

impl AtaCommand {
    /// Decodes an opcode.
    pub const fn decode(op: u8) -> Self {
        use opcode::*;
        match op {
            READ_SECTORS | READ_SECTORS_NO_RETRY => AtaCommand::ReadSectors { ext: false },
            READ_SECTORS_EXT => AtaCommand::ReadSectors { ext: true },
            READ_MULTIPLE => AtaCommand::ReadMultiple { ext: false },
            READ_MULTIPLE_EXT => AtaCommand::ReadMultiple { ext: true },
            WRITE_SECTORS | WRITE_SECTORS_NO_RETRY | WRITE_VERIFY => {
                AtaCommand::WriteSectors { ext: false }
            }
            WRITE_SECTORS_EXT => AtaCommand::WriteSectors { ext: true },
            WRITE_MULTIPLE => AtaCommand::WriteMultiple { ext: false },
            WRITE_MULTIPLE_EXT => AtaCommand::WriteMultiple { ext: true },
            READ_DMA | READ_DMA_NO_RETRY => AtaCommand::ReadDma { ext: false },
            READ_DMA_EXT => AtaCommand::ReadDma { ext: true },
            WRITE_DMA | WRITE_DMA_NO_RETRY => AtaCommand::WriteDma { ext: false },
            WRITE_DMA_EXT => AtaCommand::WriteDma { ext: true },
            READ_VERIFY_SECTORS | READ_VERIFY_SECTORS_NO_RETRY => {
                AtaCommand::ReadVerify { ext: false }
            }
            READ_VERIFY_SECTORS_EXT => AtaCommand::ReadVerify { ext: true },
            FLUSH_CACHE => AtaCommand::FlushCache { ext: false },
            FLUSH_CACHE_EXT => AtaCommand::FlushCache { ext: true },
            IDENTIFY_DEVICE => AtaCommand::IdentifyDevice,
            SET_FEATURES => AtaCommand::SetFeatures,
            SET_MULTIPLE_MODE => AtaCommand::SetMultipleMode,
            INITIALIZE_DEVICE_PARAMETERS => AtaCommand::InitializeDeviceParameters,
            READ_NATIVE_MAX_ADDRESS => AtaCommand::ReadNativeMaxAddress { ext: false },
            READ_NATIVE_MAX_ADDRESS_EXT => AtaCommand::ReadNativeMaxAddress { ext: true },
            EXECUTE_DEVICE_DIAGNOSTIC => AtaCommand::ExecuteDeviceDiagnostic,
            STANDBY_IMMEDIATE_OLD
            | IDLE_IMMEDIATE_OLD
            | STANDBY_OLD
            | IDLE_OLD
            | SLEEP_OLD
            | STANDBY_IMMEDIATE
            | IDLE_IMMEDIATE
            | STANDBY
            | IDLE
            | SLEEP => AtaCommand::PowerManagement,
            CHECK_POWER_MODE_OLD | CHECK_POWER_MODE => AtaCommand::CheckPowerMode,
            SEEK | RECALIBRATE => AtaCommand::Seek,
            DATA_SET_MANAGEMENT => AtaCommand::DataSetManagement,
            SECURITY_FREEZE_LOCK => AtaCommand::SecurityFreezeLock,
            other => AtaCommand::Unknown(other),
        }
    }
}

/// SET FEATURES subcommands (Features register values).
pub mod feature {
    /// Enable the volatile write cache.
    pub const ENABLE_WRITE_CACHE: u8 = 0x02;
    /// Set the transfer mode from the Sector Count register.
    pub const SET_TRANSFER_MODE: u8 = 0x03;
    /// Disable the volatile write cache (flushes it first).
    pub const DISABLE_WRITE_CACHE: u8 = 0x82;
    /// Subcommands accepted without effect (APM, acoustic management,
    /// look-ahead, revert-to-defaults and vendor NOPs), as in QEMU.
    pub const NO_OPS: [u8; 12] = [
        0xCC, 0x66, 0xAA, 0x55, 0x05, 0x85, 0x69, 0x67, 0x96, 0x9A, 0x42, 0xC2,
    ];
    /// DATA SET MANAGEMENT Features value for TRIM.
    pub const DSM_TRIM: u8 = 0x01;
}
