//! The ATAPI suite (`suite=atapi`): a CD-ROM drive on device 1 whose medium
//! is the test image (`CD_TEST_BLOCKS` blocks stamped with `CD_PATTERN`),
//! driven with polled PACKET commands by PIO and DMA. The same results are
//! expected on QEMU (`-drive if=ide,index=1,media=cdrom`) and vmdma
//! (`--cdrom`).

use vmdma_guest::ata::identify::Identify;
use vmdma_guest::ata::regs::{cmd, error, reg, status};
use vmdma_guest::ata::taskfile::{Drive, TaskFile};
use vmdma_guest::prd::{Region, encode_table};
use vmdma_protocol::{CD_PATTERN, CD_TEST_BLOCKS, stamp_byte};

use super::{Ctx, Fail, PASS, TestResult};
use crate::arch::dma_memory::DATA_LEN;
use crate::ide::packet::{self, IDENTIFY_PACKET_DEVICE, PacketOutcome};
use crate::ide::pio;
use crate::{ensure, ensure_eq};

const CD: Drive = Drive::Slave;
const BLOCK: usize = 2048;

fn read10(lba: u32, blocks: u16) -> [u8; 12] {
    let [a, b, c, d] = lba.to_be_bytes();
    let [h, l] = blocks.to_be_bytes();
    [0x28, 0, a, b, c, d, 0, h, l, 0, 0, 0]
}

fn cdb(head: &[u8]) -> [u8; 12] {
    let mut c = [0u8; 12];
    for (d, s) in c.iter_mut().zip(head) {
        *d = *s;
    }
    c
}

/// Checks that `data` is `blocks` blocks of the image from block `lba`.
fn check_image(data: &[u8], lba: u32) -> Result<(), Fail> {
    for (i, b) in data.iter().enumerate() {
        let off = u64::from(lba) * BLOCK as u64 + i as u64;
        let want = stamp_byte(off / 512, CD_PATTERN, (off % 512) as usize);
        ensure!(
            *b == want,
            "image byte {off}: got {b:#04x}, want {want:#04x}"
        );
    }
    Ok(())
}

fn expect_good(what: &str, o: &PacketOutcome) -> Result<(), Fail> {
    ensure!(
        o.good(),
        "{what}: status {:#04x} error {:#04x} reason {:#04x}",
        o.status,
        o.error,
        o.reason
    );
    Ok(())
}

/// Runs a data command by PIO with the largest limit into the staging
/// buffer; returns the reply length.
fn reply(ctx: &mut Ctx, c: [u8; 12]) -> Result<usize, Fail> {
    let o = packet::pio(&ctx.ch, CD, &c, 0xFFFE, &mut ctx.stage.bytes)?;
    expect_good("reply", &o)?;
    Ok(o.bytes)
}

/// REQUEST SENSE: (key, ASC).
fn sense(ctx: &mut Ctx) -> Result<(u8, u8), Fail> {
    let mut buf = [0u8; 18];
    let o = packet::pio(&ctx.ch, CD, &cdb(&[0x03, 0, 0, 0, 18]), 18, &mut buf)?;
    expect_good("REQUEST SENSE", &o)?;
    Ok((buf[2] & 0x0F, buf[12]))
}

/// After SRST the CD-ROM shows the ATAPI signature.
pub fn signature(ctx: &mut Ctx) -> TestResult {
    ctx.ch.soft_reset()?;
    ctx.ch.write(reg::DEVICE, 0xB0);
    let _ = ctx.ch.alt_status();
    ctx.ch.wait_not_busy("CD-ROM after SRST")?;
    let sig = [
        ctx.ch.read(reg::COUNT),
        ctx.ch.read(reg::LBA_LOW),
        ctx.ch.read(reg::LBA_MID),
        ctx.ch.read(reg::LBA_HIGH),
    ];
    ensure!(
        sig == [1, 1, 0x14, 0xEB],
        "signature {sig:02x?}, want 01 01 14 eb"
    );
    ensure_eq!(ctx.ch.error(), error::DIAG_PASSED, "diagnostic code");
    PASS
}

