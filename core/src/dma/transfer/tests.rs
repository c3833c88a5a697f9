use super::*;
use crate::block::{DeferredDisk, MemDisk};
use crate::dma::{AddressSpace, BounceArena, Mapping, SgList};
use crate::memory::{RamBacking, RegionMap};
use crate::testutil::RamLikeMmio;
use proptest::prelude::*;
use std::vec;
use std::vec::Vec;

const DEV: DeviceId = DeviceId::test(3);

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
    let arena = BounceArena::<512>::new();
    let mut m = RegionMap::<1>::new();
    m.add_ram(0, RamBacking::from_mut_slice(&mut ram)).unwrap();
    let space: AddressSpace<'_, 1> = AddressSpace::new(m, &arena);
    let mut disk = vec![0u8; 16 * 512];
    let mut d = MemDisk::new(&mut disk, false);
    let list = sg(&[(0x1000, 512), (0x3000, 1024), (0x800, 0), (0x5000, 512)]);
    let mut t: SgTransfer<'_, 8> = SgTransfer::new(DEV, BlockDir::Write, 2, 2048).unwrap();
    assert_eq!(t.run(&space, list.entries(), &mut d), Ok(Progress::Done));
    assert_eq!(t.requests(), 1);
    assert_eq!(d.rw_requests(), 1);
    assert_eq!(t.next_sector(), 6);
    assert_eq!((t.bounced_bytes(), t.staged_bytes()), (0, 0), "zero-copy");
    let data = d.data();
    assert_eq!(data[2 * 512], 8);
    assert_eq!(data[3 * 512], 0x18);
    assert_eq!(data[5 * 512], 0x28);
    assert_eq!(data[6 * 512], 0);
}

#[test]
fn errors_are_typed() {
    let mut ram = vec![0u8; 0x1000];
    let arena = BounceArena::<512>::new();
    let mut m = RegionMap::<1>::new();
    m.add_ram(0, RamBacking::from_mut_slice(&mut ram)).unwrap();
    let space: AddressSpace<'_, 1> = AddressSpace::new(m, &arena);
    let mut disk = vec![0u8; 4 * 512];
    let mut d = MemDisk::new(&mut disk, false);
    assert_eq!(
        SgTransfer::<'_, 4>::new(DEV, BlockDir::Read, 0, 100).err(),
        Some(TransferError::Misaligned)
    );
    // Short list.
    let list = sg(&[(0, 512)]);
    let mut t: SgTransfer<'_, 4> = SgTransfer::new(DEV, BlockDir::Read, 0, 1024).unwrap();
    assert_eq!(
        t.run(&space, list.entries(), &mut d),
        Err(TransferError::ShortSgList)
    );
    assert_eq!(t.bytes_done(), 512);
    // Hole.
    let list = sg(&[(0xF00, 0x200)]);
    let mut t: SgTransfer<'_, 4> = SgTransfer::new(DEV, BlockDir::Read, 0, 512).unwrap();
    assert_eq!(
        t.run(&space, list.entries(), &mut d),
        Err(TransferError::Memory(MemError::Hole { addr: 0x1000 }))
    );
    // Address overflow.
    let list = sg(&[(u64::MAX, 512)]);
    let mut t: SgTransfer<'_, 4> = SgTransfer::new(DEV, BlockDir::Read, 0, 512).unwrap();
    assert!(matches!(
        t.run(&space, list.entries(), &mut d),
        Err(TransferError::Memory(_))
    ));
    // Out of range on the disk.
    let list = sg(&[(0, 1024)]);
    let mut t: SgTransfer<'_, 4> = SgTransfer::new(DEV, BlockDir::Read, 3, 1024).unwrap();
    assert_eq!(
        t.run(&space, list.entries(), &mut d),
        Err(TransferError::Block(BlockError::OutOfRange))
    );
    // Backend I/O error.
    d.fail_after(0);
    let mut t: SgTransfer<'_, 4> = SgTransfer::new(DEV, BlockDir::Read, 0, 1024).unwrap();
    assert_eq!(
        t.run(&space, list.entries(), &mut d),
        Err(TransferError::Block(BlockError::Io(5)))
    );
    d.heal();
    // Wrong token.
    let mut t: SgTransfer<'_, 4> = SgTransfer::new(DEV, BlockDir::Write, 0, 512).unwrap();
    let list = sg(&[(0, 512)]);
    let _tok = match t.step(&space, list.entries(), &mut d) {
        Ok(Progress::Submitted(tok)) => tok,
        other => panic!("{other:?}"),
    };
    assert_eq!(t.cancel(&space), Err(TransferError::InFlight));
    assert_eq!(
        t.step(&space, list.entries(), &mut d),
        Err(TransferError::InFlight)
    );
    let bogus = Completion::new(RequestToken::new(), Ok(()));
    assert_eq!(
        t.complete(&space, list.entries(), bogus),
        Err(TransferError::WrongToken)
    );
    let c = d.poll().unwrap();
    assert_eq!(t.complete(&space, list.entries(), c), Ok(()));
    assert!(t.is_done());
}

