//! The test rig: guest memory (RAM, a hole, RAM-like MMIO), a bounce pool,
//! test disks, an IRQ probe, and guest-style port helpers.

use std::cell::Cell;
use std::collections::VecDeque;
use std::vec;
use std::vec::Vec;

use crate::block::{BlockDevice, BlockError, BlockRequest, Completion, MemDisk, RequestToken};
use crate::dma::{AddressSpace, BounceBuffers, BouncePool, ClientId, DmaMemory};
use crate::ide::{AccessWidth, IdeConfig, IdeController, IrqLine, Unit};
use crate::memory::{DeviceId, RamBacking, RegionMap};
use crate::pci::{PciFunction, header};
use crate::testutil::RamLikeMmio;

pub const RAM_BASE: u64 = 0;
pub const MMIO_BASE: u64 = 0x4000_0000;
pub const MMIO_LEN: usize = 0x1_0000;
/// An address in no region.
pub const HOLE: u64 = 0x3000_0000;
pub const BMDMA: u16 = 0xC000;
pub const PRD_TABLE: u64 = 0x1000;
pub const IDE_DEV: DeviceId = DeviceId(1);
pub const IDE_CLIENT: ClientId = ClientId(7);

pub const DATA: u16 = 0x1F0;
pub const FEATURES: u16 = 0x1F1;
pub const NSECT: u16 = 0x1F2;
pub const LBAL: u16 = 0x1F3;
pub const LBAM: u16 = 0x1F4;
pub const LBAH: u16 = 0x1F5;
pub const DEVICE: u16 = 0x1F6;
pub const CMD: u16 = 0x1F7;
pub const CTRL: u16 = 0x3F6;

/// Records the IRQ line.
#[derive(Default)]
pub struct TestIrq {
    level: Cell<bool>,
    raises: Cell<u32>,
}

impl TestIrq {
    pub fn level(&self) -> bool {
        self.level.get()
    }
    pub fn raises(&self) -> u32 {
        self.raises.get()
    }
}

impl IrqLine for TestIrq {
    fn set_level(&self, high: bool) {
        assert_ne!(
            self.level.get(),
            high,
            "set_level is only called on changes"
        );
        if high {
            self.raises.set(self.raises.get() + 1);
        }
        self.level.set(high);
    }
}

/// The byte at `offset` of the initial test disk image.
pub fn disk_byte(offset: usize) -> u8 {
    let sector = offset / 512;
    ((offset % 512) as u8) ^ (sector as u8).wrapping_mul(31) ^ ((sector >> 8) as u8) ^ 0xA5
}

/// A disk image of `sectors` sectors filled with [`disk_byte`].
pub fn disk_image(sectors: usize) -> Vec<u8> {
    (0..sectors * 512).map(disk_byte).collect()
}

/// A MemDisk that holds completions until released: `poll` returns
/// nothing while held, `wait` always delivers (the drain path).
pub struct AsyncDisk<'d> {
    pub inner: MemDisk<'d>,
    held: VecDeque<Completion>,
    pub hold: bool,
    pub waits: u32,
}

impl<'d> AsyncDisk<'d> {
    pub fn new(data: &'d mut [u8]) -> Self {
        AsyncDisk {
            inner: MemDisk::new(data, false),
            held: VecDeque::new(),
            hold: true,
            waits: 0,
        }
    }
    pub fn in_flight(&self) -> usize {
        self.held.len()
    }
}

impl BlockDevice for AsyncDisk<'_> {
    fn sector_count(&self) -> u64 {
        self.inner.sector_count()
    }
    fn is_read_only(&self) -> bool {
        false
    }
    fn submit(&mut self, req: BlockRequest<'_, '_>) -> Result<RequestToken, BlockError> {
        let t = self.inner.submit(req)?;
        let c = self.inner.poll().expect("MemDisk completes in submit");
        assert_eq!(c.token, t);
        self.held.push_back(c);
        Ok(t)
    }
    fn poll(&mut self) -> Option<Completion> {
        if self.hold {
            None
        } else {
            self.held.pop_front()
        }
    }
    fn wait(&mut self) -> Option<Completion> {
        self.waits += 1;
        self.held.pop_front()
    }
}

/// A disk of any size that stores nothing: reads return [`disk_byte`]
/// of the absolute offset (mod 2^32), writes are logged.
pub struct HugeDisk {
    pub sectors: u64,
    pub writes: Vec<(u64, u64)>,
    done: VecDeque<Completion>,
    next: u32,
}

impl HugeDisk {
    pub fn new(sectors: u64) -> Self {
        HugeDisk {
            sectors,
            writes: Vec::new(),
            done: VecDeque::new(),
            next: 0,
        }
    }
}

