//! Save, restore and restart (feature `snapshot`): register-level round
//! trips with requests in flight at every kind of operation, the refusals
//! of restore (mismatches, unreachable states, truncated and corrupt
//! input: typed errors, nothing changed), and a property test: random
//! command sequences against a backend that completes later, saved at a
//! random point and restored into a fresh controller over a copy of RAM
//! and disk; the rest of the sequence must behave exactly as on the
//! original (every register read, the IRQ line, RAM and disk at the end).

use std::vec;
use std::vec::Vec;

use proptest::prelude::*;

use super::harness::*;
use crate::block::{BlockDevice, MemDisk};
use crate::ide::{IdeController, feature, opcode};
use crate::snapshot::{Reader, SnapshotError, Writer};

const RAM: usize = 1 << 20;
const DATA_BUF: u32 = 0x20000;
const TRIM_BUF: u64 = 0x30000;

/// The controller's saved state.
fn save<'a, B: BlockDevice<'a>, const IOV: usize>(r: &Rig<'a, B, IOV>) -> Vec<u8> {
    let mut buf = vec![0u8; r.ide.max_state_len()];
    let mut w = Writer::new(&mut buf);
    r.ide.save_state(&mut w).unwrap();
    let n = w.len();
    buf.truncate(n);
    buf
}

/// Restores `state` into `r` (RAM and disk already copied) and restarts.
fn restore<'a, B: BlockDevice<'a>, const IOV: usize>(
    r: &mut Rig<'a, B, IOV>,
    state: &[u8],
) -> Result<(), SnapshotError> {
    let mut rd = Reader::new(state);
    r.ide.restore_state(&mut rd)?;
    assert_eq!(rd.remaining(), 0, "restore reads exactly what save wrote");
    r.ide.restart();
    Ok(())
}

/// Every register a guest can read without side effects, plus the IRQ.
fn observe<'a, B: BlockDevice<'a>, const IOV: usize>(r: &mut Rig<'a, B, IOV>) -> Vec<u32> {
    let mut v = vec![u32::from(r.irq.level())];
    v.push(u32::from(r.alt_status()));
    for port in [FEATURES, NSECT, LBAL, LBAM, LBAH, DEVICE] {
        v.push(u32::from(r.inb(port)));
    }
    let ctrl = r.ide.read(
        crate::ide::IoBlock::Control,
        0,
        crate::pci::AccessWidth::Byte,
    );
    v.push(ctrl);
    for off in [0u16, 2, 8, 10] {
        v.push(u32::from(r.inb(BMDMA + off)));
    }
    v.push(r.inl(BMDMA + 4));
    v
}

/// Saves `a`, copies its RAM and disk, restores the state into a fresh
/// rig over the copies (backend `wait` completing as `wait` says),
/// restarts it, and runs `f` on both.
fn cloned<'a, const IOV: usize, R>(
    a: &mut Rig<'a, Deferred<'a>, IOV>,
    wait: bool,
    f: impl for<'b> FnOnce(&mut Rig<'a, Deferred<'a>, IOV>, &mut Rig<'b, Deferred<'b>, IOV>) -> R,
) -> R {
    let state = save(a);
    let ram = a.mem(0, RAM);
    let disk = a.disk().to_vec();
    with_deferred::<IOV, _>(Env::default(), disk, |b| {
        b.master_mut().set_wait_completes(wait);
        b.set_mem(0, &ram);
        restore(b, &state).unwrap();
        f(a, b)
    })
}

/// `sectors` sectors at [`DATA_BUF`], as PRDs of one sector each with a
/// 512-byte gap between them (pieces that do not merge: with a small
/// I/O vector the command takes several requests).
fn split_prds(sectors: u32) -> Vec<(u32, u32, bool)> {
    (0..sectors)
        .map(|i| (DATA_BUF + i * 1024, 512, i + 1 == sectors))
        .collect()
}

/// Guest memory of [`split_prds`]'s buffers.
fn split_mem<'a, B: BlockDevice<'a>, const IOV: usize>(
    r: &Rig<'a, B, IOV>,
    sectors: u32,
) -> Vec<u8> {
    (0..sectors)
        .flat_map(|i| r.mem(u64::from(DATA_BUF + i * 1024), 512))
        .collect()
}