/// IDENTIFY DEVICE to the CD-ROM aborts and leaves the signature.
pub fn identify_device_aborts(ctx: &mut Ctx) -> TestResult {
    let tf = TaskFile::plain(CD, 0, 0);
    ctx.ch.issue(&tf, cmd::IDENTIFY)?;
    let st = ctx.ch.wait_not_busy("IDENTIFY DEVICE to ATAPI")?;
    ensure!(st & status::ERR != 0, "status {st:#04x}: not aborted");
    ensure_eq!(ctx.ch.error() & error::ABRT, error::ABRT, "Error ABRT");
    ensure_eq!(ctx.ch.read(reg::LBA_MID), 0x14, "LBA mid");
    ensure_eq!(ctx.ch.read(reg::LBA_HIGH), 0xEB, "LBA high");
    let _ = ctx.ch.status();
    PASS
}

/// IDENTIFY PACKET DEVICE: an ATAPI CD-ROM with 12-byte packets.
pub fn identify_packet(ctx: &mut Ctx) -> TestResult {
    let mut raw = [0u8; 512];
    let tf = TaskFile::plain(CD, 0, 0);
    pio::data_in(
        &ctx.ch,
        &tf,
        IDENTIFY_PACKET_DEVICE,
        pio::Width::Bits16,
        1,
        &mut raw,
    )?;
    let id = Identify::from_bytes(&raw);
    let w0 = id.word(0);
    ensure_eq!(w0 >> 14, 2, "word 0 bits 15:14 (ATAPI)");
    ensure_eq!((w0 >> 8) & 0x1F, 5, "word 0 command set (CD-ROM)");
    ensure_eq!(w0 & 0x80, 0x80, "word 0 removable");
    ensure_eq!(w0 & 3, 0, "word 0 packet size (12 bytes)");
    ensure_eq!(id.word(49) & 0x0300, 0x0300, "word 49 LBA and DMA");
    PASS
}

/// TEST UNIT READY with the medium in.
pub fn test_unit_ready(ctx: &mut Ctx) -> TestResult {
    let o = packet::pio(&ctx.ch, CD, &cdb(&[0x00]), 0, &mut [])?;
    expect_good("TEST UNIT READY", &o)?;
    ensure_eq!(o.bytes, 0, "no data");
    PASS
}

/// INQUIRY: a removable CD/DVD device.
pub fn inquiry(ctx: &mut Ctx) -> TestResult {
    let n = reply(ctx, cdb(&[0x12, 0, 0, 0, 36]))?;
    ensure_eq!(n, 36, "INQUIRY length");
    let b = &ctx.stage.bytes;
    ensure_eq!(b[0] & 0x1F, 5, "peripheral type");
    ensure_eq!(b[1] & 0x80, 0x80, "removable");
    // An even allocation length: QEMU cannot end an odd last DRQ block
    // with 16-bit reads (it stays DRQ); vmdma can (core unit tests).
    let n = reply(ctx, cdb(&[0x12, 0, 0, 0, 6]))?;
    ensure_eq!(n, 6, "allocation length honoured");
    PASS
}

/// READ CAPACITY: the image's last block, 2048-byte blocks.
pub fn read_capacity(ctx: &mut Ctx) -> TestResult {
    let n = reply(ctx, cdb(&[0x25]))?;
    ensure_eq!(n, 8, "READ CAPACITY length");
    let b = &ctx.stage.bytes;
    let last = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let size = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
    ensure_eq!(u64::from(last), CD_TEST_BLOCKS - 1, "last block");
    ensure_eq!(size, 2048, "block size");
    PASS
}

/// PIO READ(10) with several byte-count limits: the data is the image,
/// every DRQ block is at most the limit, only the last may be odd.
pub fn pio_read_limits(ctx: &mut Ctx) -> TestResult {
    for (lba, blocks, limit) in [
        (0u32, 1u16, 2048u16),
        (3, 5, 5120),
        (7, 3, 2049),
        (11, 2, 1000),
        (20, 4, 0xFFFE),
        (30, 1, 6),
    ] {
        let len = usize::from(blocks) * BLOCK;
        let buf = ctx.stage.bytes.get_mut(..len).unwrap_or(&mut []);
        buf.fill(0);
        let o = packet::pio(&ctx.ch, CD, &read10(lba, blocks), limit, buf)?;
        expect_good("PIO READ(10)", &o)?;
        ensure_eq!(o.bytes, len, "bytes offered");
        ensure!(
            o.largest <= limit,
            "limit {limit}: a block of {} bytes",
            o.largest
        );
        ensure!(
            !o.odd_inner_block,
            "limit {limit}: an odd block before the last"
        );
        check_image(ctx.stage.bytes.get(..len).unwrap_or(&[]), lba)?;
    }
    PASS
}

