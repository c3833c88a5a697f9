//! Asynchronous backends: completion through `poll`, a real BSY phase for
//! PIO, and what BMDMA stop and SRST do while a request is in flight —
//! drained when the backend's `wait` completes it, deferred (the request
//! keeps its memory) when it does not. Every rig here runs a lease checker:
//! the memory a request was given must still be its own when its data
//! moves.

use super::harness::*;
use crate::dma::{DmaDirection, DmaMemory};
use crate::ide::opcode;
use crate::memory::DeviceId;

fn rig<R>(f: impl for<'a> FnOnce(&mut Rig<'a, Deferred<'a>, 256>) -> R) -> R {
    with_deferred(Env::default(), disk_image(64), f)
}

fn tiny_rig<R>(f: impl for<'a> FnOnce(&mut Rig<'a, Deferred<'a>, 256>) -> R) -> R {
    let env = Env {
        pool: Pool::Tiny,
        ..Env::default()
    };
    with_deferred(env, disk_image(64), f)
}

/// Starts READ DMA of `n` sectors at `lba` into `addr` (exact PRDs).
fn start_read<'a>(r: &mut Rig<'a, Deferred<'a>, 256>, addr: u32, lba: u32, n: u8) {
    r.enable_pci();
    r.prds(PRD_TABLE, &[(addr, u32::from(n) * 512, true)]);
    r.lba28(lba, n);
    r.command(opcode::READ_DMA);
    r.bm_cmd(0x09);
}

#[test]
fn async_completion_through_poll() {
    rig(|r| {
        start_read(r, 0x10000, 4, 4);
        assert_eq!(r.master().in_flight(), 1);
        assert!(!r.ide.is_idle());
        assert!(!r.irq.level());
        assert_eq!(r.alt_status(), ST_DRQ);
        assert_eq!(r.bm_status(), 0x01, "ACTIVE while the data moves");
        assert_eq!(r.mem(0x10000, 4), [0; 4], "data moves at completion");
        assert!(!r.ide.poll(), "nothing finished yet");
        r.complete(1);
        assert!(r.irq.level());
        assert_eq!(r.bm_status(), 0x04);
        assert_eq!(r.status(), ST_READY);
        assert_eq!(r.mem(0x10000, 2048), image(4, 4));
        assert!(r.ide.is_idle());
        assert_eq!(r.master().in_flight(), 0);
    });
}

#[test]
fn a_new_command_while_in_flight_is_ignored() {
    rig(|r| {
        start_read(r, 0x10000, 4, 1);
        r.command(opcode::IDENTIFY_DEVICE);
        r.command(opcode::FLUSH_CACHE);
        assert_eq!(r.ide.stats().commands, 1, "DRQ: commands are ignored");
        assert_eq!(r.master().in_flight(), 1);
        r.complete(1);
        assert_eq!(r.status(), ST_READY);
    });
}

#[test]
fn stop_mid_transfer_drains_when_the_backend_completes_in_time() {
    rig(|r| {
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
        assert!(r.ide.is_idle());
        assert!(r.irq.level());
        assert_eq!(r.bm_status(), 0x04);
        assert_eq!(r.status(), ST_READY);
        assert_eq!(&r.disk()[30 * 512..32 * 512], &[0x5A; 1024][..]);
        assert_eq!(r.ide.stats().deferred_stops, 0);
    });
}

#[test]
fn stop_is_deferred_while_the_request_is_still_in_flight() {
    rig(|r| {
        r.master_mut().set_wait_completes(false);
        start_read(r, 0x10000, 8, 2);
        r.bm_cmd(0x00);
        // The request keeps its memory: nothing ended.
        assert_eq!(r.master().in_flight(), 1);
        assert!(!r.irq.level());
        assert_eq!(r.bm_status(), 0x01, "ACTIVE until the request completes");
        assert_eq!(r.inb(BMDMA), 0x00, "START reads 0 at once");
        assert_eq!(r.alt_status(), ST_DRQ);
        assert!(!r.ide.is_idle());
        assert_eq!(r.ide.stats().deferred_stops, 1);
        r.complete(1);
        // As if the DMA had completed, then ACTIVE cleared.
        assert!(r.irq.level());
        assert_eq!(r.bm_status(), 0x04);
        assert_eq!(r.status(), ST_READY);
        assert_eq!(r.mem(0x10000, 1024), image(8, 2));
        assert!(r.ide.is_idle());
    });
}

/// The hole the lease closes: a late completion after STOP must not write
/// into bounce space that another client got meanwhile (on the old code
/// the stop abandoned the transfer and freed its slot).
#[test]
fn late_completion_after_stop_cannot_reach_reused_bounce_space() {
    tiny_rig(|r| {
        r.master_mut().set_wait_completes(false);
        start_read(r, MMIO_BASE as u32, 1, 1);
        r.bm_cmd(0x00);
        // The one-sector arena is still leased to the request.
        let other = DeviceId::test(50);
        assert_eq!(
            r.space
                .map(
                    other,
                    MMIO_BASE + 0x1000,
                    512,
                    DmaDirection::DeviceReadsMemory
                )
                .err(),
            Some(crate::memory::MemError::BounceBusy)
        );
        r.complete(1);
        assert_eq!(r.space.bounce().in_use(), 0);
        assert_eq!(r.mmio.snapshot()[..512], image(1, 1)[..]);
        let m = r
            .space
            .map(
                other,
                MMIO_BASE + 0x1000,
                512,
                DmaDirection::DeviceReadsMemory,
            )
            .unwrap();
        drop(m);
        assert_eq!(r.lease.unwrap().completions.get(), 1);
    });
}

