//! Attack class: commands and register writes while the device is busy
//! (DRQ): a new command, task-file and Device writes, data-port traffic
//! and BM START while a DMA command waits for START or a PIO command is in
//! its data phase; SRST held high; SRST storms. The device must ignore what
//! the protocol says it ignores and finish the command it accepted.

use vmdma_guest::ata::regs::{bm, cmd, devctl, reg, status};
use vmdma_guest::ata::taskfile::Drive;
use vmdma_guest::msg;
use vmdma_guest::stamp::SECTOR;

use super::raw::{EOT, Expect, dma_verdict, non_data_verdict};
use super::{CaseResult, Hx, Verdict};
use crate::arch::io;
use crate::ide::channel::DEVCTL_NORMAL;
use crate::ide::dma::Direction;
use crate::suite::Fail;
use crate::suite::io::{Layout, Mode};
use crate::{fail, pass};

/// Issues READ DMA of `sectors` stamped sectors into data offset 0 (START
/// clear): the device waits with DRQ. Returns (LBA, pattern).
fn pending_read(hx: &mut Hx, sectors: u32) -> Result<(u64, u32), Fail> {
    let (lba, pattern) = hx.stamped(sectors)?;
    let buf = hx.data_at(0)?;
    hx.prds(&[(buf, (sectors * SECTOR as u32) | EOT)])?;
    let mode = Mode::for_range(lba, sectors);
    let tf = mode.taskfile(lba, sectors)?;
    let table = hx.table()?;
    hx.issue(mode.dma_opcode(Direction::ToMemory), &tf, true, table)?;
    Ok((lba, pattern))
}

/// Checks that a pending DMA command shows DRQ.
fn expect_drq(hx: &Hx) -> Result<(), Fail> {
    let st = hx.ctx.ch.alt_status();
    if st & status::DRQ == 0 {
        return Err(Fail(msg!(
            "status {st:#04x} while the DMA command waits (want DRQ)"
        )));
    }
    Ok(())
}

/// IDENTIFY and CHECK POWER MODE written while a READ DMA waits for
/// START: ignored; START then runs the READ DMA.
pub fn command_while_dma_pending(hx: &mut Hx) -> CaseResult {
    let (lba, pattern) = pending_read(hx, 4)?;
    expect_drq(hx)?;
    hx.ctx.ch.command(cmd::IDENTIFY);
    hx.ctx.ch.command(cmd::CHECK_POWER_MODE);
    expect_drq(hx)?;
    hx.start();
    let o = hx.conclude();
    Ok(dma_verdict(&o, |side| {
        hx.check_side(side, &[(0, 4 * SECTOR, Expect::Stamps { lba, pattern })])
    }))
}

/// Task-file and Device (slave select) writes while a READ DMA waits:
/// ignored; the read uses the registers it was issued with.
pub fn taskfile_and_select_while_dma_pending(hx: &mut Hx) -> CaseResult {
    let (lba, pattern) = pending_read(hx, 2)?;
    let ch = &hx.ctx.ch;
    for r in [
        reg::ERROR_FEATURES,
        reg::COUNT,
        reg::LBA_LOW,
        reg::LBA_MID,
        reg::LBA_HIGH,
    ] {
        ch.write(r, 0xFF);
    }
    ch.write(reg::DEVICE, Drive::Slave.select_bits());
    expect_drq(hx)?;
    hx.start();
    let o = hx.conclude();
    Ok(dma_verdict(&o, |side| {
        hx.check_side(side, &[(0, 2 * SECTOR, Expect::Stamps { lba, pattern })])
    }))
}