#[test]
fn idle_registers_and_drive_settings_round_trip() {
    let mut image = disk_image(64);
    with_devices::<_, 256, _>(Env::default(), MemDisk::new(&mut image, false), None, |a| {
        a.enable_pci();
        a.outb(NSECT, 4);
        a.command(opcode::SET_MULTIPLE_MODE);
        a.outb(FEATURES, feature::DISABLE_WRITE_CACHE);
        a.command(opcode::SET_FEATURES);
        a.outb(FEATURES, 0x03);
        a.outb(NSECT, 0x42); // MWDMA2
        a.command(opcode::SET_FEATURES);
        a.lba48(0x0102_0304_0506, 0x0708);
        let id_a = identify(a);
        a.outb(CTRL, 0x02); // nIEN
        a.bm_table(0x1230);
        let state = save(a);
        let before = observe(a);
        let mut image_b = disk_image(64);
        with_devices::<_, 256, _>(
            Env::default(),
            MemDisk::new(&mut image_b, false),
            None,
            |b| {
                restore(b, &state).unwrap();
                assert_eq!(observe(b), before);
                b.outb(CTRL, 0x82);
                a.outb(CTRL, 0x82);
                assert_eq!(observe(b), observe(a), "HOB bytes");
                b.outb(CTRL, 0x00);
                assert_eq!(
                    identify(b),
                    id_a,
                    "multiple count, write cache, transfer mode"
                );
            },
        );
    });
}

fn identify<'a, B: BlockDevice<'a>, const IOV: usize>(r: &mut Rig<'a, B, IOV>) -> Vec<u16> {
    r.command(opcode::IDENTIFY_DEVICE);
    assert_eq!(r.status() & 0x08, 0x08);
    r.read_words(256)
}

#[test]
fn dma_read_in_flight_is_reissued_and_completes_on_the_clone() {
    with_deferred::<2, _>(Env::default(), disk_image(64), |a| {
        a.enable_pci();
        a.prds(PRD_TABLE, &split_prds(4));
        a.lba28(8, 4);
        a.command(opcode::READ_DMA);
        a.bm_cmd(0x09);
        // Two sectors per request with IOV 2: the first completes, the
        // second is in flight when the state is saved.
        a.complete(1);
        assert_eq!(a.master().in_flight(), 1);
        assert_eq!(a.alt_status(), ST_DRQ);
        cloned(a, true, |a, b| {
            assert_eq!(b.master().in_flight(), 1, "restart re-issued the rest");
            assert_eq!(observe(b), observe(a));
            a.complete(1);
            b.complete(1);
            assert_eq!(observe(b), observe(a));
            assert!(b.irq.level());
            assert_eq!(b.bm_status(), 0x05 & !0x01 | 0x04);
            assert_eq!(b.status(), ST_READY);
            assert_eq!(split_mem(b, 4), image(8, 4));
            assert_eq!(split_mem(a, 4), image(8, 4));
            assert_eq!(
                b.master().completed(),
                1,
                "the completed half was not read again"
            );
        });
    });
}

#[test]
fn dma_write_partly_done_lands_once_on_the_clone() {
    with_deferred::<2, _>(Env::default(), disk_image(64), |a| {
        a.enable_pci();
        let data: Vec<u8> = (0..4 * 512).map(|i| (i * 7 + 3) as u8).collect();
        for i in 0..4u32 {
            a.set_mem(
                u64::from(DATA_BUF + i * 1024),
                &data[i as usize * 512..][..512],
            );
        }
        a.prds(PRD_TABLE, &split_prds(4));
        a.lba28(20, 4);
        a.command(opcode::WRITE_DMA);
        a.bm_cmd(0x01);
        a.complete(1);
        cloned(a, true, |a, b| {
            assert_eq!(
                &b.disk()[20 * 512..22 * 512],
                &data[..1024],
                "first half was on disk"
            );
            assert_eq!(
                &b.disk()[22 * 512..24 * 512],
                &image(22, 2)[..],
                "second half not yet"
            );
            a.complete(1);
            b.complete(1);
            assert_eq!(observe(b), observe(a));
            assert_eq!(b.status(), ST_READY);
            assert_eq!(&b.disk()[20 * 512..24 * 512], &data[..]);
            assert_eq!(a.disk(), b.disk());
        });
    });
}

