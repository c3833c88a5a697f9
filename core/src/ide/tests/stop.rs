//! Asynchronous backends: completion through `poll`, and stopping the bus
//! master or resetting mid-transfer (drain, nothing left in flight).

use super::harness::*;
use crate::ide::opcode;

fn async_rig<R>(f: impl FnOnce(&mut Rig<'_, AsyncDisk<'_>, 256>) -> R) -> R {
    let mut img = disk_image(64);
    with_devices(Env::default(), AsyncDisk::new(&mut img), None, f)
}

#[test]
fn async_completion_through_poll() {
    async_rig(|r| {
        r.enable_pci();
        r.prds(PRD_TABLE, &[(0x10000, 2048, true)]);
        r.lba28(4, 4);
        r.command(opcode::READ_DMA);
        r.bm_cmd(0x09);
        assert_eq!(r.master().in_flight(), 1);
        assert!(!r.ide.is_idle());
        assert!(!r.irq.level());
        assert_eq!(r.alt_status(), ST_DRQ);
        assert_eq!(r.bm_status(), 0x01);
        assert!(!r.ide.poll(), "nothing finished yet");
        r.master_mut().hold = false;
        assert!(r.ide.poll());
        assert!(r.irq.level());
        assert_eq!(r.bm_status(), 0x04);
        assert_eq!(r.status(), ST_READY);
        assert_eq!(r.mem(0x10000, 2048), image(4, 4));
        assert!(r.ide.is_idle());
        assert_eq!(r.master().in_flight(), 0);
    });
}

#[test]
fn stop_mid_transfer_waits_for_the_request() {
    async_rig(|r| {
        r.enable_pci();
        r.set_mem(0x10000, &[0x5A; 1024]);
        r.prds(PRD_TABLE, &[(0x10000, 1024, true)]);
        r.lba28(30, 2);
        r.command(opcode::WRITE_DMA);
        r.bm_cmd(0x01);
        assert_eq!(r.master().in_flight(), 1);
        // The guest gives up and clears START: the write completes (it is
        // not torn), then ACTIVE clears.
        r.bm_cmd(0x00);
        assert_eq!(r.master().in_flight(), 0);
        assert!(r.master().waits >= 1, "drained with wait()");
        assert!(r.ide.is_idle());
        assert!(r.irq.level());
        assert_eq!(r.bm_status(), 0x04);
        assert_eq!(r.status(), ST_READY);
        assert_eq!(&r.disk()[30 * 512..32 * 512], &[0x5A; 1024][..]);
    });
}

#[test]
fn srst_mid_transfer_drains_then_resets() {
    async_rig(|r| {
        r.enable_pci();
        r.prds(PRD_TABLE, &[(0x10000, 512, true)]);
        r.lba28(7, 1);
        r.command(opcode::READ_DMA);
        r.bm_cmd(0x09);
        assert_eq!(r.master().in_flight(), 1);
        r.outb(CTRL, 0x0C);
        assert_eq!(r.master().in_flight(), 0);
        assert!(r.ide.is_idle());
        assert_eq!(r.mem(0x10000, 512), image(7, 1));
        r.outb(CTRL, 0x08);
        assert_eq!(r.status(), ST_READY);
        assert_eq!(r.error(), 0x01);
        assert_eq!(r.inb(LBAL), 1, "signature after the drained command");
    });
}

#[test]
fn async_flush_keeps_bsy_until_polled() {
    async_rig(|r| {
        r.command(opcode::FLUSH_CACHE_EXT);
        assert_eq!(r.alt_status(), 0xC0, "DRDY | BSY");
        assert!(!r.irq.level());
        // Writes are ignored while BSY.
        r.outb(NSECT, 0x33);
        assert_eq!(r.inb(NSECT), 1);
        r.master_mut().hold = false;
        assert!(r.ide.poll());
        assert!(r.irq.level());
        assert_eq!(r.status(), ST_READY);
        assert_eq!(r.master().inner.flushes, 1);
    });
}

#[test]
fn drain_completes_outstanding_work() {
    async_rig(|r| {
        r.command(opcode::FLUSH_CACHE);
        assert!(!r.ide.is_idle());
        r.ide.drain();
        assert!(r.ide.is_idle());
        assert_eq!(r.status(), ST_READY);
    });
}
