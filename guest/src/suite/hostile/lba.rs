//! Attack class: addresses and counts. LBA and count at and past the disk
//! end in LBA48 (with the largest count and the largest LBA, where the sum
//! overflows 48 bits), the LBA28 maximum, CHS addresses with sector 0 or
//! beyond the geometry, HOB register games (the two-deep FIFO written three
//! times, HOB set while loading, LBA28 commands after LBA48 loads), PIO
//! writes across the end, and the commands QEMU does not range-check.

use vmdma_guest::ata::regs::{cmd, devctl, device, reg, status};
use vmdma_guest::ata::taskfile::{Drive, LBA28_LIMIT, LBA48_LIMIT, Regs5, TaskFile};
use vmdma_guest::msg;
use vmdma_guest::stamp::SECTOR;

use super::raw::{EOT, Expect, Side, dma_verdict, non_data_verdict};
use super::{CaseResult, Hx, Verdict};
use crate::arch::io;
use crate::ide::channel::DEVCTL_NORMAL;
use crate::suite::io::{Layout, Mode, Xfer};
use crate::{reject, skip_case};

/// PRDs for `sectors` sectors, at most 64 KiB per entry, all on data
/// offset 0 when the transfer is larger than the buffer (the refusal cases
/// need enough PRD bytes, or the short-PRD outcome would win).
fn cover(hx: &mut Hx, sectors: u32) -> Result<(), crate::suite::Fail> {
    let bytes = u64::from(sectors) * SECTOR as u64;
    let entries = bytes.div_ceil(0x1_0000) as usize;
    let buf = hx.data_at(0)?;
    for i in 0..entries {
        let left = bytes - i as u64 * 0x1_0000;
        let len = left.min(0x1_0000) as u32;
        hx.prd(
            i,
            buf,
            (len & 0xFFFF) | if i + 1 == entries { EOT } else { 0 },
        )?;
    }
    Ok(())
}

/// READ DMA EXT of `count` (0 = 65536) sectors at `lba`, PRDs covering the
/// transfer, the data buffer untouched unless it completes.
fn read48(hx: &mut Hx, lba: u64, count: u32) -> CaseResult {
    let sectors = if count == 0 { 65536 } else { count };
    cover(hx, sectors)?;
    let tf = TaskFile::lba48_raw(Drive::Master, lba, u64::from(count), 0);
    let table = hx.table()?;
    let o = hx.dma(cmd::READ_DMA_EXT, &tf, true, table)?;
    Ok(dma_verdict(&o, |side| match side {
        Side::Done => hx.check_data(&[(0, 0x1_0000, Expect::Any)]),
        Side::Refused => hx.check_data(&[]),
    }))
}

/// READ DMA EXT of one sector at the capacity.
pub fn lba48_at_capacity(hx: &mut Hx) -> CaseResult {
    read48(hx, hx.ctx.capacity, 1)
}

/// READ DMA EXT of 65536 sectors (count 0) from the last sector.
pub fn lba48_max_count_at_end(hx: &mut Hx) -> CaseResult {
    read48(hx, hx.ctx.capacity - 1, 0)
}

/// READ DMA EXT at the largest LBA48 address.
pub fn lba48_max_lba(hx: &mut Hx) -> CaseResult {
    read48(hx, LBA48_LIMIT - 1, 1)
}

/// LBA 2^48 - 2 with 65535 sectors: LBA + count overflows 48 bits.
pub fn lba48_sum_overflows(hx: &mut Hx) -> CaseResult {
    read48(hx, LBA48_LIMIT - 2, 65535)
}

/// READ DMA (LBA28) of `count` (0 = 256) sectors at `lba` (below 2^28),
/// PRDs covering the transfer; SKIP unless the disk ends below 2^28
/// sectors (larger disks cannot be addressed to their end with LBA28).
fn read28_at_end(hx: &mut Hx, lba: u64, count: u8) -> CaseResult {
    if hx.ctx.capacity >= LBA28_LIMIT {
        return skip_case!("the disk reaches past the LBA28 range");
    }
    let sectors = if count == 0 { 256 } else { u32::from(count) };
    cover(hx, sectors)?;
    let mut tf = TaskFile::lba28(Drive::Master, lba, 1, 0)?;
    tf.low.count = count;
    let table = hx.table()?;
    let o = hx.dma(cmd::READ_DMA, &tf, true, table)?;
    Ok(dma_verdict(&o, |side| match side {
        Side::Done => hx.check_data(&[(0, 0x1_0000, Expect::Any)]),
        Side::Refused => hx.check_data(&[]),
    }))
}

/// READ DMA (LBA28) of one sector at the capacity.
pub fn lba28_at_capacity(hx: &mut Hx) -> CaseResult {
    read28_at_end(hx, hx.ctx.capacity.min(LBA28_LIMIT - 1), 1)
}

/// READ DMA (LBA28) of 2 sectors from the last one.
pub fn lba28_across_end(hx: &mut Hx) -> CaseResult {
    read28_at_end(
        hx,
        hx.ctx.capacity.saturating_sub(1).min(LBA28_LIMIT - 1),
        2,
    )
}

