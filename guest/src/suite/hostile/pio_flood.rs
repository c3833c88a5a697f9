//! Attack class: the PIO data port. Floods of reads and writes of every
//! width with no command, reads and writes past the end of a data phase,
//! the wrong direction during a data phase, byte-wide reads, IDENTIFY read
//! too far. Nothing may reach the disk that the guest did not send inside
//! a write command, and the device must end idle.

use vmdma_guest::ata::regs::{cmd, status};
use vmdma_guest::ata::taskfile::{Drive, TaskFile};
use vmdma_guest::stamp::SECTOR;

use super::busy::{pio_in, pio_out};
use super::raw::Expect;
use super::{CaseResult, Hx};
use crate::arch::io;
use crate::suite::Fail;
use crate::suite::io::{Layout, Mode};
use crate::{fail, pass};

/// Fails unless the device is idle (DRDY, no BSY/DRQ/ERR).
fn idle(hx: &Hx, what: &str) -> Result<(), Fail> {
    let st = hx.ctx.ch.wait_not_busy("idle")?;
    let _ = hx.ctx.ch.status();
    if st & (status::DRQ | status::ERR) != 0 || st & status::DRDY == 0 {
        return Err(Fail(vmdma_guest::msg!("status {st:#04x} {what}")));
    }
    Ok(())
}

/// 8 KiB of 16-bit, 8 KiB of 32-bit and 256 byte reads of the data port
/// with no command.
pub fn data_port_read_flood_idle(hx: &mut Hx) -> CaseResult {
    let port = hx.ctx.ch.data_port();
    let buf = hx.ctx.stage.bytes.get_mut(..8192).unwrap_or(&mut []);
    io::insw(port, buf);
    io::insd(port, buf);
    for _ in 0..256 {
        let _ = io::inb(port);
    }
    idle(hx, "after the read flood")?;
    pass!("ignored; the device stayed idle")
}

/// 8 KiB of 16-bit, 8 KiB of 32-bit and 256 byte writes of the data port
/// with no command: nothing may reach the disk (the host's image check
/// finds unannounced data).
pub fn data_port_write_flood_idle(hx: &mut Hx) -> CaseResult {
    let port = hx.ctx.ch.data_port();
    let buf = hx.ctx.stage.bytes.get_mut(..8192).unwrap_or(&mut []);
    crate::arch::mem::fill(buf, 0xEE);
    io::outsw(port, buf);
    io::outsd(port, buf);
    for _ in 0..256 {
        io::outb(port, 0xEE);
    }
    idle(hx, "after the write flood")?;
    pass!("ignored; the device stayed idle")
}

/// READ SECTORS of 1 sector, then 1 KiB more read from the data port.
pub fn data_port_overrun_pio_in(hx: &mut Hx) -> CaseResult {
    let (lba, pattern) = hx.stamped(1)?;
    let tf = Mode::for_range(lba, 1).taskfile(lba, 1)?;
    hx.ctx
        .ch
        .issue(&tf, Mode::for_range(lba, 1).pio_opcode(false))?;
    pio_in(hx, 0, 1)?;
    let port = hx.ctx.ch.data_port();
    let extra = hx.ctx.stage.bytes.get_mut(..1024).unwrap_or(&mut []);
    io::insw(port, extra);
    idle(hx, "after reading past the data phase")?;
    hx.check_data(&[(0, SECTOR, Expect::Stamps { lba, pattern })])
        .map_err(Fail)?;
    pass!("extra reads ignored")
}

/// WRITE SECTORS of 1 sector (announced), then 1 KiB more written: the
/// next two sectors keep their stamps.
pub fn data_port_overrun_pio_out(hx: &mut Hx) -> CaseResult {
    let (lba, old) = hx.stamped(3)?;
    let new = hx.ctx.pattern();
    hx.ctx.build(lba, 1, new)?;
    hx.ctx.scatter(&Layout::ram(0, SECTOR)?)?;
    let tf = Mode::for_range(lba, 1).taskfile(lba, 1)?;
    hx.ctx.manifest_write(lba, 1, new);
    hx.ctx
        .ch
        .issue(&tf, Mode::for_range(lba, 1).pio_opcode(true))?;
    pio_out(hx, 0, 1)?;
    let port = hx.ctx.ch.data_port();
    let extra = [0xEEu8; 1024];
    io::outsw(port, &extra);
    if let Err(f) = idle(hx, "after writing past the data phase") {
        hx.dirty(lba, 3)?;
        return Err(f);
    }
    hx.canaries();
    hx.ctx.read_dma_verify(lba, 1, new)?;
    hx.ctx.read_dma_verify(lba + 1, 2, old)?;
    hx.canaries();
    pass!("extra writes ignored; the next sectors kept their data")
}

