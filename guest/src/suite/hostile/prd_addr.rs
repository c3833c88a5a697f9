//! Attack class: where PRDs point. Beyond RAM, straddling its end, into
//! holes, the legacy VGA window, the IOAPIC, HPET and local APIC windows,
//! wrapping past 4 GiB, at the PRD table itself, and PRD tables that are
//! themselves in a hole, in MMIO, beyond RAM or misaligned; the same for
//! the device reading memory (writes).
//!
//! Targets outside the guest's buffers cannot be checked byte by byte; what
//! is checked is that the data buffer and the sentinels stay untouched, and
//! where the target is RAM the guest owns, what landed there.

use vmdma_guest::msg;
use vmdma_guest::msg::Msg;
use vmdma_guest::stamp::SECTOR;

use super::raw::{EOT, Expect, Side, dma_verdict};
use super::{CaseResult, Hx, Verdict};
use crate::arch::{mem, mmio, phys};
use crate::suite::io::CANARY;
use crate::{pass, skip_case};

/// A guest-physical address where nothing is mapped on either platform
/// (below 4 GiB, above any RAM these tests use, not a PCI BAR).
pub const HOLE: u32 = 0xE000_0000;
/// The IOAPIC window.
const IOAPIC: u32 = 0xFEC0_0000;
/// The HPET window (QEMU's `pc` has one; vmdma does not).
const HPET: u32 = 0xFED0_0000;
/// The local APIC window (on QEMU, DMA there is an MSI).
const LAPIC: u32 = 0xFEE0_0000;
/// Far above RAM on both platforms, below the PCI hole.
const FAR: u32 = 0x8000_0000;

/// Reads `sectors` fresh stamped sectors through one PRD of `addr`,
/// `bytes` (EOT); the data buffer must stay untouched either way.
fn read_to(hx: &mut Hx, addr: u32, sectors: u32) -> CaseResult {
    let (lba, _) = hx.stamped(sectors)?;
    let bytes = sectors * SECTOR as u32;
    hx.prds(&[(addr, (bytes & 0xFFFF) | EOT)])?;
    let o = hx.read(lba, sectors)?;
    Ok(dma_verdict(&o, |_| hx.check_data(&[])))
}

/// Reads never-written (zero) sectors into `addr`: for device windows,
/// where the bytes written are register values.
fn read_zeros_to(hx: &mut Hx, addr: u32, sectors: u32) -> CaseResult {
    let lba = hx.ctx.alloc(u64::from(sectors))?;
    let bytes = sectors * SECTOR as u32;
    hx.prds(&[(addr, (bytes & 0xFFFF) | EOT)])?;
    let o = hx.read(lba, sectors)?;
    Ok(dma_verdict(&o, |_| hx.check_data(&[])))
}

/// READ DMA into the first byte past the end of RAM.
pub fn prd_beyond_ram(hx: &mut Hx) -> CaseResult {
    let Ok(end) = u32::try_from(hx.ram_end) else {
        return skip_case!("RAM ends above 4 GiB");
    };
    read_to(hx, end, 1)
}

/// A 1 KiB PRD whose first half is the last 512 bytes of RAM and whose
/// second half lies past it: on completion the RAM half holds the first
/// sector; refused, it holds the first sector or nothing.
pub fn prd_straddles_ram_end(hx: &mut Hx) -> CaseResult {
    let Ok(end) = u32::try_from(hx.ram_end) else {
        return skip_case!("RAM ends above 4 GiB");
    };
    let last = u64::from(end) - SECTOR as u64;
    if !phys::fill(last, SECTOR as u64, CANARY) {
        return skip_case!("the last RAM sector is not free");
    }
    let (lba, pattern) = hx.stamped(2)?;
    hx.prds(&[(end - SECTOR as u32, 1024 | EOT)])?;
    let o = hx.read(lba, 2)?;
    let mut got = [0u8; SECTOR];
    let copied = mmio::read_phys(last, &mut got);
    Ok(dma_verdict(&o, |side| {
        hx.check_data(&[])?;
        if !copied {
            return Err(Msg::from_text("cannot read the last RAM sector back"));
        }
        let untouched = mem::first_not(&got, CANARY).is_none();
        if side == Side::Refused && untouched {
            return Ok(());
        }
        if let Some(s) = hx.ctx.stage.bytes.get_mut(..SECTOR) {
            mem::copy(s, &got);
        }
        hx.ctx
            .verify_stage(lba, 1, pattern)
            .map_err(|f| msg!("the RAM half: {}", f.0))
    }))
}

