//! Property test of requests in flight: random interleavings of DMA and PIO
//! commands, BMDMA stop/start, SRST, late completions (released in random
//! batches, with the backend's `wait` completing or not), and bounce
//! pressure from another device. Asserts:
//! - the lease: no completion ever moves data into memory that changed
//!   hands since its submission (the rig's lease checker; freed bounce
//!   space is poisoned, reassigned space has a new allocation id);
//! - nothing leaks: at the end the arena holds only the other device's
//!   mappings, nothing is quarantined, nobody is left in the retry queue;
//! - every DMA command ends exactly once (completed, aborted, ended on a
//!   short PRD table, or dropped by a reset before START), and no
//!   completion arrives for an ended one.

use std::vec;
use std::vec::Vec;

use proptest::prelude::*;

use super::harness::*;
use crate::dma::{BounceWait, DmaDirection, DmaMemory, Mapping};
use crate::ide::opcode;
use crate::memory::DeviceId;

#[derive(Clone, Copy, Debug)]
enum Target {
    Ram,
    Mmio,
    /// Half RAM, half MMIO, in 128-byte pieces.
    Mixed,
}

#[derive(Clone, Debug)]
enum Op {
    Dma {
        write: bool,
        target: Target,
        sectors: u8,
        lba: u8,
        start_first: bool,
    },
    PioRead {
        lba: u8,
    },
    Flush,
    Stop,
    Start,
    Srst,
    Release(u32),
    WaitCompletes(bool),
    OtherMap {
        off: u16,
        len: u16,
    },
    OtherUnmap(usize),
    Ack,
}

fn op() -> impl Strategy<Value = Op> {
    let target = prop_oneof![Just(Target::Ram), Just(Target::Mmio), Just(Target::Mixed)];
    prop_oneof![
        4 => (any::<bool>(), target, 1u8..5, 0u8..56, any::<bool>()).prop_map(
            |(write, target, sectors, lba, start_first)| Op::Dma { write, target, sectors, lba, start_first }),
        1 => (0u8..60).prop_map(|lba| Op::PioRead { lba }),
        1 => Just(Op::Flush),
        2 => Just(Op::Stop),
        1 => Just(Op::Start),
        2 => Just(Op::Srst),
        4 => (0u32..3).prop_map(Op::Release),
        1 => any::<bool>().prop_map(Op::WaitCompletes),
        2 => (0u16..0x8000, 1u16..1024).prop_map(|(off, len)| Op::OtherMap { off, len }),
        2 => (0usize..4).prop_map(Op::OtherUnmap),
        2 => Just(Op::Ack),
    ]
}

/// The PRD entries for `sectors` sectors at `target`.
fn prds(target: Target, sectors: u8) -> Vec<(u32, u32, bool)> {
    let bytes = u32::from(sectors) * 512;
    match target {
        Target::Ram => vec![(0x20000, bytes, true)],
        Target::Mmio => vec![(MMIO_BASE as u32, bytes, true)],
        Target::Mixed => {
            let n = bytes / 128;
            (0..n)
                .map(|i| {
                    let addr = if i % 2 == 0 {
                        0x20000 + i * 128
                    } else {
                        MMIO_BASE as u32 + i * 128
                    };
                    (addr, 128, i + 1 == n)
                })
                .collect()
        }
    }
}