/// A sector spread over more pieces than the I/O vector holds is staged
/// through one 512-byte bounce range instead of failing.
#[test]
fn fragmented_sectors_are_staged() {
    let mut ram = vec![0u8; 0x1000];
    for (i, b) in ram.iter_mut().enumerate() {
        *b = (i * 3) as u8;
    }
    let arena = BounceArena::<512>::new();
    let mut m = RegionMap::<1>::new();
    m.add_ram(0, RamBacking::from_mut_slice(&mut ram)).unwrap();
    let space: AddressSpace<'_, 1> = AddressSpace::new(m, &arena);
    let mut disk = vec![0u8; 4 * 512];
    let mut d = MemDisk::new(&mut disk, false);
    // 256 two-byte pieces, backwards through RAM: one sector, IOV of 2.
    let entries: Vec<(u64, u64)> = (0..256u64).map(|i| (0x800 - 2 * i, 2)).collect();
    let mut list: SgList<256> = SgList::new();
    for &(a, n) in &entries {
        list.push(a, n).unwrap();
    }
    let mut t: SgTransfer<'_, 2> = SgTransfer::new(DEV, BlockDir::Write, 1, 512).unwrap();
    assert_eq!(t.run(&space, list.entries(), &mut d), Ok(Progress::Done));
    assert_eq!(t.staged_bytes(), 512);
    let mut want = Vec::new();
    for &(a, _) in &entries {
        want.push((a * 3) as u8);
        want.push(((a + 1) * 3) as u8);
    }
    assert_eq!(&d.data()[512..1024], &want[..]);
    // And back: a read scatters the staged sector over the pieces.
    let mut t: SgTransfer<'_, 2> = SgTransfer::new(DEV, BlockDir::Read, 1, 512).unwrap();
    space.write(DeviceId::HOST, 0, &[0u8; 0x1000]).unwrap();
    assert_eq!(t.run(&space, list.entries(), &mut d), Ok(Progress::Done));
    let mut back = vec![0u8; 0x1000];
    space.read(DeviceId::HOST, 0, &mut back).unwrap();
    for &(a, _) in &entries {
        assert_eq!(back[a as usize], (a * 3) as u8);
    }
    assert_eq!(space.bounce().in_use(), 0);
}

/// Tiny MMIO pieces that would each cost a granule make progress in a
/// one-sector arena: the sector is staged.
#[test]
fn tiny_mmio_pieces_in_a_one_sector_arena() {
    let mmio = RamLikeMmio::new(0x1000);
    mmio.fill_with(|i| (i % 253) as u8);
    let arena = BounceArena::<512>::new();
    let mut m = RegionMap::<1>::new();
    m.add_mmio(0x10000, 0x1000, &mmio, None).unwrap();
    let space: AddressSpace<'_, 1> = AddressSpace::new(m, &arena);
    let mut disk = vec![0u8; 4 * 512];
    let mut d = MemDisk::new(&mut disk, false);
    // Sixteen 8-byte pieces + the rest: 16 granules would not fit 512.
    let mut list: SgList<64> = SgList::new();
    for i in 0..16u64 {
        list.push(0x10000 + i * 64, 8).unwrap();
    }
    list.push(0x10800, 512 - 128 + 512).unwrap();
    let mut t: SgTransfer<'_, 256> = SgTransfer::new(DEV, BlockDir::Write, 0, 1024).unwrap();
    assert_eq!(t.run(&space, list.entries(), &mut d), Ok(Progress::Done));
    assert!(t.staged_bytes() >= 512);
    let snap = mmio.snapshot();
    for i in 0..16usize {
        assert_eq!(&d.data()[i * 8..i * 8 + 8], &snap[i * 64..i * 64 + 8]);
    }
    assert_eq!(&d.data()[128..1024], &snap[0x800..0x800 + 896]);
    assert_eq!(space.bounce().in_use(), 0);
}