/// READ DMA (LBA28) of 256 sectors (count 0) from the last one.
pub fn lba28_count_zero_at_end(hx: &mut Hx) -> CaseResult {
    read28_at_end(
        hx,
        hx.ctx.capacity.saturating_sub(1).min(LBA28_LIMIT - 1),
        0,
    )
}

/// READ DMA (LBA28) of 256 sectors (count 0) from the largest LBA28
/// address: the transfer runs past 2^28 (fine on a disk that large).
pub fn lba28_max_lba_256(hx: &mut Hx) -> CaseResult {
    let lba = LBA28_LIMIT - 1;
    cover(hx, 256)?;
    let tf = TaskFile::lba28(Drive::Master, lba, 256, 0)?;
    let table = hx.table()?;
    let o = hx.dma(cmd::READ_DMA, &tf, true, table)?;
    let fits = hx.ctx.capacity >= lba + 256;
    let v = dma_verdict(&o, |side| match side {
        Side::Done => hx.check_data(&[(0, 0x1_0000, Expect::Any)]),
        Side::Refused => hx.check_data(&[]),
    });
    Ok(match v {
        Verdict::Reject(m) if fits => Verdict::Fail(msg!("{m} although the range fits the disk")),
        v => v,
    })
}

/// WRITE SECTORS EXT of 2 sectors from the last one: refused before the
/// data phase, or (if the device asks for data) the last sector is
/// re-stamped afterwards; the capacity is never exceeded.
pub fn pio_write_across_end(hx: &mut Hx) -> CaseResult {
    let last = hx.ctx.capacity - 1;
    let old = hx.ctx.write_dma(last, 1)?;
    let tf = Mode::Lba48.taskfile(last, 2)?;
    hx.dirty(last, 1)?;
    let ch = &hx.ctx.ch;
    ch.drain_irq();
    ch.issue(&tf, cmd::WRITE_SECTORS_EXT)?;
    let st = ch.wait_not_busy("WRITE SECTORS EXT accepted or refused")?;
    if st & status::DRQ != 0 {
        // The device wants data: give it one sector of zeros and stop.
        let zeros = [0u8; SECTOR];
        io::outsw(ch.data_port(), &zeros);
        let _ = ch.wait_not_busy("after one sector");
        ch.soft_reset()?;
        return Ok(Verdict::Pass(msg!(
            "the device asked for data (DRQ) across the end; stopped by SRST"
        )));
    }
    let irq = ch.irq_requested();
    let error = ch.error();
    let st = ch.status();
    let v = non_data_verdict(st, error, irq);
    if let Verdict::Reject(_) = v {
        let layout = Layout::ram(0, SECTOR)?;
        hx.ctx.dma_read_verify(&Xfer::new(last, 1), old, &layout)?;
        hx.canaries();
    }
    Ok(v)
}

/// Each of the five registers written three times (garbage, high byte, low
/// byte): only the last two count, and READ DMA EXT reads the intended
/// sector.
pub fn hob_fifo_written_three_times(hx: &mut Hx) -> CaseResult {
    let (lba, pattern) = hx.stamped(1)?;
    let tf = TaskFile::lba48(Drive::Master, lba, 1, 0)?;
    let (Some(hob), low) = (tf.hob, tf.low) else {
        return skip_case!("no HOB bytes");
    };
    let buf = hx.data_at(0)?;
    hx.prds(&[(buf, SECTOR as u32 | EOT)])?;
    let table = hx.table()?;
    let ch = &hx.ctx.ch;
    ch.stop_bus_master();
    ch.drain_irq();
    ch.select(Drive::Master)?;
    ch.write_regs5(&Regs5 {
        features: 0xEE,
        count: 0xEE,
        lba_low: 0xEE,
        lba_mid: 0xEE,
        lba_high: 0xEE,
    });
    ch.write_regs5(&hob);
    ch.write_regs5(&low);
    ch.write(reg::DEVICE, tf.device);
    ch.set_prd_pointer(table);
    ch.set_bm_cmd(vmdma_guest::ata::regs::bm::CMD_WRITE_MEMORY);
    ch.command(cmd::READ_DMA_EXT);
    hx.start();
    let o = hx.conclude();
    Ok(dma_verdict(&o, |side| {
        hx.check_side(side, &[(0, SECTOR, Expect::Stamps { lba, pattern })])
    }))
}

/// HOB set in Device Control while the task file is loaded: register
/// writes clear it and the command reads the intended sector.
pub fn hob_set_while_loading(hx: &mut Hx) -> CaseResult {
    let (lba, pattern) = hx.stamped(1)?;
    let buf = hx.data_at(0)?;
    hx.prds(&[(buf, SECTOR as u32 | EOT)])?;
    let tf = TaskFile::lba48(Drive::Master, lba, 1, 0)?;
    let table = hx.table()?;
    let ch = &hx.ctx.ch;
    ch.stop_bus_master();
    ch.drain_irq();
    ch.select(Drive::Master)?;
    ch.set_devctl(DEVCTL_NORMAL | devctl::HOB);
    ch.load(&tf);
    ch.set_devctl(DEVCTL_NORMAL | devctl::HOB);
    ch.set_prd_pointer(table);
    ch.set_bm_cmd(vmdma_guest::ata::regs::bm::CMD_WRITE_MEMORY);
    ch.command(cmd::READ_DMA_EXT);
    hx.start();
    let o = hx.conclude();
    hx.ctx.ch.set_devctl(DEVCTL_NORMAL);
    Ok(dma_verdict(&o, |side| {
        hx.check_side(side, &[(0, SECTOR, Expect::Stamps { lba, pattern })])
    }))
}

