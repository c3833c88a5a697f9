//! Non-data and housekeeping commands: FLUSH CACHE (EXT), TRIM, SET
//! FEATURES transfer mode and write cache, READ VERIFY (EXT), CHECK POWER MODE, EXECUTE
//! DEVICE DIAGNOSTIC, READ NATIVE MAX ADDRESS (EXT).

use vmdma_guest::ata::identify::Identify;
use vmdma_guest::ata::regs::{cmd, error, feature};
use vmdma_guest::ata::taskfile::{Drive, LBA28_LIMIT, TaskFile, lba28_from, lba48_from};
use vmdma_guest::stamp::SECTOR;

use super::io::{Layout, Mode, expect_clean};
use super::{Ctx, Fail, PASS, TestResult};
use crate::arch::mem;
use crate::ide::dma::{self, Direction, DmaCommand, DmaOutcome};
use crate::ide::pio;
use crate::{ensure_eq, skip};

/// Issues DATA SET MANAGEMENT / TRIM by DMA with one 512-byte block of
/// range entries (LBA in bits 47:0, count in bits 63:48).
pub fn trim_dma(ctx: &mut Ctx, ranges: &[(u64, u16)]) -> Result<DmaOutcome, Fail> {
    let block = ctx.mem.data.get_mut(..SECTOR).unwrap_or(&mut []);
    mem::fill(block, 0);
    for ((lba, count), entry) in ranges.iter().zip(block.chunks_exact_mut(8)) {
        let v = (lba & ((1 << 48) - 1)) | (u64::from(*count) << 48);
        entry.copy_from_slice(&v.to_le_bytes());
    }
    ctx.load_prds(&Layout::ram(0, SECTOR)?)?;
    let tf = TaskFile::lba48(Drive::Master, 0, 1, feature::DSM_TRIM)
        .map_err(crate::ide::AtaError::from)?;
    let command = DmaCommand::new(cmd::DATA_SET_MANAGEMENT, tf, Direction::FromMemory);
    Ok(dma::run(&ctx.ch, ctx.mem, &command)?)
}

/// FLUSH CACHE completes with Status DRDY|DSC and an interrupt.
pub fn flush_cache(ctx: &mut Ctx) -> TestResult {
    let lba = ctx.alloc(1)?;
    ctx.write_dma(lba, 1)?;
    ctx.non_data_ok(&TaskFile::plain(Drive::Master, 0, 0), cmd::FLUSH_CACHE)?;
    PASS
}

/// FLUSH CACHE EXT completes with Status DRDY|DSC and an interrupt.
pub fn flush_cache_ext(ctx: &mut Ctx) -> TestResult {
    let lba = ctx.alloc(1)?;
    ctx.write_dma(lba, 1)?;
    let tf = TaskFile::lba48_raw(Drive::Master, 0, 0, 0);
    ctx.non_data_ok(&tf, cmd::FLUSH_CACHE_EXT)?;
    PASS
}

/// IDENTIFY word 82/85 bit 5: write cache supported / enabled.
const WRITE_CACHE_BIT: u16 = 1 << 5;

/// SET FEATURES 0x82 turns the volatile write cache off (IDENTIFY word 85
/// bit 5 clears; word 82 still advertises it); DMA and PIO writes then
/// still complete and read back, each reaching stable storage before it
/// completes (vmdma flushes after it: `--stats` counts the write-through
/// flushes, which tests/conformance.rs checks). SET FEATURES 0x02 turns it
/// back on.
pub fn write_cache_off(ctx: &mut Ctx) -> TestResult {
    ensure_eq!(
        ctx.id.word(82) & WRITE_CACHE_BIT,
        WRITE_CACHE_BIT,
        "word 82: write cache supported"
    );
    ensure_eq!(
        ctx.id.word(85) & WRITE_CACHE_BIT,
        WRITE_CACHE_BIT,
        "word 85: write cache enabled at power-on"
    );
    let off = TaskFile::plain(Drive::Master, feature::DISABLE_WRITE_CACHE, 0);
    ctx.non_data_ok(&off, cmd::SET_FEATURES)?;
    let id = identify_now(ctx)?;
    ensure_eq!(
        id.word(85) & WRITE_CACHE_BIT,
        0u16,
        "word 85 after disabling the write cache"
    );
    let lba = ctx.alloc(8)?;
    let p = ctx.write_dma(lba, 8)?;
    ctx.read_dma_verify(lba, 8, p)?;
    let on = TaskFile::plain(Drive::Master, feature::ENABLE_WRITE_CACHE, 0);
    ctx.non_data_ok(&on, cmd::SET_FEATURES)?;
    let id = identify_now(ctx)?;
    ensure_eq!(
        id.word(85) & WRITE_CACHE_BIT,
        WRITE_CACHE_BIT,
        "word 85 after enabling the write cache again"
    );
    PASS
}

/// DATA SET MANAGEMENT with the TRIM feature, by DMA: two ranges (one with
/// a zero count, which is skipped) complete cleanly. The trimmed sectors'
/// content is device-defined and not checked; the manifest records the
/// trim.
pub fn trim(ctx: &mut Ctx) -> TestResult {
    if !ctx.id.trim() {
        skip!("IDENTIFY word 169 does not advertise TRIM");
    }
    let lba = ctx.alloc(16)?;
    ctx.write_dma(lba, 16)?;
    ctx.manifest_trim(lba, 8);
    ctx.manifest_trim(lba + 12, 2);
    let o = trim_dma(ctx, &[(lba, 8), (lba + 9, 0), (lba + 12, 2)])?;
    expect_clean("TRIM", &o)?;
    PASS
}