/// A memory whose arena is smaller than a sector: the one shape that can
/// never run, reported as `Unmappable` up front (decided from the shape,
/// not from how busy the arena is).
struct SmallArena<'a>(&'a AddressSpace<'a, 1>, SmallWait<'a>);

/// The waiter of [`SmallArena`]: the space's, with the small capacity.
struct SmallWait<'a>(&'a AddressSpace<'a, 1>);

impl BounceWait for SmallWait<'_> {
    fn bounce_capacity(&self) -> usize {
        256
    }
    fn bounce_generation(&self) -> u32 {
        self.0.bounce_generation()
    }
    fn register_retry(&self, c: DeviceId, g: u32) -> Result<RetryStatus, RetryError> {
        self.0.register_retry(c, g)
    }
    fn cancel_retry(&self, c: DeviceId) -> bool {
        self.0.cancel_retry(c)
    }
    fn poll_retry(&self) -> Option<DeviceId> {
        self.0.poll_retry()
    }
}

impl DmaMemory for SmallArena<'_> {
    fn map(&self, r: DeviceId, a: u64, l: u64, d: DmaDirection) -> Result<Mapping<'_>, MemError> {
        self.0.map(r, a, l, d)
    }
    fn map_staging(&self, r: DeviceId, l: usize) -> Result<Mapping<'_>, MemError> {
        self.0.map_staging(r, l)
    }
    fn probe(&self, r: DeviceId, a: u64, l: u64, d: DmaDirection) -> Result<Probe, MemError> {
        self.0.probe(r, a, l, d)
    }
    fn read(&self, r: DeviceId, a: u64, b: &mut [u8]) -> Result<(), MemError> {
        self.0.read(r, a, b)
    }
    fn write(&self, r: DeviceId, a: u64, b: &[u8]) -> Result<(), MemError> {
        self.0.write(r, a, b)
    }
    fn bounce_wait(&self) -> &dyn BounceWait {
        &self.1
    }
    fn reclaim(&self, t: RequestToken) {
        self.0.reclaim(t)
    }
}

#[test]
fn a_sector_larger_than_the_arena_is_unmappable_not_a_spin() {
    let mmio = RamLikeMmio::new(0x1000);
    let arena = BounceArena::<512>::new();
    let mut m = RegionMap::<1>::new();
    m.add_mmio(0, 0x1000, &mmio, None).unwrap();
    let space: AddressSpace<'_, 1> = AddressSpace::new(m, &arena);
    let small = SmallArena(&space, SmallWait(&space));
    let mut disk = vec![0u8; 2 * 512];
    let mut d = MemDisk::new(&mut disk, false);
    let list = sg(&[(0, 256), (0x400, 256)]);
    let mut t: SgTransfer<'_, 1> = SgTransfer::new(DEV, BlockDir::Read, 0, 512).unwrap();
    assert_eq!(
        t.step(&small, list.entries(), &mut d),
        Err(TransferError::Unmappable)
    );
    assert_eq!(space.bounce().in_use(), 0);
    assert_eq!(t.cancel(&small), Ok(()));
}

#[test]
fn bounce_exhaustion_waits_and_resumes_fifo() {
    let mmio = RamLikeMmio::new(0x2000);
    mmio.fill_with(|i| (i / 512) as u8 + 1);
    let arena = BounceArena::<1024>::new();
    let mut m = RegionMap::<1>::new();
    m.add_mmio(0x10000, 0x2000, &mmio, None).unwrap();
    let space: AddressSpace<'_, 1> = AddressSpace::new(m, &arena);
    let mut disk = vec![0u8; 16 * 512];
    let mut d = MemDisk::new(&mut disk, false);
    let other = DeviceId::test(50);
    // Someone else holds the whole arena.
    let h1 = space
        .map(other, 0x10000, 512, DmaDirection::DeviceReadsMemory)
        .unwrap();
    let h2 = space
        .map(other, 0x10200, 512, DmaDirection::DeviceReadsMemory)
        .unwrap();
    let list = sg(&[(0x10000, 0x2000)]);
    let mut t: SgTransfer<'_, 8> = SgTransfer::new(DEV, BlockDir::Write, 0, 0x2000).unwrap();
    assert_eq!(
        t.step(&space, list.entries(), &mut d),
        Ok(Progress::WaitingForBounce)
    );
    assert_eq!(space.poll_retry(), None);
    drop(h1);
    assert_eq!(space.poll_retry(), Some(DEV));
    // Half the arena: one sector per request until the other holder lets go.
    let tok = match t.step(&space, list.entries(), &mut d) {
        Ok(Progress::Submitted(tok)) => tok,
        other => panic!("{other:?}"),
    };
    let c = d.poll().unwrap();
    assert_eq!(c.id(), tok);
    t.complete(&space, list.entries(), c).unwrap();
    assert_eq!(t.bytes_done(), 512);
    drop(h2);
    while space.poll_retry().is_some() {}
    assert_eq!(t.run(&space, list.entries(), &mut d), Ok(Progress::Done));
    assert_eq!(t.bytes_done(), 0x2000);
    assert_eq!(t.bounced_bytes(), 0x2000);
    for s in 0..16 {
        assert_eq!(d.data()[s * 512], s as u8 + 1);
    }
    assert_eq!(space.bounce().in_use(), 0);
}