/// READ DMA into the legacy VGA window (0xB8000): RAM on vmdma, an empty
/// window on QEMU without VGA.
pub fn prd_in_legacy_hole(hx: &mut Hx) -> CaseResult {
    read_to(hx, 0xB_8000, 1)
}

/// READ DMA into a hole below 4 GiB (0xE000_0000).
pub fn prd_in_pci_hole(hx: &mut Hx) -> CaseResult {
    read_to(hx, HOLE, 2)
}

/// READ DMA of a zero sector onto the IOAPIC registers.
pub fn prd_at_ioapic(hx: &mut Hx) -> CaseResult {
    read_zeros_to(hx, IOAPIC, 1)
}

/// READ DMA of a zero sector onto the HPET registers.
pub fn prd_at_hpet(hx: &mut Hx) -> CaseResult {
    read_zeros_to(hx, HPET, 1)
}

/// READ DMA of a zero sector onto the local APIC window.
pub fn prd_at_lapic(hx: &mut Hx) -> CaseResult {
    read_zeros_to(hx, LAPIC, 1)
}

/// A 1 KiB PRD at 0xFFFF_FE00: its end is 4 GiB + 512 (no 32-bit wrap to
/// address 0 may happen).
pub fn prd_wraps_4g(hx: &mut Hx) -> CaseResult {
    read_to(hx, 0xFFFF_FE00, 2)
}

/// One sector split between 4 bytes at 0xFFFF_FFFC..4 GiB and 508 bytes in
/// the data buffer: on completion the buffer holds the sector's last 508
/// bytes.
pub fn prd_split_sector_at_4g(hx: &mut Hx) -> CaseResult {
    let (lba, pattern) = hx.stamped(1)?;
    let buf = hx.data_at(0)?;
    hx.prds(&[(0xFFFF_FFFC, 4), (buf, 508 | EOT)])?;
    let o = hx.read(lba, 1)?;
    Ok(dma_verdict(&o, |side| {
        hx.ctx.build(lba, 1, pattern).map_err(|f| f.0)?;
        let want = hx.ctx.stage.bytes.get(4..SECTOR).unwrap_or(&[]);
        let got = hx.ctx.mem.data.get(..508).unwrap_or(&[]);
        let untouched = mem::first_not(got, CANARY).is_none();
        if side == Side::Refused && untouched {
            return hx.check_data(&[]);
        }
        if let Some(i) = mem::first_difference(got, want) {
            return Err(msg!(
                "data buffer byte {i} is not the sector's byte {}",
                i + 4
            ));
        }
        hx.check_data(&[(0, 508, Expect::Any)])
    }))
}

/// A PRD whose target is the PRD table itself: the walk reads the entry,
/// then the sector lands on the table.
pub fn prd_into_prd_table(hx: &mut Hx) -> CaseResult {
    let (lba, pattern) = hx.stamped(1)?;
    let table = hx.table()?;
    hx.prds(&[(table, SECTOR as u32 | EOT)])?;
    let o = hx.read(lba, 1)?;
    let mut got = [0u8; SECTOR];
    for (dst, e) in got.chunks_exact_mut(8).zip(hx.ctx.mem.prd.iter()) {
        let [a, b] = *e;
        let (lo, hi) = dst.split_at_mut(4);
        lo.copy_from_slice(&a.to_le_bytes());
        hi.copy_from_slice(&b.to_le_bytes());
    }
    Ok(dma_verdict(&o, |side| {
        hx.check_data(&[])?;
        if side == Side::Refused {
            return Ok(());
        }
        if let Some(s) = hx.ctx.stage.bytes.get_mut(..SECTOR) {
            mem::copy(s, &got);
        }
        hx.ctx
            .verify_stage(lba, 1, pattern)
            .map_err(|f| msg!("the PRD table: {}", f.0))
    }))
}

