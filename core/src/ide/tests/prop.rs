//! Property tests: random PRD tables over random memory layouts never panic
//! and move exactly the bytes a model predicts; random register traffic
//! never panics and leaves a device that SRST brings back.

use std::vec;
use std::vec::Vec;

use proptest::prelude::*;

use super::harness::{TestIrq, disk_image};
use crate::block::MemDisk;
use crate::dma::{AddressSpace, BounceArena, BounceBuffers, BounceWait, DmaMemory};
use crate::ide::{AccessWidth, IdeConfig, IdeController, IoBlock, PioBuffer, opcode};
use crate::memory::{DeviceId, RamBacking, RegionMap};
use crate::pci::{PciFunction, header};
use crate::testutil::RamLikeMmio;

const TABLE_RAM: u64 = 0;
const TABLE_RAM_LEN: usize = 0x1_0000;
const TABLE: u64 = 0x1000;
const WINDOW: u64 = 0x10_0000;
const CHUNK: usize = 0x4000;
const CHUNKS: usize = 16;
const DISK_SECTORS: usize = 128;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Ram,
    Mmio,
    Hole,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![5 => Just(Kind::Ram), 3 => Just(Kind::Mmio), 1 => Just(Kind::Hole)]
}

#[derive(Clone, Debug)]
struct PrdSpec {
    addr: u32,
    len: u32,
}

fn prd() -> impl Strategy<Value = PrdSpec> {
    let window = WINDOW as u32;
    let span = (CHUNK * CHUNKS) as u32;
    prop_oneof![
        // Inside the window, even or odd address, short lengths.
        8 => (0..span, 1u32..4096).prop_map(move |(o, l)| PrdSpec { addr: window + o, len: l * 2 }),
        // Whole sectors, aligned.
        4 => (0..span / 512, 1u32..8).prop_map(move |(o, l)| PrdSpec { addr: window + o * 512, len: l * 512 }),
        // Count 0 = 64 KiB.
        1 => (0..span).prop_map(move |o| PrdSpec { addr: window + o, len: 0 }),
        // Anywhere (mostly holes).
        1 => (any::<u32>(), 1u32..2048).prop_map(|(a, l)| PrdSpec { addr: a, len: l * 2 }),
    ]
}

#[derive(Clone, Debug)]
struct Case {
    layout: Vec<Kind>,
    prds: Vec<PrdSpec>,
    eot: bool,
    write: bool,
    lba: u32,
    count: u8,
    start_first: bool,
    tiny_pool: bool,
    seed: u8,
}

fn case() -> impl Strategy<Value = Case> {
    (
        proptest::collection::vec(kind(), CHUNKS),
        proptest::collection::vec(prd(), 1..10),
        prop_oneof![9 => Just(true), 1 => Just(false)],
        any::<bool>(),
        0u32..(DISK_SECTORS as u32 + 4),
        1u8..=48,
        any::<bool>(),
        any::<bool>(),
        any::<u8>(),
    )
        .prop_map(
            |(layout, prds, eot, write, lba, count, start_first, tiny_pool, seed)| Case {
                layout,
                prds,
                eot,
                write,
                lba,
                count,
                start_first,
                tiny_pool,
                seed,
            },
        )
}

/// The model's view of guest memory: which bytes exist, and their values.
struct Model {
    table: Vec<u8>,
    window: Vec<u8>,
    layout: Vec<Kind>,
}

impl Model {
    fn slot(&mut self, addr: u64) -> Option<&mut u8> {
        if addr < TABLE_RAM + TABLE_RAM_LEN as u64 {
            return self.table.get_mut(addr as usize);
        }
        let off = addr.checked_sub(WINDOW)? as usize;
        if *self.layout.get(off / CHUNK)? == Kind::Hole {
            return None;
        }
        self.window.get_mut(off)
    }
}

/// Parses the PRD table the way the reference describes: up to 512
/// entries, EOT, or 4 KiB; returns (SG byte addresses for the first
/// `limit` bytes, total bytes described).
fn model_walk(table: &[u8], limit: usize) -> (Vec<u64>, u64) {
    let mut sg = Vec::new();
    let mut described = 0u64;
    for i in 0..512 {
        let e = &table[TABLE as usize + i * 8..TABLE as usize + i * 8 + 8];
        let addr = u32::from_le_bytes(e[..4].try_into().unwrap());
        let ctl = u32::from_le_bytes(e[4..].try_into().unwrap());
        let len = match ctl & 0xFFFE {
            0 => 0x1_0000,
            n => n,
        };
        described += u64::from(len);
        let take = u64::from(len).min((limit - sg.len()) as u64);
        sg.extend((0..take).map(|j| u64::from(addr) + j));
        if ctl & (1 << 31) != 0 {
            break;
        }
    }
    (sg, described)
}