/// SRST during any DMA command ends the same way: Status DRDY|DSC, Error
/// 0x01, BM INT with ACTIVE clear, IRQ — drained at once or deferred.
#[test]
fn srst_during_read_write_and_trim_ends_the_same_way() {
    for deferred in [false, true] {
        for kind in ["read", "write", "trim"] {
            rig(|r| {
                r.master_mut().set_wait_completes(!deferred);
                r.enable_pci();
                match kind {
                    "read" => {
                        // Long PRDs: the command would leave ACTIVE set.
                        r.prds(PRD_TABLE, &[(0x10000, 1024, false), (0x20000, 512, true)]);
                        r.lba28(3, 2);
                        r.command(opcode::READ_DMA);
                    }
                    "write" => {
                        r.set_mem(0x10000, &[0x77; 512]);
                        r.prds(PRD_TABLE, &[(0x10000, 512, true)]);
                        r.lba28(9, 1);
                        r.command(opcode::WRITE_DMA);
                    }
                    _ => {
                        let mut range = [0u8; 512];
                        range[..8].copy_from_slice(&(20u64 | (2u64 << 48)).to_le_bytes());
                        r.set_mem(0x10000, &range);
                        r.prds(PRD_TABLE, &[(0x10000, 512, false), (0x20000, 512, true)]);
                        r.outb(FEATURES, 0x01);
                        r.lba48(0, 1);
                        r.command(opcode::DATA_SET_MANAGEMENT);
                    }
                }
                r.bm_cmd(0x09);
                assert_eq!(r.master().in_flight(), 1, "{kind}");
                let _ = r.status();
                r.outb(CTRL, 0x04);
                if deferred {
                    assert_eq!(r.alt_status() & 0x80, 0x80, "{kind}: BSY during the reset");
                    assert_eq!(r.master().in_flight(), 1);
                    r.complete(1);
                }
                r.outb(CTRL, 0x00);
                assert_eq!(r.master().in_flight(), 0, "{kind}");
                assert!(r.irq.level(), "{kind}");
                assert_eq!(r.bm_status(), 0x04, "{kind}: INT, ACTIVE clear");
                assert_eq!(r.status(), ST_READY, "{kind}");
                assert_eq!(r.error(), 0x01, "{kind}");
                assert_eq!((r.inb(NSECT), r.inb(LBAL)), (1, 1), "{kind}: signature");
                assert!(r.ide.is_idle());
                // The channel works afterwards.
                r.bm_ack();
                r.bm_cmd(0x00);
                start_read(r, 0x30000, 40, 1);
                r.complete(1);
                assert_eq!(r.status(), ST_READY);
                assert_eq!(r.mem(0x30000, 512), image(40, 1));
            });
        }
    }
}

#[test]
fn pio_read_has_a_bsy_phase_with_a_late_backend() {
    rig(|r| {
        r.lba28(5, 2);
        r.command(opcode::READ_SECTORS);
        assert_eq!(r.alt_status(), 0xC0, "DRDY | BSY while the block is read");
        assert!(!r.irq.level());
        assert_eq!(r.inw(DATA), 0, "no data before DRQ");
        r.complete(1);
        assert!(r.irq.level());
        assert_eq!(r.status(), ST_DRQ);
        let words = r.read_words(256);
        let want = image(5, 1);
        assert_eq!(words[0], u16::from_le_bytes([want[0], want[1]]));
        // The second block is read after the first was taken: BSY again.
        assert_eq!(r.alt_status(), 0xC0);
        r.complete(1);
        assert_eq!(r.status(), ST_DRQ);
        let words = r.read_words(256);
        let want = image(6, 1);
        assert_eq!(words[255], u16::from_le_bytes([want[510], want[511]]));
        assert_eq!(r.status(), ST_READY);
        assert!(r.ide.is_idle());
    });
}

#[test]
fn pio_write_has_a_bsy_phase_and_honours_write_through() {
    rig(|r| {
        // Write cache off: every block is flushed before it completes.
        r.outb(FEATURES, 0x82);
        r.command(opcode::SET_FEATURES);
        r.complete(1);
        assert_eq!(r.status(), ST_READY);
        r.lba28(12, 1);
        r.command(opcode::WRITE_SECTORS);
        assert_eq!(r.status(), ST_DRQ);
        for _ in 0..256 {
            r.outw(DATA, 0xBEEF);
        }
        assert_eq!(r.alt_status(), 0xC0, "BSY while the block is written");
        r.complete(1);
        assert_eq!(r.alt_status(), 0xC0, "BSY while it is flushed");
        assert!(!r.irq.level());
        r.complete(1);
        assert!(r.irq.level());
        assert_eq!(r.status(), ST_READY);
        assert_eq!(&r.disk()[12 * 512..12 * 512 + 2], &[0xEF, 0xBE]);
    });
}