#[test]
fn dma_waiting_for_start_runs_on_the_clone() {
    with_deferred::<256, _>(Env::default(), disk_image(64), |a| {
        a.enable_pci();
        a.prds(PRD_TABLE, &[(DATA_BUF, 1024, true)]);
        a.lba28(3, 2);
        a.command(opcode::READ_DMA);
        assert_eq!(a.alt_status(), ST_DRQ);
        cloned(a, true, |a, b| {
            assert_eq!(b.master().in_flight(), 0, "nothing issued before START");
            a.bm_cmd(0x09);
            a.complete(1);
            b.bm_cmd(0x09);
            b.complete(1);
            assert_eq!(observe(b), observe(a));
            assert_eq!(b.mem(u64::from(DATA_BUF), 1024), image(3, 2));
        });
    });
}

#[test]
fn pio_blocks_in_flight_are_reissued() {
    // A read block in flight.
    with_deferred::<256, _>(Env::default(), disk_image(64), |a| {
        a.enable_pci();
        a.lba28(5, 2);
        a.command(opcode::READ_SECTORS);
        assert_eq!(a.alt_status() & 0x80, 0x80, "BSY while the block is read");
        cloned(a, true, |a, b| {
            a.complete(1);
            b.complete(1);
            assert_eq!(observe(b), observe(a));
            let words_a = a.read_words(256);
            assert_eq!(b.read_words(256), words_a);
            a.complete(1);
            b.complete(1);
            assert_eq!(b.read_words(256), a.read_words(256));
            assert_eq!(observe(b), observe(a));
            assert_eq!(b.status(), ST_READY);
        });
    });
    // A write block in flight: its bytes come from the saved PIO buffer.
    with_deferred::<256, _>(Env::default(), disk_image(64), |a| {
        a.enable_pci();
        a.lba28(9, 1);
        a.command(opcode::WRITE_SECTORS);
        for i in 0..256u16 {
            a.outw(DATA, i.wrapping_mul(0x0101) ^ 0x5A5A);
        }
        assert_eq!(a.alt_status() & 0x80, 0x80);
        cloned(a, true, |a, b| {
            a.complete(1);
            b.complete(1);
            assert_eq!(observe(b), observe(a));
            assert_eq!(&b.disk()[9 * 512..10 * 512], &a.disk()[9 * 512..10 * 512]);
            assert_ne!(&b.disk()[9 * 512..10 * 512], &image(9, 1)[..]);
        });
    });
}

#[test]
fn flush_and_trim_in_flight_are_reissued() {
    with_deferred::<256, _>(Env::default(), disk_image(64), |a| {
        a.enable_pci();
        a.command(opcode::FLUSH_CACHE);
        assert_eq!(a.alt_status() & 0x80, 0x80);
        cloned(a, true, |a, b| {
            assert_eq!(b.master().in_flight(), 1);
            a.complete(1);
            b.complete(1);
            assert_eq!(observe(b), observe(a));
            assert_eq!(b.status(), ST_READY);
        });
    });
    with_deferred::<256, _>(Env::default(), disk_image(64), |a| {
        a.enable_pci();
        let mut block = [0u8; 512];
        for (i, (lba, n)) in [(2u64, 3u64), (10, 1), (40, 2)].into_iter().enumerate() {
            block[i * 8..i * 8 + 8].copy_from_slice(&(lba | n << 48).to_le_bytes());
        }
        a.set_mem(TRIM_BUF, &block);
        a.prds(PRD_TABLE, &[(TRIM_BUF as u32, 512, true)]);
        a.outb(FEATURES, feature::DSM_TRIM);
        a.outb(NSECT, 1);
        a.outb(DEVICE, 0x40);
        a.command(opcode::DATA_SET_MANAGEMENT);
        a.bm_cmd(0x01);
        a.complete(1); // the first range is done, the second in flight
        cloned(a, true, |a, b| {
            for _ in 0..3 {
                a.complete(1);
                b.complete(1);
                assert_eq!(observe(b), observe(a));
            }
            assert_eq!(b.status(), ST_READY);
            assert_eq!(a.disk(), b.disk());
            assert!(b.disk()[40 * 512..42 * 512].iter().all(|&x| x == 0));
        });
    });
}