fn run_case(c: &Case) -> Result<(), TestCaseError> {
    // Memory: table RAM at 0, then 16 chunks of RAM/MMIO/hole.
    let mut table_ram = vec![0u8; TABLE_RAM_LEN];
    let mut ram_chunks: Vec<Vec<u8>> = (0..CHUNKS).map(|_| vec![0u8; CHUNK]).collect();
    let mmios: Vec<RamLikeMmio> = (0..CHUNKS).map(|_| RamLikeMmio::new(CHUNK)).collect();
    let fill = |i: usize| (i as u8).wrapping_mul(13) ^ c.seed;
    for (k, chunk) in ram_chunks.iter_mut().enumerate() {
        for (i, b) in chunk.iter_mut().enumerate() {
            *b = fill(k * CHUNK + i);
        }
        mmios[k].fill_with(|i| fill(k * CHUNK + i));
    }
    let normal = BounceArena::<32768>::new();
    let tiny = BounceArena::<512>::new();
    let pool: &dyn BounceBuffers = if c.tiny_pool { &tiny } else { &normal };
    let mut map = RegionMap::<24>::new();
    map.add_ram(TABLE_RAM, RamBacking::from_mut_slice(&mut table_ram))
        .unwrap();
    for (k, (chunk, mmio)) in ram_chunks.iter_mut().zip(mmios.iter()).enumerate() {
        let base = WINDOW + (k * CHUNK) as u64;
        match c.layout[k] {
            Kind::Ram => map
                .add_ram(base, RamBacking::from_mut_slice(chunk))
                .unwrap(),
            Kind::Mmio => map.add_mmio(base, CHUNK as u64, mmio, None).unwrap(),
            Kind::Hole => {}
        }
    }
    let dev = map.new_device().unwrap();
    let space = AddressSpace::<24>::new(map, pool);

    // The PRD table.
    let mut raw = Vec::new();
    for (i, p) in c.prds.iter().enumerate() {
        raw.extend_from_slice(&p.addr.to_le_bytes());
        let eot = c.eot && i + 1 == c.prds.len();
        raw.extend_from_slice(&((p.len & 0xFFFF) | if eot { 1 << 31 } else { 0 }).to_le_bytes());
    }
    space.write(DeviceId::HOST, TABLE, &raw).unwrap();

    // The model, from the state before the command.
    let mut model = Model {
        table: vec![0u8; TABLE_RAM_LEN],
        window: (0..CHUNK * CHUNKS).map(fill).collect(),
        layout: c.layout.clone(),
    };
    space.read(DeviceId::HOST, 0, &mut model.table).unwrap();
    let mut disk_model = disk_image(DISK_SECTORS);
    let count = usize::from(c.count);
    let lba = c.lba as usize;
    let limit = count * 512;
    let (sg, described) = model_walk(&model.table.clone(), limit);
    let short = sg.len() < limit;
    let in_range = lba + count <= DISK_SECTORS;
    // The first sector the transfer cannot move: one with a byte in a hole.
    // However many MMIO pieces a sector has, it moves (staged through one
    // sector of bounce space if need be), even with the one-sector arena.
    let region = |a: u64| -> (Kind, u64) {
        if a < TABLE_RAM_LEN as u64 {
            (Kind::Ram, u64::MAX)
        } else if a >= WINDOW && a < WINDOW + (CHUNK * CHUNKS) as u64 {
            let k = ((a - WINDOW) as usize) / CHUNK;
            (c.layout[k], k as u64)
        } else {
            (Kind::Hole, 0)
        }
    };
    let bad_sector = sg
        .chunks(512)
        .position(|sector| sector.iter().any(|&a| region(a).0 == Kind::Hole));

    let mut img = disk_image(DISK_SECTORS);
    let irq = TestIrq::default();
    let pio = PioBuffer::<8192>::new();
    let mut ide: IdeController<'_, AddressSpace<'_, 24>, MemDisk<'_>, &TestIrq> =
        IdeController::new(
            &space,
            &irq,
            &pio,
            MemDisk::new(&mut img, false),
            None,
            &IdeConfig::new(dev),
        )
        .unwrap();
    ide.config_write(header::BAR4, AccessWidth::Dword, 0xC000);
    ide.config_write(header::COMMAND, AccessWidth::Word, 0x0005);
    let out = |ide: &mut IdeController<'_, AddressSpace<'_, 24>, MemDisk<'_>, &TestIrq>,
               b,
               o,
               v: u32| { ide.write(b, o, AccessWidth::Byte, v) };
    ide.write(IoBlock::BusMaster, 4, AccessWidth::Dword, TABLE as u32);
    out(&mut ide, IoBlock::Command, 6, 0xE0 | (c.lba >> 24) & 0xF);
    out(&mut ide, IoBlock::Command, 2, u32::from(c.count));
    out(&mut ide, IoBlock::Command, 3, c.lba & 0xFF);
    out(&mut ide, IoBlock::Command, 4, (c.lba >> 8) & 0xFF);
    out(&mut ide, IoBlock::Command, 5, (c.lba >> 16) & 0xFF);
    let start = if c.write { 0x01 } else { 0x09 };
    let op = if c.write {
        opcode::WRITE_DMA
    } else {
        opcode::READ_DMA
    };
    if c.start_first {
        out(&mut ide, IoBlock::BusMaster, 0, start);
        out(&mut ide, IoBlock::Command, 7, u32::from(op));
    } else {
        out(&mut ide, IoBlock::Command, 7, u32::from(op));
        out(&mut ide, IoBlock::BusMaster, 0, start);
    }
    prop_assert!(ide.is_idle());
    let bm = ide.read(IoBlock::BusMaster, 2, AccessWidth::Byte);
    let status = ide.read(IoBlock::Control, 0, AccessWidth::Byte);
    let irq_raised = irq.level();

    // Sectors moved: all, none, or (host-bus error) what the registers say.
    let moved = if short {
        prop_assert_eq!((bm, status, irq_raised), (0x00, 0x50, false));
        0
    } else if !in_range {
        prop_assert_eq!((bm, status, irq_raised), (0x04, 0x41, true));
        0
    } else if let Some(bad) = bad_sector {
        prop_assert_eq!(
            (bm, status, irq_raised),
            (0x06, 0x41, true),
            "{:?}",
            ide.last_error()
        );
        let reg = |ide: &mut IdeController<'_, AddressSpace<'_, 24>, MemDisk<'_>, &TestIrq>, o| {
            ide.read(IoBlock::Command, o, AccessWidth::Byte) as usize
        };
        let now = reg(&mut ide, 3) | reg(&mut ide, 4) << 8 | reg(&mut ide, 5) << 16;
        let p = now - lba;
        prop_assert!(p <= bad, "moved {} sectors, past the bad sector {}", p, bad);
        prop_assert_eq!(reg(&mut ide, 2), count - p);
        p
    } else {
        let long = described > limit as u64;
        prop_assert_eq!(
            (bm, status, irq_raised),
            (if long { 0x05 } else { 0x04 }, 0x50, true),
            "{:?}",
            ide.last_error()
        );
        count
    };

    // Apply the model.
    let snapshot = model.window.clone();
    let table_snapshot = model.table.clone();
    for (i, &a) in sg.iter().take(moved * 512).enumerate() {
        let d = lba * 512 + i;
        if c.write {
            let v = if a < TABLE_RAM_LEN as u64 {
                table_snapshot[a as usize]
            } else {
                snapshot[(a - WINDOW) as usize]
            };
            disk_model[d] = v;
        } else if let Some(slot) = model.slot(a) {
            *slot = disk_model[d];
        }
    }
    prop_assert!(
        ide.master().data() == &disk_model[..],
        "disk differs from the model"
    );
    let mut t = vec![0u8; TABLE_RAM_LEN];
    space.read(DeviceId::HOST, 0, &mut t).unwrap();
    prop_assert!(t == model.table, "table RAM differs");
    for k in 0..CHUNKS {
        if c.layout[k] == Kind::Hole {
            continue;
        }
        let mut got = vec![0u8; CHUNK];
        space
            .read(DeviceId::HOST, WINDOW + (k * CHUNK) as u64, &mut got)
            .unwrap();
        prop_assert!(
            got[..] == model.window[k * CHUNK..(k + 1) * CHUNK],
            "chunk {} ({:?}) differs",
            k,
            c.layout[k]
        );
    }
    prop_assert_eq!(space.bounce().in_use(), 0, "bounce space leaked");
    Ok(())
}

