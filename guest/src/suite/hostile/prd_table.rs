//! Attack class: the shape of the PRD table. Byte count 0 (64 KiB) and the
//! ignored bit 0 (count 1 is 64 KiB too), odd addresses and counts, tables
//! without EOT (the walk must stop after 512 entries / 4 KiB), tables that
//! end short or long, EOT on the first entry, extra entries pointing at a
//! hole, one sector in 32 pieces, overlapping entries, 512 entries, and
//! the largest transfer one command can ask for (65536 sectors).

use vmdma_guest::msg;
use vmdma_guest::stamp::SECTOR;

use super::prd_addr::HOLE;
use super::raw::{EOT, Expect, Side, dma_verdict};
use super::{CaseResult, Hx};
use crate::arch::mem;
use crate::suite::io::CANARY;

/// One PRD of raw count field `count` at data offset 0, reading `sectors`
/// stamped sectors; on completion the first `sectors` sectors hold them.
fn one_prd(hx: &mut Hx, count: u32, sectors: u32) -> CaseResult {
    let (lba, pattern) = hx.stamped(sectors)?;
    let buf = hx.data_at(0)?;
    hx.prds(&[(buf, count | EOT)])?;
    let o = hx.read(lba, sectors)?;
    let bytes = sectors as usize * SECTOR;
    Ok(dma_verdict(&o, |side| {
        hx.check_side(side, &[(0, bytes, Expect::Stamps { lba, pattern })])
    }))
}

/// Count field 0 means 64 KiB: 128 sectors through one PRD.
pub fn prd_count_zero_is_64k(hx: &mut Hx) -> CaseResult {
    one_prd(hx, 0, 128)
}

/// Bit 0 of the count is ignored, so a count of 1 is 0, i.e. 64 KiB: a
/// one-sector read through it is the long-PRD outcome.
pub fn prd_count_one_is_64k(hx: &mut Hx) -> CaseResult {
    one_prd(hx, 1, 1)
}

/// Count 0x201 is 512 bytes (bit 0 ignored): an exact PRD.
pub fn prd_odd_count(hx: &mut Hx) -> CaseResult {
    one_prd(hx, 0x201, 1)
}

/// A PRD at an odd address: the sector lands at data offset 1.
pub fn prd_odd_address(hx: &mut Hx) -> CaseResult {
    let (lba, pattern) = hx.stamped(1)?;
    let buf = hx.data_at(1)?;
    hx.prds(&[(buf, SECTOR as u32 | EOT)])?;
    let o = hx.read(lba, 1)?;
    Ok(dma_verdict(&o, |side| {
        if side == Side::Refused {
            return hx.check_data(&[]);
        }
        hx.ctx.build(lba, 1, pattern).map_err(|f| f.0)?;
        let want = hx.ctx.stage.bytes.get(..SECTOR).unwrap_or(&[]);
        let got = hx.ctx.mem.data.get(1..1 + SECTOR).unwrap_or(&[]);
        if let Some(i) = mem::first_difference(got, want) {
            return Err(msg!("sector byte {i} did not land at offset {}", i + 1));
        }
        hx.check_data(&[(1, SECTOR, Expect::Any)])
    }))
}

/// 512 entries of 512 bytes without EOT for a 4-sector read: the walk
/// stops by itself; the long-PRD outcome, only the first 4 entries used.
pub fn prd_no_eot_long(hx: &mut Hx) -> CaseResult {
    let (lba, pattern) = hx.stamped(4)?;
    for i in 0..512 {
        let a = hx.data_at(i * SECTOR)?;
        hx.prd(i, a, SECTOR as u32)?;
    }
    let o = hx.read(lba, 4)?;
    Ok(dma_verdict(&o, |side| {
        hx.check_side(side, &[(0, 4 * SECTOR, Expect::Stamps { lba, pattern })])
    }))
}

/// 512 entries of 2 bytes without EOT (1 KiB in all, the whole 4 KiB
/// window) for a 4-sector read: the table ends short.
pub fn prd_no_eot_short(hx: &mut Hx) -> CaseResult {
    let (lba, _) = hx.stamped(4)?;
    let buf = hx.data_at(0)?;
    for i in 0..512u32 {
        hx.prd(i as usize, buf + 2 * i, 2)?;
    }
    let o = hx.read(lba, 4)?;
    Ok(dma_verdict(&o, |_| hx.check_data(&[])))
}

/// The entries describe 2 bytes less than the request.
pub fn prd_ends_two_bytes_short(hx: &mut Hx) -> CaseResult {
    let (lba, _) = hx.stamped(4)?;
    let buf = hx.data_at(0)?;
    hx.prds(&[(buf, 1024), (buf + 1024, 1022 | EOT)])?;
    let o = hx.read(lba, 4)?;
    Ok(dma_verdict(&o, |_| hx.check_data(&[])))
}

/// EOT on the first of two entries that together would suffice: the table
/// ends after the first, short.
pub fn prd_eot_on_first_entry(hx: &mut Hx) -> CaseResult {
    let (lba, _) = hx.stamped(2)?;
    let buf = hx.data_at(0)?;
    hx.prds(&[
        (buf, SECTOR as u32 | EOT),
        (buf + 0x1000, SECTOR as u32 | EOT),
    ])?;
    let o = hx.read(lba, 2)?;
    Ok(dma_verdict(&o, |_| hx.check_data(&[])))
}

