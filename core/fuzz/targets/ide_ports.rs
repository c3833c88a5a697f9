//! Bytes → a sequence of guest actions against the IDE controller: task-file,
//! control and BMDMA port reads/writes of every width, PCI config writes, and
//! stores into guest RAM (so PRD tables and TRIM ranges are guest-chosen).
//! The controller must never panic, and every action must return (no hang).
//! Device 0 is a disk, device 1 an ATAPI CD-ROM (feature `atapi`) over 8
//! blocks, so PACKET, its data phases and its DMA are reachable (the Device
//! register's bit 4 selects it).
//! Memory: 256 KiB RAM at 0, a 16 KiB RAM-like MMIO window at 0x10_0000
//! (bounce path), holes everywhere else. Input length is capped at 4 KiB by
//! the loop below (at most 1024 actions).
//!
//! Plain stable Rust: the libFuzzer wrapper (`../fuzz_targets/ide_ports.rs`)
//! and the corpus replay test (`tests/fuzz_corpus.rs`) both include this
//! file and call [`run`].

use vmdma_core::block::MemDisk;
use vmdma_core::dma::{AddressSpace, BounceArena, BounceWait, DmaMemory};
use vmdma_core::ide::{AccessWidth, IdeConfig, IdeController, IoBlock, IrqLine, PioBuffer, Unit};
use vmdma_core::memory::{DeviceId, RamBacking, RegionMap};
use vmdma_core::pci::PciFunction;
use vmdma_core::testutil::RamLikeMmio;

struct Irq;
impl IrqLine for Irq {
    fn set_level(&self, _: bool) {}
}

fn width(b: u8) -> AccessWidth {
    match b % 3 {
        0 => AccessWidth::Byte,
        1 => AccessWidth::Word,
        _ => AccessWidth::Dword,
    }
}

/// Drives the controller with the actions `data` encodes; panics (the
/// fuzzer's finding) if the controller does.
pub fn run(data: &[u8]) {
    let mut ram = vec![0u8; 256 << 10];
    let mmio = RamLikeMmio::new(16 << 10);
    let pool = BounceArena::<8192>::new();
    let pio = PioBuffer::<{ 16 * 512 }>::new();
    let mut map = RegionMap::<2>::new();
    map.add_ram(0, RamBacking::from_mut_slice(&mut ram))
        .unwrap();
    map.add_mmio(0x10_0000, 16 << 10, &mmio, None).unwrap();
    let dev = map.new_device().unwrap();
    let space: AddressSpace<'_, 2> = AddressSpace::new(map, &pool);
    let mut image = vec![0u8; 64 * 512];
    let mut cd: Vec<u8> = (0..8 * 2048).map(|i| (i / 7) as u8).collect();
    let cfg = IdeConfig::new(dev);
    let mut ide: IdeController<'_, _, MemDisk<'_>, Irq, 16> = IdeController::new(
        &space,
        Irq,
        &pio,
        MemDisk::new(&mut image, false),
        None,
        &cfg,
    )
    .unwrap();
    ide.attach_cdrom(Unit::Slave, MemDisk::new(&mut cd, true))
        .unwrap();
    ide.firmware_init(0xC000).unwrap();
    ide.config_write(0x04, AccessWidth::Word, 0x0005); // I/O + bus master

    let mut ops = data.chunks_exact(4).take(1024);
    while let Some(op) = ops.next() {
        let (kind, a, b, c) = (op[0], op[1], op[2], op[3]);
        let value = u32::from_le_bytes([b, c, b, c]);
        match kind % 8 {
            0 => ide.write(IoBlock::Command, u16::from(a % 8), width(kind / 8), value),
            1 => {
                let _ = ide.read(IoBlock::Command, u16::from(a % 8), width(kind / 8));
            }
            2 => ide.write(IoBlock::Control, 0, AccessWidth::Byte, value),
            3 => {
                let _ = ide.read(IoBlock::Control, 0, AccessWidth::Byte);
            }
            4 => ide.write(
                IoBlock::BusMaster,
                u16::from(a % 16),
                width(kind / 8),
                value,
            ),
            5 => {
                let _ = ide.read(IoBlock::BusMaster, u16::from(a % 16), width(kind / 8));
            }
            6 => {
                // Store the next 4 input bytes into RAM at a dword-aligned
                // address below 256 KiB (PRD tables, TRIM ranges, data);
                // `c` makes some stores land in MMIO or holes.
                let addr = (u64::from(a) << 10) | (u64::from(b) << 2);
                let addr = if c & 0xC0 == 0xC0 {
                    0x10_0000 | (addr & 0x3FFF)
                } else {
                    addr
                };
                let payload = ops.next().unwrap_or(&[0; 4]);
                let _ = space.write(DeviceId::HOST, addr, payload);
            }
            _ => {
                if a & 0x80 != 0 {
                    ide.config_write(a & 0x7F, width(kind / 8), value);
                } else {
                    ide.poll();
                    if space.poll_retry().is_some() {
                        ide.on_bounce_free();
                    }
                }
            }
        }
    }
    assert!(ide.drain());
    assert_eq!(space.bounce().in_use(), 0);
}