impl BlockDevice for HugeDisk {
    fn sector_count(&self) -> u64 {
        self.sectors
    }
    fn is_read_only(&self) -> bool {
        false
    }
    fn submit(&mut self, req: BlockRequest<'_, '_>) -> Result<RequestToken, BlockError> {
        match req {
            BlockRequest::Read { sector, iov } => {
                let (off, _) = crate::block::check_rw(self.sectors, sector, iov)?;
                let mut pos = off as usize;
                for s in iov {
                    let bytes: Vec<u8> = (0..s.len()).map(|i| disk_byte(pos + i)).collect();
                    s.copy_from(0, &bytes);
                    pos += s.len();
                }
            }
            BlockRequest::Write { sector, iov } => {
                let (_, len) = crate::block::check_rw(self.sectors, sector, iov)?;
                self.writes.push((sector, len / 512));
            }
            BlockRequest::Flush => {}
            BlockRequest::Discard { sector, count } => {
                crate::block::check_range(self.sectors, sector, count)?;
            }
        }
        let token = RequestToken(self.next);
        self.next += 1;
        self.done.push_back(Completion {
            token,
            result: Ok(()),
        });
        Ok(token)
    }
    fn poll(&mut self) -> Option<Completion> {
        self.done.pop_front()
    }
}

/// Which bounce pool the address space uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pool {
    /// 8 slots of 4 KiB.
    Normal,
    /// 1 slot of 512 bytes.
    Tiny,
}

pub struct Env {
    pub ram_len: usize,
    pub pool: Pool,
}

impl Default for Env {
    fn default() -> Self {
        Env {
            ram_len: 1 << 20,
            pool: Pool::Normal,
        }
    }
}

pub struct Rig<'a, B, const IOV: usize> {
    pub ide: IdeController<'a, AddressSpace<'a, 4, 4>, B, &'a TestIrq, IOV>,
    pub space: &'a AddressSpace<'a, 4, 4>,
    pub mmio: &'a RamLikeMmio,
    pub irq: &'a TestIrq,
}