/// Enough entries, then an extra one pointing at a hole: the extra entry is
/// read but not used (the long-PRD outcome, no error).
pub fn prd_long_extra_entry_in_hole(hx: &mut Hx) -> CaseResult {
    let (lba, pattern) = hx.stamped(2)?;
    let buf = hx.data_at(0)?;
    hx.prds(&[(buf, 1024), (HOLE, SECTOR as u32 | EOT)])?;
    let o = hx.read(lba, 2)?;
    Ok(dma_verdict(&o, |side| {
        hx.check_side(side, &[(0, 1024, Expect::Stamps { lba, pattern })])
    }))
}

/// One sector spread over 32 pieces of 16 bytes with gaps between them.
/// Completed, each piece holds its bytes and the gaps are untouched.
pub fn prd_sector_in_32_pieces(hx: &mut Hx) -> CaseResult {
    let (lba, pattern) = hx.stamped(1)?;
    for i in 0..32 {
        let a = hx.data_at(i * 32)?;
        hx.prd(i, a, 16 | if i == 31 { EOT } else { 0 })?;
    }
    let o = hx.read(lba, 1)?;
    Ok(dma_verdict(&o, |side| {
        if side == Side::Refused {
            return hx.check_data(&[]);
        }
        hx.ctx.build(lba, 1, pattern).map_err(|f| f.0)?;
        for i in 0..32usize {
            let want = hx.ctx.stage.bytes.get(i * 16..i * 16 + 16).unwrap_or(&[]);
            let got = hx.ctx.mem.data.get(i * 32..i * 32 + 16).unwrap_or(&[]);
            if mem::first_difference(got, want).is_some() {
                return Err(msg!(
                    "piece {i} does not hold sector bytes {}..{}",
                    i * 16,
                    i * 16 + 16
                ));
            }
            let gap = hx.ctx.mem.data.get(i * 32 + 16..i * 32 + 32).unwrap_or(&[]);
            if mem::first_not(gap, CANARY).is_some() {
                return Err(msg!("the gap after piece {i} changed"));
            }
        }
        hx.check_data(&[(0, 32 * 32, Expect::Any)])
    }))
}

/// 256 entries of 2 contiguous bytes: one sector, merged into one range.
pub fn prd_256_tiny_contiguous(hx: &mut Hx) -> CaseResult {
    let (lba, pattern) = hx.stamped(1)?;
    let buf = hx.data_at(0)?;
    for i in 0..256u32 {
        hx.prd(i as usize, buf + 2 * i, 2 | if i == 255 { EOT } else { 0 })?;
    }
    let o = hx.read(lba, 1)?;
    Ok(dma_verdict(&o, |side| {
        hx.check_side(side, &[(0, SECTOR, Expect::Stamps { lba, pattern })])
    }))
}

/// Two entries on the same 512 bytes: the second sector lands last.
pub fn prd_overlapping_entries(hx: &mut Hx) -> CaseResult {
    let (lba, pattern) = hx.stamped(2)?;
    let buf = hx.data_at(0)?;
    hx.prds(&[(buf, SECTOR as u32), (buf, SECTOR as u32 | EOT)])?;
    let o = hx.read(lba, 2)?;
    Ok(dma_verdict(&o, |side| {
        hx.check_side(
            side,
            &[(
                0,
                SECTOR,
                Expect::Stamps {
                    lba: lba + 1,
                    pattern,
                },
            )],
        )
    }))
}

/// 512 entries of 512 bytes (the most a table holds), all used: 512
/// sectors by READ DMA EXT.
pub fn prd_512_entries(hx: &mut Hx) -> CaseResult {
    let (lba, pattern) = hx.stamped(512)?;
    for i in 0..512 {
        let a = hx.data_at(i * SECTOR)?;
        hx.prd(i, a, SECTOR as u32 | if i == 511 { EOT } else { 0 })?;
    }
    let o = hx.read(lba, 512)?;
    Ok(dma_verdict(&o, |side| {
        hx.check_side(side, &[(0, 512 * SECTOR, Expect::Stamps { lba, pattern })])
    }))
}

/// The largest command: READ DMA EXT of 65536 never-written sectors
/// (32 MiB) through 512 entries of 64 KiB, all on the same buffer.
pub fn prd_65536_sectors(hx: &mut Hx) -> CaseResult {
    let lba = hx.ctx.alloc(65536)?;
    let buf = hx.data_at(0)?;
    for i in 0..512 {
        hx.prd(i, buf, if i == 511 { EOT } else { 0 })?;
    }
    let o = hx.read(lba, 65536)?;
    Ok(dma_verdict(&o, |side| {
        hx.check_side(side, &[(0, 0x1_0000, Expect::Zeros)])
    }))
}

/// 512 entries of 64 KiB without EOT for one sector: the walk reads them
/// all (32 MiB described) and uses 512 bytes; the long-PRD outcome.
pub fn prd_512_entries_64k_for_one_sector(hx: &mut Hx) -> CaseResult {
    let (lba, pattern) = hx.stamped(1)?;
    let buf = hx.data_at(0)?;
    for i in 0..512 {
        hx.prd(i, buf, 0)?;
    }
    let o = hx.read(lba, 1)?;
    Ok(dma_verdict(&o, |side| {
        hx.check_side(side, &[(0, SECTOR, Expect::Stamps { lba, pattern })])
    }))
}
