//! Speed of the DMA core: `cargo bench -p vmdma-core`.
//!
//! - map+unmap of RAM (the zero-copy path) and of MMIO (the bounce path);
//! - one 4 KiB SG → block transfer (map, lease, submit, complete, unmap)
//!   into RAM and into MMIO, over an in-memory disk;
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
use vmdma_core::iovec::IoVec;
use vmdma_core::memory::{DeviceId, MmioError, MmioHandler, RamBacking, RegionMap, VolatileSlice};

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

criterion_group!(benches, map_unmap, transfer_4k, iovec_copy, lookup);
criterion_main!(benches);
