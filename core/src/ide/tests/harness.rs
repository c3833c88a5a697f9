//! The test rig: guest memory (RAM, a hole, RAM-like MMIO), a bounce arena,
//! test disks, an IRQ probe, a lease checker, and guest-style port helpers.

use std::cell::Cell;
use std::collections::VecDeque;
use std::vec;
use std::vec::Vec;

use crate::block::Refused;
use crate::block::{BlockDevice, BlockRequest, Completion, DeferredDisk, MemDisk, RequestToken};
use crate::dma::{AddressSpace, BounceArena, BounceBuffers, DmaMemory};
use crate::ide::{AccessWidth, IdeConfig, IdeController, IrqLine, PioBuffer, Unit};
use crate::memory::{DeviceId, RamBacking, RegionMap};
use crate::pci::{PciFunction, header};
use crate::testutil::{LeaseChecker, RamLikeMmio};

pub const RAM_BASE: u64 = 0;
pub const MMIO_BASE: u64 = 0x4000_0000;
pub const MMIO_LEN: usize = 0x1_0000;
/// An address in no region.
pub const HOLE: u64 = 0x3000_0000;
pub const BMDMA: u16 = 0xC000;
pub const PRD_TABLE: u64 = 0x1000;

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

/// A disk of any size that stores nothing: reads return [`disk_byte`]
/// of the absolute offset (mod 2^32), writes are logged.
pub struct HugeDisk {
    pub sectors: u64,
    pub writes: Vec<(u64, u64)>,
    done: VecDeque<Completion>,
}

impl HugeDisk {
    pub fn new(sectors: u64) -> Self {
        HugeDisk {
            sectors,
            writes: Vec::new(),
            done: VecDeque::new(),
        }
    }
}

impl<'m> BlockDevice<'m> for HugeDisk {
    fn sector_count(&self) -> u64 {
        self.sectors
    }
    fn is_read_only(&self) -> bool {
        false
    }
    fn submit(&mut self, token: RequestToken, req: BlockRequest<'_, 'm>) -> Result<(), Refused> {
        let checked = match req {
            BlockRequest::Read { sector, iov } => crate::block::check_rw(self.sectors, sector, iov)
                .map(|(off, _)| {
                    let mut pos = off as usize;
                    for l in iov {
                        let s = l.view(&token).unwrap();
                        let bytes: Vec<u8> = (0..s.len()).map(|i| disk_byte(pos + i)).collect();
                        s.copy_from(0, &bytes);
                        pos += s.len();
                    }
                }),
            BlockRequest::Write { sector, iov } => {
                crate::block::check_rw(self.sectors, sector, iov)
                    .map(|(_, len)| self.writes.push((sector, len / 512)))
            }
            BlockRequest::Flush => Ok(()),
            BlockRequest::Discard { sector, count } => {
                crate::block::check_range(self.sectors, sector, count)
            }
        };
        if let Err(e) = checked {
            return Err(Refused::new(token, e));
        }
        self.done.push_back(Completion::new(token, Ok(())));
        Ok(())
    }
    fn poll(&mut self) -> Option<Completion> {
        self.done.pop_front()
    }
    fn wait(&mut self) -> Option<Completion> {
        self.done.pop_front()
    }
}

/// Bounce arena sizes for the address space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pool {
    /// 32 KiB.
    Normal,
    /// One sector.
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

pub type Space<'a> = AddressSpace<'a, 4>;

pub struct Rig<'a, B, const IOV: usize> {
    pub ide: IdeController<'a, Space<'a>, B, &'a TestIrq, IOV>,
    pub space: &'a Space<'a>,
    pub mmio: &'a RamLikeMmio,
    pub irq: &'a TestIrq,
    pub lease: Option<&'a LeaseChecker<'a>>,
}

/// Memory for a rig: RAM at 0, RAM-like MMIO at [`MMIO_BASE`].
struct Memory {
    ram: Vec<u8>,
    mmio: RamLikeMmio,
    normal: BounceArena<32768>,
    tiny: BounceArena<512>,
    pio: PioBuffer<{ 16 * 512 }>,
    irq: TestIrq,
}

impl Memory {
    fn new(env: &Env) -> Self {
        Memory {
            ram: vec![0u8; env.ram_len],
            mmio: RamLikeMmio::new(MMIO_LEN),
            normal: BounceArena::new(),
            tiny: BounceArena::new(),
            pio: PioBuffer::new(),
            irq: TestIrq::default(),
        }
    }
}

fn space<'a>(
    pool: Pool,
    ram: &'a mut [u8],
    mmio: &'a RamLikeMmio,
    arenas: (&'a dyn BounceBuffers, &'a dyn BounceBuffers),
) -> Space<'a> {
    let arena = match pool {
        Pool::Normal => arenas.0,
        Pool::Tiny => arenas.1,
    };
    let mut map = RegionMap::<4>::new();
    map.add_ram(RAM_BASE, RamBacking::from_mut_slice(ram))
        .unwrap();
    map.add_mmio(MMIO_BASE, MMIO_LEN as u64, mmio, None)
        .unwrap();
    AddressSpace::new(map, arena)
}