/// 256 data-port reads (16- and 32-bit) while a READ DMA waits: no data
/// phase exists, nothing moves; START then runs the read.
pub fn data_port_reads_while_dma_pending(hx: &mut Hx) -> CaseResult {
    let (lba, pattern) = pending_read(hx, 2)?;
    let mut junk = [0u8; 1024];
    io::insw(
        hx.ctx.ch.data_port(),
        junk.get_mut(..512).unwrap_or(&mut []),
    );
    io::insd(
        hx.ctx.ch.data_port(),
        junk.get_mut(512..).unwrap_or(&mut []),
    );
    expect_drq(hx)?;
    hx.start();
    let o = hx.conclude();
    Ok(dma_verdict(&o, |side| {
        hx.check_side(side, &[(0, 2 * SECTOR, Expect::Stamps { lba, pattern })])
    }))
}

/// 1 KiB of data-port writes while a WRITE DMA waits: they must not reach
/// the disk; START writes the RAM data (announced).
pub fn data_port_writes_while_dma_write_pending(hx: &mut Hx) -> CaseResult {
    let lba = hx.ctx.alloc(2)?;
    let pattern = hx.ctx.pattern();
    hx.ctx.build(lba, 2, pattern)?;
    let layout = Layout::ram(0, 2 * SECTOR)?;
    hx.ctx.scatter(&layout)?;
    hx.ctx.load_prds(&layout)?;
    let mode = Mode::for_range(lba, 2);
    let tf = mode.taskfile(lba, 2)?;
    let table = hx.table()?;
    hx.ctx.manifest_write(lba, 2, pattern);
    hx.issue(mode.dma_opcode(Direction::FromMemory), &tf, false, table)?;
    let junk = [0xEEu8; 1024];
    io::outsw(hx.ctx.ch.data_port(), junk.get(..512).unwrap_or(&[]));
    io::outsd(hx.ctx.ch.data_port(), junk.get(512..).unwrap_or(&[]));
    expect_drq(hx)?;
    hx.start();
    let o = hx.conclude();
    let v = dma_verdict(&o, |_| Ok(()));
    if !matches!(v, Verdict::Pass(_)) {
        hx.dirty(lba, 2)?;
        return Ok(v);
    }
    hx.canaries();
    hx.ctx.read_dma_verify(lba, 2, pattern)?;
    Ok(v)
}

/// Reads `n` sectors of an accepted PIO data-in command into data offset
/// `at`, one DRQ block (sector) at a time.
pub(super) fn pio_in(hx: &mut Hx, at: usize, n: usize) -> Result<(), Fail> {
    for i in 0..n {
        let st = hx.ctx.ch.wait_not_busy("PIO data-in block")?;
        if st & status::DRQ == 0 {
            return Err(Fail(msg!("no DRQ for PIO block {i} (status {st:#04x})")));
        }
        let o = at + i * SECTOR;
        let dst = hx
            .ctx
            .mem
            .data
            .get_mut(o..o + SECTOR)
            .ok_or_else(|| Fail(msg!("PIO buffer out of range")))?;
        io::insw(hx.ctx.ch.data_port(), dst);
    }
    Ok(())
}

/// Writes `n` sectors from data offset `at` to an accepted PIO data-out
/// command.
pub(super) fn pio_out(hx: &mut Hx, at: usize, n: usize) -> Result<(), Fail> {
    for i in 0..n {
        let st = hx.ctx.ch.wait_not_busy("PIO data-out block")?;
        if st & status::DRQ == 0 {
            return Err(Fail(msg!("no DRQ for PIO block {i} (status {st:#04x})")));
        }
        let o = at + i * SECTOR;
        let src = hx.ctx.mem.data.get(o..o + SECTOR).unwrap_or(&[]);
        io::outsw(hx.ctx.ch.data_port(), src);
    }
    Ok(())
}

