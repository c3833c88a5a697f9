//! DMA error paths: holes, unreadable PRD tables, bus mastering off,
//! read-only disks, backend I/O errors.

use std::vec;
use std::vec::Vec;

use super::harness::*;
use crate::block::{BlockError, MemDisk};
use crate::dma::TransferError;
use crate::ide::{IdeError, opcode};
use crate::memory::MemError;
use crate::pci::PciFunction;

#[test]
fn prd_into_a_hole_is_a_host_bus_error() {
    with_disk(64, |r| {
        r.enable_pci();
        r.prds(
            PRD_TABLE,
            &[(0x10000, 512, false), (HOLE as u32, 512, true)],
        );
        r.lba28(0, 2);
        r.command(opcode::WRITE_DMA);
        r.bm_cmd(0x01);
        assert!(r.irq.level());
        assert_eq!(r.bm_status(), 0x06, "ERR | INT, ACTIVE cleared");
        assert_eq!(r.status(), ST_ERR);
        assert_eq!(r.error(), ERR_ABRT);
        assert_eq!(r.disk(), &disk_image(64)[..], "nothing written");
        assert_eq!(
            r.ide.last_error(),
            Some(IdeError::Transfer(TransferError::Memory(MemError::Hole {
                addr: HOLE
            })))
        );
        assert_eq!(r.ide.stats().host_bus_errors, 1);
        assert!(r.ide.is_idle());
        // ERR is write-1-to-clear.
        r.bm_cmd(0x00);
        r.outb(BMDMA + 2, 0x06);
        assert_eq!(r.bm_status(), 0x00);
    });
}

#[test]
fn prd_table_in_a_hole() {
    with_disk(64, |r| {
        r.enable_pci();
        r.bm_table(HOLE as u32);
        r.lba28(0, 1);
        r.command(opcode::READ_DMA);
        r.bm_cmd(0x09);
        assert_eq!(r.bm_status(), 0x06);
        assert_eq!(r.status(), ST_ERR);
        assert_eq!(
            r.ide.last_error(),
            Some(IdeError::Fetch(MemError::Hole { addr: HOLE }))
        );
    });
}

/// Clears PCI Command bit 2 (bus mastering), keeping I/O decode.
fn bus_master_off<'a, B: crate::block::BlockDevice<'a>, const IOV: usize>(r: &mut Rig<'a, B, IOV>) {
    r.ide.config_write(
        crate::pci::header::COMMAND,
        crate::ide::AccessWidth::Word,
        0x0001,
    );
}

#[test]
fn bus_master_disabled_moves_nothing_and_ends_like_a_long_prd_table() {
    with_disk(64, |r| {
        r.enable_pci();
        bus_master_off(r);
        r.set_mem(0x10000, &[0xCD; 512]);
        r.prds(PRD_TABLE, &[(0x10000, 512, true)]);
        r.lba28(0, 1);
        r.command(opcode::READ_DMA);
        r.bm_cmd(0x09);
        assert!(r.irq.level());
        assert_eq!(
            r.bm_status(),
            0x05,
            "ACTIVE | INT, no ERR (QEMU's no_busmaster)"
        );
        assert_eq!(r.status(), ST_READY);
        assert_eq!(r.error(), 0);
        assert_eq!(r.mem(0x10000, 512), vec![0xCDu8; 512], "memory untouched");
        assert_eq!(r.master().rw_requests(), 0, "no disk I/O");
        assert_eq!(r.ide.stats().dma_without_bus_master, 1);
        assert_eq!(r.ide.stats().host_bus_errors, 0);
        assert_eq!(r.ide.last_error(), None);
        r.bm_cmd(0x00);
        r.bm_ack();

        // A write reads no memory and leaves the disk as it was.
        r.lba28(2, 2);
        r.command(opcode::WRITE_DMA);
        r.bm_cmd(0x01);
        assert_eq!(r.bm_status(), 0x05);
        assert_eq!(r.status(), ST_READY);
        assert_eq!(r.disk(), &disk_image(64)[..]);
        assert_eq!(r.master().rw_requests(), 0);
        r.bm_cmd(0x00);
        r.bm_ack();

        // Out of range still aborts (the range check precedes the data).
        r.lba28(63, 2);
        r.command(opcode::READ_DMA);
        r.bm_cmd(0x09);
        assert_eq!(r.bm_status(), 0x04, "INT only");
        assert_eq!(r.status(), ST_ERR);
        assert_eq!(r.error(), ERR_ABRT);
        assert_eq!(r.ide.stats().dma_without_bus_master, 3);
    });
}

#[test]
fn bus_master_disabled_32_mib_command_uses_the_whole_zeroed_table() {
    // 65536 sectors (LBA48 count 0) = 512 entries x 64 KiB exactly.
    with_disk(70000, |r| {
        r.enable_pci();
        bus_master_off(r);
        r.lba48(0, 0);
        r.command(opcode::READ_DMA_EXT);
        r.bm_cmd(0x09);
        assert_eq!(r.bm_status(), 0x04, "INT, ACTIVE cleared: exact length");
        assert_eq!(r.status(), ST_READY);
        assert_eq!(r.master().rw_requests(), 0);
    });
}

