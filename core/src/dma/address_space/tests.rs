use super::*;
use crate::dma::{BounceArena, RetryError, RetryStatus};
use crate::memory::{MmioError, RamBacking};
use crate::testutil::{DenyMmio, RamLikeMmio};
use std::vec;

const DEV: DeviceId = DeviceId::test(1);

#[test]
fn ids_are_handed_out_by_the_map_and_the_space() {
    let arena = BounceArena::<512>::new();
    let m = RegionMap::<1>::new();
    let a = m.new_device().unwrap();
    let space: AddressSpace<'_, 1> = AddressSpace::new(m, &arena);
    let b = space.new_device().unwrap();
    assert_ne!(a, b, "one sequence: the space continues the map's");
    assert_ne!(a, DeviceId::HOST);
}

#[test]
fn ram_map_is_direct_and_clamped_to_region() {
    let mut ram = vec![0u8; 0x1000];
    let ptr = ram.as_ptr() as usize;
    let arena = BounceArena::<512>::new();
    let mut m = RegionMap::<2>::new();
    m.add_ram(0x10000, RamBacking::from_mut_slice(&mut ram))
        .unwrap();
    let space: AddressSpace<'_, 2> = AddressSpace::new(m, &arena);
    let map = space
        .map(DEV, 0x10F00, 0x400, DmaDirection::DeviceWritesMemory)
        .unwrap();
    assert!(!map.is_bounce());
    assert_eq!(map.len(), 0x100, "clamped at the region end");
    assert_eq!(
        map.slice().as_ptr() as usize,
        ptr + 0xF00,
        "no copy: a view of RAM"
    );
    map.slice().fill(0, 0x100, 0x5A);
    map.unmap(0x100).unwrap();
    let mut b = [0u8; 1];
    space.read(DEV, 0x10FFF, &mut b).unwrap();
    assert_eq!(b[0], 0x5A);
    assert_eq!(space.bounce().in_use(), 0);
}

#[test]
fn map_errors() {
    let mut ram = vec![0u8; 0x100];
    let arena = BounceArena::<512>::new();
    let own = RamLikeMmio::new(0x100);
    let mut m = RegionMap::<4>::new();
    m.add_ram(0, RamBacking::from_mut_slice(&mut ram)).unwrap();
    m.add_mmio(0x1000, 0x100, &own, Some(DEV)).unwrap();
    m.add_mmio(0x2000, 0x100, &DenyMmio, None).unwrap();
    let space: AddressSpace<'_, 4> = AddressSpace::new(m, &arena);
    let d = DmaDirection::DeviceReadsMemory;
    assert_eq!(space.map(DEV, 0, 0, d).err(), Some(MemError::ZeroLength));
    assert_eq!(
        space.map(DEV, 0x100, 1, d).err(),
        Some(MemError::Hole { addr: 0x100 })
    );
    assert_eq!(
        space.map(DEV, u64::MAX, 2, d).err(),
        Some(MemError::Overflow { addr: u64::MAX })
    );
    assert_eq!(
        space.map(DEV, 0x1000, 4, d).err(),
        Some(MemError::Reentrant { addr: 0x1000 }),
        "DMA into the device's own MMIO"
    );
    assert_eq!(
        space.probe(DEV, 0x1000, 4, d).err(),
        Some(MemError::Reentrant { addr: 0x1000 }),
        "probe checks what map checks"
    );
    assert_eq!(space.probe(DEV, 0x2080, 0x100, d), Ok(Probe::Mmio(0x80)));
    assert_eq!(space.probe(DEV, 0x80, 0x100, d), Ok(Probe::Ram(0x80)));
    assert_eq!(
        space.map(DEV, 0x2000, 4, d).err(),
        Some(MemError::Mmio {
            addr: 0x2000,
            error: MmioError::Denied
        })
    );
    assert_eq!(
        space.bounce().in_use(),
        0,
        "failed pre-fill frees the space"
    );
}

