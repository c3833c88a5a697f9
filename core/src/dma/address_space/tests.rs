use super::*;
use crate::dma::{BouncePool, RetryStatus};
use crate::memory::{MmioError, RamBacking};
use crate::testutil::{DenyMmio, RamLikeMmio};
use std::vec;

const DEV: DeviceId = DeviceId(1);

#[test]
fn ram_map_is_direct_and_clamped_to_region() {
    let mut ram = vec![0u8; 0x1000];
    let ptr = ram.as_ptr() as usize;
    let pool = BouncePool::<512, 1>::new();
    let mut m = RegionMap::<2>::new();
    m.add_ram(0x10000, RamBacking::from_mut_slice(&mut ram))
        .unwrap();
    let space: AddressSpace<'_, 2, 2> = AddressSpace::new(m, &pool);
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
    let pool = BouncePool::<512, 1>::new();
    let own = RamLikeMmio::new(0x100);
    let mut m = RegionMap::<4>::new();
    m.add_ram(0, RamBacking::from_mut_slice(&mut ram)).unwrap();
    m.add_mmio(0x1000, 0x100, &own, Some(DEV)).unwrap();
    m.add_mmio(0x2000, 0x100, &DenyMmio, None).unwrap();
    let space: AddressSpace<'_, 4, 2> = AddressSpace::new(m, &pool);
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
        space.map(DEV, 0x2000, 4, d).err(),
        Some(MemError::Mmio {
            addr: 0x2000,
            error: MmioError::Denied
        })
    );
    assert_eq!(space.bounce().in_use(), 0, "failed pre-fill frees the slot");
}

#[test]
fn bounce_prefill_and_exact_write_back() {
    let mmio = RamLikeMmio::new(0x1000);
    mmio.fill_with(|i| i as u8);
    let pool = BouncePool::<1024, 2>::new();
    let mut m = RegionMap::<1>::new();
    m.add_mmio(0x8000, 0x1000, &mmio, None).unwrap();
    let space: AddressSpace<'_, 1, 2> = AddressSpace::new(m, &pool);

    // Device reads memory: pre-filled from MMIO, nothing written back.
    let r = space
        .map(DEV, 0x8010, 0x2000, DmaDirection::DeviceReadsMemory)
        .unwrap();
    assert!(r.is_bounce());
    assert_eq!(r.len(), 1024, "one slot at most");
    let mut b = [0u8; 4];
    r.slice().copy_to(0, &mut b);
    assert_eq!(b, [0x10, 0x11, 0x12, 0x13]);
    r.unmap(1024).unwrap();
    assert!(mmio.writes.lock().unwrap().is_empty());

    // Device writes memory: zero-filled, write-back of exactly access_len.
    let w = space
        .map(DEV, 0x8000, 100, DmaDirection::DeviceWritesMemory)
        .unwrap();
    let mut z = [1u8; 100];
    w.slice().copy_to(0, &mut z);
    assert!(z.iter().all(|&x| x == 0), "bounce buffers start zeroed");
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
}

#[test]
fn exhaustion_retry_and_no_lost_wakeup() {
    let mmio = RamLikeMmio::new(0x1000);
    let pool = BouncePool::<512, 2>::new();
    let mut m = RegionMap::<1>::new();
    m.add_mmio(0, 0x1000, &mmio, None).unwrap();
    let space: AddressSpace<'_, 1, 4> = AddressSpace::new(m, &pool);
    let d = DmaDirection::DeviceWritesMemory;
    let a = space.map(DEV, 0, 512, d).unwrap();
    let b = space.map(DEV, 512, 512, d).unwrap();
    let g = space.bounce_generation();
    assert_eq!(
        space.map(DEV, 1024, 512, d).err(),
        Some(MemError::BounceBusy)
    );
    assert!(space.bounce_in_use());

    assert_eq!(
        space.register_retry(ClientId(1), g),
        Ok(RetryStatus::Queued)
    );
    assert_eq!(
        space.register_retry(ClientId(2), g),
        Ok(RetryStatus::Queued)
    );
    assert_eq!(
        space.register_retry(ClientId(3), g),
        Ok(RetryStatus::Queued)
    );
    assert!(space.cancel_retry(ClientId(3)));
    assert_eq!(space.poll_retry(), None, "nothing freed yet");
    drop(a);
    // FIFO order, one-shot.
    assert_eq!(space.poll_retry(), Some(ClientId(1)));
    assert_eq!(space.poll_retry(), Some(ClientId(2)));
    assert_eq!(space.poll_retry(), None);
    // A registration that saw an older generation retries at once.
    assert_eq!(
        space.register_retry(ClientId(4), g),
        Ok(RetryStatus::RetryNow)
    );
    assert_eq!(space.poll_retry(), None);
    b.unmap(0).unwrap();
}

