//! Register-level behaviour: reset signature, HOB read-back, the absent
//! slave, the bus-master registers.

use vmdma_guest::ata::regs::{bm, cmd, devctl, device, error, reg, status};
use vmdma_guest::ata::taskfile::{Drive, TaskFile};

use super::{Ctx, PASS, TestResult};
use crate::ide::channel::DEVCTL_NORMAL;
use crate::{ensure, ensure_eq};

/// SRST: an interrupt and Status DRDY|DSC once BSY clears, Error 0x01 (diagnostic
/// passed), signature Count 1 / LBA 1,0,0, master selected.
pub fn srst_signature(ctx: &mut Ctx) -> TestResult {
    let ch = &ctx.ch;
    ch.select(Drive::Master)?;
    let _ = ch.status();
    ch.drain_irq();
    // QEMU sets BSY on the SRST edge and finishes the reset later (in a
    // bottom half), so BSY may or may not still be visible here: only its
    // end is checked.
    ch.set_devctl(DEVCTL_NORMAL | devctl::SRST);
    let _ = ch.alt_status();
    ch.set_devctl(DEVCTL_NORMAL);
    ch.wait_not_busy("BSY clear after SRST")?;
    let irq = ch.irq_requested();
    let (_, low) = ch.read_taskfile();
    let dev = ch.read(reg::DEVICE);
    let err = ch.error();
    let st = ch.status();
    ensure_eq!(st, status::READY, "status after SRST");
    ensure_eq!(
        err,
        error::DIAG_PASSED,
        "error (diagnostic code) after SRST"
    );
    ensure_eq!(low.count, 1, "signature sector count");
    ensure_eq!(low.lba_low, 1, "signature LBA low");
    ensure_eq!(low.lba_mid, 0, "signature LBA mid");
    ensure_eq!(low.lba_high, 0, "signature LBA high");
    ensure_eq!(dev & device::DEV1, 0, "device register DEV bit after SRST");
    ensure!(irq, "no interrupt after SRST");
    PASS
}

const HOB_TF_LBA: u64 = 0x1234_5678_9ABC;

/// LBA48 registers are two-deep: with HOB set, reads return the bytes
/// written first.
pub fn hob_readback(ctx: &mut Ctx) -> TestResult {
    let ch = &ctx.ch;
    ch.select(Drive::Master)?;
    let tf = TaskFile::lba48_raw(Drive::Master, HOB_TF_LBA, 0xBEEF, 0);
    ch.load(&tf);
    let (hob, low) = ch.read_taskfile();
    ensure_eq!(low.count, 0xEF, "sector count (HOB clear)");
    ensure_eq!(low.lba_low, 0xBC, "LBA low (HOB clear)");
    ensure_eq!(low.lba_mid, 0x9A, "LBA mid (HOB clear)");
    ensure_eq!(low.lba_high, 0x78, "LBA high (HOB clear)");
    ensure_eq!(hob.count, 0xBE, "sector count (HOB set)");
    ensure_eq!(hob.lba_low, 0x56, "LBA low (HOB set)");
    ensure_eq!(hob.lba_mid, 0x34, "LBA mid (HOB set)");
    ensure_eq!(hob.lba_high, 0x12, "LBA high (HOB set)");
    PASS
}

/// A write to any command block register clears HOB in Device Control.
pub fn hob_cleared_by_register_write(ctx: &mut Ctx) -> TestResult {
    let ch = &ctx.ch;
    ch.select(Drive::Master)?;
    ch.load(&TaskFile::lba48_raw(Drive::Master, HOB_TF_LBA, 0xBEEF, 0));
    ch.set_devctl(DEVCTL_NORMAL | devctl::HOB);
    let with_hob = ch.read(reg::COUNT);
    ch.write(reg::DEVICE, Drive::Master.select_bits() | device::LBA);
    let after_write = ch.read(reg::COUNT);
    ch.set_devctl(DEVCTL_NORMAL);
    ensure_eq!(with_hob, 0xBE, "sector count with HOB set");
    ensure_eq!(
        after_write,
        0xEF,
        "sector count after a Device register write"
    );
    PASS
}