#[test]
fn bounce_prefill_and_exact_write_back() {
    let mmio = RamLikeMmio::new(0x1000);
    mmio.fill_with(|i| i as u8);
    let arena = BounceArena::<1024>::new();
    let mut m = RegionMap::<1>::new();
    m.add_mmio(0x8000, 0x1000, &mmio, None).unwrap();
    let space: AddressSpace<'_, 1> = AddressSpace::new(m, &arena);

    // Device reads memory: pre-filled from MMIO, nothing written back.
    let r = space
        .map(DEV, 0x8010, 0x2000, DmaDirection::DeviceReadsMemory)
        .unwrap();
    assert!(r.is_bounce());
    assert_eq!(r.len(), 1024, "the whole arena at most");
    let mut b = [0u8; 4];
    r.slice().copy_to(0, &mut b);
    assert_eq!(b, [0x10, 0x11, 0x12, 0x13]);
    r.unmap(1024).unwrap();
    assert!(mmio.writes.lock().unwrap().is_empty());

    // Device writes memory: zero-filled, write-back of exactly access_len.
    let w = space
        .map(DEV, 0x8000, 100, DmaDirection::DeviceWritesMemory)
        .unwrap();
    assert_eq!(
        space.bounce().in_use(),
        128,
        "a mapping costs its length in granules"
    );
    let mut z = [1u8; 100];
    w.slice().copy_to(0, &mut z);
    assert!(z.iter().all(|&x| x == 0), "bounce space starts zeroed");
    w.slice().fill(0, 100, 0xEE);
    w.unmap(10).unwrap();
    let snap = mmio.snapshot();
    assert!(snap[..10].iter().all(|&x| x == 0xEE));
    assert_eq!(
        snap[10], 10,
        "bytes past access_len untouched (CVE-2024-8612)"
    );
    let total: usize = mmio.writes.lock().unwrap().iter().map(|w| w.1).sum();
    assert_eq!(total, 10);

    // access_len larger than the mapping is clamped.
    let w = space
        .map(DEV, 0x8000, 4, DmaDirection::DeviceWritesMemory)
        .unwrap();
    w.unmap(1 << 20).unwrap();
    let snap = mmio.snapshot();
    assert_eq!(
        &snap[..5],
        &[0, 0, 0, 0, 0xEE],
        "clamped to the 4 mapped bytes"
    );

    // Drop without unmap = access_len 0.
    mmio.writes.lock().unwrap().clear();
    let w = space
        .map(DEV, 0x8000, 8, DmaDirection::DeviceWritesMemory)
        .unwrap();
    w.slice().fill(0, 8, 0x77);
    drop(w);
    assert!(mmio.writes.lock().unwrap().is_empty());
    assert_eq!(space.bounce().in_use(), 0);

    // Staging space: zeroed, exact length, never written back.
    let s = space.map_staging(DEV, 512).unwrap();
    assert_eq!((s.len(), s.is_bounce(), s.addr()), (512, true, 0));
    s.slice().fill(0, 512, 0x33);
    s.unmap(512).unwrap();
    assert!(mmio.writes.lock().unwrap().is_empty());
    assert_eq!(
        space.map_staging(DEV, 2048).err(),
        Some(MemError::BounceBusy),
        "larger than the arena"
    );
}

