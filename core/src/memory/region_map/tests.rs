use super::*;
use crate::memory::MmioError;
use crate::testutil::{DenyMmio, RamLikeMmio};
use proptest::prelude::*;
use std::vec;
use std::vec::Vec;

#[test]
fn add_lookup_and_errors() {
    let mut ram = vec![0u8; 0x1000];
    let mmio = RamLikeMmio::new(0x100);
    let mut m = RegionMap::<4>::new();
    assert!(m.is_empty());
    m.add_ram(0x1000, RamBacking::from_mut_slice(&mut ram))
        .unwrap();
    m.add_mmio(0x3000, 0x100, &mmio, None).unwrap();
    assert_eq!(m.len(), 2);
    assert_eq!(
        m.add_mmio(0x1FFF, 1, &mmio, None),
        Err(MemError::Overlap { existing: 0x1000 })
    );
    assert_eq!(
        m.add_mmio(0x2F00, 0x101, &mmio, None),
        Err(MemError::Overlap { existing: 0x3000 })
    );
    assert_eq!(
        m.add_mmio(0x5000, 0, &mmio, None),
        Err(MemError::ZeroLength)
    );
    assert_eq!(
        m.add_mmio(u64::MAX, 2, &mmio, None),
        Err(MemError::Overflow { addr: u64::MAX })
    );
    m.add_mmio(u64::MAX, 1, &mmio, None).unwrap();
    m.add_mmio(0, 0x10, &mmio, None).unwrap();
    assert_eq!(m.add_mmio(0x9000, 1, &mmio, None), Err(MemError::MapFull));
    assert_eq!(m.lookup(0x1000).unwrap().start(), 0x1000);
    assert_eq!(m.lookup(0x1FFF).unwrap().start(), 0x1000);
    assert!(m.lookup(0x2000).is_none());
    assert!(m.lookup(0x10).is_none());
    assert_eq!(m.lookup(u64::MAX).unwrap().start(), u64::MAX);
    assert!(m.remove(0x3000));
    assert!(!m.remove(0x3000));
    assert!(m.lookup(0x3000).is_none());
}

#[test]
fn backing_size_must_match() {
    let r = Region::new(
        0,
        10,
        RegionKind::Mmio {
            handler: &DenyMmio,
            owner: None,
        },
    );
    assert!(r.is_ok());
    let mut ram = vec![0u8; 8];
    let b = RamBacking::from_mut_slice(&mut ram);
    assert_eq!(
        Region::new(0, 9, RegionKind::Ram(b)).err(),
        Some(MemError::BackingSize)
    );
}

#[test]
fn read_write_cross_regions_and_report_holes() {
    let mut ram = vec![0u8; 0x100];
    let mmio = RamLikeMmio::new(0x100);
    let mut m = RegionMap::<4>::new();
    m.add_ram(0x100, RamBacking::from_mut_slice(&mut ram))
        .unwrap();
    m.add_mmio(0x200, 0x100, &mmio, None).unwrap();
    let data: Vec<u8> = (0..0x20).collect();
    m.write(DeviceId::HOST, 0x1F0, &data).unwrap();
    let mut back = vec![0u8; 0x20];
    m.read(DeviceId::HOST, 0x1F0, &mut back).unwrap();
    assert_eq!(back, data);
    assert_eq!(mmio.snapshot()[..0x10], data[0x10..]);
    assert_eq!(
        m.read(DeviceId::HOST, 0x2F0, &mut back),
        Err(MemError::Hole { addr: 0x300 })
    );
    assert_eq!(
        m.read(DeviceId::HOST, 0x0, &mut back),
        Err(MemError::Hole { addr: 0 })
    );
    assert_eq!(
        m.read(DeviceId::HOST, u64::MAX - 3, &mut back),
        Err(MemError::Overflow { addr: u64::MAX - 3 })
    );
    let mut none = [0u8; 0];
    m.read(DeviceId::HOST, u64::MAX, &mut none).unwrap();
}

