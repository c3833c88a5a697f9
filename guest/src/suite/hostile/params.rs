//! Attack class: absurd device parameters, then the commands that use
//! them. SET MULTIPLE with counts that are not a supported power of two, 0
//! and 1, then READ/WRITE MULTIPLE; INITIALIZE DEVICE PARAMETERS with 0
//! sectors per track, the largest geometry and a 1x1 geometry, then CHS
//! transfers and IDENTIFY (CHS arithmetic: divisions by heads x sectors);
//! every SET FEATURES subcommand and every transfer-mode value. Each case
//! puts back the settings it changed.

use vmdma_guest::ata::identify::Identify;
use vmdma_guest::ata::regs::{cmd, feature, status};
use vmdma_guest::ata::taskfile::{Drive, TaskFile};
use vmdma_guest::msg;
use vmdma_guest::stamp::SECTOR;

use super::busy::pio_in;
use super::opcodes::restore_settings;
use super::raw::{EOT, Expect, Side, dma_verdict, non_data_verdict};
use super::{CaseResult, Hx, Verdict};
use crate::ide::pio;
use crate::suite::Fail;
use crate::suite::io::Mode;
use crate::{fail, pass, reject};

/// SET MULTIPLE `count`; returns whether it was accepted.
fn set_multiple(hx: &mut Hx, count: u8) -> Result<bool, Fail> {
    let r = hx.ctx.non_data(
        &TaskFile::plain(Drive::Master, 0, count),
        cmd::SET_MULTIPLE_MODE,
    )?;
    Ok(r.status & status::ERR == 0)
}

/// READ MULTIPLE of `sectors` stamped sectors with DRQ blocks of `block`;
/// `Ok(false)` if the command was aborted.
fn read_multiple(hx: &mut Hx, sectors: u32, block: usize) -> Result<bool, Fail> {
    let (lba, pattern) = hx.stamped(sectors)?;
    let tf = Mode::Lba28.taskfile(lba, sectors)?;
    let buf = hx
        .ctx
        .mem
        .data
        .get_mut(..sectors as usize * SECTOR)
        .ok_or_else(|| Fail(msg!("buffer too small")))?;
    match pio::data_in(
        &hx.ctx.ch,
        &tf,
        cmd::READ_MULTIPLE,
        pio::Width::Bits32,
        block,
        buf,
    ) {
        Ok(_) => {}
        Err(crate::ide::AtaError::Device { status: st, .. }) if st & status::ERR != 0 => {
            hx.canaries();
            return Ok(false);
        }
        Err(e) => return Err(e.into()),
    }
    hx.check_data(&[(
        0,
        sectors as usize * SECTOR,
        Expect::Stamps { lba, pattern },
    )])
    .map_err(Fail)?;
    hx.canaries();
    Ok(true)
}

/// SET MULTIPLE with 3, 5, 17, 32, 64, 128 and 255: each refused, or, if
/// accepted, READ MULTIPLE works with that block size.
pub fn set_multiple_absurd(hx: &mut Hx) -> CaseResult {
    let mut accepted = None;
    for count in [3u8, 5, 17, 32, 64, 128, 255] {
        if set_multiple(hx, count)? {
            accepted.get_or_insert(count);
            if !read_multiple(hx, 8, usize::from(count))? {
                restore_settings(hx)?;
                return fail!("SET MULTIPLE {count} accepted, then READ MULTIPLE aborted");
            }
        }
    }
    let default = usize::from((hx.ctx.id.word(59) & 0xFF) as u8);
    let still = default == 0 || read_multiple(hx, 8, default)?;
    restore_settings(hx)?;
    if !still {
        return fail!("READ MULTIPLE with the old block size failed afterwards");
    }
    match accepted {
        None => reject!("every count aborted; READ MULTIPLE kept the old block size"),
        Some(c) => pass!("count {c} accepted and usable"),
    }
}

/// SET MULTIPLE 0, then READ MULTIPLE.
pub fn set_multiple_zero_then_read_multiple(hx: &mut Hx) -> CaseResult {
    let accepted = set_multiple(hx, 0)?;
    let read = read_multiple(hx, 4, 1)?;
    restore_settings(hx)?;
    match (accepted, read) {
        (true, false) => reject!("SET MULTIPLE 0 disables multiple mode; READ MULTIPLE aborted"),
        (false, false) => reject!("SET MULTIPLE 0 aborted; READ MULTIPLE aborted"),
        (_, true) => pass!("READ MULTIPLE still worked"),
    }
}

/// SET MULTIPLE 1, then READ MULTIPLE and WRITE MULTIPLE of 8 sectors in
/// blocks of 1 (the write announced and read back).
pub fn set_multiple_one(hx: &mut Hx) -> CaseResult {
    if !set_multiple(hx, 1)? {
        restore_settings(hx)?;
        return reject!("SET MULTIPLE 1 aborted");
    }
    let read = read_multiple(hx, 8, 1)?;
    let lba = hx.ctx.alloc(8)?;
    let pattern = hx.ctx.pattern();
    let wrote = hx.ctx.write_pio_with(
        cmd::WRITE_MULTIPLE,
        Mode::Lba28,
        lba,
        8,
        pio::Width::Bits32,
        1,
        pattern,
    );
    restore_settings(hx)?;
    if !read {
        return fail!("READ MULTIPLE with block size 1 aborted");
    }
    if let Err(f) = wrote {
        hx.dirty(lba, 8)?;
        return fail!("WRITE MULTIPLE with block size 1: {f}");
    }
    hx.ctx.read_dma_verify(lba, 8, pattern)?;
    hx.canaries();
    pass!("READ and WRITE MULTIPLE work with block size 1")
}