/// The lease: from submission to completion the transfer owns the
/// request's bounce space. Dropping the transfer in flight quarantines it
/// (never reused); a late completion can only write its own space.
#[test]
fn dropping_a_transfer_in_flight_quarantines_its_space() {
    let mmio = RamLikeMmio::new(0x1000);
    let arena = BounceArena::<1024>::new();
    let mut m = RegionMap::<1>::new();
    m.add_mmio(0x10000, 0x1000, &mmio, None).unwrap();
    let space: AddressSpace<'_, 1> = AddressSpace::new(m, &arena);
    let mut image = vec![0xC3u8; 4 * 512];
    let mut d: DeferredDisk<'_, '_, 4, 8> = DeferredDisk::new(&mut image, false);
    let list = sg(&[(0x10000, 512)]);
    let mut t: SgTransfer<'_, 8> = SgTransfer::new(DEV, BlockDir::Read, 0, 512).unwrap();
    assert!(matches!(
        t.step(&space, list.entries(), &mut d),
        Ok(Progress::Submitted(_))
    ));
    assert_eq!(t.cancel(&space), Err(TransferError::InFlight));
    drop(t);
    assert_eq!(space.bounce().quarantined(), 512);
    // Another client gets the other half, never the quarantined one.
    let other = space
        .map(
            DeviceId::test(9),
            0x10400,
            512,
            DmaDirection::DeviceWritesMemory,
        )
        .unwrap();
    other.slice().fill(0, 512, 0x11);
    d.release(1);
    let late = d.poll().expect("the kernel finishes the I/O regardless");
    // Its token is back: the quarantined space is free again.
    space.reclaim(late.token);
    assert_eq!(space.bounce().quarantined(), 0);
    assert_eq!(space.bounce().in_use(), 512, "only the other client's");
    let mut b = [0u8; 512];
    other.slice().copy_to(0, &mut b);
    assert!(
        b.iter().all(|&x| x == 0x11),
        "late completion stayed in its own space"
    );
    assert!(
        mmio.writes.lock().unwrap().is_empty(),
        "nothing written back"
    );
}

