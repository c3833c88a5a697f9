use super::*;
use crate::block::MemDisk;
use crate::dma::{AddressSpace, BouncePool, SgList};
use crate::memory::{RamBacking, RegionMap};
use crate::testutil::RamLikeMmio;
use proptest::prelude::*;
use std::vec;
use std::vec::Vec;

const DEV: DeviceId = DeviceId(3);
const CLIENT: ClientId = ClientId(9);

fn sg(entries: &[(u64, u64)]) -> SgList<64> {
    let mut l = SgList::new();
    for &(a, n) in entries {
        l.push(a, n).unwrap();
    }
    l
}

#[test]
fn ram_list_is_one_vectored_request() {
    let mut ram = vec![0u8; 0x10000];
    for (i, b) in ram.iter_mut().enumerate() {
        *b = (i / 512) as u8;
    }
    let pool = BouncePool::<512, 1>::new();
    let mut m = RegionMap::<1>::new();
    m.add_ram(0, RamBacking::from_mut_slice(&mut ram)).unwrap();
    let space: AddressSpace<'_, 1, 1> = AddressSpace::new(m, &pool);
    let mut disk = vec![0u8; 16 * 512];
    let mut d = MemDisk::new(&mut disk, false);
    let list = sg(&[(0x1000, 512), (0x3000, 1024), (0x800, 0), (0x5000, 512)]);
    let mut t: SgTransfer<'_, 8> = SgTransfer::new(DEV, CLIENT, BlockDir::Write, 2, 2048).unwrap();
    assert_eq!(t.run(&space, list.entries(), &mut d), Ok(Progress::Done));
    assert_eq!(t.requests(), 1);
    assert_eq!(d.rw_requests, 1);
    assert_eq!(t.next_sector(), 6);
    let data = d.data();
    assert_eq!(data[2 * 512], 8);
    assert_eq!(data[3 * 512], 0x18);
    assert_eq!(data[5 * 512], 0x28);
    assert_eq!(data[6 * 512], 0);
}

#[test]
fn errors_are_typed() {
    let mut ram = vec![0u8; 0x1000];
    let pool = BouncePool::<512, 1>::new();
    let mut m = RegionMap::<1>::new();
    m.add_ram(0, RamBacking::from_mut_slice(&mut ram)).unwrap();
    let space: AddressSpace<'_, 1, 1> = AddressSpace::new(m, &pool);
    let mut disk = vec![0u8; 4 * 512];
    let mut d = MemDisk::new(&mut disk, false);
    assert_eq!(
        SgTransfer::<'_, 4>::new(DEV, CLIENT, BlockDir::Read, 0, 100).err(),
        Some(TransferError::Misaligned)
    );
    // Short list.
    let list = sg(&[(0, 512)]);
    let mut t: SgTransfer<'_, 4> = SgTransfer::new(DEV, CLIENT, BlockDir::Read, 0, 1024).unwrap();
    assert_eq!(
        t.run(&space, list.entries(), &mut d),
        Err(TransferError::ShortSgList)
    );
    assert_eq!(t.bytes_done(), 512);
    // Hole.
    let list = sg(&[(0xF00, 0x200)]);
    let mut t: SgTransfer<'_, 4> = SgTransfer::new(DEV, CLIENT, BlockDir::Read, 0, 512).unwrap();
    assert_eq!(
        t.run(&space, list.entries(), &mut d),
        Err(TransferError::Memory(MemError::Hole { addr: 0x1000 }))
    );
    // Address overflow.
    let list = sg(&[(u64::MAX, 512)]);
    let mut t: SgTransfer<'_, 4> = SgTransfer::new(DEV, CLIENT, BlockDir::Read, 0, 512).unwrap();
    assert!(matches!(
        t.run(&space, list.entries(), &mut d),
        Err(TransferError::Memory(_))
    ));
    // Out of range on the disk.
    let list = sg(&[(0, 1024)]);
    let mut t: SgTransfer<'_, 4> = SgTransfer::new(DEV, CLIENT, BlockDir::Read, 3, 1024).unwrap();
    assert_eq!(
        t.run(&space, list.entries(), &mut d),
        Err(TransferError::Block(BlockError::OutOfRange))
    );
    // Backend I/O error.
    d.fail_after(0);
    let mut t: SgTransfer<'_, 4> = SgTransfer::new(DEV, CLIENT, BlockDir::Read, 0, 1024).unwrap();
    assert_eq!(
        t.run(&space, list.entries(), &mut d),
        Err(TransferError::Block(BlockError::Io(5)))
    );
    d.heal();
    // Fragmented below one sector per I/O vector.
    let list = sg(&[(0, 2), (2, 2), (4, 2), (6, 506)]);
    let mut t: SgTransfer<'_, 2> = SgTransfer::new(DEV, CLIENT, BlockDir::Write, 0, 512).unwrap();
    assert_eq!(
        t.step(&space, list.entries(), &mut d),
        Err(TransferError::Unmappable)
    );
    // Wrong token.
    let mut t: SgTransfer<'_, 4> = SgTransfer::new(DEV, CLIENT, BlockDir::Write, 0, 512).unwrap();
    let tok = match t.step(&space, sg(&[(0, 512)]).entries(), &mut d) {
        Ok(Progress::Submitted(tok)) => tok,
        other => panic!("{other:?}"),
    };
    assert_eq!(t.cancel(&space), Err(TransferError::InFlight));
    let bogus = Completion {
        token: RequestToken(tok.0 + 100),
        result: Ok(()),
    };
    assert_eq!(t.complete(bogus), Err(TransferError::WrongToken));
    let c = d.poll().unwrap();
    assert_eq!(t.complete(c), Ok(()));
    assert!(t.is_done());
}

