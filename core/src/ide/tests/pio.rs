//! PIO data transfers: READ/WRITE SECTORS (+EXT), READ/WRITE MULTIPLE
//! (+EXT), 16- and 32-bit data port, and their error paths.

use std::vec::Vec;

use super::harness::*;
use crate::block::MemDisk;
use crate::ide::{IdeError, opcode};

/// Reads `n` sectors of PIO data with 16- or 32-bit accesses, checking the
/// per-block DRQ/IRQ protocol; `per_block` sectors per DRQ block.
fn pio_read<'a, B: crate::block::BlockDevice<'a>, const N: usize>(
    r: &mut Rig<'a, B, N>,
    n: usize,
    per_block: usize,
    wide: bool,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut left = n;
    while left > 0 {
        assert!(r.irq.level(), "IRQ for every block");
        assert_eq!(r.status(), ST_DRQ);
        let k = left.min(per_block);
        for _ in 0..k * 512 / if wide { 4 } else { 2 } {
            if wide {
                out.extend_from_slice(&r.inl(DATA).to_le_bytes());
            } else {
                out.extend_from_slice(&r.inw(DATA).to_le_bytes());
            }
        }
        left -= k;
    }
    assert!(!r.irq.level(), "no IRQ after the last block");
    assert_eq!(r.status(), ST_READY);
    out
}

/// Writes `data` by PIO, checking DRQ without IRQ before the first block
/// and an IRQ after every block (the last included).
fn pio_write<'a, B: crate::block::BlockDevice<'a>, const N: usize>(
    r: &mut Rig<'a, B, N>,
    data: &[u8],
    per_block: usize,
    wide: bool,
) {
    assert!(!r.irq.level(), "no IRQ before the first block");
    for chunk in data.chunks(per_block * 512) {
        assert_eq!(r.alt_status(), ST_DRQ);
        if wide {
            for w in chunk.chunks(4) {
                r.outl(DATA, u32::from_le_bytes(w.try_into().unwrap()));
            }
        } else {
            for w in chunk.chunks(2) {
                r.outw(DATA, u16::from_le_bytes(w.try_into().unwrap()));
            }
        }
        assert!(r.irq.level(), "IRQ after every block");
        let st = r.status();
        assert!(st == ST_DRQ || st == ST_READY, "status {st:#x}");
    }
    assert_eq!(r.status(), ST_READY);
}

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n * 512)
        .map(|i| (i as u8).wrapping_mul(7) ^ seed)
        .collect()
}

#[test]
fn read_sectors_16_and_32_bit() {
    with_disk(64, |r| {
        for wide in [false, true] {
            r.lba28(5, 3);
            r.command(opcode::READ_SECTORS);
            assert_eq!(pio_read(r, 3, 1, wide), image(5, 3));
            // The registers point past the transfer, count 0.
            assert_eq!((r.inb(LBAL), r.inb(NSECT)), (8, 0));
        }
        assert_eq!(r.ide.stats().pio_reads, 2);
        assert_eq!(r.ide.stats().bytes_read, 6 * 512);
    });
}

#[test]
fn read_sectors_ext_and_lba28_count_zero_means_256() {
    with_disk(600, |r| {
        r.lba48(300, 2);
        r.command(opcode::READ_SECTORS_EXT);
        assert_eq!(pio_read(r, 2, 1, true), image(300, 2));
        r.lba28(10, 0);
        r.command(opcode::READ_SECTORS);
        assert_eq!(pio_read(r, 256, 1, true), image(10, 256));
        assert_eq!(r.inb(LBAL), 10);
        assert_eq!(r.inb(LBAM), 1, "10 + 256 = 0x10A");
    });
}

#[test]
fn write_sectors_16_and_32_bit() {
    with_disk(64, |r| {
        let a = pattern(2, 0x11);
        r.lba28(7, 2);
        r.command(opcode::WRITE_SECTORS);
        pio_write(r, &a, 1, false);
        assert_eq!(&r.disk()[7 * 512..9 * 512], &a[..]);
        let b = pattern(3, 0x22);
        r.lba48(20, 3);
        r.command(opcode::WRITE_SECTORS_EXT);
        pio_write(r, &b, 1, true);
        assert_eq!(&r.disk()[20 * 512..23 * 512], &b[..]);
        assert_eq!(&r.disk()[23 * 512..24 * 512], &image(23, 1)[..], "no more");
        assert_eq!(r.ide.stats().bytes_written, 5 * 512);
        assert_eq!(r.master().rw_requests(), 5);
    });
}