/// WRITE SECTORS and LBA writes in the middle of a READ SECTORS data
/// phase: ignored; the read delivers all its sectors.
pub fn command_while_pio_in(hx: &mut Hx) -> CaseResult {
    let (lba, pattern) = hx.stamped(4)?;
    let tf = Mode::for_range(lba, 4).taskfile(lba, 4)?;
    let op = Mode::for_range(lba, 4).pio_opcode(false);
    hx.ctx.ch.issue(&tf, op)?;
    pio_in(hx, 0, 1)?;
    hx.ctx.ch.write(reg::LBA_LOW, 0x55);
    hx.ctx.ch.command(cmd::WRITE_SECTORS);
    pio_in(hx, SECTOR, 3)?;
    let st = hx.ctx.ch.wait_not_busy("end of READ SECTORS")?;
    let st_final = hx.ctx.ch.status();
    if st & (status::DRQ | status::ERR) != 0 || st_final & (status::DRQ | status::ERR) != 0 {
        return fail!("status {st_final:#04x} after the read");
    }
    hx.check_data(&[(0, 4 * SECTOR, Expect::Stamps { lba, pattern })])
        .map_err(Fail)?;
    pass!("the extra command and register write were ignored")
}

/// READ DMA written in the middle of a WRITE SECTORS data phase: ignored;
/// the write takes all its sectors (announced) and they read back.
pub fn command_while_pio_out(hx: &mut Hx) -> CaseResult {
    let lba = hx.ctx.alloc(2)?;
    let pattern = hx.ctx.pattern();
    hx.ctx.build(lba, 2, pattern)?;
    let layout = Layout::ram(0, 2 * SECTOR)?;
    hx.ctx.scatter(&layout)?;
    let tf = Mode::for_range(lba, 2).taskfile(lba, 2)?;
    let op = Mode::for_range(lba, 2).pio_opcode(true);
    hx.ctx.manifest_write(lba, 2, pattern);
    hx.ctx.ch.issue(&tf, op)?;
    pio_out(hx, 0, 1)?;
    hx.ctx.ch.command(cmd::READ_DMA);
    pio_out(hx, SECTOR, 1)?;
    let st = hx.ctx.ch.wait_not_busy("end of WRITE SECTORS")?;
    let _ = hx.ctx.ch.status();
    if st & (status::DRQ | status::ERR) != 0 {
        hx.dirty(lba, 2)?;
        return fail!("status {st:#04x} after the write");
    }
    hx.canaries();
    hx.ctx.read_dma_verify(lba, 2, pattern)?;
    pass!("the extra command was ignored")
}

/// BM START (with a PRD table pointing at the data buffer) in the middle
/// of a READ SECTORS data phase: no DMA command is pending, so nothing
/// moves by DMA; the PIO read goes on.
pub fn bm_start_while_pio_in(hx: &mut Hx) -> CaseResult {
    let (lba, pattern) = hx.stamped(2)?;
    let buf = hx.data_at(0x1_0000)?;
    hx.prds(&[(buf, 1024 | EOT)])?;
    let table = hx.table()?;
    hx.ctx.ch.set_prd_pointer(table);
    let tf = Mode::for_range(lba, 2).taskfile(lba, 2)?;
    hx.ctx
        .ch
        .issue(&tf, Mode::for_range(lba, 2).pio_opcode(false))?;
    pio_in(hx, 0, 1)?;
    hx.ctx
        .ch
        .set_bm_cmd(vmdma_guest::ata::regs::bm::CMD_WRITE_MEMORY);
    hx.start();
    pio_in(hx, SECTOR, 1)?;
    hx.stop();
    let _ = hx.ctx.ch.wait_not_busy("end of READ SECTORS")?;
    let _ = hx.ctx.ch.status();
    let _ = hx.ctx.ch.clear_bm_status();
    hx.check_data(&[(0, 2 * SECTOR, Expect::Stamps { lba, pattern })])
        .map_err(Fail)?;
    pass!("START without a DMA command moved nothing")
}

