//! Bytes → an interleaving of guest actions and backend events around
//! requests in flight: DMA (RAM, MMIO through bounce space, or both in
//! 128-byte pieces), PIO reads and writes, FLUSH CACHE, TRIM, BMDMA stop and
//! start, SRST, new commands while the device is busy, completions released
//! in fuzzer-chosen batches (with the backend's `wait` completing or not),
//! and bounce pressure from a second device mapping and unmapping MMIO.
//! The backend is a `DeferredDisk`: data moves only when a completion is
//! released, long after the guest may have stopped, reset or moved on.
//!
//! Checked, with a panic on any violation:
//! - the lease: when a request's data moves, every buffer it was given still
//!   belongs to the same bounce allocation as at submission (allocation ids
//!   are never reused), so no completion writes into space that changed
//!   hands (`testutil::LeaseChecker`, checked after the wind-down and at
//!   the end);
//! - no byte outside the DMA targets changes: guest RAM and MMIO are filled
//!   with a sentinel, and only the PRD table, the TRIM range block and the
//!   target ranges may differ at the end;
//! - nothing leaks: after the wind-down the arena holds nothing (nothing
//!   quarantined), nobody waits for bounce space, the backend has nothing
//!   in flight, the IRQ line is only ever driven on changes;
//! - every DMA command ends exactly once (completed, aborted, short PRD
//!   table or dropped by a reset), and no completion arrives for an ended
//!   one; the channel still reads a sector correctly afterwards.
//!
//! Plain stable Rust: the libFuzzer wrapper (`../fuzz_targets/inflight.rs`)
//! and the corpus replay test include this file and call [`run`].

use std::cell::Cell;

use vmdma_core::block::DeferredDisk;
use vmdma_core::dma::{
    AddressSpace, BounceArena, BounceBuffers, BounceWait, DmaDirection, DmaMemory, Mapping,
};
use vmdma_core::ide::{AccessWidth, IdeConfig, IdeController, IrqLine, PioBuffer};
use vmdma_core::memory::{DeviceId, RamBacking, RegionMap};
use vmdma_core::pci::{PciFunction, header};
use vmdma_core::testutil::{LeaseChecker, RamLikeMmio};

const RAM_LEN: usize = 48 << 10;
const MMIO_BASE: u64 = 0x4000_0000;
const MMIO_LEN: usize = 8 << 10;
const BMDMA: u16 = 0xC000;
const PRD_TABLE: u64 = 0x1000;
const TRIM_BLOCK: u64 = 0x3000;
const DATA_RAM: u32 = 0x8000;
const SENTINEL: u8 = 0xC7;
const SECTORS: usize = 64;
/// Bytes a DMA of at most 4 sectors can reach at each target.
const DATA_SPAN: u64 = 4 * 512;

struct Irq {
    level: Cell<bool>,
}

impl IrqLine for Irq {
    fn set_level(&self, high: bool) {
        assert_ne!(self.level.get(), high, "IRQ line driven without a change");
        self.level.set(high);
    }
}

#[derive(Clone, Copy, Debug)]
enum Target {
    Ram,
    Mmio,
    Mixed,
}

/// PRD entries for `sectors` sectors at `target`.
fn prds(target: Target, sectors: u8) -> Vec<(u32, u32, bool)> {
    let bytes = u32::from(sectors) * 512;
    match target {
        Target::Ram => vec![(DATA_RAM, bytes, true)],
        Target::Mmio => vec![(MMIO_BASE as u32, bytes, true)],
        Target::Mixed => {
            let n = bytes / 128;
            (0..n)
                .map(|i| {
                    let base = if i % 2 == 0 {
                        DATA_RAM
                    } else {
                        MMIO_BASE as u32
                    };
                    (base + i * 128, 128, i + 1 == n)
                })
                .collect()
        }
    }
}

/// The byte at `offset` of the initial disk image.
fn disk_byte(offset: usize) -> u8 {
    ((offset % 512) as u8) ^ ((offset / 512) as u8).wrapping_mul(31) ^ 0xA5
}

struct Guest<'a, 'm> {
    ide: IdeController<'m, AddressSpace<'m, 2>, DeferredDisk<'a, 'm, 4, 256>, &'a Irq, 256>,
    space: &'m AddressSpace<'m, 2>,
}