/// Reads 2 stamped sectors with the PRD table pointer at `table`; data may
/// land in the first `allowed` bytes of the data buffer (an entry the
/// guest wrote points there), nowhere else.
fn table_at(hx: &mut Hx, table: u32, allowed: usize) -> CaseResult {
    let (lba, _) = hx.stamped(2)?;
    let mode = crate::suite::io::Mode::for_range(lba, 2);
    let tf = mode.taskfile(lba, 2)?;
    let op = mode.dma_opcode(crate::ide::dma::Direction::ToMemory);
    let o = hx.dma(op, &tf, true, table)?;
    Ok(dma_verdict(&o, |_| {
        if allowed == 0 {
            hx.check_data(&[])
        } else {
            hx.check_data(&[(0, allowed, Expect::Any)])
        }
    }))
}

/// The PRD table pointer in a hole: the entries cannot be fetched.
pub fn prd_table_in_hole(hx: &mut Hx) -> CaseResult {
    table_at(hx, HOLE, 0)
}

/// The PRD table pointer far beyond RAM.
pub fn prd_table_beyond_ram(hx: &mut Hx) -> CaseResult {
    table_at(hx, FAR, 0)
}

/// The PRD table pointer on the local APIC window.
pub fn prd_table_at_lapic(hx: &mut Hx) -> CaseResult {
    table_at(hx, LAPIC, 0)
}

/// The PRD table in the MMIO scratch region (vmdma only): the walk reads
/// the entries through MMIO; the data lands in RAM.
pub fn prd_table_in_mmio(hx: &mut Hx) -> CaseResult {
    let Some(s) = hx.ctx.scratch else {
        return skip_case!("no MMIO scratch region (QEMU has none)");
    };
    let Ok(base) = u32::try_from(s.base) else {
        return skip_case!("the MMIO scratch region is above 4 GiB");
    };
    let (lba, pattern) = hx.stamped(2)?;
    let buf = hx.data_at(0)?;
    let entry = u64::from(buf) | (u64::from(1024 | EOT) << 32);
    if !mmio::write64(s.base, entry) {
        return Ok(Verdict::Fail(Msg::from_text("MMIO scratch write refused")));
    }
    let mode = crate::suite::io::Mode::for_range(lba, 2);
    let tf = mode.taskfile(lba, 2)?;
    let op = mode.dma_opcode(crate::ide::dma::Direction::ToMemory);
    let o = hx.dma(op, &tf, true, base)?;
    Ok(dma_verdict(&o, |side| match side {
        Side::Done => hx.check_data(&[(0, 1024, Expect::Stamps { lba, pattern })]),
        Side::Refused => hx.check_data(&[(0, 1024, Expect::StampsOrCanary { lba, pattern })]),
    }))
}

/// A PRD table pointer with bits 1:0 set: they read back as 0 and the
/// table at the aligned address is used.
pub fn prd_table_pointer_unaligned(hx: &mut Hx) -> CaseResult {
    let (lba, pattern) = hx.stamped(2)?;
    let buf = hx.data_at(0)?;
    hx.prds(&[(buf, 1024 | EOT)])?;
    let table = hx.table()?;
    hx.ctx.ch.set_prd_pointer(table | 3);
    let back = hx.ctx.ch.prd_pointer();
    if back != table {
        return crate::fail!("PRD pointer {:#x} reads back {back:#x}", table | 3);
    }
    let mode = crate::suite::io::Mode::for_range(lba, 2);
    let tf = mode.taskfile(lba, 2)?;
    let op = mode.dma_opcode(crate::ide::dma::Direction::ToMemory);
    let o = hx.dma(op, &tf, true, table | 3)?;
    Ok(dma_verdict(&o, |side| {
        hx.check_side(side, &[(0, 1024, Expect::Stamps { lba, pattern })])
    }))
}

/// START first with the pointer at table A, then the pointer moved to
/// table B, then the command: the fetch pointer was latched at START, so
/// the data goes where table A says.
pub fn prd_pointer_moved_after_start(hx: &mut Hx) -> CaseResult {
    let (lba, pattern) = hx.stamped(2)?;
    let a = hx.data_at(0)?;
    let b = hx.data_at(0x1_0000)?;
    hx.prds(&[(a, 1024 | EOT)])?;
    hx.prd(256, b, 1024 | EOT)?;
    let table = hx.table()?;
    let mode = crate::suite::io::Mode::for_range(lba, 2);
    let tf = mode.taskfile(lba, 2)?;
    let op = mode.dma_opcode(crate::ide::dma::Direction::ToMemory);
    let ch = &hx.ctx.ch;
    ch.stop_bus_master();
    ch.drain_irq();
    ch.prepare(&tf)?;
    ch.set_prd_pointer(table);
    ch.set_bm_cmd(vmdma_guest::ata::regs::bm::CMD_WRITE_MEMORY);
    hx.start();
    hx.ctx.ch.set_prd_pointer(table + 256 * 8);
    hx.ctx.ch.command(op);
    let o = hx.conclude();
    Ok(dma_verdict(&o, |side| {
        hx.check_side(side, &[(0, 1024, Expect::Stamps { lba, pattern })])
    }))
}

