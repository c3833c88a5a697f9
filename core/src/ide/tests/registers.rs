//! Task-file registers: reset state, HOB FIFO, busy gating, absent slave,
//! IRQ rules, access widths.

use std::vec;

use super::harness::*;
use crate::block::MemDisk;
use crate::ide::{AccessWidth, IoBlock, opcode};

#[test]
fn power_on_state_and_signature() {
    with_disk(64, |r| {
        assert_eq!(r.status(), ST_READY);
        assert_eq!(r.alt_status(), ST_READY);
        assert_eq!(r.error(), 0);
        assert_eq!(r.inb(NSECT), 1);
        assert_eq!(r.inb(LBAL), 1);
        assert_eq!(r.inb(LBAM), 0);
        assert_eq!(r.inb(LBAH), 0);
        assert_eq!(r.inb(DEVICE), 0xA0);
        assert!(!r.irq.level());
    });
}

#[test]
fn hob_fifo_read_back_and_clear_on_write() {
    with_disk(64, |r| {
        for (port, a, b) in [
            (FEATURES, 0x11, 0x12),
            (NSECT, 0x21, 0x22),
            (LBAL, 0x31, 0x32),
            (LBAM, 0x41, 0x42),
            (LBAH, 0x51, 0x52),
        ] {
            r.outb(port, a);
            r.outb(port, b);
        }
        // Normal reads: the second (low-order) writes. Error reads Error.
        assert_eq!(r.error(), 0);
        assert_eq!(
            [r.inb(NSECT), r.inb(LBAL), r.inb(LBAM), r.inb(LBAH)],
            [0x22, 0x32, 0x42, 0x52]
        );
        // HOB set: the first writes.
        r.outb(CTRL, 0x80);
        assert_eq!(r.error(), 0x11, "Error reads the HOB Features");
        assert_eq!(
            [r.inb(NSECT), r.inb(LBAL), r.inb(LBAM), r.inb(LBAH)],
            [0x21, 0x31, 0x41, 0x51]
        );
        // Device and Status are not affected by HOB.
        assert_eq!(r.inb(DEVICE), 0xA0);
        assert_eq!(r.status(), ST_READY);
        // Any task-file write clears HOB.
        r.outb(DEVICE, 0xE0);
        assert_eq!(r.inb(NSECT), 0x22);
        r.outb(CTRL, 0x80);
        r.outb(LBAL, 0x33);
        assert_eq!(r.inb(LBAL), 0x33);
        assert_eq!(r.inb(LBAM), 0x42);
        // The FIFO keeps moving: LBA low's HOB is now the old low byte.
        r.outb(CTRL, 0x80);
        assert_eq!(r.inb(LBAL), 0x32);
    });
}

#[test]
fn writes_and_commands_ignored_while_drq() {
    with_disk(64, |r| {
        // A DMA command with the bus master stopped keeps DRQ set.
        r.lba28(3, 1);
        r.command(opcode::READ_DMA);
        assert_eq!(r.status(), ST_DRQ);
        r.outb(NSECT, 9);
        r.outb(LBAL, 9);
        r.outb(DEVICE, 0xF0);
        assert_eq!(r.inb(NSECT), 1);
        assert_eq!(r.inb(LBAL), 3);
        assert_eq!(r.inb(DEVICE), 0xE0);
        let before = *r.ide.stats();
        r.command(opcode::IDENTIFY_DEVICE);
        assert_eq!(r.ide.stats().commands, before.commands, "command ignored");
        assert_eq!(r.status(), ST_DRQ);
        assert!(!r.irq.level());
        // SRST gets out of it.
        r.outb(CTRL, 0x04);
        r.outb(CTRL, 0x00);
        assert_eq!(r.status(), ST_READY);
        r.outb(NSECT, 9);
        assert_eq!(r.inb(NSECT), 9);
    });
}

