//! Speed of the DMA core: `cargo bench -p vmdma-core`.
//!
//! - map+unmap of RAM (the zero-copy path) and of MMIO (the bounce path);
//! - one 4 KiB SG → block transfer (map, lease, submit, complete, unmap)
//!   into RAM and into MMIO, over an in-memory disk;
//! - one 4 KiB READ DMA through the IDE controller's ports as a driver
//!   issues it (the runner's IOV 256 / PRD 512), over an in-memory disk:
//!   the core's fixed cost per command (run the bench binary under
//!   `valgrind --tool=callgrind` for instruction counts);
//! - I/O vector gather copies at 4 KiB, 64 KiB and 1 MiB;
//! - region lookup with 1/16/64 regions, side by side with rust-vmm's
//!   `vm-memory` `GuestMemoryMmap::find_region`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use vm_memory::{GuestAddress, GuestMemoryBackend, GuestMemoryMmap};
use vmdma_core::block::MemDisk;
use vmdma_core::dma::{
    AddressSpace, BlockDir, BounceArena, DmaDirection, DmaMemory, Progress, SgList, SgTransfer,
};
use vmdma_core::ide::{AccessWidth, IdeConfig, IdeController, IrqLine, PioBuffer};
use vmdma_core::iovec::IoVec;
use vmdma_core::memory::{DeviceId, MmioError, MmioHandler, RamBacking, RegionMap, VolatileSlice};
use vmdma_core::pci::PciFunction;

struct NullMmio;
impl MmioHandler for NullMmio {
    fn read(&self, _: u64, d: &mut [u8]) -> Result<(), MmioError> {
        d.fill(0);
        Ok(())
    }
    fn write(&self, _: u64, _: &[u8]) -> Result<(), MmioError> {
        Ok(())
    }
}

fn map_unmap(c: &mut Criterion) {
    let mut ram = vec![0u8; 1 << 20];
    let pool = BounceArena::<{ 16 * 1024 }>::new();
    let mmio = NullMmio;
    let mut m = RegionMap::<2>::new();
    m.add_ram(0, RamBacking::from_mut_slice(&mut ram)).unwrap();
    m.add_mmio(0x1000_0000, 0x10000, &mmio, None).unwrap();
    let dev: DeviceId = m.new_device().unwrap();
    let space: AddressSpace<'_, 2> = AddressSpace::new(m, &pool);
    let mut g = c.benchmark_group("map_unmap");
    g.bench_function("ram_4k", |b| {
        b.iter(|| {
            let m = space
                .map(
                    dev,
                    black_box(0x3000),
                    4096,
                    DmaDirection::DeviceWritesMemory,
                )
                .unwrap();
            m.unmap(4096).unwrap();
        })
    });
    g.bench_function("mmio_bounce_4k_write_back", |b| {
        b.iter(|| {
            let m = space
                .map(
                    dev,
                    black_box(0x1000_0000),
                    4096,
                    DmaDirection::DeviceWritesMemory,
                )
                .unwrap();
            m.unmap(4096).unwrap();
        })
    });
    g.bench_function("mmio_bounce_4k_prefill", |b| {
        b.iter(|| {
            let m = space
                .map(
                    dev,
                    black_box(0x1000_0000),
                    4096,
                    DmaDirection::DeviceReadsMemory,
                )
                .unwrap();
            m.unmap(4096).unwrap();
        })
    });
    g.finish();
}

fn transfer_4k(c: &mut Criterion) {
    let mut ram = vec![0u8; 1 << 20];
    let pool = BounceArena::<{ 16 * 1024 }>::new();
    let mmio = NullMmio;
    let mut m = RegionMap::<2>::new();
    m.add_ram(0, RamBacking::from_mut_slice(&mut ram)).unwrap();
    m.add_mmio(0x1000_0000, 0x10000, &mmio, None).unwrap();
    let dev: DeviceId = m.new_device().unwrap();
    let space: AddressSpace<'_, 2> = AddressSpace::new(m, &pool);
    let mut image = vec![0x5Au8; 64 * 1024];
    let mut disk = MemDisk::new(&mut image, false);
    let mut g = c.benchmark_group("transfer_4k");
    for (name, addr) in [("ram", 0x3000u64), ("mmio", 0x1000_0000)] {
        let mut list: SgList<4> = SgList::new();
        list.push(addr, 4096).unwrap();
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut t: SgTransfer<'_, 16> =
                    SgTransfer::new(dev, BlockDir::Read, black_box(8), 4096).unwrap();
                let done = t.run(&space, list.entries(), &mut disk).unwrap();
                assert_eq!(done, Progress::Done);
            })
        });
    }
    g.finish();
}