/// WRITE DMA of 1 sector from `addr`: completed, the sector holds whatever
/// the device read there (re-stamped after the case); refused, it keeps its
/// old stamp.
fn write_from(hx: &mut Hx, addr: u32) -> CaseResult {
    let (lba, pattern) = hx.stamped(1)?;
    hx.prds(&[(addr, SECTOR as u32 | EOT)])?;
    hx.dirty(lba, 1)?;
    let o = hx.write(lba, 1)?;
    let v = dma_verdict(&o, |side| {
        hx.check_data(&[])?;
        if side == Side::Done {
            return Ok(());
        }
        let layout = crate::suite::io::Layout::ram(0, SECTOR).map_err(|f| f.0)?;
        let x = crate::suite::io::Xfer::new(lba, 1);
        hx.ctx
            .dma_read_verify(&x, pattern, &layout)
            .map_err(|f| msg!("the refused write changed the sector: {}", f.0))?;
        hx.canaries();
        Ok(())
    });
    Ok(match v {
        Verdict::Pass(_) => Verdict::Pass(Msg::from_text(
            "completed; the sector got what the device read there",
        )),
        v => v,
    })
}

/// WRITE DMA from a hole.
pub fn prd_write_from_hole(hx: &mut Hx) -> CaseResult {
    write_from(hx, HOLE)
}

/// WRITE DMA from beyond RAM.
pub fn prd_write_from_beyond_ram(hx: &mut Hx) -> CaseResult {
    write_from(hx, FAR)
}

/// WRITE DMA from the local APIC window.
pub fn prd_write_from_lapic(hx: &mut Hx) -> CaseResult {
    write_from(hx, LAPIC)
}

/// A 1 KiB PRD over the last 512 bytes of the MMIO scratch region and the
/// hole after it (vmdma only): refused, and the scratch region holds the
/// first sector or nothing.
pub fn prd_mmio_overrun(hx: &mut Hx) -> CaseResult {
    let Some(s) = hx.ctx.scratch else {
        return skip_case!("no MMIO scratch region (QEMU has none)");
    };
    let last = s.end() - SECTOR as u64;
    let Ok(addr) = u32::try_from(last) else {
        return skip_case!("the MMIO scratch region is above 4 GiB");
    };
    let word = u64::from_ne_bytes([CANARY; 8]);
    for i in 0..(SECTOR as u64 / 8) {
        if !mmio::write64(last + 8 * i, word) {
            return Ok(Verdict::Fail(Msg::from_text("MMIO scratch write refused")));
        }
    }
    let (lba, pattern) = hx.stamped(2)?;
    hx.prds(&[(addr, 1024 | EOT)])?;
    let o = hx.read(lba, 2)?;
    let mut got = [0u8; SECTOR];
    for (i, w) in got.chunks_exact_mut(8).enumerate() {
        w.copy_from_slice(&mmio::read64(last + 8 * i as u64).unwrap_or(0).to_le_bytes());
    }
    let v = dma_verdict(&o, |_| {
        hx.check_data(&[])?;
        if mem::first_not(&got, CANARY).is_none() {
            return Ok(());
        }
        if let Some(st) = hx.ctx.stage.bytes.get_mut(..SECTOR) {
            mem::copy(st, &got);
        }
        hx.ctx
            .verify_stage(lba, 1, pattern)
            .map_err(|f| msg!("the scratch half: {}", f.0))
    });
    match v {
        Verdict::Pass(_) => pass!("completed (the scratch half holds the first sector)"),
        v => Ok(v),
    }
}