/// INITIALIZE DEVICE PARAMETERS with `heads` (1-16) and `sectors` per
/// track; returns whether it was accepted.
fn init_params(hx: &mut Hx, heads: u8, sectors: u8) -> Result<bool, Fail> {
    let mut tf = TaskFile::plain(Drive::Master, 0, sectors);
    tf.device |= heads.saturating_sub(1) & 0x0F;
    let r = hx.ctx.non_data(&tf, cmd::INITIALIZE_DEVICE_PARAMETERS)?;
    Ok(r.status & status::ERR == 0)
}

/// A CHS task file (Device bit 6 clear).
fn chs(cyl: u16, head: u8, sector: u8, count: u8) -> TaskFile {
    let mut tf = TaskFile::plain(Drive::Master, 0, count);
    let [lo, hi] = cyl.to_le_bytes();
    tf.low.lba_low = sector;
    tf.low.lba_mid = lo;
    tf.low.lba_high = hi;
    tf.device = Drive::Master.select_bits() | (head & 0x0F);
    tf
}

/// CHS READ DMA of `count` sectors at (cyl, head, sector) into data offset
/// 0; the data must be `expect` on completion.
fn chs_read(hx: &mut Hx, tf: &TaskFile, count: u32, expect: Expect) -> Result<Verdict, Fail> {
    let buf = hx.data_at(0)?;
    hx.prds(&[(buf, (count * SECTOR as u32) | EOT)])?;
    let table = hx.table()?;
    let o = hx.dma(cmd::READ_DMA, tf, true, table)?;
    Ok(dma_verdict(&o, |side| match side {
        Side::Done => hx.check_data(&[(0, count as usize * SECTOR, expect)]),
        Side::Refused => hx.check_data(&[]),
    }))
}

/// 0 sectors per track, then a CHS READ DMA and a CHS READ SECTORS (the
/// address written back after a transfer divides by heads x sectors), then
/// IDENTIFY (whose current-CHS words derive from the geometry).
pub fn init_params_zero_sectors(hx: &mut Hx) -> CaseResult {
    let accepted = init_params(hx, 16, 0)?;
    let dma = chs_read(hx, &chs(0, 0, 1, 1), 1, Expect::Any)?;
    hx.canaries();
    let ch = &hx.ctx.ch;
    ch.drain_irq();
    ch.issue(&chs(0, 0, 1, 1), cmd::READ_SECTORS)?;
    let st = ch.wait_not_busy("CHS READ SECTORS")?;
    let pio_ok = if st & status::DRQ != 0 {
        pio_in(hx, 0, 1)?;
        let _ = hx.ctx.ch.wait_not_busy("end of READ SECTORS")?;
        true
    } else {
        false
    };
    let _ = hx.ctx.ch.status();
    let mut raw = [0u8; 512];
    let id = pio::identify(&hx.ctx.ch, Drive::Master, &mut raw);
    restore_settings(hx)?;
    hx.canaries();
    id?;
    let id = Identify::from_bytes(&raw);
    if id.capacity() != hx.ctx.capacity {
        return fail!(
            "IDENTIFY capacity {} after 0 sectors per track",
            id.capacity()
        );
    }
    match (accepted, &dma) {
        (_, Verdict::Fail(m)) => fail!("CHS READ DMA: {m}"),
        (false, _) => reject!("0 sectors per track aborted"),
        (true, Verdict::Reject(_)) if !pio_ok => {
            reject!("accepted; CHS transfers then aborted")
        }
        (true, _) => pass!(
            "accepted; CHS READ DMA {}, CHS READ SECTORS {}",
            dma.word(),
            if pio_ok { "read" } else { "refused" }
        ),
    }
}

/// 16 heads and 255 sectors per track (the largest geometry), then a CHS
/// read far into the disk.
pub fn init_params_largest_geometry(hx: &mut Hx) -> CaseResult {
    let accepted = init_params(hx, 16, 255)?;
    let v = chs_read(hx, &chs(1000, 15, 255, 2), 2, Expect::Any)?;
    restore_settings(hx)?;
    if !accepted {
        return reject!("16 heads x 255 sectors aborted");
    }
    Ok(v)
}

