//! Bus-master DMA data transfers: one and many PRDs, non-contiguous and
//! odd-sized entries, 64 KiB entries, LBA48, MMIO (bounce), START/command
//! order, I/O vector capacity, write-through.

use std::vec;
use std::vec::Vec;

use super::harness::*;
use crate::block::MemDisk;
use crate::ide::{Unit, opcode};

/// Issues a DMA command, starts the engine (Linux order: command, then
/// START) and checks the normal completion.
fn dma<'a, B: crate::block::BlockDevice<'a>, const N: usize>(
    r: &mut Rig<'a, B, N>,
    op: u8,
    read: bool,
) {
    r.bm_cmd(if read { 0x08 } else { 0x00 });
    r.command(op);
    assert_eq!(
        r.alt_status(),
        ST_DRQ,
        "DRQ while waiting for the bus master"
    );
    assert!(!r.irq.level());
    r.bm_cmd(if read { 0x09 } else { 0x01 });
    assert!(r.irq.level(), "IRQ at completion");
    assert_eq!(r.bm_status(), 0x04, "INT, not ACTIVE");
    r.bm_cmd(0x00);
    assert_eq!(r.status(), ST_READY);
    r.bm_ack();
    assert_eq!(r.bm_status(), 0x00);
}

#[test]
fn read_dma_one_prd() {
    with_disk(64, |r| {
        r.enable_pci();
        r.prds(PRD_TABLE, &[(0x10000, 8 * 512, true)]);
        r.lba28(4, 8);
        dma(r, opcode::READ_DMA, true);
        assert_eq!(r.mem(0x10000, 8 * 512), image(4, 8));
        assert_eq!(r.master().rw_requests(), 1);
        assert_eq!((r.inb(LBAL), r.inb(NSECT)), (12, 0));
        let s = *r.ide.stats();
        assert_eq!(
            (s.dma_reads, s.dma_completed, s.dma_block_requests),
            (1, 1, 1)
        );
        assert_eq!(s.bytes_read, 8 * 512);
    });
}

#[test]
fn write_dma_many_noncontiguous_odd_sized_prds() {
    with_disk(64, |r| {
        r.enable_pci();
        // 6 sectors = 3072 bytes in even, non-sector-sized, scattered pieces.
        let pieces: [(u32, u32); 5] = [
            (0x20000, 1000),
            (0x30002, 24),
            (0x21000, 1046),
            (0x40000, 2),
            (0x50000, 1000),
        ];
        let total: u32 = pieces.iter().map(|p| p.1).sum();
        assert_eq!(total, 3072);
        let mut expect = Vec::new();
        for (i, &(addr, len)) in pieces.iter().enumerate() {
            let d: Vec<u8> = (0..len)
                .map(|j| (j as u8).wrapping_add(i as u8 * 40))
                .collect();
            r.set_mem(u64::from(addr), &d);
            expect.extend_from_slice(&d);
        }
        let entries: Vec<(u32, u32, bool)> = pieces
            .iter()
            .enumerate()
            .map(|(i, &(a, l))| (a, l, i == 4))
            .collect();
        r.prds(PRD_TABLE, &entries);
        r.lba28(10, 6);
        dma(r, opcode::WRITE_DMA, false);
        assert_eq!(&r.disk()[10 * 512..16 * 512], &expect[..]);
        assert_eq!(&r.disk()[16 * 512..17 * 512], &image(16, 1)[..]);
        assert_eq!(r.master().rw_requests(), 1, "one vectored request");
        // Read it back through the same scattered PRDs after clearing RAM.
        for &(addr, len) in &pieces {
            r.set_mem(u64::from(addr), &vec![0u8; len as usize]);
        }
        r.lba28(10, 6);
        dma(r, opcode::READ_DMA, true);
        let mut got = Vec::new();
        for &(addr, len) in &pieces {
            got.extend_from_slice(&r.mem(u64::from(addr), len as usize));
        }
        assert_eq!(got, expect);
        assert_eq!(r.master().rw_requests(), 2);
    });
}

#[test]
fn contiguous_prds_are_merged_into_one_mapping() {
    with_disk(64, |r| {
        r.enable_pci();
        r.prds(
            PRD_TABLE,
            &[
                (0x10000, 512, false),
                (0x10200, 512, false),
                (0x10400, 1024, true),
            ],
        );
        r.lba28(0, 4);
        dma(r, opcode::READ_DMA, true);
        assert_eq!(r.mem(0x10000, 4 * 512), image(0, 4));
        assert_eq!(r.master().rw_requests(), 1);
    });
}

