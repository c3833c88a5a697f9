//! PIO data transfers: READ/WRITE SECTORS (16- and 32-bit data port
//! accesses, LBA28 and LBA48) and READ/WRITE MULTIPLE.

use vmdma_guest::ata::regs::cmd;
use vmdma_guest::ata::taskfile::{Drive, TaskFile};

use super::io::Mode;
use super::{Ctx, PASS, TestResult};
use crate::ide::pio::Width;

/// WRITE SECTORS then READ SECTORS with 16-bit data accesses.
pub fn pio_rw_16bit(ctx: &mut Ctx) -> TestResult {
    let lba = ctx.alloc(8)?;
    let p = ctx.write_pio(Mode::Lba28, lba, 8, Width::Bits16)?;
    ctx.read_pio_verify(Mode::Lba28, lba, 8, Width::Bits16, p)?;
    PASS
}

/// WRITE SECTORS then READ SECTORS with 32-bit data accesses (Linux's
/// ata_piix mode); the data also reads back by DMA.
pub fn pio_rw_32bit(ctx: &mut Ctx) -> TestResult {
    let lba = ctx.alloc(8)?;
    let p = ctx.write_pio(Mode::Lba28, lba, 8, Width::Bits32)?;
    ctx.read_pio_verify(Mode::Lba28, lba, 8, Width::Bits32, p)?;
    ctx.read_dma_verify(lba, 8, p)?;
    PASS
}

/// WRITE SECTORS EXT (16-bit) then READ SECTORS EXT (32-bit).
pub fn pio_rw_lba48(ctx: &mut Ctx) -> TestResult {
    let lba = ctx.alloc(8)?;
    let p = ctx.write_pio(Mode::Lba48, lba, 8, Width::Bits16)?;
    ctx.read_pio_verify(Mode::Lba48, lba, 8, Width::Bits32, p)?;
    PASS
}

/// SET MULTIPLE MODE 4, then WRITE MULTIPLE and READ MULTIPLE of 10
/// sectors (DRQ blocks of 4, 4 and 2 sectors).
pub fn read_write_multiple(ctx: &mut Ctx) -> TestResult {
    let lba = ctx.alloc(10)?;
    ctx.non_data_ok(
        &TaskFile::plain(Drive::Master, 0, 4),
        cmd::SET_MULTIPLE_MODE,
    )?;
    let p = ctx.pattern();
    let result = (|| {
        ctx.write_pio_with(
            cmd::WRITE_MULTIPLE,
            Mode::Lba28,
            lba,
            10,
            Width::Bits32,
            4,
            p,
        )?;
        ctx.read_pio_with(cmd::READ_MULTIPLE, Mode::Lba28, lba, 10, Width::Bits16, 4)?;
        ctx.verify_stage(lba, 10, p)
    })();
    let max = ctx.id.max_multiple();
    ctx.non_data_ok(
        &TaskFile::plain(Drive::Master, 0, max),
        cmd::SET_MULTIPLE_MODE,
    )?;
    result?;
    PASS
}

/// SET MULTIPLE MODE with a block size that is not a power of two is
/// aborted.
pub fn set_multiple_invalid(ctx: &mut Ctx) -> TestResult {
    ctx.non_data_aborted(
        &TaskFile::plain(Drive::Master, 0, 3),
        cmd::SET_MULTIPLE_MODE,
    )?;
    PASS
}
