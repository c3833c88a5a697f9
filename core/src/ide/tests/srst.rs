//! Software reset through Device Control.

use super::harness::*;
use crate::ide::opcode;

#[test]
fn srst_resets_on_the_rising_edge_only() {
    with_disk(64, |r| {
        r.lba48(0x1234_5678, 0x99);
        r.outb(FEATURES, 0x42);
        r.command(opcode::SEEK);
        let _ = r.status();
        r.outb(CTRL, 0x04);
        assert!(r.irq.level(), "IRQ after the reset (nIEN clear)");
        assert_eq!(r.alt_status(), ST_READY);
        assert_eq!(r.error(), 0x01, "diagnostic passed");
        assert_eq!(
            (r.inb(NSECT), r.inb(LBAL), r.inb(LBAM), r.inb(LBAH)),
            (1, 1, 0, 0)
        );
        assert_eq!(r.inb(DEVICE), 0xA0);
        r.outb(CTRL, 0x80);
        assert_eq!(
            (r.error(), r.inb(NSECT), r.inb(LBAL)),
            (0, 0, 0),
            "HOB registers cleared"
        );
        let _ = r.status();
        // Releasing SRST is not an edge.
        let raises = r.irq.raises();
        r.outb(NSECT, 7);
        r.outb(CTRL, 0x00);
        assert_eq!(r.irq.raises(), raises);
        assert_eq!(r.inb(NSECT), 7);
        // A new edge resets again.
        r.outb(CTRL, 0x04);
        assert_eq!(r.inb(NSECT), 1);
        assert_eq!(r.irq.raises(), raises + 1);
    });
}

#[test]
fn srst_with_nien_raises_nothing() {
    with_disk(64, |r| {
        r.outb(CTRL, 0x06);
        assert!(!r.irq.level());
        assert_eq!(r.status(), ST_READY);
    });
}

#[test]
fn srst_restores_multiple_count_and_selects_device_0() {
    with_disk(64, |r| {
        r.outb(NSECT, 2);
        r.command(opcode::SET_MULTIPLE_MODE);
        r.outb(DEVICE, 0xB0);
        r.outb(CTRL, 0x04);
        r.outb(CTRL, 0x00);
        assert_eq!(r.status(), ST_READY, "device 0 selected");
        r.command(opcode::IDENTIFY_DEVICE);
        let w = r.read_words(256);
        assert_eq!(w[59], 0x0110);
    });
}

#[test]
fn srst_ends_a_pio_phase_and_a_pending_dma() {
    with_disk(64, |r| {
        r.lba28(0, 4);
        r.command(opcode::READ_SECTORS);
        assert_eq!(r.status(), ST_DRQ);
        r.outb(CTRL, 0x04);
        r.outb(CTRL, 0x00);
        assert_eq!(r.status(), ST_READY);
        assert_eq!(r.inw(DATA), 0);
        // A DMA command waiting for START is dropped: a later START finds
        // nothing to do.
        r.enable_pci();
        let requests = r.master().rw_requests();
        r.prds(PRD_TABLE, &[(0x10000, 512, true)]);
        r.lba28(1, 1);
        r.command(opcode::READ_DMA);
        r.outb(CTRL, 0x04);
        r.outb(CTRL, 0x00);
        let _ = r.status();
        assert_eq!(r.bm_status(), 0x04, "the reset raised the IRQ");
        r.bm_ack();
        r.bm_cmd(0x09);
        assert!(!r.irq.level());
        assert_eq!(r.bm_status(), 0x01);
        assert_eq!(r.master().rw_requests(), requests);
    });
}