#[test]
fn start_before_command() {
    with_disk(64, |r| {
        r.enable_pci();
        r.prds(PRD_TABLE, &[(0x10000, 2 * 512, true)]);
        r.bm_cmd(0x09);
        assert_eq!(r.bm_status(), 0x01, "ACTIVE with no command");
        r.lba28(33, 2);
        r.command(opcode::READ_DMA);
        assert!(r.irq.level());
        assert_eq!(r.bm_status(), 0x04);
        assert_eq!(r.status(), ST_READY);
        assert_eq!(r.mem(0x10000, 1024), image(33, 2));
        r.bm_cmd(0x00);
        assert_eq!(r.bm_status(), 0x04);
    });
}

#[test]
fn sixty_four_kib_entries_and_lba28_count_zero() {
    let mut img = disk_image(300);
    let env = Env {
        ram_len: 1 << 20,
        ..Env::default()
    };
    with_devices::<_, 256, _>(env, MemDisk::new(&mut img, false), None, |r| {
        r.enable_pci();
        // Count 0 = 256 sectors = 128 KiB in two PRDs whose count is 0.
        r.prds(PRD_TABLE, &[(0x20000, 0, false), (0x40000, 0, true)]);
        r.lba28(7, 0);
        dma(r, opcode::READ_DMA, true);
        assert_eq!(r.mem(0x20000, 0x10000), image(7, 128));
        assert_eq!(r.mem(0x40000, 0x10000), image(135, 128));
        assert_eq!(r.master().rw_requests(), 1);
        assert_eq!((r.inb(LBAL), r.inb(LBAM)), (7, 1), "7 + 256");
    });
}

#[test]
fn lba48_count_zero_is_65536_sectors() {
    // 32 MiB in 512 PRDs of 64 KiB, all over the same buffer.
    let sectors = 65536 + 8;
    let mut img = disk_image(sectors);
    with_devices::<_, 1024, _>(Env::default(), MemDisk::new(&mut img, false), None, |r| {
        r.enable_pci();
        let entries: Vec<(u32, u32, bool)> = (0..512).map(|i| (0x80000, 0, i == 511)).collect();
        r.prds(PRD_TABLE, &entries);
        r.lba48(4, 0);
        dma(r, opcode::READ_DMA_EXT, true);
        // The last 64 KiB land last.
        assert_eq!(r.mem(0x80000, 0x10000), image(4 + 65536 - 128, 128));
        assert_eq!(r.master().rw_requests(), 1);
        assert_eq!(r.ide.stats().bytes_read, 32 << 20);
        r.outb(CTRL, 0x80);
        assert_eq!(r.inb(LBAL), 0x00, "next LBA 65540 = 0x1_0004");
        r.outb(CTRL, 0x00);
        assert_eq!((r.inb(LBAL), r.inb(LBAM), r.inb(LBAH)), (0x04, 0x00, 0x01));
    });
}

#[test]
fn lba48_last_sector_and_one_past() {
    with_disk(200, |r| {
        r.enable_pci();
        r.prds(PRD_TABLE, &[(0x10000, 512, true)]);
        r.lba48(199, 1);
        dma(r, opcode::READ_DMA_EXT, true);
        assert_eq!(r.mem(0x10000, 512), image(199, 1));
        r.set_mem(0x10000, &[0u8; 512]);
        r.lba48(200, 1);
        r.command(opcode::READ_DMA_EXT);
        r.bm_cmd(0x09);
        assert!(r.irq.level());
        assert_eq!(r.status(), ST_ERR);
        assert_eq!(r.error(), ERR_ABRT);
        assert_eq!(r.bm_status(), 0x04, "INT, ACTIVE cleared, no ERR");
        assert_eq!(r.mem(0x10000, 512), vec![0u8; 512], "no data");
        r.bm_cmd(0);
        r.bm_ack();
        // A write crossing the end is refused whole.
        r.prds(PRD_TABLE, &[(0x10000, 1024, true)]);
        r.lba48(199, 2);
        r.command(opcode::WRITE_DMA_EXT);
        r.bm_cmd(0x01);
        assert_eq!(r.status(), ST_ERR);
        assert_eq!(r.disk(), &disk_image(200)[..]);
    });
}