#[test]
fn absent_slave_reads_zero_ignores_commands_and_echoes_registers() {
    with_disk(64, |r| {
        r.outb(DEVICE, 0xB0);
        assert_eq!(r.status(), 0);
        assert_eq!(r.alt_status(), 0);
        assert_eq!(r.error(), 0);
        assert_eq!(r.inb(DEVICE), 0xB0);
        // Presence probe patterns echo (shared registers).
        r.outb(NSECT, 0x55);
        r.outb(LBAL, 0xAA);
        assert_eq!((r.inb(NSECT), r.inb(LBAL)), (0x55, 0xAA));
        // Signature of an absent device: cylinder 0xFFFF.
        r.outb(CTRL, 0x04);
        r.outb(CTRL, 0x00);
        r.outb(DEVICE, 0xB0);
        assert_eq!((r.inb(LBAM), r.inb(LBAH)), (0xFF, 0xFF));
        let before = r.ide.stats().commands;
        assert_eq!(r.status(), 0, "lowers the IRQ even for the absent device");
        let raises = r.irq.raises();
        r.command(opcode::IDENTIFY_DEVICE);
        r.command(opcode::EXECUTE_DEVICE_DIAGNOSTIC);
        assert_eq!(r.ide.stats().commands, before);
        assert!(!r.irq.level(), "no IRQ for an absent device");
        assert_eq!(r.irq.raises(), raises);
        assert_eq!(r.inw(DATA), 0);
        // Master is unaffected.
        r.outb(DEVICE, 0xA0);
        assert_eq!(r.status(), ST_READY);
        assert_eq!((r.inb(LBAM), r.inb(LBAH)), (0, 0));
    });
}

#[test]
fn slave_disk_is_a_separate_device() {
    let mut a = disk_image(16);
    let mut b = vec![0xEEu8; 16 * 512];
    with_devices::<_, 256, _>(
        Env::default(),
        MemDisk::new(&mut a, false),
        Some(MemDisk::new(&mut b, false)),
        |r| {
            r.outb(DEVICE, 0xF0);
            assert_eq!(r.status(), ST_READY);
            r.outb(NSECT, 1);
            r.outb(LBAL, 2);
            r.outb(LBAM, 0);
            r.outb(LBAH, 0);
            r.command(opcode::READ_SECTORS);
            assert_eq!(r.status(), ST_DRQ);
            let w = r.read_words(256);
            assert!(w.iter().all(|&x| x == 0xEEEE));
            // The command's results are in the slave's registers only.
            assert_eq!(r.inb(LBAL), 3);
            r.outb(DEVICE, 0xE0);
            assert_eq!(r.inb(LBAL), 2, "master keeps the written value");
            assert_eq!(r.status(), ST_READY);
        },
    );
}

#[test]
fn irq_lowered_by_status_and_command_not_alt_status() {
    with_disk(64, |r| {
        r.command(opcode::CHECK_POWER_MODE);
        assert!(r.irq.level());
        assert_eq!(r.alt_status(), ST_READY);
        assert!(r.irq.level(), "Alternate Status keeps the IRQ");
        assert_eq!(r.status(), ST_READY);
        assert!(!r.irq.level(), "Status lowers it");
        r.command(opcode::CHECK_POWER_MODE);
        assert!(r.irq.level());
        // A Command write lowers it (and the new command raises it again).
        r.command(opcode::CHECK_POWER_MODE);
        assert_eq!(r.irq.raises(), 3);
    });
}

#[test]
fn nien_suppresses_irq_and_bm_interrupt() {
    with_disk(64, |r| {
        r.enable_pci();
        r.outb(CTRL, 0x02);
        r.command(opcode::CHECK_POWER_MODE);
        assert!(!r.irq.level());
        assert_eq!(r.bm_status() & 0x04, 0);
        assert_eq!(r.status(), ST_READY, "the command still completes");
        // Setting nIEN does not lower a raised line.
        r.outb(CTRL, 0x00);
        r.command(opcode::CHECK_POWER_MODE);
        assert!(r.irq.level());
        assert_eq!(r.bm_status() & 0x04, 0x04);
        r.outb(CTRL, 0x02);
        assert!(r.irq.level());
    });
}

