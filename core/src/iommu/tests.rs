use super::*;
use crate::block::{BlockDevice, MemDisk};
use crate::dma::{AddressSpace, BlockDir, BounceArena, Progress, SgTransfer};
use crate::memory::{RamBacking, RegionMap};
use std::vec;

const DEV: DeviceId = DeviceId::test(2);

#[test]
fn table_errors() {
    let pool = BounceArena::<512>::new();
    let space: AddressSpace<'_, 1> = AddressSpace::new(RegionMap::new(), &pool);
    let io: Iommu<'_, 2> = Iommu::new(&space);
    assert_eq!(
        io.add(0, 0, 0, IommuPerm::READ),
        Err(IommuError::ZeroLength)
    );
    assert_eq!(
        io.add(u64::MAX, 0, 2, IommuPerm::READ),
        Err(IommuError::Overflow)
    );
    assert_eq!(
        io.add(0, u64::MAX, 2, IommuPerm::READ),
        Err(IommuError::Overflow)
    );
    io.add(0x1000, 0, 0x1000, IommuPerm::READ).unwrap();
    assert_eq!(
        io.add(0x1FFF, 0, 1, IommuPerm::READ),
        Err(IommuError::Overlap)
    );
    assert_eq!(
        io.add(0x800, 0, 0x801, IommuPerm::READ),
        Err(IommuError::Overlap)
    );
    io.add(0x3000, 0, 1, IommuPerm::READ).unwrap();
    assert_eq!(io.add(0x5000, 0, 1, IommuPerm::READ), Err(IommuError::Full));
    assert_eq!(io.remove(0x3000), Ok(()));
    assert_eq!(io.remove(0x3000), Err(IommuError::NotFound));
}

/// A translation cannot be removed while a mapping through it lives: the
/// device would go on reaching the old guest address.
#[test]
fn a_translation_in_use_is_not_removed() {
    let mut ram = vec![0u8; 0x4000];
    let pool = BounceArena::<512>::new();
    let mut m = RegionMap::<1>::new();
    m.add_ram(0, RamBacking::from_mut_slice(&mut ram)).unwrap();
    let space: AddressSpace<'_, 1> = AddressSpace::new(m, &pool);
    let io: Iommu<'_, 4> = Iommu::new(&space);
    io.add(0x10000, 0x1000, 0x1000, IommuPerm::READ | IommuPerm::WRITE)
        .unwrap();
    let a = io
        .map(DEV, 0x10000, 0x100, DmaDirection::DeviceWritesMemory)
        .unwrap();
    let b = io
        .map(DEV, 0x10800, 0x100, DmaDirection::DeviceReadsMemory)
        .unwrap();
    assert_eq!(io.pins(0x10000), 2);
    assert_eq!(io.remove(0x10000), Err(IommuError::InUse));
    a.unmap(0x100).unwrap();
    assert_eq!(io.remove(0x10000), Err(IommuError::InUse));
    drop(b);
    assert_eq!(io.pins(0x10000), 0);
    assert_eq!(io.remove(0x10000), Ok(()));
    // A failed map through a translation leaves no pin behind.
    io.add(0x20000, 0x8000, 0x1000, IommuPerm::READ).unwrap();
    assert!(
        io.map(DEV, 0x20000, 1, DmaDirection::DeviceReadsMemory)
            .is_err(),
        "no memory at 0x8000"
    );
    assert_eq!(io.remove(0x20000), Ok(()));
}

/// A request in flight through a translation whose transfer is dropped
/// keeps the translation until the request is over (its token reclaimed).
#[test]
fn a_dropped_transfer_keeps_its_translation_until_the_request_ends() {
    let mut ram = vec![0u8; 0x4000];
    let pool = BounceArena::<512>::new();
    let mut m = RegionMap::<1>::new();
    m.add_ram(0, RamBacking::from_mut_slice(&mut ram)).unwrap();
    let space: AddressSpace<'_, 1> = AddressSpace::new(m, &pool);
    let io: Iommu<'_, 4> = Iommu::new(&space);
    io.add(0x10000, 0x1000, 0x1000, IommuPerm::WRITE).unwrap();
    let mut image = vec![0x5Au8; 4 * 512];
    let mut d: crate::block::DeferredDisk<'_, '_, 2, 8> =
        crate::block::DeferredDisk::new(&mut image, false);
    let mut list: crate::dma::SgList<4> = crate::dma::SgList::new();
    list.push(0x10000, 512).unwrap();
    let mut t: SgTransfer<'_, 8> = SgTransfer::new(DEV, BlockDir::Read, 0, 512).unwrap();
    assert!(matches!(
        t.step(&io, list.entries(), &mut d),
        Ok(Progress::Submitted(_))
    ));
    drop(t);
    assert_eq!(io.remove(0x10000), Err(IommuError::InUse));
    d.release(1);
    let late = d.poll().expect("the backend finishes");
    assert_eq!(late.result, Ok(()));
    assert_eq!(
        io.remove(0x10000),
        Err(IommuError::InUse),
        "token not back yet"
    );
    io.reclaim(late.token);
    assert_eq!(io.remove(0x10000), Ok(()));
}