fn run(ops: &[Op], tiny: bool) -> Result<(), TestCaseError> {
    let env = Env {
        pool: if tiny { Pool::Tiny } else { Pool::Normal },
        ..Env::default()
    };
    with_deferred::<256, _>(env, disk_image(64), |r| -> Result<(), TestCaseError> {
        r.enable_pci();
        let other = r.space.new_device().unwrap();
        let mut held: Vec<Mapping<'_>> = Vec::new();
        let ide = r.ide.requester();
        for op in ops {
            match *op {
                Op::Dma {
                    write,
                    target,
                    sectors,
                    lba,
                    start_first,
                } => {
                    if r.alt_status() & 0x88 != 0 {
                        // BSY or DRQ: the guest would not issue a command.
                        continue;
                    }
                    r.prds(PRD_TABLE, &prds(target, sectors));
                    r.lba28(u32::from(lba), sectors);
                    let start = if write { 0x01 } else { 0x09 };
                    let op = if write {
                        opcode::WRITE_DMA
                    } else {
                        opcode::READ_DMA
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
                Op::PioRead { lba } => {
                    if r.alt_status() & 0x88 == 0 {
                        r.lba28(u32::from(lba), 1);
                        r.command(opcode::READ_SECTORS);
                    }
                }
                Op::Flush => r.command(opcode::FLUSH_CACHE),
                Op::Stop => {
                    let c = r.inb(BMDMA);
                    r.bm_cmd(c & !1);
                }
                Op::Start => {
                    let c = r.inb(BMDMA);
                    r.bm_cmd(c | 1);
                }
                Op::Srst => {
                    r.outb(CTRL, 0x04);
                    r.outb(CTRL, 0x00);
                }
                Op::Release(n) => r.complete(n),
                Op::WaitCompletes(on) => r.master_mut().set_wait_completes(on),
                Op::OtherMap { off, len } => {
                    let addr = MMIO_BASE + u64::from(off);
                    if let Ok(m) = r.space.map(
                        other,
                        addr,
                        u64::from(len),
                        DmaDirection::DeviceWritesMemory,
                    ) {
                        held.push(m);
                    }
                }
                Op::OtherUnmap(i) => {
                    if i < held.len() {
                        drop(held.remove(i));
                    }
                }
                Op::Ack => {
                    let _ = r.status();
                    r.bm_ack();
                    // A PIO read waiting for the guest: take the data.
                    if r.alt_status() & 0x88 == 0x08 {
                        let _ = r.read_words(256);
                    }
                }
            }
            // The host's loop: hand bounce space to whoever waits for it.
            while let Some(c) = r.space.poll_retry() {
                prop_assert_eq!(c, ide, "only the IDE channel ever waits");
                r.ide.on_bounce_free();
            }
        }
        // Wind down: the other device lets go, every request completes, a
        // command waiting for START is kicked, and SRST resets the rest.
        drop(held);
        r.master_mut().set_wait_completes(true);
        for _ in 0..16 {
            r.complete(4);
            while let Some(c) = r.space.poll_retry() {
                prop_assert_eq!(c, ide);
                r.ide.on_bounce_free();
            }
        }
        let c = r.inb(BMDMA);
        r.bm_cmd(c & !1);
        r.bm_cmd(c | 1);
        prop_assert!(r.ide.drain());
        r.outb(CTRL, 0x04);
        r.outb(CTRL, 0x00);
        prop_assert!(r.ide.is_idle());
        prop_assert_eq!(r.master().in_flight(), 0);

        let space = r.space;
        prop_assert_eq!(space.bounce().quarantined(), 0, "nothing quarantined");
        prop_assert_eq!(space.bounce().in_use(), 0, "no bounce space leaked");
        prop_assert_eq!(space.bounce().waiting(), 0, "nobody left waiting");
        let s = *r.ide.stats();
        prop_assert_eq!(s.stray_completions, 0, "a completion for an ended command");
        prop_assert_eq!(
            s.dma_reads + s.dma_writes + s.trims,
            s.dma_ended,
            "every DMA command ends exactly once: {:?}",
            s
        );
        // The channel still works (sector 62 is never written above).
        r.prds(PRD_TABLE, &prds(Target::Ram, 1));
        r.lba28(62, 1);
        r.command(opcode::READ_DMA);
        r.bm_cmd(0x00);
        r.bm_cmd(0x09);
        r.complete(1);
        prop_assert_eq!(r.status(), ST_READY);
        prop_assert_eq!(r.mem(0x20000, 512), image(62, 1));
        let _ = DeviceId::HOST;
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn in_flight_memory_is_never_reused_normal_arena(ops in proptest::collection::vec(op(), 0..60)) {
        run(&ops, false)?;
    }

    #[test]
    fn in_flight_memory_is_never_reused_tiny_arena(ops in proptest::collection::vec(op(), 0..60)) {
        run(&ops, true)?;
    }
}