/// Builds memory, a controller over `master`/`slave`, and runs `f`.
pub fn with_devices<B: BlockDevice, const IOV: usize, R>(
    env: Env,
    master: B,
    slave: Option<B>,
    f: impl FnOnce(&mut Rig<'_, B, IOV>) -> R,
) -> R {
    with_drives(env, Some(master), slave, f)
}

/// [`with_devices`] where the master may be absent too.
pub fn with_drives<B: BlockDevice, const IOV: usize, R>(
    env: Env,
    master: Option<B>,
    slave: Option<B>,
    f: impl FnOnce(&mut Rig<'_, B, IOV>) -> R,
) -> R {
    let mut ram = vec![0u8; env.ram_len];
    let mmio = RamLikeMmio::new(MMIO_LEN);
    let normal = BouncePool::<4096, 8>::new();
    let tiny = BouncePool::<512, 1>::new();
    let pool: &dyn BounceBuffers = match env.pool {
        Pool::Normal => &normal,
        Pool::Tiny => &tiny,
    };
    let mut map = RegionMap::<4>::new();
    map.add_ram(RAM_BASE, RamBacking::from_mut_slice(&mut ram))
        .unwrap();
    map.add_mmio(MMIO_BASE, MMIO_LEN as u64, &mmio, None)
        .unwrap();
    let space = AddressSpace::<4, 4>::new(map, pool);
    let irq = TestIrq::default();
    let ide = IdeController::with_drives(
        &space,
        &irq,
        master,
        slave,
        &IdeConfig::new(IDE_DEV, IDE_CLIENT),
    );
    let mut rig = Rig {
        ide,
        space: &space,
        mmio: &mmio,
        irq: &irq,
    };
    f(&mut rig)
}

/// A rig with one MemDisk of `sectors` sectors (filled with [`disk_byte`]).
pub fn with_disk<R>(sectors: usize, f: impl FnOnce(&mut Rig<'_, MemDisk<'_>, 256>) -> R) -> R {
    let mut image = disk_image(sectors);
    with_devices(Env::default(), MemDisk::new(&mut image, false), None, f)
}

impl<B: BlockDevice, const IOV: usize> Rig<'_, B, IOV> {
    fn decode(&self, port: u16) -> (crate::ide::IoBlock, u16) {
        self.ide
            .decode_port(port)
            .unwrap_or_else(|| panic!("port {port:#x} does not decode"))
    }
    pub fn inb(&mut self, port: u16) -> u8 {
        let (b, o) = self.decode(port);
        self.ide.read(b, o, AccessWidth::Byte) as u8
    }
    pub fn inw(&mut self, port: u16) -> u16 {
        let (b, o) = self.decode(port);
        self.ide.read(b, o, AccessWidth::Word) as u16
    }
    pub fn inl(&mut self, port: u16) -> u32 {
        let (b, o) = self.decode(port);
        self.ide.read(b, o, AccessWidth::Dword)
    }
    pub fn outb(&mut self, port: u16, v: u8) {
        let (b, o) = self.decode(port);
        self.ide.write(b, o, AccessWidth::Byte, v.into());
    }
    pub fn outw(&mut self, port: u16, v: u16) {
        let (b, o) = self.decode(port);
        self.ide.write(b, o, AccessWidth::Word, v.into());
    }
    pub fn outl(&mut self, port: u16, v: u32) {
        let (b, o) = self.decode(port);
        self.ide.write(b, o, AccessWidth::Dword, v);
    }

    /// Status (lowers the IRQ).
    pub fn status(&mut self) -> u8 {
        self.inb(CMD)
    }
    pub fn alt_status(&mut self) -> u8 {
        self.inb(CTRL)
    }
    pub fn error(&mut self) -> u8 {
        self.inb(FEATURES)
    }

    /// LBA28 addressing of `count` sectors at `lba` on device 0.
    pub fn lba28(&mut self, lba: u32, count: u8) {
        self.outb(DEVICE, 0xE0 | ((lba >> 24) as u8 & 0x0F));
        self.outb(NSECT, count);
        self.outb(LBAL, lba as u8);
        self.outb(LBAM, (lba >> 8) as u8);
        self.outb(LBAH, (lba >> 16) as u8);
    }

    /// LBA48 addressing (HOB bytes first, as Linux does) on device 0.
    pub fn lba48(&mut self, lba: u64, count: u16) {
        self.outb(DEVICE, 0x40);
        self.outb(NSECT, (count >> 8) as u8);
        self.outb(LBAL, (lba >> 24) as u8);
        self.outb(LBAM, (lba >> 32) as u8);
        self.outb(LBAH, (lba >> 40) as u8);
        self.outb(NSECT, count as u8);
        self.outb(LBAL, lba as u8);
        self.outb(LBAM, (lba >> 8) as u8);
        self.outb(LBAH, (lba >> 16) as u8);
    }

    pub fn command(&mut self, op: u8) {
        self.outb(CMD, op);
    }

    /// Firmware + driver PCI set-up: BAR4 at [`BMDMA`], I/O and bus master.
    pub fn enable_pci(&mut self) {
        self.ide
            .config_write(header::BAR4, AccessWidth::Dword, u32::from(BMDMA));
        self.ide
            .config_write(header::COMMAND, AccessWidth::Word, 0x0005);
    }

    pub fn bm_cmd(&mut self, v: u8) {
        self.outb(BMDMA, v);
    }
    pub fn bm_status(&mut self) -> u8 {
        self.inb(BMDMA + 2)
    }
    /// Linux's IRQ acknowledge: read BM status and write it back.
    pub fn bm_ack(&mut self) {
        let s = self.bm_status();
        self.outb(BMDMA + 2, s);
    }
    pub fn bm_table(&mut self, addr: u32) {
        self.outl(BMDMA + 4, addr);
    }

    /// Writes a PRD table at `table` and points the bus master at it.
    pub fn prds(&mut self, table: u64, entries: &[(u32, u32, bool)]) {
        let mut raw = Vec::new();
        for &(addr, len, eot) in entries {
            raw.extend_from_slice(&addr.to_le_bytes());
            let ctl = (len & 0xFFFF) | if eot { 1 << 31 } else { 0 };
            raw.extend_from_slice(&ctl.to_le_bytes());
        }
        self.space.write(DeviceId::HOST, table, &raw).unwrap();
        self.bm_table(table as u32);
    }

    /// Guest memory contents (RAM or MMIO).
    pub fn mem(&self, addr: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        self.space.read(DeviceId::HOST, addr, &mut v).unwrap();
        v
    }
    pub fn set_mem(&self, addr: u64, data: &[u8]) {
        self.space.write(DeviceId::HOST, addr, data).unwrap();
    }

    /// The bytes of `sectors` sectors at `lba` from the disk at `unit`,
    /// for MemDisk-backed rigs.
    pub fn master(&self) -> &B {
        self.ide.disk(Unit::Master).unwrap()
    }
    pub fn master_mut(&mut self) -> &mut B {
        self.ide.disk_mut(Unit::Master).unwrap()
    }

    /// Reads `n` words from the data port.
    pub fn read_words(&mut self, n: usize) -> Vec<u16> {
        (0..n).map(|_| self.inw(DATA)).collect()
    }
}

impl<const IOV: usize> Rig<'_, MemDisk<'_>, IOV> {
    pub fn disk(&self) -> &[u8] {
        self.master().data()
    }
}

impl<const IOV: usize> Rig<'_, AsyncDisk<'_>, IOV> {
    pub fn disk(&self) -> &[u8] {
        self.master().inner.data()
    }
}

/// Sectors `lba..lba+n` of the initial image.
pub fn image(lba: usize, n: usize) -> Vec<u8> {
    (lba * 512..(lba + n) * 512).map(disk_byte).collect()
}

/// The standard ATA status values.
pub const ST_READY: u8 = 0x50;
pub const ST_DRQ: u8 = 0x58;
pub const ST_ERR: u8 = 0x41;
pub const ERR_ABRT: u8 = 0x04;