#[test]
fn dma_through_mmio_bounces() {
    with_disk(64, |r| {
        r.enable_pci();
        // Read into MMIO: 2 sectors RAM + 3 sectors MMIO + 1 RAM.
        r.prds(
            PRD_TABLE,
            &[
                (0x10000, 1024, false),
                (MMIO_BASE as u32 + 0x100, 1536, false),
                (0x11000, 512, true),
            ],
        );
        r.lba28(1, 6);
        dma(r, opcode::READ_DMA, true);
        assert_eq!(r.mem(0x10000, 1024), image(1, 2));
        assert_eq!(&r.mmio.snapshot()[0x100..0x100 + 1536], &image(3, 3)[..]);
        assert_eq!(r.mem(0x11000, 512), image(6, 1));
        assert!(
            !r.mmio.writes.lock().unwrap().is_empty(),
            "written back through the handler"
        );
        assert_eq!(r.master().rw_requests(), 1);
        assert_eq!(r.space.bounce().in_use(), 0, "bounce space released");
        // Write from MMIO.
        r.mmio.fill_with(|i| (i as u8) ^ 0x3C);
        r.prds(PRD_TABLE, &[(MMIO_BASE as u32 + 0x800, 2048, true)]);
        r.lba28(20, 4);
        dma(r, opcode::WRITE_DMA, false);
        let expect: Vec<u8> = (0x800..0x1000).map(|i| (i as u8) ^ 0x3C).collect();
        assert_eq!(&r.disk()[20 * 512..24 * 512], &expect[..]);
    });
}

#[test]
fn tiny_bounce_pool_splits_requests() {
    let mut img = disk_image(64);
    let env = Env {
        pool: Pool::Tiny,
        ..Env::default()
    };
    with_devices::<_, 256, _>(env, MemDisk::new(&mut img, false), None, |r| {
        r.enable_pci();
        r.prds(PRD_TABLE, &[(MMIO_BASE as u32, 4 * 512, true)]);
        r.lba28(8, 4);
        dma(r, opcode::READ_DMA, true);
        assert_eq!(&r.mmio.snapshot()[..2048], &image(8, 4)[..]);
        assert_eq!(
            r.master().rw_requests(),
            4,
            "one 512-byte slot: one sector per request"
        );
        assert_eq!(r.ide.stats().dma_max_requests, 4);
    });
}

#[test]
fn waiting_for_bounce_space_resumes_on_retry() {
    let mut img = disk_image(64);
    let env = Env {
        pool: Pool::Tiny,
        ..Env::default()
    };
    with_devices::<_, 256, _>(env, MemDisk::new(&mut img, false), None, |r| {
        use crate::dma::{BounceWait, DmaDirection, DmaMemory};
        r.enable_pci();
        // Another device holds all the bounce space.
        let other = crate::memory::DeviceId::test(9);
        let held = r
            .space
            .map(
                other,
                MMIO_BASE + 0x8000,
                512,
                DmaDirection::DeviceReadsMemory,
            )
            .unwrap();
        r.prds(PRD_TABLE, &[(MMIO_BASE as u32, 1024, true)]);
        r.lba28(2, 2);
        r.command(opcode::READ_DMA);
        r.bm_cmd(0x09);
        assert!(!r.irq.level());
        assert_eq!(r.alt_status(), ST_DRQ);
        assert_eq!(r.bm_status(), 0x01);
        assert!(!r.ide.is_idle());
        assert_eq!(r.ide.stats().bounce_waits, 1);
        assert_eq!(r.space.poll_retry(), None);
        drop(held);
        assert_eq!(r.space.poll_retry(), Some(r.ide.requester()));
        r.ide.on_bounce_free();
        assert!(r.irq.level());
        assert_eq!(r.status(), ST_READY);
        assert_eq!(r.bm_status(), 0x04);
        assert_eq!(&r.mmio.snapshot()[..1024], &image(2, 2)[..]);
        assert!(r.ide.is_idle());
    });
}

#[test]
fn iov_capacity_splits_only_when_needed() {
    let mut img = disk_image(64);
    with_devices::<_, 4, _>(Env::default(), MemDisk::new(&mut img, false), None, |r| {
        r.enable_pci();
        let entries: Vec<(u32, u32, bool)> = (0..8)
            .map(|i| (0x10000 + i * 0x1000, 512, i == 7))
            .collect();
        r.prds(PRD_TABLE, &entries);
        r.lba28(16, 8);
        dma(r, opcode::READ_DMA, true);
        for i in 0..8u32 {
            assert_eq!(
                r.mem(u64::from(0x10000 + i * 0x1000), 512),
                image(16 + i as usize, 1)
            );
        }
        assert_eq!(r.master().rw_requests(), 2, "8 pieces in vectors of 4");
        // Four pieces fit one request.
        r.prds(PRD_TABLE, &entries[4..]);
        r.lba28(0, 4);
        dma(r, opcode::READ_DMA, true);
        assert_eq!(r.master().rw_requests(), 3);
    });
}

