//! Bytes → a device state for `IdeController::restore_state`, then guest
//! accesses and backend events on the restored controller.
//!
//! Two ways to make the state, chosen by the first byte: the raw bytes
//! that follow (mode even), or a state saved by a live controller in the
//! middle of a fuzzer-chosen command (a DMA, PIO or TRIM with requests in
//! flight and some released, a FLUSH, a deferred STOP or SRST) with up to
//! 16 fuzzer-chosen byte patches applied (mode odd): the second reaches
//! the validation of every field, the first the framing.
//!
//! Checked, with a panic on any violation (and libFuzzer's timeout for a
//! hang):
//! - a refused state changes nothing: the controller saves the same bytes
//!   before and after;
//! - an accepted state saves again into a state a fresh controller
//!   accepts;
//! - after `restart` and arbitrary port accesses, completions and bounce
//!   of the backend's `wait`, the controller drains (every request
//!   completes) and SRST brings it back to idle; nothing panics.
//!
//! Plain stable Rust: the libFuzzer wrapper
//! (`../fuzz_targets/snapshot_restore.rs`) and the corpus replay test
//! include this file and call [`run`].

use std::cell::Cell;

use vmdma_core::block::DeferredDisk;
use vmdma_core::dma::{AddressSpace, BounceArena, DmaMemory};
use vmdma_core::ide::{AccessWidth, IdeConfig, IdeController, IrqLine, PioBuffer, Unit};
use vmdma_core::memory::{DeviceId, RamBacking, RegionMap};
use vmdma_core::pci::{PciFunction, header};
use vmdma_core::snapshot::{Reader, Writer};

const RAM_LEN: usize = 64 << 10;
const BMDMA: u16 = 0xC000;
const PRD_TABLE: u64 = 0x1000;
const TRIM_BLOCK: u64 = 0x3000;
const DATA_RAM: u32 = 0x8000;
const SECTORS: usize = 64;
const MAX_STATE: usize = 1 << 14;

struct Irq {
    level: Cell<bool>,
}

impl IrqLine for Irq {
    fn set_level(&self, high: bool) {
        self.level.set(high);
    }
}

type Ide<'a, 'm> = IdeController<'m, AddressSpace<'m, 1>, DeferredDisk<'a, 'm, 4, 256>, &'a Irq, 4>;

struct Guest<'a, 'm> {
    ide: Ide<'a, 'm>,
    space: &'m AddressSpace<'m, 1>,
}

/// Builds a machine (64 KiB RAM holding `ram_init`, a 64-sector deferred
/// disk, a CD-ROM slave over 16 sectors if `cd`) and runs `f` on it.
fn machine<R>(ram_init: &[u8], cd: bool, f: impl FnOnce(&mut Guest<'_, '_>) -> R) -> R {
    let mut ram = vec![0u8; RAM_LEN];
    let n = ram_init.len().min(RAM_LEN);
    ram[..n].copy_from_slice(&ram_init[..n]);
    let arena = BounceArena::<4096>::new();
    let pio = PioBuffer::<{ 4 * 512 }>::new();
    let irq = Irq {
        level: Cell::new(false),
    };
    let mut image: Vec<u8> = (0..SECTORS * 512).map(|i| (i ^ (i >> 9)) as u8).collect();
    let mut cd_image = vec![0x5Au8; 16 * 512];
    let mut map = RegionMap::<1>::new();
    map.add_ram(0, RamBacking::from_mut_slice(&mut ram))
        .unwrap();
    let space: AddressSpace<'_, 1> = AddressSpace::new(map, &arena);
    let disk = DeferredDisk::new(&mut image, false);
    let id = space.new_device().unwrap();
    let mut ide: Ide<'_, '_> =
        IdeController::new(&space, &irq, &pio, disk, None, &IdeConfig::new(id)).unwrap();
    if cd {
        ide.attach_cdrom(Unit::Slave, DeferredDisk::new(&mut cd_image, true))
            .unwrap();
    }
    let mut g = Guest { ide, space: &space };
    f(&mut g)
}