#[test]
fn srst_during_a_pio_read_in_flight_is_deferred() {
    rig(|r| {
        r.master_mut().set_wait_completes(false);
        r.lba28(1, 1);
        r.command(opcode::READ_SECTORS);
        r.outb(CTRL, 0x04);
        r.outb(CTRL, 0x00);
        assert_eq!(r.alt_status() & 0x80, 0x80);
        r.complete(1);
        assert_eq!(r.status(), ST_READY);
        assert_eq!(r.error(), 0x01);
        assert_eq!(r.inw(DATA), 0, "the data phase ended with the reset");
    });
}

#[test]
fn async_flush_keeps_bsy_until_polled() {
    rig(|r| {
        r.command(opcode::FLUSH_CACHE_EXT);
        assert_eq!(r.alt_status(), 0xC0, "DRDY | BSY");
        assert!(!r.irq.level());
        // Writes are ignored while BSY.
        r.outb(NSECT, 0x33);
        assert_eq!(r.inb(NSECT), 1);
        r.complete(1);
        assert!(r.irq.level());
        assert_eq!(r.status(), ST_READY);
    });
}

#[test]
fn drain_is_bounded_by_the_backend() {
    rig(|r| {
        r.command(opcode::FLUSH_CACHE);
        r.master_mut().set_wait_completes(false);
        assert!(!r.ide.drain(), "the backend's bound ran out");
        assert!(!r.ide.is_idle());
        r.master_mut().set_wait_completes(true);
        assert!(r.ide.drain());
        assert!(r.ide.is_idle());
        assert_eq!(r.status(), ST_READY);
    });
}

/// A restart of the engine after a deferred stop cancels the stop.
#[test]
fn start_again_after_a_deferred_stop() {
    rig(|r| {
        r.master_mut().set_wait_completes(false);
        start_read(r, 0x10000, 2, 1);
        r.bm_cmd(0x00);
        r.bm_cmd(0x09);
        r.complete(1);
        assert_eq!(r.bm_status(), 0x04);
        assert_eq!(r.status(), ST_READY);
        assert_eq!(r.mem(0x10000, 512), image(2, 1));
    });
}

/// The in-place reset for a host that restarts the device: refused while a
/// request is in flight (its memory stays its own), then the power-on
/// state with the disk and PIO buffer kept, and the controller works again.
#[test]
fn in_place_reset_waits_for_the_request_then_works_again() {
    rig(|r| {
        r.master_mut().set_wait_completes(false);
        start_read(r, 0x10000, 4, 1);
        assert_eq!(r.ide.reset(), Err(crate::ide::ResetError::InFlight));
        assert_eq!(r.master().in_flight(), 1);
        assert_eq!(r.alt_status(), ST_DRQ, "nothing changed");
        assert!(r.ide.pci().bus_master_enabled());
        r.complete(1);
        assert!(r.irq.level());
        assert_eq!(r.ide.reset(), Ok(()));
        assert!(!r.irq.level(), "the IRQ line is low after reset");
        assert!(!r.ide.pci().bus_master_enabled(), "PCI Command 0");
        assert_eq!(r.ide.pci().bmdma_base(), None, "BAR4 unassigned");
        // The driver sets the controller up again; the disk and the PIO
        // buffer are still there.
        r.enable_pci();
        assert_eq!(r.bm_status(), 0, "bus-master registers reset");
        assert_eq!(r.status(), ST_READY);
        r.lba28(2, 1);
        r.command(opcode::READ_SECTORS);
        r.complete(1);
        let words = r.read_words(256);
        let bytes: std::vec::Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        assert_eq!(bytes, image(2, 1), "PIO through the kept buffer");
        start_read(r, 0x20000, 6, 2);
        r.complete(1);
        assert_eq!(r.mem(0x20000, 1024), image(6, 2));
        assert_eq!(r.status(), ST_READY);
    });
}

/// A deferred SRST takes effect when a later BMDMA STOP's drain delivers
/// the request it waited for (found while testing snapshots).
#[test]
fn a_stop_whose_drain_completes_the_request_applies_a_deferred_reset() {
    rig(|r| {
        r.master_mut().set_wait_completes(false);
        start_read(r, 0x10000, 2, 1);
        r.outb(CTRL, 0x04);
        r.outb(CTRL, 0x00);
        assert_eq!(r.alt_status() & 0x80, 0x80, "the reset waits");
        r.master_mut().set_wait_completes(true);
        r.bm_cmd(0x00);
        assert_eq!(r.alt_status() & 0x80, 0, "not BSY any more");
        assert_eq!(r.error(), 0x01, "the reset ran (diagnostic code)");
        assert_eq!(r.bm_status() & 0x01, 0, "not ACTIVE");
    });
}