/// Builds memory, a controller over `master`/`slave`, and runs `f`.
pub fn with_devices<B, const IOV: usize, R>(
    env: Env,
    master: B,
    slave: Option<B>,
    f: impl FnOnce(&mut Rig<'_, B, IOV>) -> R,
) -> R
where
    B: for<'x> BlockDevice<'x>,
{
    with_drives(env, Some(master), slave, f)
}

/// [`with_devices`] where the master may be absent too.
pub fn with_drives<B, const IOV: usize, R>(
    env: Env,
    master: Option<B>,
    slave: Option<B>,
    f: impl FnOnce(&mut Rig<'_, B, IOV>) -> R,
) -> R
where
    B: for<'x> BlockDevice<'x>,
{
    let Memory {
        mut ram,
        mmio,
        normal,
        tiny,
        pio,
        irq,
    } = Memory::new(&env);
    let space = space(env.pool, &mut ram, &mmio, (&normal, &tiny));
    let dev = space.new_device().unwrap();
    let mut ide = IdeController::empty(&space, &irq, &pio);
    ide.configure(&IdeConfig::new(dev)).unwrap();
    if let Some(m) = master {
        ide.attach(Unit::Master, m).unwrap();
    }
    if let Some(s) = slave {
        ide.attach(Unit::Slave, s).unwrap();
    }
    let mut rig = Rig {
        ide,
        space: &space,
        mmio: &mmio,
        irq: &irq,
        lease: None,
    };
    f(&mut rig)
}

/// A deferred disk over `image` (requests complete when released; data
/// moves then) with the lease checker watching it.
pub type Deferred<'a> = DeferredDisk<'a, 'a, 4, 256>;

/// A rig whose master is a [`Deferred`] disk over `image`.
pub fn with_deferred<const IOV: usize, R>(
    env: Env,
    image: Vec<u8>,
    f: impl for<'a> FnOnce(&mut Rig<'a, Deferred<'a>, IOV>) -> R,
) -> R {
    let mut image = image;
    let Memory {
        mut ram,
        mmio,
        normal,
        tiny,
        pio,
        irq,
    } = Memory::new(&env);
    let space = space(env.pool, &mut ram, &mmio, (&normal, &tiny));
    let checker = LeaseChecker::new(space.bounce());
    let mut disk = DeferredDisk::new(&mut image, false);
    disk.observe(&checker);
    let dev = space.new_device().unwrap();
    let ide = IdeController::new(&space, &irq, &pio, disk, None, &IdeConfig::new(dev)).unwrap();
    let mut rig = Rig {
        ide,
        space: &space,
        mmio: &mmio,
        irq: &irq,
        lease: Some(&checker),
    };
    let r = f(&mut rig);
    let v = checker.violations.borrow();
    assert!(v.is_empty(), "lease violations: {v:#?}");
    r
}

/// A rig with one MemDisk of `sectors` sectors (filled with [`disk_byte`]).
pub fn with_disk<R>(sectors: usize, f: impl FnOnce(&mut Rig<'_, MemDisk<'_>, 256>) -> R) -> R {
    let mut image = disk_image(sectors);
    with_devices(Env::default(), MemDisk::new(&mut image, false), None, f)
}

impl<'a, B: BlockDevice<'a>, const IOV: usize> Rig<'a, B, IOV> {
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

impl<'a, const IOV: usize> Rig<'a, MemDisk<'_>, IOV> {
    pub fn disk(&self) -> &[u8] {
        self.master().data()
    }
}

impl<'a, const IOV: usize> Rig<'a, Deferred<'a>, IOV> {
    pub fn disk(&self) -> &[u8] {
        self.master().data()
    }
    /// Lets the backend finish `n` requests and delivers them.
    pub fn complete(&mut self, n: u32) {
        self.master_mut().release(n);
        self.ide.poll();
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

/// A rig whose master is a CD-ROM drive over `medium` (`cd_slave`: a
/// second CD-ROM, empty, as the slave) — feature `atapi`.
#[cfg(feature = "atapi")]
pub fn with_cdrom<B, R>(
    medium: B,
    slave_disk: Option<B>,
    f: impl FnOnce(&mut Rig<'_, B, 256>) -> R,
) -> R
where
    B: for<'x> BlockDevice<'x>,
{
    let env = Env::default();
    let Memory {
        mut ram,
        mmio,
        normal,
        tiny,
        pio,
        irq,
    } = Memory::new(&env);
    let space = space(env.pool, &mut ram, &mmio, (&normal, &tiny));
    let dev = space.new_device().unwrap();
    let mut ide = IdeController::empty(&space, &irq, &pio);
    ide.configure(&IdeConfig::new(dev)).unwrap();
    ide.attach_cdrom(Unit::Master, medium).unwrap();
    if let Some(s) = slave_disk {
        ide.attach(Unit::Slave, s).unwrap();
    }
    let mut rig = Rig {
        ide,
        space: &space,
        mmio: &mmio,
        irq: &irq,
        lease: None,
    };
    f(&mut rig)
}

/// A CD-ROM master over a deferred disk of `image` (requests complete
/// when released) — feature `atapi`.
#[cfg(feature = "atapi")]
pub fn with_deferred_cdrom<R>(
    image: Vec<u8>,
    f: impl for<'a> FnOnce(&mut Rig<'a, Deferred<'a>, 256>) -> R,
) -> R {
    let mut image = image;
    let env = Env::default();
    let Memory {
        mut ram,
        mmio,
        normal,
        tiny,
        pio,
        irq,
    } = Memory::new(&env);
    let space = space(env.pool, &mut ram, &mmio, (&normal, &tiny));
    let checker = LeaseChecker::new(space.bounce());
    let mut disk = DeferredDisk::new(&mut image, true);
    disk.observe(&checker);
    let dev = space.new_device().unwrap();
    let mut ide = IdeController::empty(&space, &irq, &pio);
    ide.configure(&IdeConfig::new(dev)).unwrap();
    ide.attach_cdrom(Unit::Master, disk).unwrap();
    let mut rig = Rig {
        ide,
        space: &space,
        mmio: &mmio,
        irq: &irq,
        lease: Some(&checker),
    };
    let r = f(&mut rig);
    let v = checker.violations.borrow();
    assert!(v.is_empty(), "lease violations: {v:#?}");
    r
}