#[test]
fn read_and_write_multiple() {
    with_disk(64, |r| {
        r.outb(NSECT, 4);
        r.command(opcode::SET_MULTIPLE_MODE);
        assert_eq!(r.status(), ST_READY);
        r.lba28(1, 6);
        r.command(opcode::READ_MULTIPLE);
        assert_eq!(pio_read(r, 6, 4, true), image(1, 6));
        assert_eq!(r.master().rw_requests(), 2, "blocks of 4 and 2 sectors");
        let d = pattern(6, 0x33);
        r.lba48(30, 6);
        r.command(opcode::WRITE_MULTIPLE_EXT);
        pio_write(r, &d, 4, false);
        assert_eq!(&r.disk()[30 * 512..36 * 512], &d[..]);
        r.lba48(30, 6);
        r.command(opcode::READ_MULTIPLE_EXT);
        assert_eq!(pio_read(r, 6, 4, false), d);
        let d2 = pattern(2, 0x44);
        r.lba28(40, 2);
        r.command(opcode::WRITE_MULTIPLE);
        pio_write(r, &d2, 4, true);
        assert_eq!(&r.disk()[40 * 512..42 * 512], &d2[..]);
    });
}

#[test]
fn multiple_commands_abort_when_mode_is_off() {
    with_disk(64, |r| {
        r.outb(NSECT, 0);
        r.command(opcode::SET_MULTIPLE_MODE);
        for op in [
            opcode::READ_MULTIPLE,
            opcode::WRITE_MULTIPLE,
            opcode::READ_MULTIPLE_EXT,
        ] {
            r.lba28(1, 1);
            r.command(op);
            assert_eq!(r.status(), ST_ERR);
            assert_eq!(r.error(), ERR_ABRT);
            assert_eq!(r.ide.last_error(), Some(IdeError::MultipleDisabled));
        }
    });
}

#[test]
fn pio_read_out_of_range() {
    with_disk(64, |r| {
        r.lba28(64, 1);
        r.command(opcode::READ_SECTORS);
        assert!(r.irq.level());
        assert_eq!(r.status(), ST_ERR);
        assert_eq!(r.error(), ERR_ABRT);
        assert_eq!(r.inw(DATA), 0, "no data phase");
        // Starting in range and running off the end: the in-range blocks
        // are offered, then ABRT (checked block by block, as QEMU).
        r.lba28(62, 3);
        r.command(opcode::READ_SECTORS);
        assert_eq!(r.status(), ST_DRQ);
        let _ = r.read_words(256);
        assert_eq!(r.status(), ST_DRQ);
        let _ = r.read_words(256);
        assert!(r.irq.level());
        assert_eq!(r.status(), ST_ERR);
        assert_eq!(r.error(), ERR_ABRT);
        assert_eq!(
            r.ide.last_error(),
            Some(IdeError::OutOfRange { lba: 64, count: 1 })
        );
    });
}

#[test]
fn pio_write_out_of_range_aborts_after_the_block() {
    with_disk(64, |r| {
        r.lba28(64, 1);
        r.command(opcode::WRITE_SECTORS);
        assert_eq!(r.status(), ST_DRQ, "QEMU checks after the data block");
        for _ in 0..256 {
            r.outw(DATA, 0xBEEF);
        }
        assert!(r.irq.level());
        assert_eq!(r.status(), ST_ERR);
        assert_eq!(r.error(), ERR_ABRT);
        assert_eq!(r.master().rw_requests(), 0);
    });
}

#[test]
fn pio_write_to_read_only_disk_aborts_and_writes_nothing() {
    let mut img = disk_image(16);
    with_devices::<_, 256, _>(Env::default(), MemDisk::new(&mut img, true), None, |r| {
        r.lba28(2, 1);
        r.command(opcode::WRITE_SECTORS);
        for _ in 0..128 {
            r.outl(DATA, 0);
        }
        assert_eq!(r.status(), ST_ERR);
        assert_eq!(r.error(), ERR_ABRT);
        assert_eq!(r.disk(), &disk_image(16)[..]);
        assert_eq!(
            r.ide.last_error(),
            Some(IdeError::Block(crate::block::BlockError::ReadOnly))
        );
        // Reads still work.
        r.lba28(2, 1);
        r.command(opcode::READ_SECTORS);
        assert_eq!(pio_read(r, 1, 1, true), image(2, 1));
    });
}