#[test]
fn bounce_exhaustion_waits_and_resumes_fifo() {
    let mmio = RamLikeMmio::new(0x2000);
    mmio.fill_with(|i| (i / 512) as u8 + 1);
    let pool = BouncePool::<512, 2>::new();
    let mut m = RegionMap::<1>::new();
    m.add_mmio(0x10000, 0x2000, &mmio, None).unwrap();
    let space: AddressSpace<'_, 1, 4> = AddressSpace::new(m, &pool);
    let mut disk = vec![0u8; 16 * 512];
    let mut d = MemDisk::new(&mut disk, false);
    // Someone else holds both slots.
    let h1 = space
        .map(DeviceId(50), 0x10000, 512, DmaDirection::DeviceReadsMemory)
        .unwrap();
    let h2 = space
        .map(DeviceId(50), 0x10200, 512, DmaDirection::DeviceReadsMemory)
        .unwrap();
    let list = sg(&[(0x10000, 0x2000)]);
    let mut t: SgTransfer<'_, 8> =
        SgTransfer::new(DEV, CLIENT, BlockDir::Write, 0, 0x2000).unwrap();
    assert_eq!(
        t.step(&space, list.entries(), &mut d),
        Ok(Progress::WaitingForBounce)
    );
    assert_eq!(space.poll_retry(), None);
    drop(h1);
    assert_eq!(space.poll_retry(), Some(CLIENT));
    // One slot: one sector per request until the other holder lets go.
    assert!(matches!(
        t.step(&space, list.entries(), &mut d),
        Ok(Progress::Submitted(_))
    ));
    let c = d.poll().unwrap();
    t.complete(c).unwrap();
    drop(h2);
    while space.poll_retry().is_some() {}
    assert_eq!(t.run(&space, list.entries(), &mut d), Ok(Progress::Done));
    assert_eq!(t.bytes_done(), 0x2000);
    assert!(t.requests() >= 8 / 2);
    for s in 0..16 {
        assert_eq!(d.data()[s * 512], s as u8 + 1);
    }
    assert_eq!(space.bounce().in_use(), 0);
}

#[test]
fn pieces_below_a_sector_in_bounce_are_unmappable_not_a_spin() {
    let mmio = RamLikeMmio::new(0x1000);
    let pool = BouncePool::<512, 1>::new();
    let mut m = RegionMap::<1>::new();
    m.add_mmio(0, 0x1000, &mmio, None).unwrap();
    let space: AddressSpace<'_, 1, 2> = AddressSpace::new(m, &pool);
    let mut disk = vec![0u8; 2 * 512];
    let mut d = MemDisk::new(&mut disk, false);
    let list = sg(&[(0, 256), (0x400, 256)]);
    let mut t: SgTransfer<'_, 4> = SgTransfer::new(DEV, CLIENT, BlockDir::Read, 0, 512).unwrap();
    assert_eq!(
        t.step(&space, list.entries(), &mut d),
        Err(TransferError::Unmappable)
    );
    assert_eq!(space.bounce().in_use(), 0);
    assert_eq!(t.cancel(&space), Ok(()));
}

/// Layout for the model test: RAM 0..0x3000, MMIO 0x3000..0x5000, RAM
/// 0x5000..0x6000, hole 0x6000..0x7000.
const RAM0: u64 = 0x3000;
const MMIO: (u64, u64) = (0x3000, 0x2000);
const RAM1: (u64, u64) = (0x5000, 0x1000);
const END: u64 = 0x6000;
const DISK_SECTORS: usize = 16;

fn entry() -> impl Strategy<Value = (u64, u64)> {
    (
        0u64..0x7000,
        prop_oneof![0u64..16, 1u64..1100, Just(512u64), Just(2048u64)],
    )
}