#[test]
fn wide_accesses_to_byte_registers_split() {
    with_disk(64, |r| {
        r.outb(NSECT, 0x12);
        r.outb(LBAL, 0x34);
        assert_eq!(r.inw(NSECT), 0x3412);
        r.outw(LBAM, 0xBBAA);
        assert_eq!((r.inb(LBAM), r.inb(LBAH)), (0xAA, 0xBB));
        // Bytes past the command block read 0xFF.
        assert_eq!(r.ide.read(IoBlock::Command, 7, AccessWidth::Word), 0xFF50);
        assert_eq!(r.ide.read(IoBlock::Control, 0, AccessWidth::Word), 0xFF50);
        assert_eq!(r.ide.read(IoBlock::Control, 1, AccessWidth::Byte), 0xFF);
        assert_eq!(r.ide.read(IoBlock::Command, 9, AccessWidth::Byte), 0xFF);
        // Outside a data phase the data port reads 0.
        assert_eq!(r.inl(DATA), 0);
        assert_eq!(r.inb(DATA), 0);
    });
}

#[test]
fn port_decoding() {
    with_disk(64, |r| {
        assert_eq!(r.ide.decode_port(0x1F0), Some((IoBlock::Command, 0)));
        assert_eq!(r.ide.decode_port(0x1F7), Some((IoBlock::Command, 7)));
        assert_eq!(r.ide.decode_port(0x1F8), None);
        assert_eq!(r.ide.decode_port(0x3F6), Some((IoBlock::Control, 0)));
        assert_eq!(r.ide.decode_port(0x3F7), None);
        assert_eq!(r.ide.decode_port(0x170), None);
        assert_eq!(r.ide.decode_port(BMDMA), None, "BAR4 unassigned");
        r.enable_pci();
        assert_eq!(r.ide.decode_port(BMDMA), Some((IoBlock::BusMaster, 0)));
        assert_eq!(
            r.ide.decode_port(BMDMA + 15),
            Some((IoBlock::BusMaster, 15))
        );
        assert_eq!(r.ide.decode_port(BMDMA + 16), None);
        // The combined helpers.
        assert_eq!(r.ide.read_port(0x1F7, AccessWidth::Byte), Some(0x50));
        assert_eq!(r.ide.read_port(0x170, AccessWidth::Byte), None);
        assert!(r.ide.write_port(0x1F2, AccessWidth::Byte, 0x77));
        assert_eq!(r.inb(NSECT), 0x77);
        assert!(!r.ide.write_port(0x172, AccessWidth::Byte, 0x11));
    });
}

#[test]
fn eight_bit_data_read_consumes_a_word() {
    with_disk(64, |r| {
        r.command(opcode::IDENTIFY_DEVICE);
        assert_eq!(r.inb(DATA), 0x40, "low byte of word 0");
        assert_eq!(r.inw(DATA), 1, "word 1: cylinders of a 64-sector disk");
        // 8-bit data writes are ignored.
        r.outb(DATA, 0x12);
    });
}

#[test]
fn channel_without_disks_ignores_commands() {
    with_drives::<MemDisk<'_>, 256, _>(Env::default(), None, None, |r| {
        assert_eq!(r.status(), 0);
        r.outb(DEVICE, 0xA0);
        r.command(opcode::FLUSH_CACHE);
        r.command(opcode::IDENTIFY_DEVICE);
        assert_eq!(r.status(), 0, "nothing answers");
        assert_eq!(r.ide.stats().commands, 0);
        assert!(!r.irq.level());
        assert_eq!(r.inw(DATA), 0);
        r.outb(DEVICE, 0xB0);
        r.command(opcode::FLUSH_CACHE);
        assert_eq!(r.status(), 0);
    });
}
