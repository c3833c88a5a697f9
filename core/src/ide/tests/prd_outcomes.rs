//! The three PRD-length outcomes (QEMU reference §4.6), with and without
//! stopping the engine, and the bounded PRD walk.

use std::vec;
use std::vec::Vec;

use super::harness::*;
use crate::ide::opcode;

/// Runs READ DMA of 2 sectors at LBA 1 into PRDs describing `prd_bytes`
/// (in 512-byte entries at 0x10000...), START after the command. Returns
/// (IRQ raised, BM status, ATA status).
fn run(prd_bytes: u32) -> (bool, u8, u8, Vec<u8>) {
    with_disk(64, |r| {
        r.enable_pci();
        let n = prd_bytes / 512;
        let entries: Vec<(u32, u32, bool)> = (0..n)
            .map(|i| (0x10000 + i * 512, 512, i + 1 == n))
            .collect();
        r.prds(PRD_TABLE, &entries);
        r.lba28(1, 2);
        r.command(opcode::READ_DMA);
        r.bm_cmd(0x09);
        let irq = r.irq.level();
        let bm = r.bm_status();
        let st = r.status();
        (irq, bm, st, r.mem(0x10000, 1024))
    })
}

#[test]
fn short_prd_table_no_irq_no_data_bm_zero() {
    let (irq, bm, st, data) = run(512);
    assert!(!irq);
    assert_eq!(bm, 0x00);
    assert_eq!(st, ST_READY);
    assert_eq!(data, vec![0u8; 1024]);
}

#[test]
fn exact_prd_table_irq_bm_int() {
    let (irq, bm, st, data) = run(1024);
    assert!(irq);
    assert_eq!(bm, 0x04);
    assert_eq!(st, ST_READY);
    assert_eq!(data, image(1, 2));
}

#[test]
fn long_prd_table_irq_bm_active_int() {
    let (irq, bm, st, data) = run(2048);
    assert!(irq);
    assert_eq!(bm, 0x05);
    assert_eq!(st, ST_READY);
    assert_eq!(data, image(1, 2));
}

#[test]
fn stopping_after_each_outcome() {
    for (bytes, want) in [(512u32, 0x00u8), (1024, 0x04), (2048, 0x04)] {
        with_disk(64, |r| {
            r.enable_pci();
            let n = bytes / 512;
            let entries: Vec<(u32, u32, bool)> = (0..n)
                .map(|i| (0x10000 + i * 512, 512, i + 1 == n))
                .collect();
            r.prds(PRD_TABLE, &entries);
            r.lba28(1, 2);
            r.command(opcode::READ_DMA);
            r.bm_cmd(0x09);
            r.bm_cmd(0x08);
            assert_eq!(r.bm_status(), want, "{bytes} PRD bytes");
            assert_eq!(r.status(), ST_READY);
        });
    }
}

#[test]
fn short_outcome_leaves_count_and_address() {
    with_disk(64, |r| {
        r.enable_pci();
        r.prds(PRD_TABLE, &[(0x10000, 512, true)]);
        r.lba28(9, 4);
        r.command(opcode::READ_DMA);
        r.bm_cmd(0x09);
        assert_eq!((r.inb(LBAL), r.inb(NSECT)), (9, 4), "nothing transferred");
        assert_eq!(r.ide.stats().short_prd_tables, 1);
        assert_eq!(r.master().rw_requests(), 0);
    });
}

#[test]
fn table_without_eot_is_bounded_at_512_entries() {
    with_disk(600, |r| {
        r.enable_pci();
        // 600 entries of 512 bytes and no EOT: the walk stops at 512.
        let entries: Vec<(u32, u32, bool)> =
            (0..600).map(|i| (0x20000 + i * 512, 512, false)).collect();
        r.prds(PRD_TABLE, &entries);
        r.lba28(0, 0); // 256 sectors: fewer than the 512 described
        r.command(opcode::READ_DMA);
        r.bm_cmd(0x09);
        assert_eq!(
            r.bm_status(),
            0x05,
            "long: 512 entries describe 512 sectors"
        );
        assert_eq!(r.mem(0x20000, 256 * 512), image(0, 256));
        r.bm_cmd(0x00);
        r.bm_ack();
        let _ = r.status();
        // 513 sectors would need entry 513: the walk never reads it.
        r.lba48(0, 513);
        r.command(opcode::READ_DMA_EXT);
        r.bm_cmd(0x09);
        assert!(!r.irq.level());
        assert_eq!(r.bm_status(), 0x00, "short");
    });
}

#[test]
fn zeroed_table_is_64k_entries_without_eot() {
    with_disk(64, |r| {
        r.enable_pci();
        // Memory at 0x8000 is zero: PRDs (addr 0, 64 KiB, no EOT).
        r.bm_table(0x8000);
        r.lba28(0, 1);
        r.command(opcode::READ_DMA);
        r.bm_cmd(0x09);
        assert_eq!(r.bm_status(), 0x05);
        assert_eq!(r.mem(0, 512), image(0, 1));
    });
}

#[test]
fn table_pointer_is_dword_aligned_and_byte_lanes_merge() {
    with_disk(64, |r| {
        r.enable_pci();
        r.outl(BMDMA + 4, 0x1234_5677);
        assert_eq!(r.inl(BMDMA + 4), 0x1234_5674);
        r.outb(BMDMA + 5, 0xAB);
        assert_eq!(r.inl(BMDMA + 4), 0x1234_AB74);
        r.outw(BMDMA + 6, 0xCDEF);
        assert_eq!(r.inl(BMDMA + 4), 0xCDEF_AB74);
        r.outb(BMDMA + 4, 0xFF);
        assert_eq!(r.inb(BMDMA + 4), 0xFC);
        assert_eq!(r.inw(BMDMA + 6), 0xCDEF);
    });
}
