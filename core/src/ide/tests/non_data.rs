//! Non-data commands: FLUSH, READ VERIFY, READ NATIVE MAX, diagnostics,
//! power management, SEEK, and unsupported opcodes.

use super::harness::*;
use crate::block::MemDisk;
use crate::ide::opcode;

#[test]
fn flush_cache_and_ext() {
    with_disk(64, |r| {
        for op in [opcode::FLUSH_CACHE, opcode::FLUSH_CACHE_EXT] {
            let before = r.disk_flushes();
            let raises = r.irq.raises();
            r.command(op);
            assert_eq!(r.irq.raises(), raises + 1);
            assert_eq!(r.status(), ST_READY);
            assert_eq!(r.disk_flushes(), before + 1);
        }
        assert_eq!(r.ide.stats().flushes, 2);
    });
}

#[test]
fn flush_error_aborts() {
    with_disk(64, |r| {
        r.master_mut().fail_after(0);
        r.command(opcode::FLUSH_CACHE);
        assert_eq!(r.status(), ST_ERR);
        assert_eq!(r.error(), ERR_ABRT);
        assert!(matches!(
            r.ide.last_error(),
            Some(crate::ide::IdeError::Block(crate::block::BlockError::Io(5)))
        ));
    });
}

#[test]
fn read_verify_completes_with_dsc() {
    with_disk(64, |r| {
        r.lba28(5, 3);
        r.command(opcode::READ_VERIFY_SECTORS);
        assert!(r.irq.level());
        assert_eq!(r.status(), ST_READY);
        r.lba48(5, 3);
        r.command(opcode::READ_VERIFY_SECTORS_EXT);
        assert_eq!(r.status(), ST_READY);
        assert_eq!(r.master().rw_requests(), 0, "nothing read");
    });
}

#[test]
fn read_native_max_address_modes() {
    with_disk(1000, |r| {
        // LBA28.
        r.outb(DEVICE, 0xE0);
        r.command(opcode::READ_NATIVE_MAX_ADDRESS);
        assert_eq!(r.status(), ST_READY);
        assert_eq!(
            (r.inb(LBAL), r.inb(LBAM), r.inb(LBAH), r.inb(DEVICE)),
            (0xE7, 0x03, 0, 0xE0)
        );
        // LBA48: the HOB registers hold the high bytes.
        r.outb(DEVICE, 0x40);
        r.command(opcode::READ_NATIVE_MAX_ADDRESS_EXT);
        assert_eq!(r.status(), ST_READY);
        assert_eq!((r.inb(LBAL), r.inb(LBAM)), (0xE7, 0x03));
        r.outb(CTRL, 0x80);
        assert_eq!((r.inb(LBAL), r.inb(LBAM), r.inb(LBAH)), (0, 0, 0));
        r.outb(CTRL, 0x00);
        // CHS (default 16 heads x 63 sectors, 1 cylinder for 1000 sectors):
        // sector 999 = C0 H15 S55.
        r.outb(DEVICE, 0xA0);
        r.command(opcode::READ_NATIVE_MAX_ADDRESS);
        assert_eq!(r.status(), ST_READY);
        assert_eq!(
            (r.inb(LBAL), r.inb(LBAM), r.inb(LBAH), r.inb(DEVICE)),
            (55, 0, 0, 0xAF)
        );
    });
}

#[test]
fn read_native_max_above_2_28_is_truncated_like_qemu() {
    let sectors = (1u64 << 28) + 5;
    with_devices::<_, 256, _>(Env::default(), HugeDisk::new(sectors), None, |r| {
        r.outb(DEVICE, 0xE0);
        r.command(opcode::READ_NATIVE_MAX_ADDRESS);
        assert_eq!(r.status(), ST_READY);
        // Last LBA 0x1000_0004 modulo 2^28 (QEMU; ACS-2 would say 0x0FFFFFFF).
        assert_eq!(
            (r.inb(LBAL), r.inb(LBAM), r.inb(LBAH), r.inb(DEVICE)),
            (0x04, 0, 0, 0xE0)
        );
        r.outb(DEVICE, 0x40);
        r.command(opcode::READ_NATIVE_MAX_ADDRESS_EXT);
        assert_eq!((r.inb(LBAL), r.inb(LBAM), r.inb(LBAH)), (0x04, 0, 0));
        r.outb(CTRL, 0x80);
        assert_eq!((r.inb(LBAL), r.inb(LBAM), r.inb(LBAH)), (0x10, 0, 0));
    });
}