/// 1 head and 1 sector per track: CHS cylinder N is LBA N. A CHS read of 4
/// stamped sectors crossing cylinders reads exactly them.
pub fn init_params_one_by_one(hx: &mut Hx) -> CaseResult {
    let lba = hx.low_lba;
    let pattern = hx.ctx.write_dma(lba, 4)?;
    hx.canaries();
    let Ok(cyl) = u16::try_from(lba) else {
        return crate::skip_case!("the stamped sectors are beyond cylinder 65535");
    };
    if !init_params(hx, 1, 1)? {
        restore_settings(hx)?;
        return reject!("1 head x 1 sector aborted");
    }
    let v = chs_read(hx, &chs(cyl, 0, 1, 4), 4, Expect::Stamps { lba, pattern })?;
    restore_settings(hx)?;
    Ok(v)
}

/// The transfer mode IDENTIFY showed at start, as a SET FEATURES value.
fn startup_mode(hx: &Hx) -> Option<u8> {
    let id = &hx.ctx.id;
    let udma = (id.word(88) >> 8) & 0x7F;
    let mwdma = (id.word(63) >> 8) & 0x07;
    if udma != 0 {
        Some(0x40 | udma.trailing_zeros() as u8)
    } else if mwdma != 0 {
        Some(0x20 | mwdma.trailing_zeros() as u8)
    } else {
        None
    }
}

/// Write cache on and the startup transfer mode back.
fn restore_features(hx: &mut Hx) -> Result<(), Fail> {
    hx.ctx.non_data(
        &TaskFile::plain(Drive::Master, feature::ENABLE_WRITE_CACHE, 0),
        cmd::SET_FEATURES,
    )?;
    if let Some(m) = startup_mode(hx) {
        hx.ctx.non_data(
            &TaskFile::plain(Drive::Master, feature::SET_TRANSFER_MODE, m),
            cmd::SET_FEATURES,
        )?;
    }
    Ok(())
}

/// SET FEATURES with `features` = each of 0x00..=0xFF and `count` = 0;
/// then a DMA read still works.
pub fn set_features_every_subcommand(hx: &mut Hx) -> CaseResult {
    sweep_features(hx, |v| (v, 0))
}

/// SET FEATURES 0x03 (transfer mode) with every mode value 0x00..=0xFF;
/// then a DMA read still works.
pub fn set_transfer_mode_every_value(hx: &mut Hx) -> CaseResult {
    sweep_features(hx, |v| (feature::SET_TRANSFER_MODE, v))
}

fn sweep_features(hx: &mut Hx, args: impl Fn(u8) -> (u8, u8)) -> CaseResult {
    let (mut done, mut aborted) = (0u32, 0u32);
    let mut problem = None;
    for v in 0..=255u8 {
        let (f, c) = args(v);
        let r = hx
            .ctx
            .non_data(&TaskFile::plain(Drive::Master, f, c), cmd::SET_FEATURES)?;
        match non_data_verdict(r.status, r.error, r.irq) {
            Verdict::Pass(_) => done += 1,
            Verdict::Reject(_) => aborted += 1,
            _ => {
                problem.get_or_insert(msg!(
                    "value {v:#04x}: status {:#04x} error {:#04x}, irq {}",
                    r.status,
                    r.error,
                    r.irq
                ));
            }
        }
    }
    restore_features(hx)?;
    if let Some(p) = problem {
        return fail!("{p}");
    }
    let (lba, pattern) = hx.stamped(4)?;
    let buf = hx.data_at(0)?;
    hx.prds(&[(buf, (4 * SECTOR as u32) | EOT)])?;
    let o = hx.read(lba, 4)?;
    match dma_verdict(&o, |side| {
        hx.check_side(side, &[(0, 4 * SECTOR, Expect::Stamps { lba, pattern })])
    }) {
        Verdict::Pass(_) => pass!("{done} accepted, {aborted} aborted; DMA works afterwards"),
        v => fail!("DMA afterwards: {v}"),
    }
}

/// Write cache off (SET FEATURES 0x82), a DMA and a PIO write (announced)
/// and FLUSH CACHE, then the cache back on: the data reads back.
pub fn write_cache_off_writes(hx: &mut Hx) -> CaseResult {
    let r = hx.ctx.non_data(
        &TaskFile::plain(Drive::Master, feature::DISABLE_WRITE_CACHE, 0),
        cmd::SET_FEATURES,
    )?;
    if r.status & status::ERR != 0 {
        return reject!("disabling the write cache aborted");
    }
    let lba = hx.ctx.alloc(8)?;
    let p = hx.ctx.write_dma(lba, 4);
    let q = hx
        .ctx
        .write_pio(Mode::Lba28, lba + 4, 4, pio::Width::Bits16);
    let f = hx
        .ctx
        .non_data(&TaskFile::plain(Drive::Master, 0, 0), cmd::FLUSH_CACHE);
    restore_features(hx)?;
    let (p, q) = match (p, q) {
        (Ok(p), Ok(q)) => (p, q),
        (p, q) => {
            hx.dirty(lba, 8)?;
            return fail!(
                "writes with the cache off: DMA {}, PIO {}",
                p.is_ok(),
                q.is_ok()
            );
        }
    };
    f?;
    hx.ctx.read_dma_verify(lba, 4, p)?;
    hx.ctx.read_dma_verify(lba + 4, 4, q)?;
    hx.canaries();
    pass!("writes with the write cache off read back")
}