#[test]
fn deferred_stop_and_reset_apply_after_the_reissued_request() {
    with_deferred::<256, _>(Env::default(), disk_image(64), |a| {
        a.enable_pci();
        a.master_mut().set_wait_completes(false);
        a.prds(PRD_TABLE, &[(DATA_BUF, 512, true)]);
        a.lba28(1, 1);
        a.command(opcode::READ_DMA);
        a.bm_cmd(0x09);
        a.bm_cmd(0x08); // STOP: deferred, the request does not finish in time
        a.outb(CTRL, 0x04); // SRST: deferred too
        a.outb(CTRL, 0x00);
        assert_eq!(a.alt_status() & 0x80, 0x80);
        cloned(a, false, |a, b| {
            assert_eq!(observe(b), observe(a));
            a.complete(1);
            b.complete(1);
            assert_eq!(observe(b), observe(a));
            assert_eq!(b.alt_status(), ST_READY);
            assert_eq!(
                b.bm_status() & 0x01,
                0,
                "ACTIVE cleared by the deferred stop"
            );
        });
    });
}

#[test]
fn save_does_not_disturb_the_running_controller() {
    with_deferred::<256, _>(Env::default(), disk_image(64), |a| {
        a.enable_pci();
        a.prds(PRD_TABLE, &[(DATA_BUF, 512, true)]);
        a.lba28(7, 1);
        a.command(opcode::READ_DMA);
        a.bm_cmd(0x09);
        let before = observe(a);
        let s1 = save(a);
        let s2 = save(a);
        assert_eq!(s1, s2);
        assert_eq!(observe(a), before);
        a.complete(1);
        assert_eq!(a.status(), ST_READY);
        assert_eq!(a.mem(u64::from(DATA_BUF), 512), image(7, 1));
    });
}

#[test]
fn saved_state_has_no_host_addresses_and_fits_the_bound() {
    with_deferred::<256, _>(Env::default(), disk_image(64), |a| {
        a.enable_pci();
        a.lba28(9, 1);
        a.command(opcode::WRITE_SECTORS);
        for _ in 0..256 {
            a.outw(DATA, 0xA5A5);
        }
        let state = save(a);
        assert!(state.len() <= a.ide.max_state_len());
        // The layout of core/README.md: 400 bytes for an idle controller
        // with one disk, plus the op's fields (a PIO block: 17) and the
        // bytes of the block being written.
        assert_eq!(state.len(), 400 + 17 + 512);
        // No 8-byte window equals the address of the PIO buffer, RAM or
        // the controller itself.
        let ram_addr = a.space as *const _ as usize as u64;
        let ide_addr = &a.ide as *const _ as usize as u64;
        for wnd in state.windows(8) {
            let v = u64::from_le_bytes(wnd.try_into().unwrap());
            assert!(v != ram_addr && v != ide_addr);
        }
    });
}

#[test]
fn restore_refuses_mismatches_and_a_busy_controller() {
    with_deferred::<256, _>(Env::default(), disk_image(64), |a| {
        a.enable_pci();
        let state = save(a);
        // Another disk size.
        with_deferred::<256, _>(Env::default(), disk_image(32), |b| {
            let err = b.ide.restore_state(&mut Reader::new(&state)).unwrap_err();
            assert_eq!(
                err,
                SnapshotError::Mismatch {
                    what: "device 0 size in sectors",
                    saved: 64,
                    here: 32
                }
            );
        });
        // Another I/O vector capacity.
        with_deferred::<8, _>(Env::default(), disk_image(64), |b| {
            let err = b.ide.restore_state(&mut Reader::new(&state)).unwrap_err();
            assert!(matches!(
                err,
                SnapshotError::Mismatch {
                    what: "I/O vector capacity (IOV)",
                    ..
                }
            ));
        });
        // A controller with a request in flight.
        with_deferred::<256, _>(Env::default(), disk_image(64), |b| {
            b.command(opcode::FLUSH_CACHE);
            assert_eq!(
                b.ide.restore_state(&mut Reader::new(&state)),
                Err(SnapshotError::Busy)
            );
        });
    });
}