/// Runs one random transfer and checks it against a flat model. With
/// `exact`, every hole-free, long-enough list must complete; otherwise
/// (a tiny pool and I/O vector) `Unmappable` is also accepted.
fn check_model<const SLOTS: usize, const IOV: usize>(
    entries: &[(u64, u64)],
    sectors: u64,
    first: u64,
    read: bool,
    exact: bool,
) -> Result<(), TestCaseError> {
    let mut ram0 = vec![0u8; RAM0 as usize];
    let mut ram1 = vec![0u8; RAM1.1 as usize];
    let mut mem_model = vec![0u8; END as usize];
    for (i, b) in mem_model.iter_mut().enumerate() {
        *b = (i * 7 + 3) as u8;
    }
    ram0.copy_from_slice(&mem_model[..RAM0 as usize]);
    ram1.copy_from_slice(&mem_model[RAM1.0 as usize..]);
    let mmio = RamLikeMmio::new(MMIO.1 as usize);
    mmio.fill_with(|i| mem_model[MMIO.0 as usize + i]);
    let pool = BouncePool::<512, SLOTS>::new();
    let mut m = RegionMap::<3>::new();
    m.add_ram(0, RamBacking::from_mut_slice(&mut ram0)).unwrap();
    m.add_mmio(MMIO.0, MMIO.1, &mmio, None).unwrap();
    m.add_ram(RAM1.0, RamBacking::from_mut_slice(&mut ram1))
        .unwrap();
    let space: AddressSpace<'_, 3, 2> = AddressSpace::new(m, &pool);
    let mut disk_model: Vec<u8> = (0..DISK_SECTORS * 512).map(|i| (i % 251) as u8).collect();
    let mut disk = disk_model.clone();
    let mut d = MemDisk::new(&mut disk, false);

    let list = sg(entries);
    let bytes = sectors * 512;
    let first = first.min(DISK_SECTORS as u64 - sectors);
    // The model: the first `bytes` bytes of the SG list, in order.
    let mut flat: Vec<u64> = Vec::new();
    'outer: for &(a, n) in entries {
        for k in 0..n {
            if flat.len() as u64 == bytes {
                break 'outer;
            }
            flat.push(a + k);
        }
    }
    let touches_hole = flat.iter().any(|&a| a >= END);
    let short = (flat.len() as u64) < bytes;

    let dir = if read {
        BlockDir::Read
    } else {
        BlockDir::Write
    };
    let mut t: SgTransfer<'_, IOV> = SgTransfer::new(DEV, CLIENT, dir, first, bytes).unwrap();
    let r = t.run(&space, list.entries(), &mut d);
    prop_assert_eq!(space.bounce().in_use(), 0, "no bounce space leaks");
    if !exact && r == Err(TransferError::Unmappable) {
        return Ok(());
    }
    if touches_hole {
        let is_hole = matches!(r, Err(TransferError::Memory(MemError::Hole { .. })));
        prop_assert!(is_hole || short, "{:?}", r);
        return Ok(());
    }
    if short {
        prop_assert_eq!(r, Err(TransferError::ShortSgList));
        return Ok(());
    }
    prop_assert_eq!(r, Ok(Progress::Done));
    let base = first as usize * 512;
    if read {
        for (i, &a) in flat.iter().enumerate() {
            mem_model[a as usize] = disk_model[base + i];
        }
        let mut now = vec![0u8; END as usize];
        space.read(DeviceId::HOST, 0, &mut now).unwrap();
        prop_assert!(now == mem_model, "guest memory differs from the model");
    } else {
        for (i, &a) in flat.iter().enumerate() {
            disk_model[base + i] = mem_model[a as usize];
        }
        prop_assert!(d.data() == &disk_model[..], "disk differs from the model");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    /// Random SG lists over mixed RAM/MMIO (short maps at every region
    /// boundary and slot end): the bytes that reach the disk (or memory)
    /// equal a flat model; holes and short lists give typed errors.
    #[test]
    fn model(entries in proptest::collection::vec(entry(), 1..12),
             sectors in 1u64..6, first in 0u64..10, read in any::<bool>()) {
        // 12 entries split at most 3 ways fit in 40 mappings, and no sector
        // can need more than 12 bounce slots.
        check_model::<16, 40>(&entries, sectors, first, read, true)?;
    }

    /// The same with a 3-slot pool and a 5-element I/O vector: many chunks,
    /// and `Unmappable` (never a panic, spin or leak) when a sector cannot fit.
    #[test]
    fn model_tiny_pool(entries in proptest::collection::vec(entry(), 1..12),
                       sectors in 1u64..6, first in 0u64..10, read in any::<bool>()) {
        check_model::<3, 5>(&entries, sectors, first, read, false)?;
    }
}