impl Guest<'_, '_> {
    fn save(&self) -> Vec<u8> {
        let mut buf = vec![0u8; MAX_STATE];
        let mut w = Writer::new(&mut buf);
        self.ide.save_state(&mut w).expect("the state fits");
        let n = w.len();
        buf.truncate(n);
        buf
    }

    fn outb(&mut self, port: u16, v: u8) {
        self.ide.write_port(port, AccessWidth::Byte, u32::from(v));
    }

    fn release(&mut self, n: u32) {
        for unit in [Unit::Master, Unit::Slave] {
            if let Some(d) = self.ide.disk_mut(unit) {
                d.release(n);
            }
        }
        self.ide.poll();
    }

    fn set_wait(&mut self, on: bool) {
        for unit in [Unit::Master, Unit::Slave] {
            if let Some(d) = self.ide.disk_mut(unit) {
                d.set_wait_completes(on);
            }
        }
    }

    fn ram(&self) -> Vec<u8> {
        let mut v = vec![0u8; RAM_LEN];
        self.space.read(DeviceId::HOST, 0, &mut v).unwrap();
        v
    }
}

/// Drives a live controller into the middle of a command chosen by `s`
/// and returns its state and guest RAM.
fn scenario(s: &[u8; 8], cd: bool) -> (Vec<u8>, Vec<u8>) {
    machine(&[], cd, |g| {
        g.ide
            .config_write(header::BAR4, AccessWidth::Dword, u32::from(BMDMA));
        g.ide
            .config_write(header::COMMAND, AccessWidth::Word, 0x0005);
        let sectors = 1 + s[1] % 8;
        // PRDs of one sector each, 512 bytes apart: with IOV 4 a long
        // command takes several requests.
        let mut prd = Vec::new();
        for i in 0..u32::from(sectors) {
            prd.extend_from_slice(&(DATA_RAM + i * 1024).to_le_bytes());
            let eot = if i + 1 == u32::from(sectors) {
                1u32 << 31
            } else {
                0
            };
            prd.extend_from_slice(&(512u32 | eot).to_le_bytes());
        }
        g.space.write(DeviceId::HOST, PRD_TABLE, &prd).unwrap();
        let mut trim = [0u8; 64];
        for (i, c) in trim.chunks_mut(8).enumerate() {
            c.copy_from_slice(&((i as u64 * 5) | (u64::from(s[2] % 4) << 48)).to_le_bytes());
        }
        g.space.write(DeviceId::HOST, TRIM_BLOCK, &trim).unwrap();
        g.ide
            .write_port(BMDMA + 4, AccessWidth::Dword, PRD_TABLE as u32);
        g.set_wait(s[6] & 1 != 0);
        if s[7] & 1 != 0 {
            g.outb(0x1F2, 2);
            g.outb(0x1F7, 0xC6); // SET MULTIPLE 2
        }
        if s[7] & 2 != 0 {
            g.outb(0x1F1, 0x82);
            g.outb(0x1F7, 0xEF); // write cache off: flushes
            g.release(1);
        }
        g.outb(0x1F6, 0xE0);
        g.outb(0x1F2, sectors);
        g.outb(0x1F3, s[3] % 48);
        g.outb(0x1F4, 0);
        g.outb(0x1F5, 0);
        match s[0] % 8 {
            0 => g.outb(0x1F7, 0xC8),
            1 => g.outb(0x1F7, 0xCA),
            2 => g.outb(0x1F7, 0x20),
            3 => {
                g.outb(0x1F7, 0x30);
                for i in 0..256u32 {
                    g.ide.write_port(0x1F0, AccessWidth::Word, i);
                }
            }
            4 => g.outb(0x1F7, 0xE7),
            5 => {
                g.outb(0x1F1, 0x01);
                g.outb(0x1F2, 1);
                g.outb(0x1F6, 0x40);
                g.outb(0x1F7, 0x06);
            }
            6 => g.outb(0x1F7, 0xC4),
            _ => {
                if cd {
                    // An ATAPI READ(10) on the CD-ROM slave, PIO or DMA.
                    g.outb(0x1F6, 0x10);
                    g.outb(0x1F1, s[5] & 1);
                    g.outb(0x1F4, 0x00);
                    g.outb(0x1F5, 0x0A);
                    g.outb(0x1F7, 0xA0);
                    let cdb = [0x28u8, 0, 0, 0, 0, s[3] % 4, 0, 0, 1 + s[1] % 2, 0, 0, 0];
                    for w in cdb.chunks(2) {
                        let v = u16::from_le_bytes([w[0], w[1]]);
                        g.ide.write_port(0x1F0, AccessWidth::Word, u32::from(v));
                    }
                }
            }
        }
        if s[4] & 1 != 0 {
            let read = matches!(s[0] % 8, 0 | 7);
            g.outb(BMDMA, if read { 0x09 } else { 0x01 });
        }
        g.release(u32::from(s[4] >> 1) % 4);
        if s[5] & 2 != 0 {
            g.outb(BMDMA, 0x00); // STOP (deferred without `wait`)
        }
        if s[5] & 4 != 0 {
            g.outb(0x3F6, 0x04); // SRST (deferred without `wait`)
            g.outb(0x3F6, 0x00);
        }
        (g.save(), g.ram())
    })
}