impl Guest<'_, '_> {
    fn inb(&mut self, port: u16) -> u8 {
        self.ide.read_port(port, AccessWidth::Byte).unwrap_or(0xFF) as u8
    }
    fn outb(&mut self, port: u16, v: u8) {
        self.ide.write_port(port, AccessWidth::Byte, u32::from(v));
    }
    fn alt_status(&mut self) -> u8 {
        self.inb(0x3F6)
    }
    fn lba28(&mut self, lba: u8, count: u8) {
        self.outb(0x1F6, 0xE0);
        self.outb(0x1F2, count);
        self.outb(0x1F3, lba);
        self.outb(0x1F4, 0);
        self.outb(0x1F5, 0);
    }
    fn table(&mut self, entries: &[(u32, u32, bool)]) {
        let mut raw = Vec::new();
        for &(addr, len, eot) in entries {
            raw.extend_from_slice(&addr.to_le_bytes());
            let ctl = (len & 0xFFFF) | if eot { 1 << 31 } else { 0 };
            raw.extend_from_slice(&ctl.to_le_bytes());
        }
        self.space.write(DeviceId::HOST, PRD_TABLE, &raw).unwrap();
        self.ide
            .write_port(BMDMA + 4, AccessWidth::Dword, PRD_TABLE as u32);
    }
    fn complete(&mut self, n: u32) {
        if let Some(d) = self.ide.disk_mut(vmdma_core::ide::Unit::Master) {
            d.release(n);
        }
        self.ide.poll();
    }
    fn retries(&mut self, ide_id: DeviceId) {
        // One hand-out per release: bounded by the arena's live mappings.
        for _ in 0..64 {
            match self.space.poll_retry() {
                Some(c) => {
                    assert_eq!(c, ide_id, "only the IDE channel ever waits");
                    self.ide.on_bounce_free();
                }
                None => return,
            }
        }
        panic!("the retry queue hands out without end");
    }
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let Some((&flags, ops)) = data.split_first() else {
        return;
    };
    let mut ram = vec![SENTINEL; RAM_LEN];
    let mmio = RamLikeMmio::filled(MMIO_LEN, SENTINEL);
    let normal = BounceArena::<32768>::new();
    let tiny = BounceArena::<512>::new();
    let arena: &dyn BounceBuffers = if flags & 1 != 0 { &tiny } else { &normal };
    let pio = PioBuffer::<{ 16 * 512 }>::new();
    let irq = Irq {
        level: Cell::new(false),
    };
    let mut image: Vec<u8> = (0..SECTORS * 512).map(disk_byte).collect();
    let mut map = RegionMap::<2>::new();
    map.add_ram(0, RamBacking::from_mut_slice(&mut ram))
        .unwrap();
    map.add_mmio(MMIO_BASE, MMIO_LEN as u64, &mmio, None)
        .unwrap();
    let space: AddressSpace<'_, 2> = AddressSpace::new(map, arena);
    let lease = LeaseChecker::new(arena);
    let mut disk: DeferredDisk<'_, '_, 4, 256> = DeferredDisk::new(&mut image, false);
    disk.observe(&lease);
    disk.set_wait_completes(flags & 2 != 0);
    let ide_id = space.new_device().unwrap();
    let other = space.new_device().unwrap();
    let ide = IdeController::new(&space, &irq, &pio, disk, None, &IdeConfig::new(ide_id)).unwrap();
    let mut g = Guest { ide, space: &space };
    g.ide
        .config_write(header::BAR4, AccessWidth::Dword, u32::from(BMDMA));
    g.ide
        .config_write(header::COMMAND, AccessWidth::Word, 0x0005);
    let mut held: Vec<Mapping<'_>> = Vec::new();

    for op in ops.chunks_exact(3).take(256) {
        let (kind, a, b) = (op[0], op[1], op[2]);
        match kind % 14 {
            0..=3 => {
                // A DMA read or write, as a driver issues it (only when the
                // device is neither busy nor in a data phase) unless bit 7
                // says "issue it anyway" (a new command while busy).
                let write = a & 1 != 0;
                let target = match (a >> 1) % 3 {
                    0 => Target::Ram,
                    1 => Target::Mmio,
                    _ => Target::Mixed,
                };
                let sectors = 1 + (a >> 3) % 4;
                let lba = b % (SECTORS as u8 - 6);
                let start_first = a & 0x20 != 0;
                if g.alt_status() & 0x88 != 0 && a & 0x80 == 0 {
                    continue;
                }
                g.table(&prds(target, sectors));
                g.lba28(lba, sectors);
                let start = if write { 0x01 } else { 0x09 };
                let cmd = if write { 0xCA } else { 0xC8 };
                if start_first {
                    g.outb(BMDMA, 0x00);
                    g.outb(BMDMA, start);
                    g.outb(0x1F7, cmd);
                } else {
                    g.outb(0x1F7, cmd);
                    g.outb(BMDMA, start);
                }
            }
            4 => {
                if g.alt_status() & 0x88 == 0 {
                    g.lba28(b % 56, 1);
                    g.outb(0x1F7, if a & 1 != 0 { 0x30 } else { 0x20 });
                }
            }
            5 => {
                // The PIO data port: a block in (READ) or out (WRITE).
                for _ in 0..(1 + usize::from(a % 4) * 64) {
                    if a & 0x80 != 0 {
                        g.ide
                            .write_port(0x1F0, AccessWidth::Word, u32::from(b) * 0x0101);
                    } else {
                        let _ = g.ide.read_port(0x1F0, AccessWidth::Word);
                    }
                }
            }
            6 => g.outb(0x1F7, if a & 1 != 0 { 0xE7 } else { 0xEA }),
            7 => {
                // TRIM of one range by DMA (the range block in RAM).
                if g.alt_status() & 0x88 == 0 {
                    let range = u64::from(b % 48) | (u64::from(a % 8) << 48);
                    let mut block = [0u8; 512];
                    block[..8].copy_from_slice(&range.to_le_bytes());
                    g.space.write(DeviceId::HOST, TRIM_BLOCK, &block).unwrap();
                    g.table(&[(TRIM_BLOCK as u32, 512, true)]);
                    g.outb(0x1F1, 0x01);
                    g.outb(0x1F6, 0x40);
                    g.outb(0x1F2, 0);
                    g.outb(0x1F2, 1);
                    g.outb(0x1F7, 0x06);
                    g.outb(BMDMA, 0x01);
                }
            }
            8 => {
                let c = g.inb(BMDMA);
                g.outb(BMDMA, if a & 1 != 0 { c | 1 } else { c & !1 });
            }
            9 => {
                g.outb(0x3F6, 0x04);
                if a & 1 != 0 {
                    g.outb(0x3F6, 0x00);
                }
            }
            10 => g.complete(u32::from(a % 4)),
            11 => {
                if let Some(d) = g.ide.disk_mut(vmdma_core::ide::Unit::Master) {
                    d.set_wait_completes(a & 1 != 0);
                }
            }
            12 => {
                if a & 1 != 0 {
                    let off = u64::from(b % 32) << 8;
                    let len = 1 + u64::from(a >> 1) * 16;
                    if let Ok(m) =
                        g.space
                            .map(other, MMIO_BASE + off, len, DmaDirection::DeviceReadsMemory)
                    {
                        held.push(m);
                    }
                } else if !held.is_empty() {
                    let i = usize::from(b) % held.len();
                    drop(held.remove(i));
                }
            }
            _ => {
                let _ = g.inb(0x1F7);
                let s = g.inb(BMDMA + 2);
                g.outb(BMDMA + 2, s);
            }
        }
        g.retries(ide_id);
    }