/// A byte-count limit of 0 aborts a PIO data command (ABRT, not CHECK
/// CONDITION), and the drive works afterwards.
pub fn pio_limit_zero(ctx: &mut Ctx) -> TestResult {
    let o = packet::pio(&ctx.ch, CD, &read10(0, 1), 0, &mut [])?;
    ensure!(o.status & status::ERR != 0, "status {:#04x}", o.status);
    ensure_eq!(o.error & error::ABRT, error::ABRT, "Error ABRT");
    ensure_eq!(o.bytes, 0, "no data");
    test_unit_ready(ctx)
}

/// DMA READ(10) of 4 blocks through PRDs of odd (even-byte) sizes.
pub fn dma_read_odd_prds(ctx: &mut Ctx) -> TestResult {
    let sizes = [1000u32, 2, 3094, 4096];
    let total: usize = 4 * BLOCK;
    ensure!(total <= DATA_LEN, "buffer");
    ctx.mem.data.get_mut(..total).unwrap_or(&mut []).fill(0xEE);
    let mut regions = [Region { addr: 0, len: 0 }; 4];
    let mut off = 0usize;
    for (r, len) in regions.iter_mut().zip(sizes) {
        let addr = ctx
            .mem
            .data_phys(off)
            .ok_or(Fail(vmdma_guest::msg!("buffer address")))?;
        *r = Region { addr, len };
        off += len as usize;
    }
    let prd = ctx
        .mem
        .prd_phys()
        .ok_or(Fail(vmdma_guest::msg!("PRD address")))?;
    encode_table(&regions, &mut ctx.mem.prd).map_err(|e| Fail(vmdma_guest::msg!("{e}")))?;
    let o = packet::dma(&ctx.ch, CD, &read10(9, 4), prd)?;
    expect_good("DMA READ(10)", &o)?;
    check_image(ctx.mem.data.get(..total).unwrap_or(&[]), 9)?;
    PASS
}

/// READ past the end: CHECK CONDITION, sense ILLEGAL REQUEST / LBA out of
/// range; READ CAPACITY still works.
pub fn sense_bad_lba(ctx: &mut Ctx) -> TestResult {
    let end = u32::try_from(CD_TEST_BLOCKS).unwrap_or(u32::MAX);
    for c in [read10(end, 1), read10(end - 1, 2)] {
        let o = packet::pio(&ctx.ch, CD, &c, 2048, &mut [])?;
        ensure!(o.status & status::ERR != 0, "status {:#04x}", o.status);
        ensure_eq!(o.error >> 4, 5, "sense key in Error");
        ensure_eq!(o.bytes, 0, "no data");
        let (key, asc) = sense(ctx)?;
        ensure!(
            (key, asc) == (5, 0x21),
            "sense {key:#x}/{asc:#04x}, want 5/0x21"
        );
    }
    read_capacity(ctx)
}

/// An opcode the drive does not implement: ILLEGAL REQUEST, invalid
/// command operation code.
pub fn unknown_opcode(ctx: &mut Ctx) -> TestResult {
    let o = packet::pio(&ctx.ch, CD, &cdb(&[0xFF]), 2048, &mut [])?;
    ensure!(o.status & status::ERR != 0, "status {:#04x}", o.status);
    let (key, asc) = sense(ctx)?;
    ensure!(
        (key, asc) == (5, 0x20),
        "sense {key:#x}/{asc:#04x}, want 5/0x20"
    );
    PASS
}

/// READ TOC format 0: one track and the lead-out at the image's end.
pub fn read_toc(ctx: &mut Ctx) -> TestResult {
    let n = reply(ctx, cdb(&[0x43, 0, 0, 0, 0, 0, 0, 0, 100]))?;
    ensure_eq!(n, 20, "TOC length");
    let b = &ctx.stage.bytes;
    ensure!(
        (b[2], b[3]) == (1, 1),
        "tracks {}..{}, want 1..1",
        b[2],
        b[3]
    );
    ensure_eq!(b[14], 0xAA, "lead-out track");
    let lead_out = u32::from_be_bytes([b[16], b[17], b[18], b[19]]);
    ensure_eq!(u64::from(lead_out), CD_TEST_BLOCKS, "lead-out address");
    PASS
}

