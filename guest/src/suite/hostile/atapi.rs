//! Attack class: the ATAPI PACKET protocol of a CD-ROM on device 1 (with the
//! `suite=atapi` test image; every case skips without one). Byte-count
//! limits of 0, 1 and odd, READs past the end and with lengths that wrap
//! 32 bits, a second PACKET while the first waits for its packet, a packet
//! that never gets its 12 bytes, SRST in the middle of the packet and of
//! the data. Each case ends by checking that the drive still reads block 0
//! correctly.

use vmdma_guest::ata::identify::Identify;
use vmdma_guest::ata::regs::{devctl, error, reg, status};
use vmdma_guest::ata::taskfile::{Drive, TaskFile};
use vmdma_guest::msg;
use vmdma_protocol::{CD_PATTERN, CD_TEST_BLOCKS, stamp_byte};

use super::{CaseResult, Hx, Verdict};
use crate::arch::io;
use crate::ide::packet::{self, IDENTIFY_PACKET_DEVICE, PACKET, PacketOutcome};
use crate::ide::pio;
use crate::suite::Fail;
use crate::{fail, skip_case};

const CD: Drive = Drive::Slave;
const BLOCK: usize = 2048;

fn read10(lba: u32, blocks: u16) -> [u8; 12] {
    let [a, b, c, d] = lba.to_be_bytes();
    let [h, l] = blocks.to_be_bytes();
    [0x28, 0, a, b, c, d, 0, h, l, 0, 0, 0]
}

fn read12(lba: u32, blocks: u32) -> [u8; 12] {
    let [a, b, c, d] = lba.to_be_bytes();
    let [e, f, g, h] = blocks.to_be_bytes();
    [0xA8, 0, a, b, c, d, e, f, g, h, 0, 0]
}

/// True when device 1 answers IDENTIFY PACKET DEVICE as an ATAPI device.
fn cd_present(hx: &mut Hx) -> bool {
    let mut raw = [0u8; 512];
    let tf = TaskFile::plain(CD, 0, 0);
    let ok = pio::data_in(
        &hx.ctx.ch,
        &tf,
        IDENTIFY_PACKET_DEVICE,
        pio::Width::Bits16,
        1,
        &mut raw,
    )
    .is_ok();
    let _ = hx.ctx.ch.status();
    ok && Identify::from_bytes(&raw).word(0) >> 14 == 2
}

/// Whether `data` is the image from block `lba`.
fn is_image(data: &[u8], lba: u32) -> bool {
    data.iter().enumerate().all(|(i, b)| {
        let off = u64::from(lba) * BLOCK as u64 + i as u64;
        *b == stamp_byte(off / 512, CD_PATTERN, (off % 512) as usize)
    })
}

/// Reads block 0 by PIO: the drive still works.
fn cd_works(hx: &mut Hx) -> Result<bool, Fail> {
    let mut buf = [0u8; BLOCK];
    let _ = hx.ctx.ch.wait_not_busy("CD-ROM idle");
    let o = packet::pio(&hx.ctx.ch, CD, &read10(0, 1), 2048, &mut buf)?;
    Ok(o.good() && o.bytes == BLOCK && is_image(&buf, 0))
}

/// The verdict `v` if the drive still works afterwards, FAIL otherwise.
fn then_works(hx: &mut Hx, v: Verdict) -> CaseResult {
    if cd_works(hx)? {
        Ok(v)
    } else {
        fail!("the CD-ROM no longer reads block 0 correctly")
    }
}

macro_rules! need_cd {
    ($hx:expr) => {
        if !cd_present($hx) {
            return skip_case!("no CD-ROM on device 1 (run with the atapi test image)");
        }
    };
}

/// What a PIO READ that should be refused did.
fn refused(o: &PacketOutcome) -> Option<&'static str> {
    if o.bytes != 0 || o.status & status::ERR == 0 {
        return None;
    }
    if o.error & error::ABRT != 0 {
        Some("ABRT")
    } else {
        Some("CHECK CONDITION")
    }
}

/// PIO READ with a byte-count limit of 0.
pub fn atapi_limit_zero(hx: &mut Hx) -> CaseResult {
    need_cd!(hx);
    let mut buf = [0u8; BLOCK];
    let o = packet::pio(&hx.ctx.ch, CD, &read10(0, 1), 0, &mut buf)?;
    let v = match refused(&o) {
        Some(how) => Verdict::Reject(msg!("limit 0: {how}")),
        None if o.good() && is_image(&buf, 0) => Verdict::Pass(msg!("limit 0: data anyway")),
        None => return fail!("limit 0: status {:#04x}, {} bytes", o.status, o.bytes),
    };
    then_works(hx, v)
}