/// `run` with a backend whose wait bound runs out hands the request back.
#[test]
fn run_reports_a_request_still_in_flight() {
    let mut ram = vec![0u8; 0x1000];
    let arena = BounceArena::<512>::new();
    let mut m = RegionMap::<1>::new();
    m.add_ram(0, RamBacking::from_mut_slice(&mut ram)).unwrap();
    let space: AddressSpace<'_, 1> = AddressSpace::new(m, &arena);
    let mut image = vec![0x77u8; 4 * 512];
    let mut d: DeferredDisk<'_, '_, 4, 8> = DeferredDisk::new(&mut image, false);
    d.set_wait_completes(false);
    let list = sg(&[(0, 1024)]);
    let mut t: SgTransfer<'_, 8> = SgTransfer::new(DEV, BlockDir::Read, 0, 1024).unwrap();
    let tok = match t.run(&space, list.entries(), &mut d) {
        Ok(Progress::Submitted(tok)) => tok,
        other => panic!("{other:?}"),
    };
    let mut b = [0u8; 1];
    space.read(DeviceId::HOST, 0, &mut b).unwrap();
    assert_eq!(b[0], 0, "data moves at completion");
    d.release(1);
    let c = d.poll().unwrap();
    assert_eq!(c.id(), tok);
    t.complete(&space, list.entries(), c).unwrap();
    assert!(t.is_done());
    space.read(DeviceId::HOST, 1023, &mut b).unwrap();
    assert_eq!(b[0], 0x77);
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

/// Runs one random transfer and checks it against a flat model: every
/// hole-free, long-enough list must complete, whatever the arena and I/O
/// vector sizes (sectors that do not map piece by piece are staged).
fn check_model<const ARENA: usize, const IOV: usize>(
    entries: &[(u64, u64)],
    sectors: u64,
    first: u64,
    read: bool,
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
    let arena = BounceArena::<ARENA>::new();
    let mut m = RegionMap::<3>::new();
    m.add_ram(0, RamBacking::from_mut_slice(&mut ram0)).unwrap();
    m.add_mmio(MMIO.0, MMIO.1, &mmio, None).unwrap();
    m.add_ram(RAM1.0, RamBacking::from_mut_slice(&mut ram1))
        .unwrap();
    let space: AddressSpace<'_, 3> = AddressSpace::new(m, &arena);
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
    let mut t: SgTransfer<'_, IOV> = SgTransfer::new(DEV, dir, first, bytes).unwrap();
    let r = t.run(&space, list.entries(), &mut d);
    prop_assert_eq!(space.bounce().in_use(), 0, "no bounce space leaks");
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
        check_model::<8192, 40>(&entries, sectors, first, read)?;
    }

    /// The same with a one-sector arena and a two-element I/O vector: many
    /// chunks and staged sectors, and still no failure for a list that can
    /// fit (never a panic, spin or leak).
    #[test]
    fn model_tiny_arena(entries in proptest::collection::vec(entry(), 1..12),
                        sectors in 1u64..6, first in 0u64..10, read in any::<bool>()) {
        check_model::<512, 2>(&entries, sectors, first, read)?;
    }
}

/// A backend that keeps a request (its token and buffers) and refuses it
/// with a token of its own: the transfer must not take that as "never
/// started". The request stays in flight, its bounce space stays reserved
/// (quarantined when the transfer goes), and comes back only with the
/// request's own token.
#[test]
fn a_refusal_with_another_token_keeps_the_request_in_flight() {
    struct Keeper<'m> {
        kept: Vec<(RequestToken, Vec<Leased<'m>>)>,
    }
    impl<'m> BlockDevice<'m> for Keeper<'m> {
        fn sector_count(&self) -> u64 {
            64
        }
        fn is_read_only(&self) -> bool {
            false
        }
        fn submit(
            &mut self,
            token: RequestToken,
            req: BlockRequest<'_, 'm>,
        ) -> Result<(), crate::block::Refused> {
            if let BlockRequest::Read { iov, .. } = req {
                self.kept.push((token, iov.to_vec()));
            }
            Err(crate::block::Refused::new(
                RequestToken::new(),
                BlockError::Io(5),
            ))
        }
        fn poll(&mut self) -> Option<Completion> {
            None
        }
        fn wait(&mut self) -> Option<Completion> {
            None
        }
    }
    let mmio = RamLikeMmio::new(0x1000);
    let arena = BounceArena::<1024>::new();
    let mut m = RegionMap::<1>::new();
    m.add_mmio(0x10000, 0x1000, &mmio, None).unwrap();
    let space: AddressSpace<'_, 1> = AddressSpace::new(m, &arena);
    let mut d = Keeper { kept: Vec::new() };
    let list = sg(&[(0x10000, 512)]);
    let mut t: SgTransfer<'_, 8> = SgTransfer::new(DEV, BlockDir::Read, 0, 512).unwrap();
    assert_eq!(
        t.step(&space, list.entries(), &mut d),
        Err(TransferError::Block(BlockError::Io(5)))
    );
    assert!(
        t.in_flight().is_some(),
        "the request is still the backend's"
    );
    assert_eq!(space.bounce().in_use(), 512, "its space stays reserved");
    drop(t);
    assert_eq!(space.bounce().quarantined(), 512);
    // Another client cannot get that space while the backend can reach it.
    assert!(
        space
            .map(
                DeviceId::test(9),
                0x10400,
                1024,
                DmaDirection::DeviceWritesMemory
            )
            .map(|m| m.len())
            .unwrap_or(0)
            <= 512
    );
    let (token, kept) = d.kept.pop().unwrap();
    let v = kept[0].view(&token).unwrap();
    v.fill(0, v.len(), 0xEE);
    space.reclaim(token);
    assert_eq!(space.bounce().quarantined(), 0, "given back with its token");
}