#[test]
fn write_through_flushes_before_completion() {
    with_disk(64, |r| {
        r.enable_pci();
        r.outb(FEATURES, crate::ide::feature::DISABLE_WRITE_CACHE);
        r.command(opcode::SET_FEATURES);
        assert_eq!(r.status(), ST_READY);
        let flushes = r.disk_flushes();
        r.prds(PRD_TABLE, &[(0x10000, 512, true)]);
        r.lba28(3, 1);
        dma(r, opcode::WRITE_DMA, false);
        assert_eq!(r.disk_flushes(), flushes + 1);
        r.lba28(3, 1);
        dma(r, opcode::READ_DMA, true);
        assert_eq!(r.disk_flushes(), flushes + 1, "reads do not flush");
        // PIO writes too.
        r.lba28(3, 1);
        r.command(opcode::WRITE_SECTORS);
        for _ in 0..128 {
            r.outl(DATA, 0);
        }
        assert_eq!(r.status(), ST_READY);
        assert_eq!(r.disk_flushes(), flushes + 2);
        assert_eq!(r.ide.stats().write_through_flushes, 2);
        // Cache back on: writes no longer flush, FLUSH CACHE still does.
        r.outb(FEATURES, crate::ide::feature::ENABLE_WRITE_CACHE);
        r.command(opcode::SET_FEATURES);
        r.lba28(3, 1);
        dma(r, opcode::WRITE_DMA, false);
        assert_eq!(r.disk_flushes(), flushes + 2);
        r.command(opcode::FLUSH_CACHE);
        assert_eq!(r.status(), ST_READY);
        assert_eq!(r.disk_flushes(), flushes + 3);
        assert_eq!(r.ide.stats().write_through_flushes, 2);
    });
}

#[test]
fn dma_to_slave_disk() {
    let mut a = disk_image(16);
    let mut b = vec![0x77u8; 16 * 512];
    with_devices::<_, 256, _>(
        Env::default(),
        MemDisk::new(&mut a, false),
        Some(MemDisk::new(&mut b, false)),
        |r| {
            r.enable_pci();
            r.prds(PRD_TABLE, &[(0x10000, 512, true)]);
            r.outb(DEVICE, 0xF0);
            r.outb(NSECT, 1);
            r.outb(LBAL, 5);
            r.outb(LBAM, 0);
            r.outb(LBAH, 0);
            dma(r, opcode::READ_DMA, true);
            assert_eq!(r.mem(0x10000, 512), vec![0x77u8; 512]);
            r.set_mem(0x10000, &[0x12u8; 512]);
            r.outb(NSECT, 1);
            dma(r, opcode::WRITE_DMA, false);
            assert_eq!(
                &r.ide.disk(Unit::Slave).unwrap().data()[6 * 512..7 * 512],
                &[0x12u8; 512][..]
            );
            assert_eq!(
                r.ide.disk(Unit::Master).unwrap().data(),
                &disk_image(16)[..]
            );
        },
    );
}

/// Master and slave of different backend types, as `&mut dyn BlockDevice`
/// (the blanket impl for `&mut T`): a MemDisk master and a HugeDisk slave
/// each serve their own DMA.
#[test]
fn drives_of_different_types_through_dyn() {
    let mut a = disk_image(16);
    let mut master = MemDisk::new(&mut a, false);
    let mut slave = HugeDisk::new(1 << 20);
    type Dyn<'d> = &'d mut dyn for<'x> crate::block::BlockDevice<'x>;
    with_devices::<Dyn<'_>, 256, _>(Env::default(), &mut master, Some(&mut slave), |r| {
        r.enable_pci();
        r.prds(PRD_TABLE, &[(0x10000, 2 * 512, true)]);
        r.lba28(3, 2);
        dma(r, opcode::READ_DMA, true);
        assert_eq!(r.mem(0x10000, 2 * 512), image(3, 2));
        r.prds(PRD_TABLE, &[(0x10000, 512, true)]);
        r.outb(DEVICE, 0xF0);
        r.outb(NSECT, 1);
        r.outb(LBAL, 9);
        r.outb(LBAM, 0);
        r.outb(LBAH, 0);
        dma(r, opcode::WRITE_DMA, false);
        assert_eq!(r.ide.disk(Unit::Slave).unwrap().sector_count(), 1 << 20);
    });
    assert_eq!(master.rw_requests(), 1);
    assert_eq!(slave.writes, [(9, 1)]);
}