/// INQUIRY (36 bytes) by PIO with a byte-count limit of 1: no even block
/// size exists.
pub fn atapi_limit_one(hx: &mut Hx) -> CaseResult {
    need_cd!(hx);
    let mut buf = [0u8; 64];
    let o = packet::pio(
        &hx.ctx.ch,
        CD,
        &[0x12, 0, 0, 0, 36, 0, 0, 0, 0, 0, 0, 0],
        1,
        &mut buf,
    )?;
    let v = match refused(&o) {
        Some(how) => Verdict::Reject(msg!("limit 1: {how}")),
        None if o.good() && o.bytes == 36 && o.largest <= 1 => {
            Verdict::Pass(msg!("limit 1: 36 one-byte blocks"))
        }
        None if o.status & status::DRQ != 0 => {
            return fail!("limit 1: DRQ still set after {} blocks", o.blocks);
        }
        None => {
            return fail!(
                "limit 1: status {:#04x}, {} bytes in blocks up to {}",
                o.status,
                o.bytes,
                o.largest
            );
        }
    };
    then_works(hx, v)
}

/// PIO READ of 3 blocks with an odd limit (2049): even blocks, the data
/// intact.
pub fn atapi_limit_odd(hx: &mut Hx) -> CaseResult {
    need_cd!(hx);
    let buf = hx.ctx.stage.bytes.get_mut(..3 * BLOCK).unwrap_or(&mut []);
    let o = packet::pio(&hx.ctx.ch, CD, &read10(4, 3), 2049, buf)?;
    if !o.good() || o.bytes != 3 * BLOCK {
        return fail!("odd limit: status {:#04x}, {} bytes", o.status, o.bytes);
    }
    if o.odd_inner_block || o.largest > 2049 {
        return fail!(
            "odd limit: blocks up to {} bytes, odd inner block {}",
            o.largest,
            o.odd_inner_block
        );
    }
    if !is_image(hx.ctx.stage.bytes.get(..3 * BLOCK).unwrap_or(&[]), 4) {
        return fail!("odd limit: wrong data");
    }
    then_works(
        hx,
        Verdict::Pass(msg!("odd limit: even blocks, data intact")),
    )
}

/// READ(10) of 2 blocks from the last one.
pub fn atapi_read_past_end(hx: &mut Hx) -> CaseResult {
    need_cd!(hx);
    let last = u32::try_from(CD_TEST_BLOCKS - 1).unwrap_or(0);
    let o = packet::pio(&hx.ctx.ch, CD, &read10(last, 2), 2048, &mut [])?;
    let v = match refused(&o) {
        Some(how) => Verdict::Reject(msg!("past the end: {how}, sense key {}", o.error >> 4)),
        None => return fail!("past the end: status {:#04x}, {} bytes", o.status, o.bytes),
    };
    then_works(hx, v)
}

/// READ(12) whose LBA + length wraps 32 bits (LBA 2, 0xFFFFFFFF blocks)
/// and whose LBA is the largest.
pub fn atapi_read12_wraps(hx: &mut Hx) -> CaseResult {
    need_cd!(hx);
    let mut hows = [""; 2];
    for (how, c) in hows
        .iter_mut()
        .zip([read12(2, u32::MAX), read12(u32::MAX, u32::MAX)])
    {
        let o = packet::pio(&hx.ctx.ch, CD, &c, 2048, &mut [])?;
        *how = match refused(&o) {
            Some(h) => h,
            None if o.good() && o.bytes == 0 => "empty success",
            None => {
                return fail!(
                    "READ(12) wrapping: status {:#04x}, {} bytes",
                    o.status,
                    o.bytes
                );
            }
        };
    }
    let v = if hows.iter().all(|h| *h != "empty success") {
        Verdict::Reject(msg!("wrapping lengths: {} / {}", hows[0], hows[1]))
    } else {
        Verdict::Pass(msg!("wrapping lengths: {} / {}", hows[0], hows[1]))
    };
    then_works(hx, v)
}

