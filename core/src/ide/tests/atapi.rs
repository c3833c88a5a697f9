//! The ATAPI CD-ROM (feature `atapi`): signature, the ATA commands it
//! accepts, PACKET by PIO (byte-count limits, interrupt reasons, odd and
//! zero limits) and by DMA, the MMC commands, sense data, unit attention
//! after a media change, the empty drive, and the guest cutting a packet
//! short.

use std::vec;
use std::vec::Vec;

use super::harness::*;
use crate::block::{BlockDevice, MemDisk};
use crate::ide::{MediaError, Unit, opcode};

const PACKET: u8 = 0xA0;
const IDENTIFY_PACKET: u8 = 0xA1;
const DEVICE_RESET: u8 = 0x08;

/// A medium of `blocks` CD blocks filled with [`disk_byte`].
fn medium(blocks: usize) -> Vec<u8> {
    disk_image(blocks * 4)
}

fn read10(lba: u32, n: u16) -> [u8; 12] {
    let l = lba.to_be_bytes();
    let c = n.to_be_bytes();
    [0x28, 0, l[0], l[1], l[2], l[3], 0, c[0], c[1], 0, 0, 0]
}

fn cdb(bytes: &[u8]) -> [u8; 12] {
    let mut c = [0u8; 12];
    c[..bytes.len()].copy_from_slice(bytes);
    c
}

impl<'a, B: BlockDevice<'a>, const N: usize> Rig<'a, B, N> {
    fn bcl(&mut self) -> u16 {
        u16::from_le_bytes([self.inb(LBAM), self.inb(LBAH)])
    }

    /// PACKET (PIO unless `dma`) with byte-count limit `limit`, then the
    /// packet as six 16-bit writes.
    fn packet(&mut self, c: [u8; 12], limit: u16, dma: bool) {
        self.outb(DEVICE, 0x00);
        self.outb(FEATURES, u8::from(dma));
        self.outb(LBAM, limit.to_le_bytes()[0]);
        self.outb(LBAH, limit.to_le_bytes()[1]);
        let raises = self.irq.raises();
        self.command(PACKET);
        assert_eq!(self.alt_status(), ST_DRQ, "DRQ for the packet");
        assert_eq!(self.inb(NSECT) & 7, 1, "interrupt reason: command");
        assert_eq!(self.irq.raises(), raises, "no IRQ before the packet");
        for w in c.chunks(2) {
            self.outw(DATA, u16::from_le_bytes([w[0], w[1]]));
        }
    }

    /// Reads the PIO data phase to its end: the sizes of the DRQ blocks
    /// and the bytes.
    fn data_in(&mut self) -> (Vec<u16>, Vec<u8>) {
        let mut sizes = vec![];
        let mut data = vec![];
        for _ in 0..1000 {
            assert!(self.irq.level(), "IRQ before each block and at the end");
            let st = self.status();
            if st & 0x08 == 0 {
                break;
            }
            assert_eq!(st, ST_DRQ);
            assert_eq!(self.inb(NSECT) & 7, 2, "interrupt reason: data in");
            let n = self.bcl();
            sizes.push(n);
            for _ in 0..usize::from(n).div_ceil(2) {
                data.extend_from_slice(&self.inw(DATA).to_le_bytes());
            }
            data.truncate(data.len() - usize::from(n) % 2);
        }
        (sizes, data)
    }

    /// The command ended well: Status 0x50, interrupt reason 3.
    fn good(&mut self) {
        assert_eq!(self.alt_status(), ST_READY);
        assert_eq!(self.inb(NSECT) & 7, 3, "interrupt reason: status");
        assert_eq!(self.error(), 0);
    }

    /// The command ended with CHECK CONDITION and this sense.
    fn check(&mut self, key: u8, asc: u8) {
        assert!(self.irq.level());
        assert_eq!(self.status(), ST_ERR, "CHECK CONDITION");
        assert_eq!(self.error(), key << 4);
        assert_eq!(self.inb(NSECT) & 7, 3);
        assert_eq!(self.sense(), (key, asc));
    }

    /// CHECK CONDITION with sense key `key`, sense not read.
    fn check_no_sense_read(&mut self, key: u8) {
        assert_eq!((self.status(), self.error()), (ST_ERR, key << 4));
    }

    fn sense(&mut self) -> (u8, u8) {
        self.packet(cdb(&[0x03, 0, 0, 0, 18]), 18, false);
        let (_, d) = self.data_in();
        self.good();
        (d[2], d[12])
    }

    /// A command without data that must succeed.
    fn ok(&mut self, c: [u8; 12]) {
        self.packet(c, 0, false);
        assert!(self.irq.level());
        assert_eq!(self.status(), ST_READY);
        assert_eq!(self.inb(NSECT) & 7, 3);
    }

    fn reply(&mut self, c: [u8; 12]) -> Vec<u8> {
        self.packet(c, 0xFFFE, false);
        let (_, d) = self.data_in();
        self.good();
        d
    }
}