#[test]
fn read_only_disk_refuses_dma_writes() {
    let mut img = disk_image(16);
    with_devices::<_, 256, _>(Env::default(), MemDisk::new(&mut img, true), None, |r| {
        r.enable_pci();
        r.set_mem(0x10000, &[0xAB; 1024]);
        r.prds(PRD_TABLE, &[(0x10000, 1024, true)]);
        r.lba28(3, 2);
        r.command(opcode::WRITE_DMA);
        r.bm_cmd(0x01);
        assert!(r.irq.level());
        assert_eq!(r.bm_status(), 0x04, "INT only");
        assert_eq!(r.status(), ST_ERR);
        assert_eq!(r.error(), ERR_ABRT);
        assert_eq!(r.disk(), &disk_image(16)[..]);
        assert_eq!(
            r.ide.last_error(),
            Some(IdeError::Transfer(TransferError::Block(
                BlockError::ReadOnly
            )))
        );
        r.bm_cmd(0x00);
        r.bm_ack();
        r.lba28(3, 2);
        r.command(opcode::READ_DMA);
        r.bm_cmd(0x09);
        assert_eq!(r.status(), ST_READY);
        assert_eq!(r.mem(0x10000, 1024), image(3, 2));
    });
}

#[test]
fn backend_error_is_never_dropped() {
    with_disk(64, |r| {
        r.enable_pci();
        r.prds(PRD_TABLE, &[(0x10000, 1024, true)]);
        r.master_mut().fail_after(0);
        r.lba28(5, 2);
        r.command(opcode::READ_DMA);
        r.bm_cmd(0x09);
        assert!(r.irq.level());
        assert_eq!(r.bm_status(), 0x04);
        assert_eq!(r.status(), ST_ERR);
        assert_eq!(r.error(), ERR_ABRT);
        assert_eq!(r.inb(LBAL), 5, "failing LBA");
        assert_eq!(
            r.ide.last_error(),
            Some(IdeError::Transfer(TransferError::Block(BlockError::Io(5))))
        );
        assert_eq!(r.ide.stats().aborted, 1);
    });
}

#[test]
fn partial_progress_reports_the_failing_lba() {
    let mut img = disk_image(64);
    let env = Env {
        pool: Pool::Tiny,
        ..Env::default()
    };
    with_devices::<_, 256, _>(env, MemDisk::new(&mut img, false), None, |r| {
        r.enable_pci();
        // MMIO through a 1-slot pool: one sector per request; the third
        // request fails.
        r.prds(PRD_TABLE, &[(MMIO_BASE as u32, 4 * 512, true)]);
        r.master_mut().fail_after(2);
        r.lba28(10, 4);
        r.command(opcode::READ_DMA);
        r.bm_cmd(0x09);
        assert_eq!(r.status(), ST_ERR);
        assert_eq!((r.inb(LBAL), r.inb(NSECT)), (12, 2), "two sectors done");
        assert_eq!(&r.mmio.snapshot()[..1024], &image(10, 2)[..]);
        assert_eq!(
            &r.mmio.snapshot()[1024..2048],
            &[0u8; 1024][..],
            "failed request not written back"
        );
    });
}

#[test]
fn out_of_range_beats_nothing_but_short_prds() {
    with_disk(64, |r| {
        r.enable_pci();
        // Short PRDs and out of range: the short outcome wins.
        r.prds(PRD_TABLE, &[(0x10000, 512, true)]);
        r.lba28(100, 2);
        r.command(opcode::READ_DMA);
        r.bm_cmd(0x09);
        assert!(!r.irq.level());
        assert_eq!(r.bm_status(), 0x00);
        assert_eq!(r.status(), ST_READY);
        r.bm_cmd(0x00);
        // Enough PRDs: ABRT.
        r.prds(PRD_TABLE, &[(0x10000, 1024, true)]);
        r.lba28(100, 2);
        r.command(opcode::READ_DMA);
        r.bm_cmd(0x09);
        assert!(r.irq.level());
        assert_eq!(r.bm_status(), 0x04);
        assert_eq!(r.status(), ST_ERR);
        assert_eq!(
            r.ide.last_error(),
            Some(IdeError::OutOfRange { lba: 100, count: 2 })
        );
    });
}

#[test]
fn sector_of_many_mmio_pieces_moves_through_a_one_sector_arena() {
    let mut img = disk_image(64);
    let env = Env {
        pool: Pool::Tiny,
        ..Env::default()
    };
    with_devices::<_, 256, _>(env, MemDisk::new(&mut img, false), None, |r| {
        r.enable_pci();
        // One sector in sixteen separate MMIO pieces with a one-sector
        // arena: they cannot all have bounce space at once piece by piece,
        // so the sector is staged through one 512-byte range (QEMU's byte
        // budget copes as well; vmdma's old slot pool failed with ABRT).
        let pieces: Vec<(u32, u32, bool)> = (0..16u32)
            .map(|i| (MMIO_BASE as u32 + i * 0x100, 32, i == 15))
            .collect();
        r.prds(PRD_TABLE, &pieces);
        r.lba28(0, 1);
        r.command(opcode::READ_DMA);
        r.bm_cmd(0x09);
        assert!(r.irq.level());
        assert_eq!(r.bm_status(), 0x04);
        assert_eq!(r.status(), ST_READY);
        let snap = r.mmio.snapshot();
        for i in 0..16usize {
            assert_eq!(
                &snap[i * 0x100..i * 0x100 + 32],
                &image(0, 1)[i * 32..i * 32 + 32]
            );
        }
        assert_eq!(r.ide.stats().staged_bytes, 512);
        assert!(r.ide.is_idle());
        assert_eq!(r.space.bounce().in_use(), 0);
        // With RAM on one side, one slot is enough.
        r.bm_cmd(0x00);
        r.bm_ack();
        r.prds(
            PRD_TABLE,
            &[(MMIO_BASE as u32, 256, false), (0x10000, 256, true)],
        );
        r.lba28(0, 1);
        r.command(opcode::READ_DMA);
        r.bm_cmd(0x09);
        assert_eq!(r.status(), ST_READY);
        assert_eq!(&r.mmio.snapshot()[..256], &image(0, 1)[..256]);
        assert_eq!(r.mem(0x10000, 256), image(0, 1)[256..]);
    });
}