/// SRST set and held: commands issued meanwhile, then SRST released
/// without a new edge. The device must end idle and usable.
pub fn srst_held_high(hx: &mut Hx) -> CaseResult {
    let ch = &hx.ctx.ch;
    ch.set_devctl(DEVCTL_NORMAL | devctl::SRST);
    let _ = ch.alt_status();
    let _ = ch.wait_not_busy("BSY clear with SRST held");
    ch.write(reg::DEVICE, Drive::Master.select_bits());
    ch.command(cmd::CHECK_POWER_MODE);
    let _ = ch.wait_not_busy("a command with SRST held");
    ch.set_devctl(DEVCTL_NORMAL);
    let st = ch.wait_not_busy("BSY clear after releasing SRST")?;
    let _ = ch.status();
    if st & (status::DRQ | status::ERR) != 0 || st & status::DRDY == 0 {
        return fail!("status {st:#04x} after SRST was released");
    }
    let r = hx.ctx.non_data(
        &vmdma_guest::ata::taskfile::TaskFile::plain(Drive::Master, 0, 0),
        cmd::CHECK_POWER_MODE,
    )?;
    Ok(match non_data_verdict(r.status, r.error, r.irq) {
        Verdict::Pass(_) => Verdict::Pass(msg!("idle and usable after SRST was released")),
        v => v,
    })
}

/// 64 SRST pulses back to back, without waiting for BSY in between.
pub fn srst_storm(hx: &mut Hx) -> CaseResult {
    let ch = &hx.ctx.ch;
    for _ in 0..64 {
        ch.set_devctl(DEVCTL_NORMAL | devctl::SRST);
        ch.set_devctl(DEVCTL_NORMAL);
    }
    let st = ch.wait_not_busy("BSY clear after 64 SRST pulses")?;
    let _ = ch.status();
    if st & status::DRQ != 0 || st & status::DRDY == 0 {
        return fail!("status {st:#04x} after the SRST storm");
    }
    pass!("idle after the storm")
}

/// Every BMDMA register offset (both channels) written with all-ones and
/// zeros at every width; START must only ever be set by a byte write, and
/// the secondary channel (no drive) must start nothing. Then a DMA works.
pub fn bm_registers_every_width(hx: &mut Hx) -> CaseResult {
    let base = hx.ide.bmiba;
    let saved = hx.ctx.ch.prd_pointer();
    for off in 0..16u16 {
        if off % 8 == 0 {
            // START of either channel: only byte writes (below) may set it.
            io::outw(base + off, 0xFFFE);
            io::outl(base + off, 0xFFFF_FFFE);
            continue;
        }
        io::outw(base + off, 0xFFFF);
        io::outw(base + off, 0);
        if off % 4 == 0 {
            io::outl(base + off, 0xFFFF_FFFF);
            io::outl(base + off, 0);
        }
    }
    let cmd_after_wide = hx.ctx.ch.bm_cmd();
    // The secondary channel's START with a garbage table: no drive there.
    io::outl(base + 12, 0xE000_0000);
    io::outb(base + 8, bm::CMD_START);
    let sec = io::inb(base + 10);
    io::outb(base + 8, 0);
    io::outb(base + 10, 0x06);
    hx.ctx.ch.set_prd_pointer(saved);
    hx.ctx.ch.set_bm_cmd(0);
    let _ = hx.ctx.ch.clear_bm_status();
    if cmd_after_wide & bm::CMD_START != 0 {
        return fail!("a word or dword write set START (BM command {cmd_after_wide:#04x})");
    }
    if sec & bm::STATUS_ERR != 0 {
        return fail!("the secondary channel's START set ERR (BM status {sec:#04x})");
    }
    let (lba, pattern) = hx.stamped(2)?;
    let buf = hx.data_at(0)?;
    hx.prds(&[(buf, (2 * SECTOR as u32) | EOT)])?;
    let o = hx.read(lba, 2)?;
    Ok(
        match dma_verdict(&o, |side| {
            hx.check_side(side, &[(0, 2 * SECTOR, Expect::Stamps { lba, pattern })])
        }) {
            Verdict::Pass(_) => Verdict::Pass(msg!("wide writes ignored; DMA works afterwards")),
            v => v,
        },
    )
}