fn with_cd<R>(blocks: usize, f: impl FnOnce(&mut Rig<'_, MemDisk<'_>, 256>) -> R) -> R {
    let mut img = medium(blocks);
    with_cdrom(MemDisk::new(&mut img, true), None, f)
}

fn signature<'a, B: BlockDevice<'a>, const N: usize>(r: &mut Rig<'a, B, N>) -> [u8; 4] {
    [r.inb(NSECT), r.inb(LBAL), r.inb(LBAM), r.inb(LBAH)]
}

#[test]
fn signature_after_power_on_srst_and_diagnostic() {
    with_cd(16, |r| {
        assert_eq!(signature(r), [1, 1, 0x14, 0xEB]);
        assert_eq!(r.status(), ST_READY);
        r.outb(CTRL, 0x04);
        r.outb(CTRL, 0x00);
        assert_eq!(signature(r), [1, 1, 0x14, 0xEB]);
        assert_eq!(
            (r.alt_status(), r.error()),
            (0x00, 0x01),
            "DRDY clear after SRST"
        );
        r.status();
        let raises = r.irq.raises();
        r.outb(LBAM, 0x55);
        r.command(opcode::EXECUTE_DEVICE_DIAGNOSTIC);
        assert_eq!(signature(r), [1, 1, 0x14, 0xEB]);
        assert_eq!((r.alt_status(), r.error()), (0x00, 0x01));
        assert_eq!(r.irq.raises(), raises, "no IRQ for an ATAPI diagnostic");
        assert_eq!(r.inb(DEVICE) & 0x10, 0);
    });
}

#[test]
fn identify_device_aborts_with_the_signature_and_identify_packet_works() {
    with_cd(16, |r| {
        r.outb(LBAM, 0);
        r.outb(LBAH, 0);
        r.command(opcode::IDENTIFY_DEVICE);
        assert!(r.irq.level());
        assert_eq!((r.status(), r.error()), (ST_ERR, 0x04));
        assert_eq!(signature(r)[2..], [0x14, 0xEB]);
        r.command(opcode::READ_SECTORS);
        assert_eq!((r.status(), r.error()), (ST_ERR, 0x04));
        for op in [
            opcode::READ_DMA,
            opcode::WRITE_SECTORS,
            opcode::CHECK_POWER_MODE,
            0x00,
        ] {
            r.command(op);
            assert_eq!((r.status(), r.error()), (ST_ERR, 0x04), "{op:#x} aborted");
        }
        let raises = r.irq.raises();
        r.command(IDENTIFY_PACKET);
        assert_eq!(r.irq.raises(), raises + 1);
        assert_eq!(r.status(), ST_DRQ);
        let w = r.read_words(256);
        assert_eq!(r.status(), ST_READY);
        assert_eq!(r.irq.raises(), raises + 1, "no IRQ after the data");
        assert_eq!(w[0], 0x85C0, "ATAPI, CD-ROM, removable, 12-byte packets");
        assert_eq!(w[49] & 0x0300, 0x0300, "LBA and DMA");
        assert_eq!(w[80], 0x001E);
    });
}

#[test]
fn disk_side_commands_to_an_ata_disk_do_not_know_packet() {
    with_disk(64, |r| {
        r.command(PACKET);
        assert_eq!((r.status(), r.error()), (ST_ERR, 0x04));
        r.command(IDENTIFY_PACKET);
        assert_eq!((r.status(), r.error()), (ST_ERR, 0x04));
    });
}

#[test]
fn pio_read_one_block() {
    with_cd(16, |r| {
        r.packet(read10(3, 1), 5120, false);
        let (sizes, data) = r.data_in();
        r.good();
        assert_eq!(sizes, [2048]);
        assert_eq!(data, image(12, 4));
    });
}