fn ide_read_dma_4k(c: &mut Criterion) {
    struct NoIrq;
    impl IrqLine for NoIrq {
        fn set_level(&self, _: bool) {}
    }
    const BM: u16 = 0xC000;
    let mut ram = vec![0u8; 1 << 20];
    let mut image = vec![0x5Au8; 1 << 20];
    let pool = BounceArena::<{ 16 * 1024 }>::new();
    let pio = PioBuffer::<{ 16 * 512 }>::new();
    let mut m = RegionMap::<2>::new();
    m.add_ram(0, RamBacking::from_mut_slice(&mut ram)).unwrap();
    let dev: DeviceId = m.new_device().unwrap();
    let space: AddressSpace<'_, 2> = AddressSpace::new(m, &pool);
    let disk = MemDisk::new(&mut image, false);
    let mut ide: IdeController<'_, _, _, _, 256, 512> =
        IdeController::new(&space, NoIrq, &pio, disk, None, &IdeConfig::new(dev)).unwrap();
    ide.firmware_init(BM).unwrap();
    ide.config_write(4, AccessWidth::Word, 0x0005);
    let mut prd = [0u8; 8];
    prd[..4].copy_from_slice(&0x10000u32.to_le_bytes());
    prd[4..].copy_from_slice(&(4096u32 | 1 << 31).to_le_bytes());
    space.write(DeviceId::HOST, 0x1000, &prd).unwrap();
    let b = AccessWidth::Byte;
    c.bench_function("ide_read_dma_4k", |bench| {
        bench.iter(|| {
            ide.write_port(BM + 4, AccessWidth::Dword, 0x1000);
            ide.write_port(0x1F6, b, 0xE0);
            ide.write_port(0x1F2, b, 8);
            ide.write_port(0x1F3, b, black_box(16));
            ide.write_port(0x1F4, b, 0);
            ide.write_port(0x1F5, b, 0);
            ide.write_port(BM, b, 0x08);
            ide.write_port(0x1F7, b, 0xC8);
            ide.write_port(BM, b, 0x09);
            let st = ide.read_port(BM + 2, b).unwrap();
            assert_eq!(st & 7, 4, "BM INT");
            ide.write_port(BM, b, 0x08);
            assert_eq!(ide.read_port(0x1F7, b), Some(0x50));
            ide.write_port(BM + 2, b, st);
        })
    });
}

fn iovec_copy(c: &mut Criterion) {
    let mut g = c.benchmark_group("iovec_copy_to_buf");
    for size in [4096usize, 64 << 10, 1 << 20] {
        let mut src = vec![0x5Au8; size];
        let base = VolatileSlice::from_mut_slice(&mut src);
        // 16 pieces, as a fragmented PRD table would give.
        let mut v: IoVec<'_, 16> = IoVec::new();
        let piece = size / 16;
        for i in 0..16 {
            v.push(base.subslice(i * piece, piece).unwrap()).unwrap();
        }
        let mut dst = vec![0u8; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, _| {
            b.iter(|| black_box(v.copy_to_buf(0, &mut dst)))
        });
    }
    g.finish();
}

fn lookup(c: &mut Criterion) {
    let mut g = c.benchmark_group("region_lookup");
    for n in [1usize, 16, 64] {
        const SZ: usize = 0x10000;
        let mut backing = vec![0u8; n * SZ];
        let mut m = RegionMap::<64>::new();
        for (i, chunk) in backing.chunks_mut(SZ).enumerate() {
            // Regions with 4 KiB gaps, as RAM split around holes.
            m.add_ram(
                (i * (SZ + 0x1000)) as u64,
                RamBacking::from_mut_slice(chunk),
            )
            .unwrap();
        }
        let ranges: Vec<(GuestAddress, usize)> = (0..n)
            .map(|i| (GuestAddress((i * (SZ + 0x1000)) as u64), SZ))
            .collect();
        let vmm = GuestMemoryMmap::<()>::from_ranges(&ranges).unwrap();
        let probes: Vec<u64> = (0..256)
            .map(|k| ((k * 7919) % n * (SZ + 0x1000) + (k * 131) % SZ) as u64)
            .collect();
        g.bench_with_input(BenchmarkId::new("vmdma", n), &n, |b, _| {
            b.iter(|| {
                for &p in &probes {
                    black_box(m.lookup(black_box(p)));
                }
            })
        });
        g.bench_with_input(BenchmarkId::new("vm-memory", n), &n, |b, _| {
            b.iter(|| {
                for &p in &probes {
                    black_box(vmm.find_region(GuestAddress(black_box(p))));
                }
            })
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    map_unmap,
    transfer_4k,
    ide_read_dma_4k,
    iovec_copy,
    lookup
);
criterion_main!(benches);