/// Restores `state` into a fresh machine over `ram` and drives it with
/// `actions`; see the module docs for what is checked.
fn restore_and_drive(state: &[u8], ram: &[u8], cd: bool, actions: &[u8]) {
    let accepted = machine(ram, cd, |g| {
        let before = g.save();
        if g.ide.restore_state(&mut Reader::new(state)).is_err() {
            assert_eq!(g.save(), before, "a refused restore changed the controller");
            return None;
        }
        let again = g.save();
        g.ide.restart();
        for a in actions.chunks_exact(3).take(128) {
            let (kind, x, y) = (a[0], a[1], a[2]);
            match kind % 8 {
                0 => g.outb(0x1F0 + u16::from(x % 8), y),
                1 => {
                    let _ = g.ide.read_port(0x1F0 + u16::from(x % 8), AccessWidth::Byte);
                }
                2 => g.outb(0x3F6, y),
                3 => g.outb(BMDMA + u16::from(x % 16), y),
                4 => {
                    let _ = g.ide.read_port(0x1F0, AccessWidth::Word);
                    g.ide.write_port(0x1F0, AccessWidth::Word, u32::from(y));
                }
                5 => g.release(u32::from(y % 4)),
                6 => g.set_wait(y & 1 != 0),
                _ => {
                    let _ = g
                        .ide
                        .read_port(BMDMA + u16::from(x % 16), AccessWidth::Byte);
                    g.ide.on_bounce_free();
                }
            }
        }
        g.set_wait(true);
        g.release(64);
        assert!(g.ide.drain(), "every request completes");
        g.outb(0x3F6, 0x04);
        g.outb(0x3F6, 0x00);
        assert!(g.ide.drain());
        assert!(g.ide.is_idle(), "idle after SRST");
        Some(again)
    });
    if let Some(again) = accepted {
        machine(ram, cd, |g| {
            g.ide
                .restore_state(&mut Reader::new(&again))
                .expect("an accepted state saves into an accepted state");
        });
    }
}

pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let cd = mode & 2 != 0;
    if mode & 1 == 0 {
        // Raw bytes: a length, the state, then actions.
        let Some((len, rest)) = rest.split_first_chunk::<2>() else {
            return;
        };
        let len = usize::from(u16::from_le_bytes(*len)).min(rest.len());
        let (state, actions) = rest.split_at(len);
        restore_and_drive(state, &[], cd, actions);
        return;
    }
    // A live state with patches.
    let Some((s, rest)) = rest.split_first_chunk::<8>() else {
        return;
    };
    let (mut state, ram) = scenario(s, cd);
    let Some((&patches, rest)) = rest.split_first() else {
        return;
    };
    let n = usize::from(patches % 17);
    let (patch_bytes, actions) = rest.split_at((n * 3).min(rest.len()));
    for p in patch_bytes.chunks_exact(3) {
        let at = usize::from(u16::from_le_bytes([p[0], p[1]]));
        if !state.is_empty() {
            let len = state.len();
            state[at % len] ^= p[2];
        }
    }
    restore_and_drive(&state, &ram, cd, actions);
}