#[test]
fn translates_checks_permissions_and_chains() {
    let mut ram = vec![0u8; 0x4000];
    for (i, b) in ram.iter_mut().enumerate() {
        *b = (i >> 8) as u8;
    }
    let pool = BounceArena::<512>::new();
    let mut m = RegionMap::<1>::new();
    m.add_ram(0, RamBacking::from_mut_slice(&mut ram)).unwrap();
    let space: AddressSpace<'_, 1> = AddressSpace::new(m, &pool);
    let io: Iommu<'_, 4> = Iommu::new(&space);
    // Device page 0x10000 → guest 0x2000 (read-only); 0x11000 → 0x0 (rw).
    io.add(0x10000, 0x2000, 0x1000, IommuPerm::READ).unwrap();
    io.add(0x11000, 0x0, 0x1000, IommuPerm::READ | IommuPerm::WRITE)
        .unwrap();

    let r = io
        .map(DEV, 0x10F00, 0x1000, DmaDirection::DeviceReadsMemory)
        .unwrap();
    assert_eq!(r.addr(), 0x2F00);
    assert_eq!(r.len(), 0x100, "clamped to the translation");
    drop(r);
    assert_eq!(
        io.map(DEV, 0x10000, 1, DmaDirection::DeviceWritesMemory)
            .err(),
        Some(MemError::IommuFault {
            iova: 0x10000,
            kind: IommuFaultKind::Permission
        })
    );
    assert_eq!(
        io.map(DEV, 0x20000, 1, DmaDirection::DeviceReadsMemory)
            .err(),
        Some(MemError::IommuFault {
            iova: 0x20000,
            kind: IommuFaultKind::Unmapped
        })
    );
    // read across two translations.
    let mut b = [0u8; 4];
    io.read(DEV, 0x10FFE, &mut b).unwrap();
    assert_eq!(b, [0x2F, 0x2F, 0x00, 0x00]);
    assert_eq!(
        io.write(DEV, 0x10FFE, &b),
        Err(MemError::IommuFault {
            iova: 0x10FFE,
            kind: IommuFaultKind::Permission
        })
    );
    // A block transfer through the IOMMU: device → IOMMU → memory.
    let mut disk = vec![0u8; 4 * 512];
    let mut d = MemDisk::new(&mut disk, false);
    let entries = [crate::dma::SgEntry {
        addr: 0x10E00,
        len: 0x400,
    }];
    let mut t: SgTransfer<'_, 4> = SgTransfer::new(DEV, BlockDir::Write, 0, 0x400).unwrap();
    assert_eq!(t.run(&io, &entries, &mut d), Ok(Progress::Done));
    assert_eq!(d.data()[0], 0x2E);
    assert_eq!(
        d.data()[512],
        0x00,
        "second half came from the other translation"
    );
    // A fault stops the transfer with a typed error and no host access.
    let entries = [crate::dma::SgEntry {
        addr: 0x30000,
        len: 0x200,
    }];
    let mut t: SgTransfer<'_, 4> = SgTransfer::new(DEV, BlockDir::Read, 0, 0x200).unwrap();
    assert!(matches!(
        t.run(&io, &entries, &mut d),
        Err(crate::dma::TransferError::Memory(
            MemError::IommuFault { .. }
        ))
    ));
    // Pass-through.
    io.set_enabled(false);
    let p = io
        .map(DEV, 0x100, 4, DmaDirection::DeviceWritesMemory)
        .unwrap();
    assert_eq!(p.addr(), 0x100);
}