trait Master<'d> {
    fn master(&self) -> &MemDisk<'d>;
}

impl<'d, M: DmaMemory + ?Sized> Master<'d> for IdeController<'_, M, MemDisk<'d>, &TestIrq> {
    fn master(&self) -> &MemDisk<'d> {
        self.disk(crate::ide::Unit::Master).unwrap()
    }
}

#[derive(Clone, Debug)]
struct Access {
    block: IoBlock,
    offset: u16,
    width: AccessWidth,
    value: u32,
    write: bool,
}

fn access() -> impl Strategy<Value = Access> {
    let block = prop_oneof![
        4 => Just(IoBlock::Command),
        1 => Just(IoBlock::Control),
        3 => Just(IoBlock::BusMaster),
    ];
    let width = prop_oneof![
        Just(AccessWidth::Byte),
        Just(AccessWidth::Word),
        Just(AccessWidth::Dword)
    ];
    let value = prop_oneof![
        3 => any::<u32>(),
        // Interesting opcodes and control values.
        2 => proptest::sample::select(vec![
            0x20u32, 0x24, 0x25, 0x29, 0x30, 0x35, 0x39, 0xC4, 0xC5, 0xC6, 0xC8, 0xCA, 0xEC, 0xEF,
            0x06, 0x91, 0xF8, 0x27, 0x90, 0xE7, 0x00, 0x01, 0x09, 0x04, 0x0C, 0x80, 0x40, 0xE0,
        ]),
    ];
    (block, 0u16..18, width, value, any::<bool>()).prop_map(
        |(block, offset, width, value, write)| Access {
            block,
            offset,
            width,
            value,
            write,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_prd_tables_move_exactly_the_model_bytes(c in case()) {
        run_case(&c)?;
    }

    #[test]
    fn random_register_traffic_never_panics(ops in proptest::collection::vec(access(), 0..200), junk in any::<u8>()) {
        let mut ram = vec![junk; 0x20000];
        let pool = BounceArena::<8192>::new();
        let mmio = RamLikeMmio::new(0x1000);
        let mut map = RegionMap::<4>::new();
        map.add_ram(0, RamBacking::from_mut_slice(&mut ram)).unwrap();
        map.add_mmio(0x20000, 0x1000, &mmio, None).unwrap();
        let dev = map.new_device().unwrap();
        let space = AddressSpace::<4>::new(map, &pool);
        let mut img = disk_image(64);
        let irq = TestIrq::default();
        let pio = PioBuffer::<8192>::new();
        let mut ide: IdeController<'_, AddressSpace<'_, 4>, MemDisk<'_>, &TestIrq> = IdeController::new(
            &space, &irq, &pio, MemDisk::new(&mut img, false), None,
            &IdeConfig::new(dev),
        ).unwrap();
        ide.config_write(header::BAR4, AccessWidth::Dword, 0xC000);
        ide.config_write(header::COMMAND, AccessWidth::Word, 0x0005);
        for a in &ops {
            if a.write {
                ide.write(a.block, a.offset, a.width, a.value);
            } else {
                let _ = ide.read(a.block, a.offset, a.width);
            }
            if let Some(cl) = space.poll_retry() {
                prop_assert_eq!(cl, ide.requester());
                ide.on_bounce_free();
            }
        }
        ide.drain();
        prop_assert!(ide.is_idle());
        prop_assert_eq!(space.bounce().in_use(), 0);
        // SRST and a good DMA read bring the device back.
        ide.write(IoBlock::Control, 0, AccessWidth::Byte, 0x04);
        ide.write(IoBlock::Control, 0, AccessWidth::Byte, 0x00);
        ide.write(IoBlock::BusMaster, 0, AccessWidth::Byte, 0x00);
        ide.write(IoBlock::BusMaster, 2, AccessWidth::Byte, 0x06);
        let table = [0x0000_8000u32.to_le_bytes(), 0x8000_0200u32.to_le_bytes()].concat();
        space.write(DeviceId::HOST, 0x100, &table).unwrap();
        ide.write(IoBlock::BusMaster, 4, AccessWidth::Dword, 0x100);
        for (o, v) in [(6u16, 0xE0u32), (2, 1), (3, 5), (4, 0), (5, 0), (7, u32::from(opcode::READ_DMA))] {
            ide.write(IoBlock::Command, o, AccessWidth::Byte, v);
        }
        ide.write(IoBlock::BusMaster, 0, AccessWidth::Byte, 0x09);
        prop_assert_eq!(ide.read(IoBlock::Command, 7, AccessWidth::Byte), 0x50);
        let mut got = vec![0u8; 512];
        space.read(DeviceId::HOST, 0x8000, &mut got).unwrap();
        prop_assert!(got == super::harness::image(5, 1));
    }
}