/// Offsets of fields in a state saved by a controller with a master only
/// and nothing outstanding (see core/README.md, "Device state").
mod layout {
    /// Header (6) + capacities (24).
    pub const CHANNEL: usize = 30;
    pub const CONTROL: usize = CHANNEL + 2;
    /// Master task file: after IRQ, unit, control, BMDMA (10), deferred
    /// (2), bus-master flag.
    pub const TF0: usize = CHANNEL + 3 + 10 + 3;
    pub const TF0_STATUS: usize = TF0 + 10;
}

#[test]
fn restore_refuses_unreachable_states_and_changes_nothing() {
    with_deferred::<256, _>(Env::default(), disk_image(64), |a| {
        a.enable_pci();
        a.lba28(4, 9);
        let good = save(a);
        let mut bad_srst = good.clone();
        bad_srst[layout::CONTROL] |= 0x04;
        let mut bad_bsy = good.clone();
        bad_bsy[layout::TF0_STATUS] |= 0x80;
        let mut bad_drq = good.clone();
        bad_drq[layout::TF0_STATUS] |= 0x08;
        let mut bad_version = good.clone();
        bad_version[4] = 9;
        with_deferred::<256, _>(Env::default(), disk_image(64), |b| {
            let fresh = save(b);
            for (bytes, want) in [
                (
                    &bad_srst,
                    SnapshotError::Invalid("device control with SRST held"),
                ),
                (
                    &bad_bsy,
                    SnapshotError::Invalid("BSY with nothing in flight"),
                ),
                (&bad_drq, SnapshotError::Invalid("DRQ without a data phase")),
                (
                    &bad_version,
                    SnapshotError::Version {
                        found: 9,
                        expected: 1,
                    },
                ),
            ] {
                assert_eq!(b.ide.restore_state(&mut Reader::new(bytes)), Err(want));
                assert_eq!(save(b), fresh, "a refused restore changes nothing");
            }
            // Every truncation is refused, and changes nothing.
            for n in 0..good.len() {
                assert!(b.ide.restore_state(&mut Reader::new(&good[..n])).is_err());
            }
            assert_eq!(save(b), fresh);
            restore(b, &good).unwrap();
            assert_eq!(save(b), good);
        });
    });
}

#[test]
fn corrupt_states_never_panic() {
    with_deferred::<2, _>(Env::default(), disk_image(64), |a| {
        a.enable_pci();
        a.prds(PRD_TABLE, &split_prds(4));
        a.lba28(8, 4);
        a.command(opcode::WRITE_DMA);
        a.bm_cmd(0x01);
        a.complete(1);
        let good = save(a);
        let ram = a.mem(0, RAM);
        with_deferred::<2, _>(Env::default(), disk_image(64), |b| {
            b.set_mem(0, &ram);
            let mut accepted = 0;
            for i in 0..good.len() {
                for bit in 0..8 {
                    let mut s = good.clone();
                    s[i] ^= 1 << bit;
                    if b.ide.restore_state(&mut Reader::new(&s)).is_ok() {
                        accepted += 1;
                        // Whatever was accepted runs to an end.
                        b.ide.restart();
                        b.master_mut().release(64);
                        b.ide.poll();
                        // Ports may not decode any more (a flipped PCI
                        // command or BAR): accesses through the decoder.
                        for port in [0x1F7, 0x3F6, 0xC000, 0xC002] {
                            let _ = b.ide.read_port(port, crate::pci::AccessWidth::Byte);
                        }
                        b.ide.write_port(0x3F6, crate::pci::AccessWidth::Byte, 0x04);
                        b.ide.write_port(0x3F6, crate::pci::AccessWidth::Byte, 0x00);
                        b.ide.poll();
                        assert!(b.ide.drain());
                        b.ide.write_port(0x3F6, crate::pci::AccessWidth::Byte, 0x04);
                        b.ide.write_port(0x3F6, crate::pci::AccessWidth::Byte, 0x00);
                        assert!(b.ide.is_idle());
                    }
                }
            }
            assert!(
                accepted > 0,
                "register values are free-form, some flips are states"
            );
        });
    });
}