#[test]
fn pio_read_large_blocks_follow_the_byte_count_limit() {
    with_cd(16, |r| {
        r.packet(read10(0, 10), 5120, false);
        let (sizes, data) = r.data_in();
        r.good();
        assert_eq!(sizes, [5120; 4], "QEMU's cdrom/pio_large");
        assert_eq!(data, image(0, 40));
    });
}

#[test]
fn odd_limits_give_even_blocks_and_an_odd_tail() {
    with_cd(16, |r| {
        r.packet(read10(1, 2), 2049, false);
        let (sizes, data) = r.data_in();
        r.good();
        assert_eq!(sizes, [2048, 2048]);
        assert_eq!(data, image(4, 8));
        // INQUIRY with allocation length 7 and limit 3: even blocks,
        // then the odd last one (at most the limit).
        r.packet(cdb(&[0x12, 0, 0, 0, 7]), 3, false);
        let (sizes, data) = r.data_in();
        r.good();
        assert_eq!(sizes, [2, 2, 3]);
        assert_eq!(data, [0x05, 0x80, 0x00, 0x21, 31, 0, 0]);
    });
}

#[test]
fn a_limit_of_zero_aborts_pio_data_commands_only() {
    with_cd(16, |r| {
        r.packet(read10(0, 1), 0, false);
        assert!(r.irq.level());
        assert_eq!((r.status(), r.error()), (ST_ERR, 0x04));
        r.packet(cdb(&[0x12, 0, 0, 0, 36]), 1, false);
        assert_eq!((r.status(), r.error()), (ST_ERR, 0x04), "limit 1, 36 bytes");
        r.ok(cdb(&[0x00]));
    });
}

#[test]
fn dma_read_goes_through_the_bus_master() {
    with_cd(16, |r| {
        r.enable_pci();
        r.prds(PRD_TABLE, &[(0x10000, 1000, false), (0x20000, 3096, true)]);
        r.bm_ack();
        r.packet(read10(2, 2), 0, true);
        assert_eq!(r.alt_status(), ST_DRQ, "waits for the bus master");
        r.bm_cmd(0x09);
        assert!(r.irq.level());
        assert_eq!(r.bm_status(), 0x04);
        r.bm_cmd(0x00);
        r.good();
        assert_eq!(r.status(), ST_READY);
        assert!(!r.irq.level());
        let want = image(8, 8);
        assert_eq!(r.mem(0x10000, 1000), want[..1000]);
        assert_eq!(r.mem(0x20000, 3096), want[1000..]);
        assert_eq!(r.ide.stats().bytes_read, 4096);
    });
}

#[test]
fn dma_replies_are_copied_through_the_prds() {
    with_cd(16, |r| {
        r.enable_pci();
        r.prds(PRD_TABLE, &[(0x10000, 8, true)]);
        r.bm_cmd(0x08);
        r.bm_ack();
        r.packet(cdb(&[0x25]), 0, true);
        r.bm_cmd(0x09);
        assert_eq!(r.bm_status(), 0x04);
        r.bm_cmd(0);
        r.good();
        assert_eq!(r.mem(0x10000, 8), [0, 0, 0, 15, 0, 0, 8, 0]);
    });
}

#[test]
fn read_past_the_end_and_unknown_opcodes_give_sense() {
    with_cd(16, |r| {
        r.packet(read10(15, 2), 2048, false);
        r.check(5, 0x21);
        let mut c = read10(0, 1);
        c[0] = 0xA8; // READ(12): count in bytes 6-9
        c[6..10].copy_from_slice(&u32::MAX.to_be_bytes());
        c[7] = 0xFF;
        r.packet(c, 2048, false);
        r.check(5, 0x21);
        r.packet(read10(u32::MAX, 0xFFFF), 2048, false);
        r.check(5, 0x21);
        r.packet(cdb(&[0x42]), 100, false);
        r.check(5, 0x20);
        // Count 0: no data, no range check (a data command: limit != 0).
        r.packet(read10(20, 0), 2048, false);
        assert_eq!(r.status(), ST_READY);
        assert_eq!(r.inb(NSECT) & 7, 3);
    });
}