/// Bytes of a file the seed test prints at most.
const SEED_FILE_MAX: usize = 1024;

/// A NoCloud seed ISO on the CD-ROM: the ISO 9660 primary volume
/// descriptor at block 16 (read by PIO) has the label `cidata`; the root
/// directory and the first regular file in it are read by DMA, and the
/// file is printed as `iso-file NAME SIZE` and `iso-data HEX` lines for
/// the host to compare.
pub fn nocloud_seed(ctx: &mut Ctx) -> TestResult {
    let mut pvd = [0u8; BLOCK];
    let o = packet::pio(&ctx.ch, CD, &read10(16, 1), 2048, &mut pvd)?;
    expect_good("READ(10) of block 16", &o)?;
    ensure!(
        pvd[0] == 1 && &pvd[1..6] == b"CD001",
        "no primary volume descriptor at block 16"
    );
    let label = pvd.get(40..72).unwrap_or(&[]);
    let label_len = label.iter().rposition(|b| *b != b' ').map_or(0, |i| i + 1);
    ensure!(
        label.get(..label_len) == Some(b"cidata".as_slice()),
        "volume label is not cidata"
    );
    let le32 = |b: &[u8], i: usize| {
        u32::from_le_bytes([
            b.get(i).copied().unwrap_or(0),
            b.get(i + 1).copied().unwrap_or(0),
            b.get(i + 2).copied().unwrap_or(0),
            b.get(i + 3).copied().unwrap_or(0),
        ])
    };
    // The root directory record at offset 156: extent at +2, size at +10.
    let root = le32(&pvd, 156 + 2);
    dma_block(ctx, root)?;
    let dir: [u8; BLOCK] = {
        let mut d = [0u8; BLOCK];
        d.copy_from_slice(ctx.mem.data.get(..BLOCK).unwrap_or(&[0; BLOCK]));
        d
    };
    let mut at = 0usize;
    let mut found = None;
    while at + 33 < BLOCK {
        let at_byte = |i: usize| dir.get(i).copied().unwrap_or(0);
        let len = usize::from(at_byte(at));
        if len == 0 {
            break;
        }
        let flags = at_byte(at + 25);
        let name_len = usize::from(at_byte(at + 32));
        let name = dir.get(at + 33..at + 33 + name_len).unwrap_or(&[]);
        let special = name == [0] || name == [1];
        if !special && flags & 0x02 == 0 {
            found = Some((le32(&dir, at + 2), le32(&dir, at + 10), at + 33, name_len));
            break;
        }
        at += len;
    }
    let Some((extent, size, name_at, name_len)) = found else {
        return Err(Fail(vmdma_guest::msg!("no file in the root directory")));
    };
    let name =
        core::str::from_utf8(dir.get(name_at..name_at + name_len).unwrap_or(&[])).unwrap_or("?");
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    ensure!(
        size <= SEED_FILE_MAX,
        "file {name} has {size} bytes (at most {SEED_FILE_MAX})"
    );
    dma_block(ctx, extent)?;
    crate::println!("iso-file {name} {size}");
    crate::print!("iso-data ");
    for b in ctx.mem.data.get(..size).unwrap_or(&[]) {
        crate::print!("{b:02x}");
    }
    crate::println!();
    PASS
}

/// One block into the start of the DMA buffer by DMA (one PRD).
fn dma_block(ctx: &mut Ctx, lba: u32) -> Result<(), Fail> {
    let addr = ctx
        .mem
        .data_phys(0)
        .ok_or(Fail(vmdma_guest::msg!("buffer address")))?;
    let prd = ctx
        .mem
        .prd_phys()
        .ok_or(Fail(vmdma_guest::msg!("PRD address")))?;
    encode_table(
        &[Region {
            addr,
            len: BLOCK as u32,
        }],
        &mut ctx.mem.prd,
    )
    .map_err(|e| Fail(vmdma_guest::msg!("{e}")))?;
    let o = packet::dma(&ctx.ch, CD, &read10(lba, 1), prd)?;
    expect_good("DMA READ(10)", &o)
}