/// A second PACKET while the first waits for its packet: ignored; the
/// first completes with the right data.
pub fn atapi_packet_while_drq(hx: &mut Hx) -> CaseResult {
    need_cd!(hx);
    let ch = &hx.ctx.ch;
    ch.select(CD)?;
    ch.write(reg::ERROR_FEATURES, 0);
    ch.write(reg::LBA_MID, 0);
    ch.write(reg::LBA_HIGH, 8);
    ch.command(PACKET);
    let st = ch.wait_not_busy("DRQ for the packet")?;
    if st & status::DRQ == 0 {
        return fail!("PACKET: status {st:#04x}");
    }
    ch.command(PACKET);
    let mut buf = [0u8; BLOCK];
    io::outsw(ch.data_port(), &read10(1, 1));
    let st = ch.wait_not_busy("the READ's data")?;
    if st & status::DRQ == 0 {
        let e = ch.error();
        let _ = ch.status();
        return then_works(
            hx,
            Verdict::Reject(msg!("second PACKET: status {st:#04x} error {e:#04x}")),
        );
    }
    io::insw(ch.data_port(), &mut buf);
    let st = ch.wait_not_busy("status")?;
    let _ = ch.status();
    if st & (status::ERR | status::DRQ) != 0 || !is_image(&buf, 1) {
        return fail!("the first packet's READ: status {st:#04x}");
    }
    then_works(
        hx,
        Verdict::Pass(msg!("second PACKET ignored; the first read block 1")),
    )
}

/// PACKET, then 10 of the 12 packet bytes: the drive waits (DRQ); DEVICE
/// RESET gets it out.
pub fn atapi_short_packet(hx: &mut Hx) -> CaseResult {
    need_cd!(hx);
    let ch = &hx.ctx.ch;
    ch.select(CD)?;
    ch.write(reg::LBA_MID, 0);
    ch.write(reg::LBA_HIGH, 8);
    ch.command(PACKET);
    let _ = ch.wait_not_busy("DRQ for the packet")?;
    io::outsw(ch.data_port(), &read10(0, 1)[..10]);
    let waiting = ch.alt_status();
    ch.command(0x08); // DEVICE RESET
    let st = ch.wait_not_busy("DEVICE RESET")?;
    let _ = ch.status();
    let v = if waiting & status::DRQ != 0 && st & status::DRQ == 0 {
        Verdict::Pass(msg!("waited with DRQ; DEVICE RESET ended it"))
    } else {
        return fail!("10 packet bytes: status {waiting:#04x}, after DEVICE RESET {st:#04x}");
    };
    then_works(hx, v)
}

/// SRST after 6 packet bytes.
pub fn atapi_srst_mid_packet(hx: &mut Hx) -> CaseResult {
    need_cd!(hx);
    let ch = &hx.ctx.ch;
    ch.select(CD)?;
    ch.write(reg::LBA_MID, 0);
    ch.write(reg::LBA_HIGH, 8);
    ch.command(PACKET);
    let _ = ch.wait_not_busy("DRQ for the packet")?;
    io::outsw(ch.data_port(), &read10(0, 1)[..6]);
    ch.soft_reset()?;
    ch.write(reg::DEVICE, 0xB0);
    let _ = ch.wait_not_busy("after SRST")?;
    let sig = (ch.read(reg::LBA_MID), ch.read(reg::LBA_HIGH));
    if sig != (0x14, 0xEB) {
        return fail!("signature after SRST {:#04x}/{:#04x}", sig.0, sig.1);
    }
    then_works(
        hx,
        Verdict::Pass(msg!("SRST mid-packet: signature, drive works")),
    )
}

/// SRST in the middle of a PIO READ's first block.
pub fn atapi_srst_mid_data(hx: &mut Hx) -> CaseResult {
    need_cd!(hx);
    let ch = &hx.ctx.ch;
    ch.select(CD)?;
    ch.write(reg::LBA_MID, 0);
    ch.write(reg::LBA_HIGH, 8);
    ch.command(PACKET);
    let _ = ch.wait_not_busy("DRQ for the packet")?;
    io::outsw(ch.data_port(), &read10(0, 4));
    let st = ch.wait_not_busy("data")?;
    if st & status::DRQ == 0 {
        return fail!("READ: no data (status {st:#04x})");
    }
    let mut half = [0u8; 1024];
    io::insw(ch.data_port(), &mut half);
    let normal = ch.devctl();
    ch.set_devctl(normal | devctl::SRST);
    let _ = ch.alt_status();
    ch.set_devctl(normal);
    let st = ch.wait_not_busy("after SRST")?;
    let _ = ch.status();
    if st & status::DRQ != 0 {
        return fail!("DRQ after SRST (status {st:#04x})");
    }
    then_works(
        hx,
        Verdict::Pass(msg!("SRST mid-data: phase ended, drive works")),
    )
}
