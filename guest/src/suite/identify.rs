//! IDENTIFY DEVICE: protocol, capacity words, feature bits, strings.

use vmdma_guest::ata::identify::Identify;
use vmdma_guest::ata::regs::status;
use vmdma_guest::ata::taskfile::{Drive, LBA28_LIMIT};

use super::ctx::Platform;
use super::{Ctx, PASS, TestResult};
use crate::ide::pio;
use crate::{ensure, ensure_eq};

/// QEMU's default IDE disk model.
const QEMU_MODEL: &str = "QEMU HARDDISK";

/// IDENTIFY transfers 512 bytes by PIO and ends with Status DRDY|DSC; the
/// data describes an ATA disk with LBA and DMA, identical to the start-up
/// copy.
pub fn identify_device(ctx: &mut Ctx) -> TestResult {
    let mut raw = [0u8; 512];
    let st = pio::identify(&ctx.ch, Drive::Master, &mut raw)?;
    ensure_eq!(st, status::READY, "status after IDENTIFY");
    let id = Identify::from_bytes(&raw);
    ensure_eq!(id.word(0) & 0x8000, 0, "word 0 bit 15 (ATA device)");
    ensure_eq!(id.word(49) & 0x0300, 0x0300u16, "word 49 LBA and DMA bits");
    let mm = id.max_multiple();
    ensure!(mm >= 1 && mm.is_power_of_two(), "word 47 max multiple {mm}");
    for w in 0..256 {
        let (now, then) = (id.word(w), ctx.id.word(w));
        ensure!(
            now == then,
            "word {w} is {now:#06x}, was {then:#06x} at start-up"
        );
    }
    PASS
}

/// Words 60-61 hold min(capacity, 0x0FFFFFFF); words 100-103 the capacity.
pub fn identify_capacity(ctx: &mut Ctx) -> TestResult {
    let id = &ctx.id;
    let lba48 = id.lba48_sectors();
    ensure!(lba48 > 0, "words 100-103 are zero");
    let want28 = lba48.min(LBA28_LIMIT - 1);
    ensure_eq!(u64::from(id.lba28_sectors()), want28, "words 60-61");
    ensure_eq!(ctx.capacity, lba48, "capacity");
    PASS
}

/// Words 83 and 86 bit 10: 48-bit addressing supported and enabled.
pub fn identify_lba48_bits(ctx: &mut Ctx) -> TestResult {
    ensure!(
        ctx.id.word(83) & (1 << 10) != 0,
        "word 83 {:#06x} lacks bit 10",
        ctx.id.word(83)
    );
    ensure!(
        ctx.id.word(86) & (1 << 10) != 0,
        "word 86 {:#06x} lacks bit 10",
        ctx.id.word(86)
    );
    ensure_eq!(ctx.id.word(83) >> 14, 1, "word 83 bits 15:14 (valid)");
    PASS
}

/// Words 63 and 88: MWDMA 0-2 and UDMA 0-5 supported, at most one mode
/// selected; word 53 bit 2 says word 88 is valid.
pub fn identify_dma_modes(ctx: &mut Ctx) -> TestResult {
    let (w53, w63, w88) = (ctx.id.word(53), ctx.id.word(63), ctx.id.word(88));
    ensure_eq!(
        w53 & 0x0006,
        0x0006u16,
        "word 53 (words 64-70 and 88 valid)"
    );
    ensure_eq!(w63 & 0x0007, 0x0007u16, "word 63 supported MWDMA modes");
    ensure_eq!(w88 & 0x003F, 0x003Fu16, "word 88 supported UDMA modes");
    let selected = ((w63 >> 8) & 0x07).count_ones() + ((w88 >> 8) & 0x7F).count_ones();
    ensure!(
        selected <= 1,
        "words 63/88 select {selected} modes ({w63:#06x}, {w88:#06x})"
    );
    PASS
}

/// Words 83/86 bits 12 and 13: FLUSH CACHE and FLUSH CACHE EXT.
pub fn identify_flush_bits(ctx: &mut Ctx) -> TestResult {
    let bits = (1 << 12) | (1 << 13);
    ensure_eq!(ctx.id.word(83) & bits, bits, "word 83 flush bits");
    ensure_eq!(ctx.id.word(86) & bits, bits, "word 86 flush bits");
    PASS
}

/// Model, serial and firmware strings: printable ASCII (byte-swapped
/// within words, as the parser assumes), model and serial non-empty and
/// left-aligned; on QEMU the model is "QEMU HARDDISK".
pub fn identify_strings(ctx: &mut Ctx) -> TestResult {
    let id = &ctx.id;
    for (name, s) in [
        ("model", id.model()),
        ("serial", id.serial()),
        ("firmware", id.firmware()),
    ] {
        ensure!(
            s.is_printable(),
            "{name} is not printable ASCII: {:?}",
            s.raw()
        );
        ensure!(!s.trimmed().is_empty(), "{name} is empty");
        ensure!(
            !s.trimmed().starts_with(' '),
            "{name} {:?} is not left-aligned",
            s.trimmed()
        );
    }
    // Only on QEMU is the model known, which proves the byte order: a
    // string stored without the swap would read "EQUMH RADDSI K".
    if ctx.platform == Platform::Qemu {
        ensure!(
            id.model().trimmed() == QEMU_MODEL,
            "model {:?}, want {QEMU_MODEL:?} on QEMU",
            id.model().trimmed()
        );
    }
    PASS
}