#[test]
fn exhaustion_retry_fifo_and_no_lost_wakeup() {
    let mmio = RamLikeMmio::new(0x1000);
    let arena = BounceArena::<1024>::new();
    let mut m = RegionMap::<1>::new();
    m.add_mmio(0, 0x1000, &mmio, None).unwrap();
    let space: AddressSpace<'_, 1> = AddressSpace::new(m, &arena);
    let (c1, c2, c3, c4) = (
        DeviceId::test(11),
        DeviceId::test(12),
        DeviceId::test(13),
        DeviceId::test(14),
    );
    let d = DmaDirection::DeviceWritesMemory;
    let a = space.map(DEV, 0, 512, d).unwrap();
    let b = space.map(DEV, 512, 512, d).unwrap();
    let g = space.bounce_generation();
    assert_eq!(
        space.map(DEV, 1024, 512, d).err(),
        Some(MemError::BounceBusy)
    );
    assert_eq!(space.register_retry(c1, g), Ok(RetryStatus::Queued));
    assert_eq!(space.register_retry(c2, g), Ok(RetryStatus::Queued));
    assert_eq!(space.register_retry(c3, g), Ok(RetryStatus::Queued));
    assert!(space.cancel_retry(c3));
    assert_eq!(space.poll_retry(), None, "nothing freed yet");
    drop(a);
    // No overtaking: with clients waiting, only the head may allocate.
    assert_eq!(
        space.map(DEV, 0, 64, d).err(),
        Some(MemError::BounceBusy),
        "a newcomer queues behind the waiters"
    );
    assert_eq!(space.poll_retry(), Some(c1));
    assert_eq!(space.poll_retry(), None, "once per release, head only");
    assert_eq!(
        space.map(c2, 0, 64, d).err(),
        Some(MemError::BounceBusy),
        "the second waiter may not overtake the head"
    );
    let got = space.map(c1, 0, 512, d).unwrap();
    // c1 was served; c2 is the new head and is handed out.
    assert_eq!(space.poll_retry(), Some(c2));
    drop(got);
    // A registration that saw an older generation retries at once, if it
    // is first in line.
    assert_eq!(space.register_retry(c2, g), Ok(RetryStatus::RetryNow));
    assert_eq!(
        space.register_retry(c4, g),
        Ok(RetryStatus::Queued),
        "c2 is still ahead of c4"
    );
    b.unmap(0).unwrap();
}

#[test]
fn retry_queue_full_is_typed() {
    let arena = BounceArena::<512, 4, 1>::new();
    let space: AddressSpace<'_, 1> = AddressSpace::new(RegionMap::new(), &arena);
    let g = space.bounce_generation();
    space.register_retry(DeviceId::test(1), g).unwrap();
    assert_eq!(
        space.register_retry(DeviceId::test(2), g),
        Err(RetryError::QueueFull)
    );
}

mod model {
    use super::*;
    use crate::dma::BOUNCE_GRANULE;
    use proptest::prelude::*;
    use std::collections::VecDeque;
    use std::vec::Vec;