    // Wind down: the other device lets go, every request completes, a
    // command waiting for START is kicked, SRST resets the rest.
    drop(held);
    if let Some(d) = g.ide.disk_mut(vmdma_core::ide::Unit::Master) {
        d.set_wait_completes(true);
    }
    for _ in 0..16 {
        g.complete(4);
        g.retries(ide_id);
    }
    let c = g.inb(BMDMA);
    g.outb(BMDMA, c & !1);
    g.outb(BMDMA, c | 1);
    assert!(g.ide.drain(), "drain with a completing backend");
    g.outb(0x3F6, 0x04);
    g.outb(0x3F6, 0x00);
    assert!(g.ide.is_idle());
    let in_flight = g
        .ide
        .disk(vmdma_core::ide::Unit::Master)
        .map_or(0, |d| d.in_flight());
    assert_eq!(in_flight, 0);
    assert_eq!(arena.quarantined(), 0, "nothing quarantined");
    assert_eq!(arena.in_use(), 0, "no bounce space leaked");
    assert_eq!(arena.waiting(), 0, "nobody left waiting");
    let s = *g.ide.stats();
    assert_eq!(s.stray_completions, 0, "a completion for an ended command");
    assert_eq!(
        s.dma_reads + s.dma_writes + s.trims,
        s.dma_ended,
        "every DMA command ends exactly once: {s:?}"
    );

    lease.assert_clean();

    // No byte outside the DMA targets, the PRD table and the TRIM block.
    let allowed = |addr: u64| {
        (PRD_TABLE..PRD_TABLE + 8 * 32).contains(&addr)
            || (TRIM_BLOCK..TRIM_BLOCK + 512).contains(&addr)
            || (u64::from(DATA_RAM)..u64::from(DATA_RAM) + DATA_SPAN).contains(&addr)
    };
    let mut buf = vec![0u8; RAM_LEN];
    space.read(DeviceId::HOST, 0, &mut buf).unwrap();
    for (i, &v) in buf.iter().enumerate() {
        assert!(
            v == SENTINEL || allowed(i as u64),
            "RAM byte {i:#x} outside every DMA target changed to {v:#x}"
        );
    }
    let m = mmio.snapshot();
    for (i, &v) in m.iter().enumerate() {
        assert!(
            v == SENTINEL || (i as u64) < DATA_SPAN,
            "MMIO byte {i:#x} outside every DMA target changed to {v:#x}"
        );
    }
    drop(m);

    // The channel still works: sector 62 by DMA reads what the disk holds
    // (a command issued while the device was busy may have written it: the
    // guest's register writes were ignored then, so the device used the
    // registers as it had left them, as real hardware does).
    let want: Vec<u8> = g
        .ide
        .disk(vmdma_core::ide::Unit::Master)
        .map(|d| d.data()[62 * 512..63 * 512].to_vec())
        .unwrap_or_default();
    g.table(&prds(Target::Ram, 1));
    g.lba28(62, 1);
    g.outb(0x1F7, 0xC8);
    g.outb(BMDMA, 0x00);
    g.outb(BMDMA, 0x09);
    g.complete(1);
    assert_eq!(g.inb(0x1F7), 0x50, "Status after a clean READ DMA");
    let mut sector = [0u8; 512];
    space
        .read(DeviceId::HOST, u64::from(DATA_RAM), &mut sector)
        .unwrap();
    assert_eq!(&sector[..], &want[..], "sector 62 read back");
    lease.assert_clean();
}