#[test]
fn execute_device_diagnostic() {
    with_disk(64, |r| {
        r.lba28(0x123456, 7);
        r.command(opcode::EXECUTE_DEVICE_DIAGNOSTIC);
        assert!(r.irq.level());
        assert_eq!(r.status(), ST_READY);
        assert_eq!(r.error(), 0x01, "diagnostic code: passed (without ERR)");
        assert_eq!(
            (r.inb(NSECT), r.inb(LBAL), r.inb(LBAM), r.inb(LBAH)),
            (1, 1, 0, 0)
        );
        assert_eq!(r.inb(DEVICE) & 0x0F, 0, "head bits cleared");
    });
}

#[test]
fn execute_device_diagnostic_on_the_slave_selects_device_0() {
    let mut a = disk_image(16);
    let mut b = disk_image(16);
    with_devices::<_, 256, _>(
        Env::default(),
        MemDisk::new(&mut a, false),
        Some(MemDisk::new(&mut b, false)),
        |r| {
            r.outb(DEVICE, 0xB0);
            assert_eq!(r.inb(DEVICE) & 0x10, 0x10);
            r.command(opcode::EXECUTE_DEVICE_DIAGNOSTIC);
            assert!(r.irq.level());
            assert_eq!(
                r.inb(DEVICE),
                0xA0,
                "DEV cleared (QEMU's ide-test diagnostic)"
            );
            assert_eq!(r.status(), ST_READY, "device 0's status");
            assert_eq!(r.error(), 0x01);
            r.outb(DEVICE, 0xB0);
            assert_eq!(r.error(), 0x01, "device 1 ran it too");
            assert_eq!((r.inb(NSECT), r.inb(LBAL)), (1, 1));
        },
    );
}

#[test]
fn power_management_and_check_power_mode() {
    with_disk(64, |r| {
        for op in [
            opcode::IDLE_IMMEDIATE,
            opcode::STANDBY_IMMEDIATE,
            opcode::IDLE,
            opcode::STANDBY,
            opcode::SLEEP,
            opcode::IDLE_IMMEDIATE_OLD,
            opcode::STANDBY_OLD,
        ] {
            r.command(op);
            assert!(r.irq.level());
            assert_eq!(r.status(), 0x40, "{op:#x}: DRDY without DSC, as QEMU");
        }
        for op in [opcode::CHECK_POWER_MODE, opcode::CHECK_POWER_MODE_OLD] {
            r.outb(NSECT, 0);
            r.command(op);
            assert_eq!(r.status(), ST_READY);
            assert_eq!(r.inb(NSECT), 0xFF, "active or idle");
        }
        r.command(opcode::SEEK);
        assert_eq!(r.status(), ST_READY);
        r.command(opcode::RECALIBRATE);
        assert_eq!(r.status(), ST_READY);
        r.outb(NSECT, 5);
        r.command(opcode::SECURITY_FREEZE_LOCK);
        assert_eq!(r.status(), ST_READY);
        assert_eq!(r.inb(NSECT), 0);
    });
}

#[test]
fn unsupported_commands_abort_with_irq() {
    with_disk(64, |r| {
        for op in [
            0x00,
            opcode::SMART,
            0xFF,
            0xA0,
            0xA1,
            0x08,
            0xE4,
            0x3D,
            0x60,
        ] {
            let raises = r.irq.raises();
            r.command(op);
            assert_eq!(r.irq.raises(), raises + 1, "{op:#x}");
            assert_eq!(r.status(), ST_ERR, "{op:#x}");
            assert_eq!(r.error(), ERR_ABRT);
            assert_eq!(
                r.ide.last_error(),
                Some(crate::ide::IdeError::Unsupported {
                    opcode: op,
                    feature: 0
                })
            );
        }
        // The next good command clears ERR.
        r.command(opcode::SEEK);
        assert_eq!(r.status(), ST_READY);
        assert_eq!(r.error(), 0);
    });
}