#[test]
fn pio_backend_error_is_reported() {
    with_disk(64, |r| {
        r.master_mut().fail_after(1);
        r.lba28(0, 2);
        r.command(opcode::READ_SECTORS);
        assert_eq!(r.status(), ST_DRQ);
        let _ = r.read_words(256);
        assert_eq!(r.status(), ST_ERR, "the second block's read failed");
        assert_eq!(r.error(), ERR_ABRT);
        r.master_mut().heal();
        r.master_mut().fail_after(0);
        r.lba28(0, 1);
        r.command(opcode::WRITE_SECTORS);
        for _ in 0..256 {
            r.outw(DATA, 1);
        }
        assert_eq!(r.status(), ST_ERR);
    });
}

#[test]
fn data_port_direction_is_enforced() {
    with_disk(64, |r| {
        r.lba28(3, 1);
        r.command(opcode::READ_SECTORS);
        r.outw(DATA, 0x1234); // ignored during a read phase
        let data: Vec<u8> = r
            .read_words(256)
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect();
        assert_eq!(data, image(3, 1));
        r.lba28(3, 1);
        r.command(opcode::WRITE_SECTORS);
        assert_eq!(r.inw(DATA), 0, "reads return 0 during a write phase");
        for _ in 0..256 {
            r.outw(DATA, 0x0101);
        }
        assert_eq!(&r.disk()[3 * 512..4 * 512], &[1u8; 512][..]);
    });
}

#[test]
fn chs_addressing() {
    with_disk(20_000, |r| {
        // Default 16 heads x 63 sectors: C=2 H=3 S=4 = 2*1008 + 3*63 + 3.
        r.outb(DEVICE, 0xA0 | 3);
        r.outb(NSECT, 2);
        r.outb(LBAL, 4);
        r.outb(LBAM, 2);
        r.outb(LBAH, 0);
        r.command(opcode::READ_SECTORS);
        let lba = 2 * 1008 + 3 * 63 + 3;
        assert_eq!(pio_read(r, 2, 1, false), image(lba, 2));
        assert_eq!(r.inb(LBAL), 6, "next sector in CHS form");
        // Sector number 0 is invalid.
        r.outb(DEVICE, 0xA0);
        r.outb(NSECT, 1);
        r.outb(LBAL, 0);
        r.command(opcode::READ_SECTORS);
        assert_eq!(r.status(), ST_ERR);
        assert_eq!(r.ide.last_error(), Some(IdeError::BadChsAddress));
    });
}

#[test]
fn lba48_boundaries_pio() {
    with_disk(100, |r| {
        r.lba48(99, 1);
        r.command(opcode::READ_SECTORS_EXT);
        assert_eq!(pio_read(r, 1, 1, true), image(99, 1));
        r.lba48(100, 1);
        r.command(opcode::READ_SECTORS_EXT);
        assert_eq!(r.status(), ST_ERR);
        r.lba48(u64::from(u32::MAX) << 8, 1);
        r.command(opcode::READ_SECTORS_EXT);
        assert_eq!(r.status(), ST_ERR);
    });
}

/// A backend that keeps a PIO block's token (and so may still reach the
/// PIO buffer) but refuses it with a token of its own: the block stays in
/// flight (BSY) instead of aborting and reusing the buffer.
#[test]
fn a_refusal_with_another_token_keeps_the_pio_block_in_flight() {
    use crate::block::{BlockDevice, BlockError, BlockRequest, Completion, Refused, RequestToken};
    struct TokenKeeper {
        kept: Vec<RequestToken>,
    }
    impl<'m> BlockDevice<'m> for TokenKeeper {
        fn sector_count(&self) -> u64 {
            64
        }
        fn is_read_only(&self) -> bool {
            false
        }
        fn submit(&mut self, token: RequestToken, _: BlockRequest<'_, 'm>) -> Result<(), Refused> {
            self.kept.push(token);
            Err(Refused::new(RequestToken::new(), BlockError::Io(5)))
        }
        fn poll(&mut self) -> Option<Completion> {
            None
        }
        fn wait(&mut self) -> Option<Completion> {
            None
        }
    }
    let disk = TokenKeeper { kept: Vec::new() };
    with_devices::<_, 256, _>(Env::default(), disk, None, |r| {
        r.lba28(2, 1);
        r.command(opcode::READ_SECTORS);
        assert_eq!(r.alt_status() & 0x80, 0x80, "BSY: the block is in flight");
        assert_eq!(r.ide.stats().aborted, 0, "not aborted");
        assert_eq!(r.master().kept.len(), 1, "the backend holds it");
    });
}