/// One sector as 8 pieces of 64 bytes, each in its own page of the MMIO
/// scratch region (vmdma only): the bounce arena stages the sector's pieces
/// into one contiguous range. Completed, each piece holds its bytes; refused, the data buffer
/// and the pieces' neighbours are untouched.
pub fn prd_sector_in_8_mmio_pages(hx: &mut Hx) -> CaseResult {
    let Some(s) = hx.ctx.scratch else {
        return skip_case!("no MMIO scratch region (QEMU has none)");
    };
    if s.len < 8 * 0x1000 {
        return skip_case!("the MMIO scratch region is smaller than 8 pages");
    }
    let Ok(base) = u32::try_from(s.base) else {
        return skip_case!("the MMIO scratch region is above 4 GiB");
    };
    let (lba, pattern) = hx.stamped(1)?;
    for i in 0..8u32 {
        hx.prd(
            i as usize,
            base + i * 0x1000,
            64 | if i == 7 { EOT } else { 0 },
        )?;
    }
    let o = hx.read(lba, 1)?;
    let mut got = [0u8; SECTOR];
    for (i, w) in got.chunks_exact_mut(8).enumerate() {
        let page = (i / 8) as u64;
        let at = s.base + page * 0x1000 + 8 * (i % 8) as u64;
        w.copy_from_slice(&mmio::read64(at).unwrap_or(0).to_le_bytes());
    }
    Ok(dma_verdict(&o, |side| {
        hx.check_data(&[])?;
        if side == Side::Refused {
            return Ok(());
        }
        if let Some(st) = hx.ctx.stage.bytes.get_mut(..SECTOR) {
            mem::copy(st, &got);
        }
        hx.ctx
            .verify_stage(lba, 1, pattern)
            .map_err(|f| msg!("the MMIO pieces: {}", f.0))
    }))
}

/// A 1 KiB PRD in the MMIO scratch region for a one-sector read (vmdma
/// only): the bounce buffer is written back with the length really
/// transferred, so the second half keeps its canaries (the CVE-2024-8612
/// class: no uninitialised bounce bytes reach the target).
pub fn prd_mmio_long_exact_writeback(hx: &mut Hx) -> CaseResult {
    let Some(s) = hx.ctx.scratch else {
        return skip_case!("no MMIO scratch region (QEMU has none)");
    };
    let Ok(base) = u32::try_from(s.base) else {
        return skip_case!("the MMIO scratch region is above 4 GiB");
    };
    let word = u64::from_ne_bytes([CANARY; 8]);
    for i in 0..(1024 / 8) {
        if !mmio::write64(s.base + 8 * i, word) {
            return Ok(Verdict::Fail(Msg::from_text("MMIO scratch write refused")));
        }
    }
    let (lba, pattern) = hx.stamped(1)?;
    hx.prds(&[(base, 1024 | EOT)])?;
    let o = hx.read(lba, 1)?;
    let mut got = [0u8; 1024];
    for (i, w) in got.chunks_exact_mut(8).enumerate() {
        w.copy_from_slice(
            &mmio::read64(s.base + 8 * i as u64)
                .unwrap_or(0)
                .to_le_bytes(),
        );
    }
    Ok(dma_verdict(&o, |side| {
        hx.check_data(&[])?;
        let (first, second) = got.split_at(SECTOR);
        if mem::first_not(second, CANARY).is_some() {
            return Err(Msg::from_text(
                "the bounce write-back reached past the transferred sector",
            ));
        }
        if side == Side::Refused && mem::first_not(first, CANARY).is_none() {
            return Ok(());
        }
        if let Some(st) = hx.ctx.stage.bytes.get_mut(..SECTOR) {
            mem::copy(st, first);
        }
        hx.ctx
            .verify_stage(lba, 1, pattern)
            .map_err(|f| msg!("the transferred sector: {}", f.0))
    }))
}

/// The PRD table's only entry straddles the end of RAM: its address dword
/// (the data buffer) in the last 4 bytes of RAM, its count and EOT past
/// the end.
pub fn prd_table_straddles_ram_end(hx: &mut Hx) -> CaseResult {
    let Ok(end) = u32::try_from(hx.ram_end) else {
        return skip_case!("RAM ends above 4 GiB");
    };
    let last = hx.ram_end - 8;
    let buf = hx.data_at(0)?;
    // The 8 RAM bytes before the end: [.., address of the entry].
    if !phys::fill(last, 8, 0) || !mmio::write32(last + 4, buf) {
        return skip_case!("the last RAM bytes are not free");
    }
    table_at(hx, end - 4, 2 * SECTOR)
}