/// Data-port writes during READ SECTORS and reads during WRITE SECTORS
/// (the wrong direction): ignored; both transfers complete correctly.
pub fn data_port_wrong_direction(hx: &mut Hx) -> CaseResult {
    let (lba, pattern) = hx.stamped(2)?;
    let tf = Mode::for_range(lba, 2).taskfile(lba, 2)?;
    hx.ctx
        .ch
        .issue(&tf, Mode::for_range(lba, 2).pio_opcode(false))?;
    let port = hx.ctx.ch.data_port();
    io::outsw(port, &[0xEEu8; 512]);
    pio_in(hx, 0, 2)?;
    idle(hx, "after the read")?;
    hx.check_data(&[(0, 2 * SECTOR, Expect::Stamps { lba, pattern })])
        .map_err(Fail)?;
    hx.canaries();
    let wlba = hx.ctx.alloc(2)?;
    let new = hx.ctx.pattern();
    hx.ctx.build(wlba, 2, new)?;
    hx.ctx.scatter(&Layout::ram(0, 2 * SECTOR)?)?;
    let tf = Mode::for_range(wlba, 2).taskfile(wlba, 2)?;
    hx.ctx.manifest_write(wlba, 2, new);
    hx.ctx
        .ch
        .issue(&tf, Mode::for_range(wlba, 2).pio_opcode(true))?;
    let junk = hx.ctx.stage.bytes.get_mut(..512).unwrap_or(&mut []);
    io::insw(port, junk);
    pio_out(hx, 0, 2)?;
    if let Err(f) = idle(hx, "after the write") {
        hx.dirty(wlba, 2)?;
        return Err(f);
    }
    hx.canaries();
    hx.ctx.read_dma_verify(wlba, 2, new)?;
    hx.canaries();
    pass!("wrong-direction accesses ignored")
}

/// READ SECTORS of 2 sectors drained with byte-wide reads (at most 2048),
/// then 16-bit reads until DRQ clears: the device must end idle.
pub fn data_port_byte_reads(hx: &mut Hx) -> CaseResult {
    let (lba, _) = hx.stamped(2)?;
    let tf = Mode::for_range(lba, 2).taskfile(lba, 2)?;
    hx.ctx
        .ch
        .issue(&tf, Mode::for_range(lba, 2).pio_opcode(false))?;
    let port = hx.ctx.ch.data_port();
    for _ in 0..2048 {
        let st = hx.ctx.ch.alt_status();
        if st & status::BSY == 0 && st & status::DRQ == 0 {
            break;
        }
        let _ = io::inb(port);
    }
    for _ in 0..2048 {
        let st = hx.ctx.ch.alt_status();
        if st & status::BSY == 0 && st & status::DRQ == 0 {
            break;
        }
        let _ = io::inw(port);
    }
    idle(hx, "after byte-wide reads")?;
    pass!("the data phase ended")
}

/// IDENTIFY read with 1 KiB more than its 512 bytes.
pub fn identify_overread(hx: &mut Hx) -> CaseResult {
    let ch = &hx.ctx.ch;
    ch.issue(&TaskFile::plain(Drive::Master, 0, 0), cmd::IDENTIFY)?;
    let st = ch.wait_not_busy("IDENTIFY")?;
    if st & status::DRQ == 0 {
        return fail!("IDENTIFY without DRQ (status {st:#04x})");
    }
    let buf = hx.ctx.stage.bytes.get_mut(..1536).unwrap_or(&mut []);
    io::insw(hx.ctx.ch.data_port(), buf);
    idle(hx, "after reading past IDENTIFY")?;
    pass!("extra reads ignored")
}