/// READ DMA with the BM direction bit saying "read memory", and WRITE DMA
/// (announced) with it saying "write memory": the ATA command decides the
/// direction (as in QEMU), or the device refuses.
pub fn bm_direction_mismatch(hx: &mut Hx) -> CaseResult {
    let (lba, pattern) = hx.stamped(2)?;
    let buf = hx.data_at(0)?;
    hx.prds(&[(buf, (2 * SECTOR as u32) | EOT)])?;
    let mode = Mode::for_range(lba, 2);
    let tf = mode.taskfile(lba, 2)?;
    let table = hx.table()?;
    let o = hx.dma(mode.dma_opcode(Direction::ToMemory), &tf, false, table)?;
    let read = dma_verdict(&o, |side| {
        hx.check_side(side, &[(0, 2 * SECTOR, Expect::Stamps { lba, pattern })])
    });
    hx.canaries();
    let wlba = hx.ctx.alloc(2)?;
    let new = hx.ctx.pattern();
    hx.ctx.build(wlba, 2, new)?;
    let layout = Layout::ram(0, 2 * SECTOR)?;
    hx.ctx.scatter(&layout)?;
    hx.ctx.load_prds(&layout)?;
    let tf = Mode::for_range(wlba, 2).taskfile(wlba, 2)?;
    hx.ctx.manifest_write(wlba, 2, new);
    hx.dirty(wlba, 2)?;
    let o = hx.dma(
        Mode::for_range(wlba, 2).dma_opcode(Direction::FromMemory),
        &tf,
        true,
        table,
    )?;
    let write = dma_verdict(&o, |side| {
        if side == super::raw::Side::Refused {
            return Ok(());
        }
        hx.canaries();
        hx.ctx.read_dma_verify(wlba, 2, new).map_err(|f| f.0)?;
        hx.canaries();
        Ok(())
    });
    match (&read, &write) {
        (Verdict::Pass(_), Verdict::Pass(_)) => pass!("the ATA command decides the direction"),
        (Verdict::Fail(m), _) | (_, Verdict::Fail(m)) => fail!("{m}"),
        _ => Ok(Verdict::Reject(msg!(
            "read {}, write {}",
            read.word(),
            write.word()
        ))),
    }
}

/// READ DMA issued to the absent slave, then START: ignored (no IRQ, no
/// data); the master then works.
pub fn dma_command_to_absent_slave(hx: &mut Hx) -> CaseResult {
    let (lba, _) = hx.stamped(2)?;
    let buf = hx.data_at(0)?;
    hx.prds(&[(buf, (2 * SECTOR as u32) | EOT)])?;
    let table = hx.table()?;
    let mut tf = Mode::for_range(lba, 2).taskfile(lba, 2)?;
    tf.device |= vmdma_guest::ata::regs::device::DEV1;
    let ch = &hx.ctx.ch;
    ch.stop_bus_master();
    let _ = ch.status();
    ch.drain_irq();
    ch.write(reg::DEVICE, Drive::Slave.select_bits());
    ch.load(&tf);
    ch.set_prd_pointer(table);
    ch.set_bm_cmd(bm::CMD_WRITE_MEMORY);
    ch.command(Mode::for_range(lba, 2).dma_opcode(Direction::ToMemory));
    hx.start();
    for _ in 0..64 {
        let _ = hx.ctx.ch.alt_status();
    }
    let irq = hx.ctx.ch.irq_requested();
    hx.stop();
    let _ = hx.ctx.ch.clear_bm_status();
    hx.ctx.ch.select(Drive::Master)?;
    hx.check_data(&[]).map_err(Fail)?;
    if irq {
        return fail!("the command to the absent slave raised an interrupt");
    }
    pass!("ignored: no interrupt, no data")
}