/// GESN polls the tray test makes at most per step.
const TRAY_POLLS: u32 = 200_000;

/// GESN (media class): (event code, media status).
fn gesn(ctx: &mut Ctx) -> Result<(u8, u8), Fail> {
    let mut b = [0u8; 8];
    let c = cdb(&[0x4A, 1, 0, 0, 0x10, 0, 0, 0, 8]);
    let o = packet::pio(&ctx.ch, CD, &c, 8, &mut b)?;
    expect_good("GESN", &o)?;
    Ok((b[4], b[5]))
}

/// Polls GESN until `done(code, status)`.
fn wait_gesn(ctx: &mut Ctx, what: &str, done: fn(u8, u8) -> bool) -> Result<(), Fail> {
    for _ in 0..TRAY_POLLS {
        let (code, st) = gesn(ctx)?;
        if done(code, st) {
            return Ok(());
        }
    }
    Err(Fail(vmdma_guest::msg!(
        "no {what} within {TRAY_POLLS} GESN polls"
    )))
}

/// PREVENT ALLOW MEDIUM REMOVAL.
fn prevent(ctx: &mut Ctx, lock: bool) -> Result<(), Fail> {
    let o = packet::pio(
        &ctx.ch,
        CD,
        &cdb(&[0x1E, 0, 0, 0, u8::from(lock)]),
        0,
        &mut [],
    )?;
    expect_good("PREVENT ALLOW MEDIUM REMOVAL", &o)
}

/// TEST UNIT READY: (Status, Error).
fn tur(ctx: &mut Ctx) -> Result<(u8, u8), Fail> {
    let o = packet::pio(&ctx.ch, CD, &cdb(&[0x00]), 0, &mut [])?;
    Ok((o.status, o.error))
}

/// The host's tray, driven through QMP: the guest locks the tray; an eject
/// without force must come as a GESN eject request, which the guest
/// honours by unlocking; the host then opens the tray (no medium) and
/// closes it again, which the guest sees as a media change (NOT READY,
/// UNIT ATTENTION 28h until REQUEST SENSE, GESN new media); the medium
/// reads as before.
pub fn host_tray(ctx: &mut Ctx) -> TestResult {
    let mut block = [0u8; BLOCK];
    let o = packet::pio(&ctx.ch, CD, &read10(0, 1), 2048, &mut block)?;
    expect_good("READ(10)", &o)?;
    check_image(&block, 0)?;
    prevent(ctx, true)?;
    crate::println!("atapi-tray: locked");
    wait_gesn(ctx, "eject request", |code, _| code == 1)?;
    prevent(ctx, false)?;
    crate::println!("atapi-tray: eject requested, unlocked");
    wait_gesn(ctx, "open tray", |_, st| st & 1 != 0)?;
    let (st, err) = tur(ctx)?;
    ensure!(
        st & status::ERR != 0 && err >> 4 == 2,
        "tray open: TUR status {st:#04x} error {err:#04x}"
    );
    wait_gesn(ctx, "new medium", |code, _| code == 2)?;
    let (st, err) = tur(ctx)?;
    ensure!(
        st & status::ERR != 0 && err >> 4 == 2,
        "first TUR after the change: {st:#04x}/{err:#04x}"
    );
    let (st, err) = tur(ctx)?;
    ensure!(
        st & status::ERR != 0 && err >> 4 == 6,
        "second TUR after the change: {st:#04x}/{err:#04x}"
    );
    let (st, err) = tur(ctx)?;
    ensure!(
        st & status::ERR != 0 && err >> 4 == 6,
        "unit attention pending: {st:#04x}/{err:#04x}"
    );
    let (key, asc) = sense(ctx)?;
    ensure!(
        (key, asc) == (6, 0x28),
        "sense {key:#x}/{asc:#04x}, want 6/0x28"
    );
    let (st, _) = tur(ctx)?;
    ensure!(st & status::ERR == 0, "TUR after REQUEST SENSE: {st:#04x}");
    let o = packet::pio(&ctx.ch, CD, &read10(0, 1), 2048, &mut block)?;
    expect_good("READ(10) after the change", &o)?;
    check_image(&block, 0)?;
    PASS
}
