//! Attack class: DATA SET MANAGEMENT (TRIM). The most range blocks IDENTIFY
//! advertises (and one more), overlapping ranges, a valid range next to an
//! out-of-range one, the largest range count, an LBA whose range overflows
//! 48 bits, zero blocks, the wrong feature, a short PRD, and (vmdma) the
//! ranges in MMIO. Every TRIM the device may carry out is announced before
//! it is issued; afterwards each sector holds its old stamp or zeros.

use vmdma_guest::ata::regs::{cmd, feature};
use vmdma_guest::ata::taskfile::{Drive, LBA48_LIMIT, TaskFile};
use vmdma_guest::msg;
use vmdma_guest::msg::Msg;
use vmdma_guest::stamp::{self, SECTOR};

use super::raw::{EOT, Obs, Side, dma_verdict};
use super::{CaseResult, Hx, Verdict};
use crate::arch::{mem, mmio};
use crate::skip_case;
use crate::suite::Fail;
use crate::suite::io::Layout;

/// One range entry: LBA in bits 47:0, count in bits 63:48.
fn entry(lba: u64, count: u16) -> u64 {
    (lba & (LBA48_LIMIT - 1)) | (u64::from(count) << 48)
}

/// Issues DSM with `feature` and a block count of `blocks`, the ranges in
/// data offset 0 (the rest of the blocks zero), one PRD of `prd_bytes`.
fn dsm(hx: &mut Hx, feat: u8, blocks: u16, ranges: &[u64], prd_bytes: u32) -> Result<Obs, Fail> {
    let len = (usize::from(blocks) * SECTOR).max(SECTOR);
    let area = hx
        .ctx
        .mem
        .data
        .get_mut(..len)
        .ok_or_else(|| Fail(msg!("{blocks} TRIM blocks exceed the buffer")))?;
    mem::fill(area, 0);
    for (r, e) in ranges.iter().zip(area.chunks_exact_mut(8)) {
        e.copy_from_slice(&r.to_le_bytes());
    }
    let buf = hx.data_at(0)?;
    hx.prds(&[(buf, (prd_bytes & 0xFFFF) | EOT)])?;
    let tf = TaskFile::lba48_raw(Drive::Master, 0, u64::from(blocks), u16::from(feat));
    let table = hx.table()?;
    hx.dma(cmd::DATA_SET_MANAGEMENT, &tf, false, table)
}

/// Checks that `sectors` at `lba` hold the stamp `old` or zeros.
fn old_or_zero(hx: &mut Hx, lba: u64, sectors: u32, old: u32) -> Result<(), Msg> {
    let mut done = 0;
    while done < sectors {
        let n = (sectors - done).min(256);
        hx.canaries();
        let layout = Layout::ram(0, n as usize * SECTOR).map_err(|f| f.0)?;
        let x = crate::suite::io::Xfer::new(lba + u64::from(done), n);
        let o = hx.ctx.dma_read(&x, &layout).map_err(|f| f.0)?;
        crate::suite::io::expect_clean("read-back", &o).map_err(|f| f.0)?;
        for i in 0..n {
            let at = i as usize * SECTOR;
            let l = lba + u64::from(done + i);
            let s = hx.ctx.mem.data.get(at..at + SECTOR).unwrap_or(&[]);
            if mem::first_not(s, 0).is_none() {
                continue;
            }
            match stamp::decode_header(s) {
                Some((sl, p)) if sl == l && p == old => hx
                    .ctx
                    .verify_data(at, l, 1, old)
                    .map_err(|f| msg!("sector {l} torn: {}", f.0))?,
                _ => return Err(msg!("sector {l} is neither its old stamp nor zeros")),
            }
        }
        done += n;
    }
    hx.canaries();
    Ok(())
}

/// The TRIM block limit IDENTIFY advertises (word 105), or 8.
fn max_blocks(hx: &Hx) -> u16 {
    match hx.ctx.id.word(105) {
        0 => 8,
        n => n,
    }
}

fn need_trim(hx: &Hx) -> Option<Verdict> {
    (!hx.ctx.id.trim()).then(|| Verdict::Skip(Msg::from_text("IDENTIFY does not advertise TRIM")))
}

/// The advertised number of blocks, 64 one-sector ranges in each, over
/// stamped sectors.
pub fn trim_max_blocks(hx: &mut Hx) -> CaseResult {
    if let Some(s) = need_trim(hx) {
        return Ok(s);
    }
    let blocks = max_blocks(hx).min(8);
    let n = u32::from(blocks) * 64;
    let (lba, old) = hx.stamped(n)?;
    let mut ranges = [0u64; 512];
    for (i, r) in ranges.iter_mut().take(n as usize).enumerate() {
        *r = entry(lba + i as u64, 1);
    }
    hx.ctx.manifest_trim(lba, u64::from(n));
    let o = dsm(
        hx,
        feature::DSM_TRIM,
        blocks,
        ranges.get(..n as usize).unwrap_or(&[]),
        u32::from(blocks) * SECTOR as u32,
    )?;
    let v = dma_verdict(&o, |_| Ok(()));
    old_or_zero(hx, lba, n, old).map_err(Fail)?;
    Ok(v)
}

/// One block more than IDENTIFY advertises (all ranges empty).
pub fn trim_above_max_blocks(hx: &mut Hx) -> CaseResult {
    if let Some(s) = need_trim(hx) {
        return Ok(s);
    }
    let blocks = max_blocks(hx).saturating_add(1).min(16);
    let o = dsm(
        hx,
        feature::DSM_TRIM,
        blocks,
        &[],
        u32::from(blocks) * SECTOR as u32,
    )?;
    Ok(dma_verdict(&o, |_| Ok(())))
}