fn identify_now(ctx: &mut Ctx) -> Result<Identify, Fail> {
    let mut raw = [0u8; 512];
    pio::identify(&ctx.ch, Drive::Master, &mut raw)?;
    Ok(Identify::from_bytes(&raw))
}

fn set_transfer_mode(ctx: &mut Ctx, mode: u8) -> Result<Identify, Fail> {
    let tf = TaskFile::plain(Drive::Master, feature::SET_TRANSFER_MODE, mode);
    ctx.non_data_ok(&tf, cmd::SET_FEATURES)?;
    identify_now(ctx)
}

/// SET FEATURES MWDMA2 (0x22): IDENTIFY word 63 selects mode 2 (0x0407), no
/// UDMA mode selected; the disk still transfers by DMA.
pub fn set_features_mwdma2(ctx: &mut Ctx) -> TestResult {
    let id = set_transfer_mode(ctx, feature::MODE_MWDMA2)?;
    ensure_eq!(id.word(63), 0x0407u16, "word 63 after selecting MWDMA2");
    ensure_eq!(id.word(88) & 0x7F00, 0u16, "word 88 selected UDMA modes");
    let lba = ctx.alloc(4)?;
    let p = ctx.write_dma(lba, 4)?;
    ctx.read_dma_verify(lba, 4, p)?;
    PASS
}

/// SET FEATURES UDMA5 (0x45): word 88 selects mode 5 (bit 13), no MWDMA
/// mode selected.
pub fn set_features_udma5(ctx: &mut Ctx) -> TestResult {
    let id = set_transfer_mode(ctx, feature::MODE_UDMA5)?;
    ensure_eq!(
        id.word(88) & 0x7F3F,
        0x203Fu16,
        "word 88 after selecting UDMA5"
    );
    ensure_eq!(id.word(63) & 0x0700, 0u16, "word 63 selected MWDMA modes");
    PASS
}

/// READ VERIFY SECTORS completes with DRDY|DSC and an interrupt.
pub fn read_verify(ctx: &mut Ctx) -> TestResult {
    let lba = ctx.alloc(8)?;
    ctx.write_dma(lba, 8)?;
    ctx.non_data_ok(&Mode::Lba28.taskfile(lba, 8)?, cmd::READ_VERIFY)?;
    PASS
}

/// READ VERIFY SECTORS EXT likewise.
pub fn read_verify_ext(ctx: &mut Ctx) -> TestResult {
    let lba = ctx.alloc(8)?;
    ctx.write_dma(lba, 8)?;
    ctx.non_data_ok(&Mode::Lba48.taskfile(lba, 8)?, cmd::READ_VERIFY_EXT)?;
    PASS
}

/// CHECK POWER MODE reports active/idle (Sector Count 0xFF).
pub fn check_power_mode(ctx: &mut Ctx) -> TestResult {
    let r = ctx.non_data_ok(&TaskFile::plain(Drive::Master, 0, 0), cmd::CHECK_POWER_MODE)?;
    ensure_eq!(r.low.count, 0xFF, "sector count (power mode)");
    PASS
}

/// EXECUTE DEVICE DIAGNOSTIC: Error 0x01 without ERR, the ATA signature,
/// an interrupt.
pub fn execute_device_diagnostic(ctx: &mut Ctx) -> TestResult {
    let r = ctx.non_data_ok(
        &TaskFile::plain(Drive::Master, 0, 0),
        cmd::EXECUTE_DEVICE_DIAGNOSTIC,
    )?;
    ensure_eq!(r.error, error::DIAG_PASSED, "error (diagnostic code)");
    ensure_eq!(r.low.count, 1, "signature sector count");
    ensure_eq!(r.low.lba_low, 1, "signature LBA low");
    ensure_eq!(r.low.lba_mid, 0, "signature LBA mid");
    ensure_eq!(r.low.lba_high, 0, "signature LBA high");
    PASS
}

/// READ NATIVE MAX ADDRESS returns the last LBA in the LBA28 registers.
/// For disks above 2^28 sectors QEMU returns the last LBA truncated to 28
/// bits (ATA-8 asks for 0x0FFFFFFF instead); the test expects QEMU's value.
pub fn read_native_max(ctx: &mut Ctx) -> TestResult {
    let mut tf = TaskFile::plain(Drive::Master, 0, 0);
    tf.device |= vmdma_guest::ata::regs::device::LBA;
    let r = ctx.non_data_ok(&tf, cmd::READ_NATIVE_MAX)?;
    let want = (ctx.capacity - 1) & (LBA28_LIMIT - 1);
    ensure_eq!(
        lba28_from(&r.low, r.device),
        want,
        "native max address (28 bits)"
    );
    ensure_eq!(
        r.device & 0xF0,
        0xE0,
        "device register bits 7:4 (LBA, master)"
    );
    PASS
}

/// READ NATIVE MAX ADDRESS EXT returns the last LBA in the LBA48 registers.
pub fn read_native_max_ext(ctx: &mut Ctx) -> TestResult {
    let tf = TaskFile::lba48_raw(Drive::Master, 0, 0, 0);
    let r = ctx.non_data_ok(&tf, cmd::READ_NATIVE_MAX_EXT)?;
    ensure_eq!(
        lba48_from(&r.hob, &r.low),
        ctx.capacity - 1,
        "native max address"
    );
    PASS
}
