//! DATA SET MANAGEMENT (TRIM) through the bus master.

use super::harness::*;
use crate::block::MemDisk;
use crate::ide::{IdeError, feature, opcode};

fn range(lba: u64, count: u16) -> [u8; 8] {
    (lba | (u64::from(count) << 48)).to_le_bytes()
}

/// Writes one 512-byte block of range entries at `addr`.
fn ranges<'a, B: crate::block::BlockDevice<'a>, const N: usize>(
    r: &mut Rig<'a, B, N>,
    addr: u64,
    entries: &[(u64, u16)],
) {
    let mut block = [0u8; 512];
    for (i, &(lba, count)) in entries.iter().enumerate() {
        block[i * 8..i * 8 + 8].copy_from_slice(&range(lba, count));
    }
    r.set_mem(addr, &block);
}

fn trim<'a, B: crate::block::BlockDevice<'a>, const N: usize>(r: &mut Rig<'a, B, N>, blocks: u16) {
    r.outb(FEATURES, 0);
    r.outb(FEATURES, feature::DSM_TRIM);
    r.outb(NSECT, (blocks >> 8) as u8);
    r.outb(NSECT, blocks as u8);
    r.outb(DEVICE, 0x40);
    r.command(opcode::DATA_SET_MANAGEMENT);
    r.bm_cmd(0x01);
}

#[test]
fn trim_discards_every_range() {
    with_disk(64, |r| {
        r.enable_pci();
        ranges(r, 0x10000, &[(2, 3), (40, 0), (10, 1), (63, 1)]);
        r.prds(PRD_TABLE, &[(0x10000, 512, true)]);
        trim(r, 1);
        assert!(r.irq.level());
        assert_eq!(r.bm_status(), 0x04);
        assert_eq!(r.status(), ST_READY);
        let d = r.master().discards().to_vec();
        assert_eq!(d, [(2, 3), (10, 1), (63, 1)], "count-0 entries skipped");
        assert!(r.disk()[2 * 512..5 * 512].iter().all(|&b| b == 0));
        assert_eq!(&r.disk()[5 * 512..6 * 512], &image(5, 1)[..]);
        assert_eq!(r.ide.stats().trim_ranges, 3);
        assert_eq!(r.ide.stats().trims, 1);
    });
}

#[test]
fn trim_entry_straddling_prds() {
    with_disk(64, |r| {
        r.enable_pci();
        ranges(r, 0x10000, &[(7, 2)]);
        let raw = r.mem(0x10000, 512);
        // Split the block at byte 4: the first entry spans both PRDs.
        r.set_mem(0x20000, &raw[..4]);
        r.set_mem(0x30000, &raw[4..]);
        r.prds(PRD_TABLE, &[(0x20000, 4, false), (0x30000, 508, true)]);
        trim(r, 1);
        assert_eq!(r.status(), ST_READY);
        let d = r.master().discards().to_vec();
        assert_eq!(d, [(7, 2)]);
    });
}

#[test]
fn trim_out_of_range_aborts() {
    with_disk(64, |r| {
        r.enable_pci();
        ranges(r, 0x10000, &[(1, 1), (63, 2)]);
        r.prds(PRD_TABLE, &[(0x10000, 512, true)]);
        trim(r, 1);
        assert!(r.irq.level());
        assert_eq!(r.bm_status(), 0x04);
        assert_eq!(r.status(), ST_ERR);
        assert_eq!(r.error(), ERR_ABRT);
        assert_eq!(
            r.ide.last_error(),
            Some(IdeError::OutOfRange { lba: 63, count: 2 })
        );
        assert_eq!(r.master().discards().len(), 1, "earlier ranges were done");
    });
}

#[test]
fn trim_on_read_only_disk_aborts() {
    let mut img = disk_image(16);
    with_devices::<_, 256, _>(Env::default(), MemDisk::new(&mut img, true), None, |r| {
        r.enable_pci();
        ranges(r, 0x10000, &[(1, 1)]);
        r.prds(PRD_TABLE, &[(0x10000, 512, true)]);
        trim(r, 1);
        assert_eq!(r.status(), ST_ERR);
        assert_eq!(r.disk(), &disk_image(16)[..]);
    });
}

#[test]
fn dsm_other_features_abort_and_zero_blocks_complete() {
    with_disk(64, |r| {
        r.enable_pci();
        r.outb(FEATURES, 0x02);
        r.outb(NSECT, 1);
        r.command(opcode::DATA_SET_MANAGEMENT);
        assert_eq!(r.status(), ST_ERR);
        assert_eq!(r.error(), ERR_ABRT);
        // Zero blocks of ranges: nothing to do, completes once started.
        r.prds(PRD_TABLE, &[(0x10000, 512, true)]);
        trim(r, 0);
        assert!(r.irq.level());
        assert_eq!(r.status(), ST_READY);
        assert_eq!(r.bm_status(), 0x04);
        assert!(r.master().discards().is_empty());
    });
}

#[test]
fn trim_with_short_prds_is_the_short_outcome() {
    with_disk(64, |r| {
        r.enable_pci();
        ranges(r, 0x10000, &[(1, 1)]);
        r.prds(PRD_TABLE, &[(0x10000, 256, true)]);
        trim(r, 1);
        assert!(!r.irq.level());
        assert_eq!(r.bm_status(), 0x00);
        assert!(r.master().discards().is_empty());
    });
}

#[test]
fn trim_block_count_is_bounded_by_identify_word_105() {
    with_disk(64, |r| {
        r.enable_pci();
        r.command(opcode::IDENTIFY_DEVICE);
        let words = r.read_words(256);
        assert_eq!(words[105], crate::ide::identify::MAX_DSM_BLOCKS);
        ranges(r, 0x10000, &[(2, 1)]);
        r.prds(PRD_TABLE, &[(0x10000, 512, true)]);
        trim(r, crate::ide::identify::MAX_DSM_BLOCKS + 1);
        assert_eq!(r.status(), 0x41, "DRDY|ERR, as every abort");
        assert_eq!(r.error(), 0x04, "ABRT");
        assert!(r.master().discards().is_empty(), "nothing discarded");
    });
}

#[test]
fn trim_count_is_the_low_byte_of_sector_count() {
    with_disk(64, |r| {
        r.enable_pci();
        ranges(r, 0x10000, &[(2, 1)]);
        r.prds(PRD_TABLE, &[(0x10000, 512, true)]);
        // One write of Sector Count: the HOB byte keeps the reset
        // signature's 1, as in QEMU's ide-test bmdma/trim.
        r.outb(FEATURES, feature::DSM_TRIM);
        r.outb(NSECT, 1);
        r.outb(DEVICE, 0x40);
        r.command(opcode::DATA_SET_MANAGEMENT);
        r.bm_cmd(0x01);
        assert_eq!(r.bm_status(), 0x04, "INT: one block, exact PRD");
        assert_eq!(r.status(), ST_READY);
        assert_eq!(r.master().discards().len(), 1);
    });
}
