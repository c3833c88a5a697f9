//! BMDMA register semantics.

use super::harness::*;
use crate::ide::{AccessWidth, IoBlock};
use crate::pci::PciFunction;

#[test]
fn command_and_status_registers() {
    with_disk(64, |r| {
        r.enable_pci();
        r.bm_cmd(0xFF);
        assert_eq!(r.inb(BMDMA), 0x09, "only START and READ are stored");
        assert_eq!(r.bm_status(), 0x01, "START set ACTIVE");
        r.bm_cmd(0x00);
        assert_eq!(r.bm_status(), 0x00);
        // Bits 5/6 are storage, 7 reads 0, ACTIVE is read-only.
        r.outb(BMDMA + 2, 0xE1);
        assert_eq!(r.bm_status(), 0x60);
        // INT is write-1-to-clear.
        r.command(crate::ide::opcode::SEEK);
        assert_eq!(r.bm_status(), 0x64);
        r.outb(BMDMA + 2, 0x60);
        assert_eq!(r.bm_status(), 0x64, "writing 0 keeps INT");
        r.outb(BMDMA + 2, 0x04);
        assert_eq!(
            r.bm_status(),
            0x00,
            "writing 1 clears INT, 0 clears bits 5/6"
        );
        // Reserved bytes and wide accesses.
        assert_eq!(r.inb(BMDMA + 1), 0xFF);
        assert_eq!(r.inb(BMDMA + 3), 0xFF);
        assert_eq!(r.inw(BMDMA), 0xFFFF);
        assert_eq!(r.inl(BMDMA), 0xFFFF_FFFF);
        r.outw(BMDMA, 0x0001);
        assert_eq!(r.bm_status(), 0x00, "a 16-bit write is not a START");
    });
}

#[test]
fn secondary_half_is_inert_storage() {
    with_disk(64, |r| {
        r.enable_pci();
        assert_eq!(r.inb(BMDMA + 10), 0x00, "simplex clear");
        r.outb(BMDMA + 8, 0x09);
        assert_eq!((r.inb(BMDMA + 8), r.inb(BMDMA + 10)), (0x09, 0x01));
        r.outl(BMDMA + 12, 0x5003);
        assert_eq!(r.inl(BMDMA + 12), 0x5000);
        r.outb(BMDMA + 8, 0x00);
        assert_eq!(r.inb(BMDMA + 10), 0x00);
        assert_eq!(r.inb(BMDMA), 0x00, "primary untouched");
    });
}

#[test]
fn bar4_decodes_only_with_io_enabled() {
    with_disk(64, |r| {
        r.enable_pci();
        r.bm_table(0x1000);
        r.ide
            .config_write(crate::pci::header::COMMAND, AccessWidth::Word, 0x0004);
        assert_eq!(r.ide.decode_port(BMDMA), None);
        // Direct accesses are refused too.
        assert_eq!(
            r.ide.read(IoBlock::BusMaster, 4, AccessWidth::Dword),
            0xFFFF_FFFF
        );
        r.ide
            .write(IoBlock::BusMaster, 4, AccessWidth::Dword, 0x2000);
        r.ide
            .config_write(crate::pci::header::COMMAND, AccessWidth::Word, 0x0005);
        assert_eq!(r.inl(BMDMA + 4), 0x1000);
        // Moving the BAR moves the block.
        r.ide
            .config_write(crate::pci::header::BAR4, AccessWidth::Dword, 0xD000);
        assert_eq!(r.ide.decode_port(BMDMA), None);
        assert_eq!(r.ide.decode_port(0xD004), Some((IoBlock::BusMaster, 4)));
    });
}