#[test]
fn owner_and_reentrancy_are_refused() {
    let mmio = RamLikeMmio::new(0x10);
    let other = RamLikeMmio::new(0x10);
    let mut m = RegionMap::<3>::new();
    let (a, b, c) = (
        m.new_device().unwrap(),
        m.new_device().unwrap(),
        m.new_device().unwrap(),
    );
    m.add_mmio(0x0, 0x10, &mmio, Some(a)).unwrap();
    m.add_mmio(0x10, 0x10, &DenyMmio, None).unwrap();
    m.add_mmio(0x20, 0x10, &other, Some(b)).unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(
        m.read(a, 0, &mut buf),
        Err(MemError::Reentrant { addr: 0 }),
        "a device's DMA into its own MMIO"
    );
    assert_eq!(m.probe(a, 0, 4), Err(MemError::Reentrant { addr: 0 }));
    m.read(b, 0, &mut buf).unwrap();
    assert_eq!(
        m.write(b, 0x10, &buf),
        Err(MemError::Mmio {
            addr: 0x10,
            error: MmioError::Denied
        })
    );
    // b's DMA runs a's handler; a's handler does DMA into b's MMIO while b
    // is mid-access: refused (so is any device's, conservatively). The
    // host's accesses are roots, never nested: allowed.
    let nested = m.mmio_at(b, 0, |_, _| {
        let back_into_b = m.read(a, 0x20, &mut [0u8; 1]);
        let host = m.read(DeviceId::HOST, 0x0, &mut [0u8; 1]);
        let third = m.read(c, 0x20, &mut [0u8; 1]);
        Ok((back_into_b, host, third))
    });
    assert_eq!(
        nested,
        Ok((
            Err(MemError::Reentrant { addr: 0x20 }),
            Ok(()),
            Err(MemError::Reentrant { addr: 0x20 })
        ))
    );
    m.read(a, 0x20, &mut buf).unwrap();
}

/// Two threads on one region: a vCPU (the host) and a device's DMA at
/// the same time are concurrent, not re-entrant; neither is refused (the
/// old per-region flag refused whichever came second).
#[test]
fn two_threads_on_one_region_are_not_an_error() {
    let mmio = RamLikeMmio::new(0x100);
    let mut m = RegionMap::<1>::new();
    let dev = m.new_device().unwrap();
    let owner = m.new_device().unwrap();
    m.add_mmio(0x1000, 0x100, &mmio, Some(owner)).unwrap();
    std::thread::scope(|s| {
        let m = &m;
        let host = s.spawn(move || {
            for i in 0..20_000u32 {
                m.write(DeviceId::HOST, 0x1000, &i.to_le_bytes()).unwrap();
            }
        });
        let device = s.spawn(move || {
            let mut b = [0u8; 4];
            for _ in 0..20_000 {
                m.read(dev, 0x1010, &mut b).unwrap();
            }
        });
        host.join().unwrap();
        device.join().unwrap();
    });
}

proptest! {
    /// Random inserts against a model (a Vec of ranges): overlap/capacity
    /// decisions match, and lookup of random addresses matches a linear scan.
    #[test]
    fn model(ops in proptest::collection::vec((0u64..64, 1u64..16), 0..40),
             probes in proptest::collection::vec(0u64..96, 0..64)) {
        let mmio = DenyMmio;
        let mut m = RegionMap::<8>::new();
        let mut model: Vec<(u64, u64)> = Vec::new();
        for (start, len) in ops {
            let overlaps = model.iter().any(|&(s, l)| start < s + l && s < start + len);
            let r = m.add_mmio(start, len, &mmio, None);
            if overlaps {
                let is_overlap = matches!(r, Err(MemError::Overlap { .. }));
                prop_assert!(is_overlap);
            } else if model.len() == 8 {
                prop_assert_eq!(r, Err(MemError::MapFull));
            } else {
                prop_assert_eq!(r, Ok(()));
                model.push((start, len));
            }
        }
        let starts: Vec<u64> = m.iter().map(|r| r.start()).collect();
        let mut sorted = starts.clone();
        sorted.sort();
        prop_assert_eq!(&starts, &sorted);
        for a in probes {
            let want = model.iter().find(|&&(s, l)| a >= s && a < s + l).map(|&(s, _)| s);
            prop_assert_eq!(m.lookup(a).map(|r| r.start()), want);
        }
    }
}
