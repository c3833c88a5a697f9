//! IDENTIFY DEVICE data and the SET FEATURES / SET MULTIPLE patches.

use std::format;
use std::string::String;
use std::vec::Vec;

use super::harness::*;
use crate::ide::{feature, opcode};

fn identify<'a, B: crate::block::BlockDevice<'a>, const N: usize>(
    r: &mut Rig<'a, B, N>,
) -> Vec<u16> {
    let raises = r.irq.raises();
    r.command(opcode::IDENTIFY_DEVICE);
    assert_eq!(r.irq.raises(), raises + 1, "IRQ when the data is ready");
    assert_eq!(r.status(), ST_DRQ);
    let w = r.read_words(256);
    assert_eq!(r.status(), ST_READY);
    assert_eq!(r.irq.raises(), raises + 1, "no IRQ at the end of the data");
    w
}

/// Decodes an ATA string (first character in the high byte).
fn ata_string(words: &[u16]) -> String {
    words
        .iter()
        .flat_map(|w| w.to_be_bytes())
        .map(char::from)
        .collect()
}

#[test]
fn identify_words_are_spec_correct() {
    with_disk(20_000, |r| {
        let w = identify(r);
        assert_eq!(w[0], 0x0040);
        assert_eq!(
            (w[1], w[3], w[6]),
            (19, 16, 63),
            "20000 / (16*63) cylinders"
        );
        assert_eq!(ata_string(&w[10..20]), "VD00001             ");
        assert_eq!(ata_string(&w[23..27]), "0.1     ");
        assert_eq!(ata_string(&w[27..47]), format!("{:<40}", "VMDMA HARDDISK"));
        // Byte-swapped per word: the first character is the high byte.
        assert_eq!(w[27], u16::from_be_bytes(*b"VM"));
        assert_eq!(w[47], 0x8010);
        assert_eq!(w[48], 1);
        assert_eq!(w[49], 0x0B00, "IORDY, LBA, DMA");
        assert_eq!(w[50], 0x4000);
        assert_eq!(w[53], 0x0007);
        assert_eq!((w[54], w[55], w[56]), (19, 16, 63));
        assert_eq!(u32::from(w[57]) | u32::from(w[58]) << 16, 19 * 16 * 63);
        assert_eq!(w[59], 0x0110, "multiple count 16 in effect");
        assert_eq!(u32::from(w[60]) | u32::from(w[61]) << 16, 20_000);
        assert_eq!((w[62], w[63], w[64]), (0x0007, 0x0007, 0x0003));
        assert_eq!(w[69] & (1 << 14), 1 << 14, "deterministic TRIM");
        assert_eq!((w[80], w[81]), (0x00F0, 0x0016));
        assert_eq!(w[82], 0x4020, "NOP and write cache; no SMART");
        assert_eq!(w[83], 0x7400, "FLUSH EXT, FLUSH, LBA48");
        assert_eq!(w[85], 0x4020, "write cache enabled");
        assert_eq!(w[86], 0x3400);
        assert_eq!(w[88], 0x203F);
        let lba48 = (0..4).fold(0u64, |a, i| a | u64::from(w[100 + i]) << (16 * i));
        assert_eq!(lba48, 20_000);
        assert_eq!(w[169] & 1, 1, "TRIM supported");
        assert_eq!(w[255] & 0xFF, 0xA5);
        let sum = w
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .fold(0u8, |a, b| a.wrapping_add(b));
        assert_eq!(sum, 0, "checksum");
    });
}

#[test]
fn identify_with_32_bit_pio() {
    with_disk(64, |r| {
        r.command(opcode::IDENTIFY_DEVICE);
        let d: Vec<u32> = (0..128).map(|_| r.inl(DATA)).collect();
        assert_eq!(d[0] & 0xFFFF, 0x0040);
        assert_eq!(r.status(), ST_READY);
        // A further read returns 0 and moves nothing.
        assert_eq!(r.inl(DATA), 0);
    });
}

#[test]
fn lba28_capacity_is_clamped() {
    let sectors = (1u64 << 28) + 12345;
    with_devices::<_, 256, _>(Env::default(), HugeDisk::new(sectors), None, |r| {
        let w = identify(r);
        assert_eq!(u32::from(w[60]) | u32::from(w[61]) << 16, 0x0FFF_FFFF);
        let lba48 = (0..4).fold(0u64, |a, i| a | u64::from(w[100 + i]) << (16 * i));
        assert_eq!(lba48, sectors);
        assert_eq!(w[1], 16383, "cylinders clamped");
    });
}