// --- The property test --------------------------------------------------

#[derive(Clone, Debug)]
enum Step {
    Dma {
        write: bool,
        sectors: u8,
        lba: u8,
        start_first: bool,
    },
    Pio {
        write: bool,
        multiple: bool,
        sectors: u8,
        lba: u8,
    },
    Data,
    Trim {
        ranges: Vec<(u8, u8)>,
    },
    Flush,
    WriteCache(bool),
    SetMultiple(u8),
    Stop,
    Start,
    Srst,
    Poke {
        reg: u8,
        value: u8,
    },
    Nien(bool),
    Release(u32),
    WaitCompletes(bool),
    Ack,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (any::<bool>(), 1u8..6, 0u8..56, any::<bool>())
            .prop_map(|(write, sectors, lba, start_first)| Step::Dma { write, sectors, lba, start_first }),
        3 => (any::<bool>(), any::<bool>(), 1u8..5, 0u8..56)
            .prop_map(|(write, multiple, sectors, lba)| Step::Pio { write, multiple, sectors, lba }),
        3 => Just(Step::Data),
        1 => proptest::collection::vec((0u8..60, 0u8..4), 1..4).prop_map(|ranges| Step::Trim { ranges }),
        1 => Just(Step::Flush),
        1 => any::<bool>().prop_map(Step::WriteCache),
        1 => prop_oneof![Just(0u8), Just(1), Just(2), Just(4), Just(3)].prop_map(Step::SetMultiple),
        2 => Just(Step::Stop),
        1 => Just(Step::Start),
        1 => Just(Step::Srst),
        1 => (1u8..7, any::<u8>()).prop_map(|(reg, value)| Step::Poke { reg, value }),
        1 => any::<bool>().prop_map(Step::Nien),
        5 => (0u32..3).prop_map(Step::Release),
        1 => any::<bool>().prop_map(Step::WaitCompletes),
        2 => Just(Step::Ack),
    ]
}