#[test]
fn capacity_toc_mode_sense_configuration_and_events() {
    with_cd(16, |r| {
        assert_eq!(r.reply(cdb(&[0x25])), [0, 0, 0, 15, 0, 0, 8, 0]);
        let toc = r.reply(cdb(&[0x43, 0, 0, 0, 0, 0, 0, 0, 100]));
        assert_eq!(toc.len(), 20);
        assert_eq!(&toc[..4], [0, 18, 1, 1]);
        assert_eq!(&toc[4..8], [0, 0x14, 1, 0]);
        assert_eq!(&toc[12..20], [0, 0x16, 0xAA, 0, 0, 0, 0, 16]);
        let toc = r.reply(cdb(&[0x43, 2, 0, 0, 0, 0, 0, 0, 100]));
        assert_eq!(&toc[8..12], [0, 0, 2, 0], "MSF of LBA 0");
        let s = r.reply(cdb(&[0x43, 0, 0, 0, 0, 0, 0, 0, 12, 0x40]));
        assert_eq!(s, [0, 10, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
        let m = r.reply(cdb(&[0x5A, 0, 0x2A, 0, 0, 0, 0, 0, 128]));
        assert_eq!((m.len(), m[8], m[9], m[14]), (30, 0x2A, 20, 0x29));
        r.packet(cdb(&[0x5A, 0, 0xFF, 0, 0, 0, 0, 0, 128]), 128, false);
        r.check(5, 0x39);
        let g = r.reply(cdb(&[0x46, 0, 0, 0, 0, 0, 0, 0, 32]));
        assert_eq!((g.len(), g[7]), (20, 0x08), "CD-ROM profile");
        let e = r.reply(cdb(&[0x4A, 1, 0, 0, 0x10, 0, 0, 0, 8]));
        assert_eq!(e, [0, 4, 4, 0x10, 0, 2, 0, 0]);
        let d = r.reply(cdb(&[0x51, 0, 0, 0, 0, 0, 0, 0, 34]));
        assert_eq!((d.len(), d[2]), (34, 0x0E));
        assert_eq!(r.reply(cdb(&[0xBD, 0, 0, 0, 0, 0, 0, 0, 0, 8]))[5], 1);
        let i = r.reply(cdb(&[0x12, 0, 0, 0, 36]));
        assert_eq!(&i[8..16], b"VMDMA   ");
    });
}

#[test]
fn tray_lock_and_eject() {
    with_cd(16, |r| {
        r.ok(cdb(&[0x1E, 0, 0, 0, 1]));
        r.packet(cdb(&[0x1B, 0, 0, 0, 0x02]), 0, false);
        r.check(2, 0x53);
        r.ok(cdb(&[0x1E, 0, 0, 0, 0]));
        r.ok(cdb(&[0x1B, 0, 0, 0, 0x02]));
        r.packet(cdb(&[0x00]), 0, false);
        r.check(2, 0x3A);
        r.ok(cdb(&[0x1B, 0, 0, 0, 0x03]));
        r.ok(cdb(&[0x00]));
    });
}

#[test]
fn empty_drive_is_not_ready_and_flush_aborts() {
    let mut none: [u8; 0] = [];
    with_cdrom(MemDisk::new(&mut none, true), None, |r| {
        r.packet(cdb(&[0x00]), 0, false);
        r.check(2, 0x3A);
        r.packet(read10(0, 1), 2048, false);
        r.check(2, 0x3A);
        let g = r.reply(cdb(&[0x46, 0, 0, 0, 0, 0, 0, 0, 32]));
        assert_eq!(&g[6..8], [0, 0], "no current profile");
        r.command(opcode::FLUSH_CACHE);
        assert!(r.irq.level());
        assert_eq!((r.status(), r.error()), (ST_ERR, 0x04));
    });
}

#[test]
fn media_change_reports_no_medium_then_unit_attention() {
    let mut first = medium(16);
    let mut second = medium(32);
    let mut third = medium(4);
    with_cdrom(MemDisk::new(&mut first, true), None, |r| {
        r.ok(cdb(&[0x00]));
        let old = r
            .ide
            .change_medium(Unit::Master, MemDisk::new(&mut second, true), false);
        assert!(old.is_ok());
        assert!(!r.irq.level(), "no interrupt without a command");
        r.packet(cdb(&[0x00]), 0, false);
        r.check(2, 0x3A);
        r.packet(cdb(&[0x00]), 0, false);
        r.check_no_sense_read(6);
        // The UA check status path: ERR only, interrupt reason 0.
        r.packet(cdb(&[0x25]), 8, false);
        assert_eq!(r.status(), 0x01);
        assert_eq!((r.error(), r.inb(NSECT)), (0x60, 0));
        let e = r.reply(cdb(&[0x4A, 1, 0, 0, 0x10, 0, 0, 0, 8]));
        assert_eq!(e[4], 2, "GESN: new media");
        assert_eq!(r.sense(), (6, 0x28), "REQUEST SENSE reports and clears it");
        assert_eq!(r.reply(cdb(&[0x25]))[..4], [0, 0, 0, 31]);
        // Locked: refused without force, with an eject request.
        r.ok(cdb(&[0x1E, 0, 0, 0, 1]));
        assert_eq!(
            r.ide
                .change_medium(Unit::Master, MemDisk::new(&mut third, true), false)
                .err(),
            Some(MediaError::Locked)
        );
        let e = r.reply(cdb(&[0x4A, 1, 0, 0, 0x10, 0, 0, 0, 8]));
        assert_eq!(e[4], 1, "GESN: eject requested");
    });
}

#[test]
fn a_media_change_lets_a_reply_finish_and_ends_a_read() {
    let mut first = medium(16);
    let mut second = medium(16);
    let mut third = medium(16);
    with_cdrom(MemDisk::new(&mut first, true), None, |r| {
        // INQUIRY's reply is in the buffer: it is read to its end.
        r.packet(cdb(&[0x12, 0, 0, 0, 36]), 0xFFFE, false);
        assert_eq!(r.alt_status(), ST_DRQ);
        assert!(
            r.ide
                .change_medium(Unit::Master, MemDisk::new(&mut second, true), false)
                .is_ok()
        );
        let (sizes, data) = r.data_in();
        assert_eq!((sizes, data.len()), (vec![36], 36));
        r.good();
        // The change itself: no medium, then unit attention (cleared).
        r.packet(cdb(&[0x00]), 0, false);
        r.check(2, 0x3A);
        r.packet(cdb(&[0x00]), 0, false);
        r.check_no_sense_read(6);
        assert_eq!(r.sense(), (6, 0x28));
        // A READ(10) of several blocks with a small limit: more of the old
        // medium would follow, so the change ends it.
        r.packet(read10(0, 4), 2048, false);
        assert_eq!(r.alt_status(), ST_DRQ);
        assert!(
            r.ide
                .change_medium(Unit::Master, MemDisk::new(&mut third, true), false)
                .is_ok()
        );
        assert_eq!(r.alt_status(), ST_READY, "the READ phase ended");
    });
}

#[test]
fn async_backend_pio_blocks_show_bsy() {
    with_deferred_cdrom(medium(8), |r| {
        r.packet(read10(0, 3), 5120, false);
        assert_eq!(r.alt_status(), 0xC0, "BSY while the block is read");
        assert!(!r.irq.level());
        r.complete(1);
        assert!(r.irq.level());
        assert_eq!((r.status(), r.bcl()), (ST_DRQ, 5120));
        let first: Vec<u8> = (0..2560).flat_map(|_| r.inw(DATA).to_le_bytes()).collect();
        assert_eq!(first, image(0, 10));
        assert_eq!(r.alt_status(), 0xC0);
        r.complete(1);
        assert_eq!((r.status(), r.bcl()), (ST_DRQ, 1024));
        let rest: Vec<u8> = (0..512).flat_map(|_| r.inw(DATA).to_le_bytes()).collect();
        assert_eq!(rest, image(10, 2));
        r.good();
    });
}

#[test]
fn device_reset_and_srst_end_a_packet_half_sent() {
    with_cd(16, |r| {
        r.outb(LBAM, 0);
        r.outb(LBAH, 8);
        r.command(PACKET);
        r.outw(DATA, 0x0028);
        assert_eq!(r.alt_status(), ST_DRQ);
        r.command(opcode::IDENTIFY_DEVICE);
        assert_eq!(r.alt_status(), ST_DRQ, "ignored while DRQ");
        r.command(DEVICE_RESET);
        assert_eq!((r.alt_status(), r.error()), (0, 0));
        assert_eq!(signature(r), [1, 1, 0x14, 0xEB]);
        r.outw(DATA, 0x0028); // no data phase: dropped
        r.ok(cdb(&[0x00]));
        r.outb(LBAM, 0);
        r.outb(LBAH, 8);
        r.command(PACKET);
        r.outw(DATA, 0x0028);
        r.outb(CTRL, 0x04);
        r.outb(CTRL, 0x00);
        assert_eq!((r.alt_status(), r.error()), (0, 1));
        r.ok(cdb(&[0x00]));
    });
}

#[test]
fn cdrom_and_disk_share_the_channel() {
    let mut img = medium(16);
    let mut disk = disk_image(64);
    with_cdrom(
        MemDisk::new(&mut img, true),
        Some(MemDisk::new(&mut disk, false)),
        |r| {
            r.outb(DEVICE, 0x10);
            assert_eq!(signature(r), [1, 1, 0, 0]);
            r.outb(DEVICE, 0x00);
            assert_eq!(signature(r), [1, 1, 0x14, 0xEB]);
            r.packet(read10(0, 1), 2048, false);
            let (_, data) = r.data_in();
            assert_eq!(data, image(0, 4));
        },
    );
}

#[test]
fn the_host_opens_the_tray_unless_locked() {
    with_cd(16, |r| {
        r.ok(cdb(&[0x1E, 0, 0, 0, 1]));
        let tray = r.ide.tray(Unit::Master).unwrap();
        assert!(tray.locked && !tray.open);
        assert_eq!(
            r.ide.open_tray(Unit::Master, false),
            Err(MediaError::Locked)
        );
        assert!(!r.irq.level(), "no interrupt without a command");
        let e = r.reply(cdb(&[0x4A, 1, 0, 0, 0x10, 0, 0, 0, 8]));
        assert_eq!(
            (e[4], e[5]),
            (1, 2),
            "GESN: eject requested, medium present"
        );
        r.ok(cdb(&[0x00]));
        assert_eq!(r.ide.open_tray(Unit::Master, true), Ok(()));
        let tray = r.ide.tray(Unit::Master).unwrap();
        assert!(tray.open && !tray.locked);
        r.packet(cdb(&[0x00]), 0, false);
        r.check(2, 0x3A);
        let e = r.reply(cdb(&[0x4A, 1, 0, 0, 0x10, 0, 0, 0, 8]));
        assert_eq!(e[5], 1, "GESN: tray open");
        assert_eq!(
            r.ide.open_tray(Unit::Slave, false),
            Err(MediaError::NotCdrom)
        );
    });
}

#[test]
fn closing_the_tray_is_a_media_change() {
    with_cd(16, |r| {
        assert_eq!(r.ide.close_tray(Unit::Master), Ok(()), "closed: nothing");
        assert!(!r.irq.level());
        r.ok(cdb(&[0x00]));
        r.ide.open_tray(Unit::Master, false).unwrap();
        r.ide.close_tray(Unit::Master).unwrap();
        assert!(!r.irq.level(), "no interrupt without a command");
        let e = r.reply(cdb(&[0x4A, 1, 0, 0, 0x10, 0, 0, 0, 8]));
        assert_eq!((e[4], e[5]), (2, 2), "GESN: new media, present");
        r.packet(cdb(&[0x00]), 0, false);
        r.check(2, 0x3A);
        r.packet(cdb(&[0x00]), 0, false);
        r.check_no_sense_read(6);
        assert_eq!(r.sense(), (6, 0x28));
        r.ok(cdb(&[0x00]));
    });
}

#[test]
fn device_reset_waits_for_the_block_in_flight_or_is_ignored() {
    with_deferred_cdrom(medium(8), |r| {
        r.packet(read10(0, 2), 2048, false);
        assert_eq!(r.alt_status(), 0xC0, "BSY: the block is being read");
        // The backend does not finish within its bound: ignored, BSY stays.
        r.master_mut().set_wait_completes(false);
        r.command(DEVICE_RESET);
        assert_eq!(r.alt_status(), 0xC0, "ignored while the read is in flight");
        // It finishes within its bound: the read completes, then the reset.
        r.master_mut().set_wait_completes(true);
        r.command(DEVICE_RESET);
        assert_eq!((r.alt_status(), r.error()), (0, 0));
        assert_eq!(signature(r), [1, 1, 0x14, 0xEB]);
        assert!(r.ide.is_idle());
        r.status();
        r.packet(cdb(&[0x00]), 0, false);
        assert_eq!(r.status(), ST_READY);
    });
}