#[test]
fn set_features_transfer_mode_and_write_cache() {
    with_disk(64, |r| {
        // MWDMA2, as Linux sets it for a PIIX3.
        r.outb(FEATURES, feature::SET_TRANSFER_MODE);
        r.outb(NSECT, 0x22);
        r.command(opcode::SET_FEATURES);
        assert_eq!(r.status(), ST_READY);
        let w = identify(r);
        assert_eq!((w[62], w[63], w[88]), (0x0007, 0x0407, 0x003F));
        // UDMA5.
        r.outb(FEATURES, feature::SET_TRANSFER_MODE);
        r.outb(NSECT, 0x45);
        r.command(opcode::SET_FEATURES);
        let w = identify(r);
        assert_eq!((w[63], w[88]), (0x0007, 0x203F));
        // PIO default clears the selections.
        r.outb(FEATURES, feature::SET_TRANSFER_MODE);
        r.outb(NSECT, 0x00);
        r.command(opcode::SET_FEATURES);
        let w = identify(r);
        assert_eq!((w[62], w[63], w[88]), (0x0007, 0x0007, 0x003F));
        // Unsupported modes and classes abort.
        for bad in [0x23, 0x46, 0x18, 0x33] {
            r.outb(FEATURES, feature::SET_TRANSFER_MODE);
            r.outb(NSECT, bad);
            r.command(opcode::SET_FEATURES);
            assert_eq!(r.status(), ST_ERR, "mode {bad:#x}");
            assert_eq!(r.error(), ERR_ABRT);
        }
        // Write cache off: word 85 and a flush; on again.
        let flushes = r.disk_flushes();
        r.outb(FEATURES, feature::DISABLE_WRITE_CACHE);
        r.command(opcode::SET_FEATURES);
        assert_eq!(r.status(), ST_READY);
        assert_eq!(r.disk_flushes(), flushes + 1);
        assert_eq!(identify(r)[85], 0x4000);
        r.outb(FEATURES, feature::ENABLE_WRITE_CACHE);
        r.command(opcode::SET_FEATURES);
        assert_eq!(r.status(), ST_READY);
        assert_eq!(identify(r)[85], 0x4020);
        // No-op subcommands succeed; others abort.
        r.outb(FEATURES, 0xAA);
        r.command(opcode::SET_FEATURES);
        assert_eq!(r.status(), ST_READY);
        r.outb(FEATURES, 0x10);
        r.command(opcode::SET_FEATURES);
        assert_eq!(r.status(), ST_ERR);
        assert_eq!(r.error(), ERR_ABRT);
    });
}

#[test]
fn set_multiple_mode_updates_word_59() {
    with_disk(64, |r| {
        r.outb(NSECT, 4);
        r.command(opcode::SET_MULTIPLE_MODE);
        assert_eq!(r.status(), ST_READY);
        assert_eq!(identify(r)[59], 0x0104);
        r.outb(NSECT, 0);
        r.command(opcode::SET_MULTIPLE_MODE);
        assert_eq!(r.status(), ST_READY);
        assert_eq!(identify(r)[59], 0);
        for bad in [3u8, 32, 255] {
            r.outb(NSECT, bad);
            r.command(opcode::SET_MULTIPLE_MODE);
            assert_eq!(r.status(), ST_ERR, "count {bad}");
            assert_eq!(r.error(), ERR_ABRT);
        }
        assert_eq!(identify(r)[59], 0, "unchanged by refused counts");
    });
}

#[test]
fn initialize_device_parameters_sets_translation() {
    with_disk(20_000, |r| {
        r.outb(DEVICE, 0xA0 | 7); // 8 heads
        r.outb(NSECT, 32);
        r.command(opcode::INITIALIZE_DEVICE_PARAMETERS);
        assert_eq!(r.status(), ST_READY);
        let w = identify(r);
        assert_eq!((w[54], w[55], w[56]), (78, 8, 32), "20000 / 256 cylinders");
        assert_eq!(
            (w[1], w[3], w[6]),
            (19, 16, 63),
            "default geometry unchanged"
        );
        // CHS read with the new translation: C=1 H=2 S=3 = 256 + 64 + 2.
        r.outb(DEVICE, 0xA0 | 2);
        r.outb(NSECT, 1);
        r.outb(LBAL, 3);
        r.outb(LBAM, 1);
        r.outb(LBAH, 0);
        r.command(opcode::READ_SECTORS);
        assert_eq!(r.status(), ST_DRQ);
        let data: Vec<u8> = r
            .read_words(256)
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect();
        assert_eq!(data, image(322, 1));
        // Zero sectors per track is refused.
        r.outb(NSECT, 0);
        r.command(opcode::INITIALIZE_DEVICE_PARAMETERS);
        assert_eq!(r.status(), ST_ERR);
        assert_eq!(r.error(), ERR_ABRT);
    });
}

impl<const N: usize> Rig<'_, crate::block::MemDisk<'_>, N> {
    pub fn disk_flushes(&self) -> u32 {
        self.master().flushes()
    }
}