    #[derive(Debug, Clone)]
    enum Op {
        Map {
            who: u16,
            off: u64,
            len: u64,
            write: bool,
        },
        Unmap {
            i: usize,
            access: usize,
        },
        Drop {
            i: usize,
        },
        Register {
            who: u16,
        },
        Cancel {
            who: u16,
        },
        Poll,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (1u16..4, 0u64..0x1000, 1u64..2000, any::<bool>())
                .prop_map(|(who, off, len, write)| Op::Map { who, off, len, write }),
            2 => (0usize..4, 0usize..2100).prop_map(|(i, access)| Op::Unmap { i, access }),
            1 => (0usize..4).prop_map(|i| Op::Drop { i }),
            1 => (1u16..4).prop_map(|who| Op::Register { who }),
            1 => (1u16..4).prop_map(|who| Op::Cancel { who }),
            1 => Just(Op::Poll),
        ]
    }

    #[derive(Clone, Copy, Debug, PartialEq)]
    enum W {
        Waiting,
        Notified,
        HandedOut,
    }

    const LIVE: usize = 4;
    const BYTES: usize = 8192;

    proptest! {
        /// Random map/unmap/drop/register/cancel/poll sequences against a
        /// model of the MMIO bytes, the live-mapping count and the FIFO
        /// retry queue with its no-overtaking admission. The arena (8 KiB,
        /// 4 live mappings of at most 2 KiB) can always fit a minimum-size
        /// mapping while fewer than 4 are live, so `BounceBusy` must come
        /// only from the live limit or a waiter ahead.
        #[test]
        fn map_unmap_sequences(ops in proptest::collection::vec(op(), 0..80)) {
            let mmio = RamLikeMmio::new(0x1000);
            let arena = BounceArena::<BYTES, LIVE, 4>::new();
            let mut m = RegionMap::<1>::new();
            m.add_mmio(0x4000, 0x1000, &mmio, None).unwrap();
            let space: AddressSpace<'_, 1> = AddressSpace::new(m, &arena);
            let mut bytes = std::vec![0u8; 0x1000];
            let mut live: Vec<(Mapping<'_>, u64, bool, u8)> = Vec::new();
            let mut queue: VecDeque<(u16, W)> = VecDeque::new();
            let mut stamp = 1u8;
            fn remove(q: &mut VecDeque<(u16, W)>, who: u16) -> bool {
                let pos = q.iter().position(|e| e.0 == who);
                if let Some(p) = pos {
                    q.remove(p);
                    if p == 0 && let Some(h) = q.front_mut() && h.1 == W::Waiting {
                        h.1 = W::Notified;
                    }
                }
                pos.is_some()
            }
            for op in ops {
                match op {
                    Op::Map { who, off, len, write } => {
                        let dir = if write { DmaDirection::DeviceWritesMemory } else { DmaDirection::DeviceReadsMemory };
                        let r = space.map(DeviceId::test(who), 0x4000 + off, len, dir);
                        let admitted = queue.front().is_none_or(|e| e.0 == who);
                        if live.len() == LIVE || !admitted {
                            prop_assert_eq!(r.err(), Some(MemError::BounceBusy));
                            continue;
                        }
                        let map = r.unwrap();
                        remove(&mut queue, who);
                        let want = len.min(0x1000 - off) as usize;
                        prop_assert!(map.len() <= want && map.len() >= want.min(512),
                            "granted {} of {}", map.len(), want);
                        let got = map.len();
                        let mut seen = std::vec![0u8; got];
                        map.slice().copy_to(0, &mut seen);
                        if write {
                            prop_assert!(seen.iter().all(|&b| b == 0), "zero-filled");
                            map.slice().fill(0, got, stamp);
                        } else {
                            prop_assert_eq!(&seen[..], &bytes[off as usize..off as usize + got]);
                        }
                        live.push((map, off, write, stamp));
                        stamp = stamp.wrapping_add(1).max(1);
                    }
                    Op::Unmap { i, .. } | Op::Drop { i } if i < live.len() => {
                        let (map, off, write, st) = live.remove(i);
                        let n = match op {
                            Op::Unmap { access, .. } => {
                                let n = access.min(map.len());
                                map.unmap(access).unwrap();
                                n
                            }
                            _ => {
                                drop(map);
                                0
                            }
                        };
                        if write {
                            bytes[off as usize..off as usize + n].fill(st);
                        }
                        for e in queue.iter_mut() {
                            if e.1 == W::Waiting { e.1 = W::Notified; }
                        }
                    }
                    Op::Unmap { .. } | Op::Drop { .. } => {}
                    Op::Register { who } => {
                        let g = space.bounce_generation();
                        let r = space.register_retry(DeviceId::test(who), g);
                        prop_assert_eq!(r, Ok(RetryStatus::Queued));
                        match queue.iter_mut().find(|e| e.0 == who) {
                            Some(e) => if e.1 == W::HandedOut { e.1 = W::Waiting },
                            None => queue.push_back((who, W::Waiting)),
                        }
                    }
                    Op::Cancel { who } => {
                        let want = remove(&mut queue, who);
                        prop_assert_eq!(space.cancel_retry(DeviceId::test(who)), want);
                    }
                    Op::Poll => {
                        let want = match queue.front_mut() {
                            Some(h) if h.1 == W::Notified => { h.1 = W::HandedOut; Some(DeviceId::test(h.0)) }
                            _ => None,
                        };
                        prop_assert_eq!(space.poll_retry(), want);
                    }
                }
                let rounded: usize = live.iter().map(|l| l.0.len().div_ceil(BOUNCE_GRANULE) * BOUNCE_GRANULE).sum();
                let in_use = space.bounce().in_use();
                prop_assert!(in_use >= rounded && in_use <= BYTES);
                prop_assert_eq!(live.is_empty(), in_use == 0);
                prop_assert_eq!(space.bounce().live(), live.len());
                prop_assert_eq!(&mmio.snapshot(), &bytes);
            }
        }
    }
}