/// Runs one step; returns what the guest read.
fn run_step<'a, const IOV: usize>(
    r: &mut Rig<'a, Deferred<'a>, IOV>,
    s: &Step,
    seq: u32,
) -> Vec<u32> {
    let mut out = Vec::new();
    let idle = |r: &mut Rig<'a, Deferred<'a>, IOV>| r.alt_status() & 0x88 == 0;
    match s {
        &Step::Dma {
            write,
            sectors,
            lba,
            start_first,
        } => {
            if idle(r) {
                if write {
                    let data: Vec<u8> = (0..u32::from(sectors) * 512)
                        .map(|i| (i ^ seq) as u8)
                        .collect();
                    for i in 0..u32::from(sectors) {
                        r.set_mem(
                            u64::from(DATA_BUF + i * 1024),
                            &data[i as usize * 512..][..512],
                        );
                    }
                }
                r.prds(PRD_TABLE, &split_prds(u32::from(sectors)));
                r.lba28(u32::from(lba), sectors);
                let (op, start) = if write {
                    (opcode::WRITE_DMA, 0x01)
                } else {
                    (opcode::READ_DMA, 0x09)
                };
                if start_first {
                    r.bm_cmd(0x00);
                    r.bm_cmd(start);
                    r.command(op);
                } else {
                    r.command(op);
                    r.bm_cmd(start);
                }
            }
        }
        &Step::Pio {
            write,
            multiple,
            sectors,
            lba,
        } => {
            if idle(r) {
                r.lba28(u32::from(lba), sectors);
                r.command(match (write, multiple) {
                    (false, false) => opcode::READ_SECTORS,
                    (false, true) => opcode::READ_MULTIPLE,
                    (true, false) => opcode::WRITE_SECTORS,
                    (true, true) => opcode::WRITE_MULTIPLE,
                });
            }
        }
        Step::Data => {
            // Move one word, or a whole block, whichever way DRQ says: a
            // read phase is read, a write phase written (reads there
            // return 0 and writes to a read phase are ignored).
            if r.alt_status() & 0x88 == 0x08 {
                for i in 0..256u32 {
                    out.push(u32::from(r.inw(DATA)));
                    r.outw(DATA, (i ^ seq) as u16);
                }
            }
        }
        Step::Trim { ranges } => {
            if idle(r) {
                let mut block = [0u8; 512];
                for (i, &(lba, n)) in ranges.iter().enumerate() {
                    block[i * 8..i * 8 + 8]
                        .copy_from_slice(&(u64::from(lba) | u64::from(n) << 48).to_le_bytes());
                }
                r.set_mem(TRIM_BUF, &block);
                r.prds(PRD_TABLE, &[(TRIM_BUF as u32, 512, true)]);
                r.outb(FEATURES, feature::DSM_TRIM);
                r.outb(NSECT, 1);
                r.outb(DEVICE, 0x40);
                r.command(opcode::DATA_SET_MANAGEMENT);
                r.bm_cmd(0x01);
            }
        }
        Step::Flush => r.command(opcode::FLUSH_CACHE),
        &Step::WriteCache(on) => {
            r.outb(
                FEATURES,
                if on {
                    feature::ENABLE_WRITE_CACHE
                } else {
                    feature::DISABLE_WRITE_CACHE
                },
            );
            r.command(opcode::SET_FEATURES);
        }
        &Step::SetMultiple(n) => {
            r.outb(NSECT, n);
            r.command(opcode::SET_MULTIPLE_MODE);
        }
        Step::Stop => {
            let c = r.inb(BMDMA);
            r.bm_cmd(c & !1);
        }
        Step::Start => {
            let c = r.inb(BMDMA);
            r.bm_cmd(c | 1);
        }
        Step::Srst => {
            r.outb(CTRL, 0x04);
            r.outb(CTRL, 0x00);
        }
        &Step::Poke { reg, value } => r.outb(
            0x1F0 + u16::from(reg),
            value & if reg == 6 { 0xEF } else { 0xFF },
        ),
        &Step::Nien(on) => r.outb(CTRL, if on { 0x02 } else { 0x00 }),
        &Step::Release(n) => release(r, n),
        &Step::WaitCompletes(on) => r.master_mut().set_wait_completes(on),
        Step::Ack => {
            out.push(u32::from(r.status()));
            r.bm_ack();
        }
    }
    out.extend(observe(r));
    out
}

/// Releases at most `n` requests, and only those in flight: the
/// deferred disk would keep unused releases as credit for later requests,
/// which a fresh disk under the restored controller does not have.
fn release<'a, const IOV: usize>(r: &mut Rig<'a, Deferred<'a>, IOV>, n: u32) {
    let n = n.min(u32::try_from(r.master().in_flight()).unwrap_or(0));
    r.complete(n);
}

/// Lets everything finish: completions, a DMA waiting for START, a data
/// phase; then reads the registers once more.
fn wind_down<'a, const IOV: usize>(r: &mut Rig<'a, Deferred<'a>, IOV>) -> Vec<u32> {
    r.master_mut().set_wait_completes(true);
    let mut out = Vec::new();
    for i in 0..40 {
        release(r, 4);
        out.extend(run_step(r, &Step::Data, 1000 + i));
        out.extend(run_step(r, &Step::Start, 0));
    }
    assert!(r.ide.drain());
    out.extend(observe(r));
    out
}