/// An LBA28 READ DMA after the HOB bytes were loaded with garbage: LBA28
/// ignores them.
pub fn lba28_after_hob_garbage(hx: &mut Hx) -> CaseResult {
    let (lba, pattern) = hx.stamped(1)?;
    if lba >= LBA28_LIMIT {
        return skip_case!("the stamped sector is beyond LBA28");
    }
    let buf = hx.data_at(0)?;
    hx.prds(&[(buf, SECTOR as u32 | EOT)])?;
    let mut tf = TaskFile::lba28(Drive::Master, lba, 1, 0)?;
    tf.hob = Some(Regs5 {
        features: 0xFF,
        count: 0xFF,
        lba_low: 0xFF,
        lba_mid: 0xFF,
        lba_high: 0xFF,
    });
    let table = hx.table()?;
    let o = hx.dma(cmd::READ_DMA, &tf, true, table)?;
    Ok(dma_verdict(&o, |side| {
        hx.check_side(side, &[(0, SECTOR, Expect::Stamps { lba, pattern })])
    }))
}

/// A CHS READ DMA (Device bit 6 clear) with sector number 0, which CHS
/// does not have.
pub fn chs_sector_zero(hx: &mut Hx) -> CaseResult {
    cover(hx, 1)?;
    let mut tf = TaskFile::plain(Drive::Master, 0, 1);
    tf.low.lba_low = 0; // sector 0
    tf.device = Drive::Master.select_bits();
    let table = hx.table()?;
    let o = hx.dma(cmd::READ_DMA, &tf, true, table)?;
    Ok(dma_verdict(&o, |side| match side {
        Side::Done => hx.check_data(&[(0, SECTOR, Expect::Any)]),
        Side::Refused => hx.check_data(&[]),
    }))
}

/// A CHS READ DMA at cylinder 65535, head 15, sector 255: beyond the
/// geometry's sectors per track.
pub fn chs_beyond_geometry(hx: &mut Hx) -> CaseResult {
    cover(hx, 1)?;
    let mut tf = TaskFile::plain(Drive::Master, 0, 1);
    tf.low.lba_low = 255;
    tf.low.lba_mid = 0xFF;
    tf.low.lba_high = 0xFF;
    tf.device = Drive::Master.select_bits() | 0x0F;
    let table = hx.table()?;
    let o = hx.dma(cmd::READ_DMA, &tf, true, table)?;
    Ok(dma_verdict(&o, |side| match side {
        Side::Done => hx.check_data(&[(0, SECTOR, Expect::Any)]),
        Side::Refused => hx.check_data(&[]),
    }))
}

/// READ VERIFY SECTORS EXT at the largest LBA48 address (QEMU does not
/// range-check it).
pub fn read_verify_beyond_end(hx: &mut Hx) -> CaseResult {
    let tf = TaskFile::lba48_raw(Drive::Master, LBA48_LIMIT - 1, 0, 0);
    let r = hx.ctx.non_data(&tf, cmd::READ_VERIFY_EXT)?;
    Ok(non_data_verdict(r.status, r.error, r.irq))
}

/// SEEK to a cylinder far beyond the disk.
pub fn seek_beyond_end(hx: &mut Hx) -> CaseResult {
    let mut tf = TaskFile::plain(Drive::Master, 0, 0);
    tf.low.lba_low = 0xFF;
    tf.low.lba_mid = 0xFF;
    tf.low.lba_high = 0xFF;
    tf.device |= device::LBA | 0x0F;
    let r = hx.ctx.non_data(&tf, cmd::SEEK)?;
    Ok(non_data_verdict(r.status, r.error, r.irq))
}

/// READ SECTORS (PIO, LBA28) with the device register selecting LBA but
/// the count register left at 0 (256 sectors) far beyond the disk.
pub fn pio_read_count_zero_beyond_end(hx: &mut Hx) -> CaseResult {
    if hx.ctx.capacity >= LBA28_LIMIT {
        return skip_case!("the disk reaches past the LBA28 range");
    }
    let tf = TaskFile::lba28(Drive::Master, LBA28_LIMIT - 1, 256, 0)?;
    let r = hx.ctx.non_data(&tf, cmd::READ_SECTORS)?;
    if r.status & status::DRQ != 0 {
        return crate::fail!("READ SECTORS beyond the end asked for a data phase");
    }
    match non_data_verdict(r.status, r.error, r.irq) {
        Verdict::Reject(_) => reject!("ABRT"),
        v => Ok(v),
    }
}