/// Overlapping ranges over stamped sectors.
pub fn trim_overlapping_ranges(hx: &mut Hx) -> CaseResult {
    if let Some(s) = need_trim(hx) {
        return Ok(s);
    }
    let (lba, old) = hx.stamped(16)?;
    hx.ctx.manifest_trim(lba, 12);
    let o = dsm(
        hx,
        feature::DSM_TRIM,
        1,
        &[
            entry(lba, 8),
            entry(lba + 4, 8),
            entry(lba, 1),
            entry(lba + 2, 3),
        ],
        SECTOR as u32,
    )?;
    let v = dma_verdict(&o, |_| Ok(()));
    old_or_zero(hx, lba, 16, old).map_err(Fail)?;
    Ok(v)
}

/// A valid range, one past the capacity, another valid range: aborted;
/// the valid ranges may or may not have been trimmed.
pub fn trim_out_of_range_between_valid(hx: &mut Hx) -> CaseResult {
    if let Some(s) = need_trim(hx) {
        return Ok(s);
    }
    let (lba, old) = hx.stamped(16)?;
    let cap = hx.ctx.capacity;
    hx.ctx.manifest_trim(lba, 4);
    hx.ctx.manifest_trim(lba + 8, 4);
    let o = dsm(
        hx,
        feature::DSM_TRIM,
        1,
        &[entry(lba, 4), entry(cap, 1), entry(lba + 8, 4)],
        SECTOR as u32,
    )?;
    let v = dma_verdict(&o, |_| Ok(()));
    old_or_zero(hx, lba, 16, old).map_err(Fail)?;
    Ok(match v {
        Verdict::Pass(_) => Verdict::Fail(Msg::from_text(
            "a range beyond the capacity completed without error",
        )),
        v => v,
    })
}

/// One range of 65535 sectors (the largest count) on never-written
/// sectors.
pub fn trim_largest_range(hx: &mut Hx) -> CaseResult {
    if let Some(s) = need_trim(hx) {
        return Ok(s);
    }
    let lba = hx.ctx.alloc(65535)?;
    hx.ctx.manifest_trim(lba, 65535);
    let o = dsm(
        hx,
        feature::DSM_TRIM,
        1,
        &[entry(lba, 0xFFFF)],
        SECTOR as u32,
    )?;
    Ok(dma_verdict(&o, |_| Ok(())))
}

/// A range at LBA 2^48 - 1 with 65535 sectors: LBA + count overflows.
pub fn trim_range_overflows_48_bits(hx: &mut Hx) -> CaseResult {
    if let Some(s) = need_trim(hx) {
        return Ok(s);
    }
    let o = dsm(
        hx,
        feature::DSM_TRIM,
        1,
        &[entry(LBA48_LIMIT - 1, 0xFFFF)],
        SECTOR as u32,
    )?;
    Ok(dma_verdict(&o, |_| Ok(())))
}

/// DSM TRIM with a block count of 0.
pub fn trim_zero_blocks(hx: &mut Hx) -> CaseResult {
    if let Some(s) = need_trim(hx) {
        return Ok(s);
    }
    let o = dsm(hx, feature::DSM_TRIM, 0, &[], SECTOR as u32)?;
    Ok(dma_verdict(&o, |side| match side {
        Side::Done | Side::Refused => Ok(()),
    }))
}

/// DSM with feature 0 (not TRIM).
pub fn trim_wrong_feature(hx: &mut Hx) -> CaseResult {
    let lba = hx.ctx.alloc(1)?;
    let o = dsm(hx, 0, 1, &[entry(lba, 1)], SECTOR as u32)?;
    Ok(dma_verdict(&o, |_| Ok(())))
}

/// One block of ranges but a 256-byte PRD.
pub fn trim_short_prd(hx: &mut Hx) -> CaseResult {
    if let Some(s) = need_trim(hx) {
        return Ok(s);
    }
    let lba = hx.ctx.alloc(1)?;
    let o = dsm(hx, feature::DSM_TRIM, 1, &[entry(lba, 1)], 256)?;
    Ok(dma_verdict(&o, |_| Ok(())))
}

/// The range block in the MMIO scratch region (vmdma only): the device
/// reads it through a bounce buffer.
pub fn trim_ranges_in_mmio(hx: &mut Hx) -> CaseResult {
    if let Some(s) = need_trim(hx) {
        return Ok(s);
    }
    let Some(s) = hx.ctx.scratch else {
        return skip_case!("no MMIO scratch region (QEMU has none)");
    };
    let Ok(base) = u32::try_from(s.base) else {
        return skip_case!("the MMIO scratch region is above 4 GiB");
    };
    let (lba, old) = hx.stamped(4)?;
    for i in 0..(SECTOR as u64 / 8) {
        let v = if i == 0 { entry(lba, 4) } else { 0 };
        if !mmio::write64(s.base + 8 * i, v) {
            return Ok(Verdict::Fail(Msg::from_text("MMIO scratch write refused")));
        }
    }
    hx.prds(&[(base, SECTOR as u32 | EOT)])?;
    hx.ctx.manifest_trim(lba, 4);
    let tf = TaskFile::lba48(Drive::Master, 0, 1, feature::DSM_TRIM)?;
    let table = hx.table()?;
    let o = hx.dma(cmd::DATA_SET_MANAGEMENT, &tf, false, table)?;
    let v = dma_verdict(&o, |_| Ok(()));
    old_or_zero(hx, lba, 4, old).map_err(Fail)?;
    Ok(v)
}