fn snapshot_run(steps: &[Step], at: usize) -> Result<(), TestCaseError> {
    with_deferred::<2, _>(
        Env::default(),
        disk_image(64),
        |a| -> Result<(), TestCaseError> {
            a.enable_pci();
            let mut wait = true;
            let at = at.min(steps.len());
            for (i, s) in steps[..at].iter().enumerate() {
                if let Step::WaitCompletes(on) = s {
                    wait = *on;
                }
                run_step(a, s, i as u32);
            }
            cloned(a, wait, |a, b| -> Result<(), TestCaseError> {
                prop_assert_eq!(observe(b), observe(a), "right after restore");
                for (i, s) in steps[at..].iter().enumerate() {
                    let seq = (at + i) as u32;
                    let oa = run_step(a, s, seq);
                    let ob = run_step(b, s, seq);
                    prop_assert_eq!(ob, oa, "step {} {:?}", at + i, s);
                }
                prop_assert_eq!(wind_down(b), wind_down(a));
                prop_assert!(b.mem(0, RAM) == a.mem(0, RAM), "RAM differs");
                prop_assert!(b.disk() == a.disk(), "disk differs");
                Ok(())
            })
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn restored_controller_behaves_as_the_original(
        steps in proptest::collection::vec(step(), 0..40),
        at in 0usize..40,
    ) {
        snapshot_run(&steps, at)?;
    }
}

#[test]
fn the_driver_type_is_generic_over_controllers() {
    // The API is the same for any controller instantiation.
    fn _uses<'m, M: crate::dma::DmaMemory + ?Sized, B: BlockDevice<'m>, I: crate::ide::IrqLine>(
        c: &mut IdeController<'m, M, B, I>,
        buf: &mut [u8],
    ) -> Result<(), SnapshotError> {
        c.save_state(&mut Writer::new(buf))?;
        c.restore_state(&mut Reader::new(&[]))?;
        c.restart();
        Ok(())
    }
}

#[test]
fn dma_waiting_for_bounce_space_retries_after_restore() {
    use crate::dma::{BounceWait, DmaDirection, DmaMemory};
    let tiny = || Env {
        pool: Pool::Tiny,
        ..Env::default()
    };
    with_deferred::<256, _>(tiny(), disk_image(64), |a| {
        a.enable_pci();
        // Another device holds the one-sector arena.
        let other = a.space.new_device().unwrap();
        let held = a
            .space
            .map(
                other,
                MMIO_BASE + 0x8000,
                512,
                DmaDirection::DeviceWritesMemory,
            )
            .unwrap();
        a.prds(PRD_TABLE, &[(MMIO_BASE as u32, 512, true)]);
        a.lba28(6, 1);
        a.command(opcode::READ_DMA);
        a.bm_cmd(0x09);
        assert_eq!(a.master().in_flight(), 0, "waiting for bounce space");
        assert!(!a.ide.is_idle());
        // Restored where bounce space is short too: it waits again, and
        // goes on when the space is freed.
        let state = save(a);
        let ram = a.mem(0, RAM);
        let disk = a.disk().to_vec();
        with_deferred::<256, _>(tiny(), disk, |b| {
            let other = b.space.new_device().unwrap();
            let hog = b
                .space
                .map(
                    other,
                    MMIO_BASE + 0x8000,
                    512,
                    DmaDirection::DeviceWritesMemory,
                )
                .unwrap();
            b.set_mem(0, &ram);
            restore(b, &state).unwrap();
            assert_eq!(b.master().in_flight(), 0);
            assert!(!b.ide.is_idle(), "waiting for bounce space again");
            assert_eq!(b.space.bounce().waiting(), 1);
            drop(hog);
            while let Some(c) = b.space.poll_retry() {
                assert_eq!(c, b.ide.requester());
                b.ide.on_bounce_free();
            }
            b.complete(1);
            assert_eq!(b.status(), ST_READY);
            assert_eq!(b.mem(MMIO_BASE, 512), image(6, 1));
        });
        cloned(a, true, |a, b| {
            // The clone's arena is free: the re-issued transfer maps and
            // submits at once; the original still waits.
            assert_eq!(b.master().in_flight(), 1);
            drop(held);
            while let Some(c) = a.space.poll_retry() {
                assert_eq!(c, a.ide.requester());
                a.ide.on_bounce_free();
            }
            a.complete(1);
            b.complete(1);
            assert_eq!(observe(b), observe(a));
            assert_eq!(b.status(), ST_READY);
            assert_eq!(b.mem(MMIO_BASE, 512), image(6, 1));
            assert_eq!(a.mem(MMIO_BASE, 512), image(6, 1));
        });
    });
}