#[test]
fn retry_queue_full_is_typed() {
    let pool = BouncePool::<512, 1>::new();
    let m = RegionMap::<1>::new();
    let space: AddressSpace<'_, 1, 1> = AddressSpace::new(m, &pool);
    let g = space.bounce_generation();
    space.register_retry(ClientId(1), g).unwrap();
    assert_eq!(
        space.register_retry(ClientId(2), g),
        Err(RetryError::QueueFull)
    );
}

mod model {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;
    use std::vec::Vec;

    #[derive(Debug, Clone)]
    enum Op {
        Map { off: u64, len: u64, write: bool },
        Unmap { i: usize, access: usize },
        Drop { i: usize },
        Register { client: u16 },
        Poll,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0u64..0x1000, 1u64..2000, any::<bool>())
                .prop_map(|(off, len, write)| Op::Map { off, len, write }),
            2 => (0usize..4, 0usize..1200).prop_map(|(i, access)| Op::Unmap { i, access }),
            1 => (0usize..4).prop_map(|i| Op::Drop { i }),
            1 => (0u16..4).prop_map(|client| Op::Register { client }),
            1 => Just(Op::Poll),
        ]
    }

    proptest! {
        /// Random map/unmap/drop/register/poll sequences against a model of
        /// the MMIO bytes, the slot count and the FIFO retry queue.
        #[test]
        fn map_unmap_sequences(ops in proptest::collection::vec(op(), 0..60)) {
            const SLOTS: usize = 3;
            let mmio = RamLikeMmio::new(0x1000);
            let pool = BouncePool::<512, SLOTS>::new();
            let mut m = RegionMap::<1>::new();
            m.add_mmio(0x4000, 0x1000, &mmio, None).unwrap();
            let space: AddressSpace<'_, 1, 4> = AddressSpace::new(m, &pool);
            let mut bytes = std::vec![0u8; 0x1000];
            let mut live: Vec<(Mapping<'_>, u64, bool, u8)> = Vec::new();
            let mut queue: VecDeque<(u16, bool)> = VecDeque::new();
            let mut stamp = 1u8;
            for op in ops {
                match op {
                    Op::Map { off, len, write } => {
                        let dir = if write { DmaDirection::DeviceWritesMemory } else { DmaDirection::DeviceReadsMemory };
                        let r = space.map(DEV, 0x4000 + off, len, dir);
                        if live.len() == SLOTS {
                            prop_assert_eq!(r.err(), Some(MemError::BounceBusy));
                            continue;
                        }
                        let map = r.unwrap();
                        let want = len.min(512).min(0x1000 - off) as usize;
                        prop_assert_eq!(map.len(), want);
                        let mut seen = std::vec![0u8; want];
                        map.slice().copy_to(0, &mut seen);
                        if write {
                            prop_assert!(seen.iter().all(|&b| b == 0), "zero-filled");
                            map.slice().fill(0, want, stamp);
                        } else {
                            prop_assert_eq!(&seen[..], &bytes[off as usize..off as usize + want]);
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
                        for e in queue.iter_mut() { e.1 = true; }
                    }
                    Op::Unmap { .. } | Op::Drop { .. } => {}
                    Op::Register { client } => {
                        let g = space.bounce_generation();
                        let r = space.register_retry(ClientId(client), g);
                        prop_assert_eq!(r, Ok(RetryStatus::Queued));
                        if !queue.iter().any(|e| e.0 == client) {
                            queue.push_back((client, false));
                        }
                    }
                    Op::Poll => {
                        let want = queue.iter().position(|e| e.1).map(|p| queue.remove(p).unwrap().0);
                        prop_assert_eq!(space.poll_retry(), want.map(ClientId));
                    }
                }
                prop_assert_eq!(space.bounce().in_use(), live.len());
                prop_assert_eq!(&mmio.snapshot(), &bytes);
            }
        }
    }
}