/// With no slave attached: Status, Alternate Status and Error read 0, the
/// shared task-file registers echo writes, commands are ignored (no
/// interrupt, nothing changes), and the master is unaffected.
pub fn absent_slave(ctx: &mut Ctx) -> TestResult {
    let ch = &ctx.ch;
    ch.select(Drive::Master)?;
    ctx.ch.drain_irq();
    ch.write(reg::DEVICE, Drive::Slave.select_bits());
    let st = ch.status();
    let alt = ch.alt_status();
    let err = ch.error();
    ch.write(reg::COUNT, 0x55);
    ch.write(reg::LBA_LOW, 0xAA);
    let count = ch.read(reg::COUNT);
    let lba_low = ch.read(reg::LBA_LOW);
    ch.command(cmd::CHECK_POWER_MODE);
    let after_cmd = ch.alt_status();
    let irq_requested = ch.irq_requested();
    let irqs = ctx.ch.irq_window(64);
    let st_after = ch.status();
    ch.select(Drive::Master)?;
    let master = ch.status();
    ensure_eq!(st, 0, "slave status");
    ensure_eq!(alt, 0, "slave alternate status");
    ensure_eq!(err, 0, "slave error");
    ensure_eq!(count, 0x55, "sector count echo");
    ensure_eq!(lba_low, 0xAA, "LBA low echo");
    ensure_eq!(after_cmd, 0, "slave alternate status after a command");
    ensure_eq!(st_after, 0, "slave status after a command");
    ensure!(
        !irq_requested && irqs == 0,
        "command to the absent slave raised an interrupt"
    );
    ensure_eq!(master, status::READY, "master status after reselecting it");
    PASS
}

/// PRD pointer bits 1:0 read as 0; BM command stores only START and the
/// direction; BM status bits 5-6 are plain storage, bit 7 reads 0, INT is
/// write-1-to-clear, ERR stays clear.
pub fn bm_registers(ctx: &mut Ctx) -> TestResult {
    let ch = &ctx.ch;
    let saved_prd = ch.prd_pointer();
    ch.set_prd_pointer(0x1234_5677);
    let prd = ch.prd_pointer();
    ch.set_prd_pointer(saved_prd);
    ensure_eq!(prd, 0x1234_5674u32, "PRD pointer read-back");

    ch.set_bm_cmd(bm::CMD_WRITE_MEMORY);
    let dir = ch.bm_cmd();
    ch.set_bm_cmd(0xF6);
    let reserved = ch.bm_cmd();
    ch.set_bm_cmd(0);
    ensure_eq!(dir, bm::CMD_WRITE_MEMORY, "BM command after writing 0x08");
    ensure_eq!(reserved, 0, "BM command after writing 0xf6 (reserved bits)");

    let saved = ch.bm_status() & bm::STATUS_DRIVES_DMA;
    ch.set_bm_status(bm::STATUS_DRIVES_DMA | bm::STATUS_SIMPLEX);
    let set = ch.bm_status();
    ch.set_bm_status(0);
    let cleared = ch.bm_status();
    ensure_eq!(set, bm::STATUS_DRIVES_DMA, "BM status after writing 0xe0");
    ensure_eq!(cleared, 0, "BM status after writing 0");

    // Any device interrupt sets INT; writing 0 keeps it, writing 1 clears it.
    let tf = TaskFile::plain(Drive::Master, 0, 0);
    ctx.non_data_ok(&tf, cmd::CHECK_POWER_MODE)?;
    let ch = &ctx.ch;
    let raised = ch.bm_status();
    ch.set_bm_status(0);
    let kept = ch.bm_status();
    ch.set_bm_status(bm::STATUS_INT);
    let w1c = ch.bm_status();
    ch.set_bm_status(saved);
    ensure_eq!(raised, bm::STATUS_INT, "BM status after an interrupt");
    ensure_eq!(kept, bm::STATUS_INT, "BM status after writing 0");
    ensure_eq!(w1c, 0, "BM status after writing INT");
    PASS
}
