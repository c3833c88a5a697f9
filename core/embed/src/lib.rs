//! # Embedding vmdma-core with no heap
//!
//! The smallest complete embedding of the IDE controller and the DMA layer,
//! the way a bare-metal or separation-kernel VMM would do it: every piece is
//! a `static` — built at compile time, never on a stack — and a boot
//! function wires them together. Then [`demo`] plays the guest: it writes
//! PRD tables into guest RAM and drives a READ DMA and a WRITE DMA through
//! the controller's ports, exactly as an OS driver would through port exits,
//! and checks the data.
//!
//! What the host provides:
//! - guest RAM ([`StaticRam`] here) in a [`RegionMap`] built at compile
//!   time, and a [`BounceArena`] for MMIO DMA: together a `static`
//!   [`AddressSpace`];
//! - a block backend ([`RamDisk`] here: data in a static buffer; a real host
//!   would talk to a storage device and complete later);
//! - the IRQ line ([`IrqPin`] here; a real host asserts IRQ 14 at its
//!   interrupt controller).
//!
//! What it calls, and from where:
//! - at boot (once, single-threaded): take a device id for the controller
//!   from the address space, `configure` it and `attach` the disk;
//! - on every guest port access (a vCPU trap handler): `read_port` /
//!   `write_port` on the locked controller, then [`service`];
//! - when the backend signals a completion (an interrupt handler or the main
//!   loop) and when bounce space frees up: [`service`] — `poll`, and
//!   `on_bounce_free` for the controller's id handed out by `poll_retry`.
//!
//! The controller sits behind a `spin::Mutex`: whoever touches it holds the
//! lock, so a completion interrupt on another core and a trap handler never
//! run the device model at once.
#![no_std]
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[cfg(test)]
extern crate std;

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use heapless::Deque;
use spin::Mutex;
use vmdma_core::block::{
    BlockDevice, BlockError, BlockRequest, Completion, Refused, RequestToken, SECTOR_SIZE,
    check_range, check_rw,
};
use vmdma_core::dma::{AddressSpace, BounceArena, BounceWait, DmaMemory};
use vmdma_core::ide::{
    AccessWidth, BmStatus, IdeConfig, IdeController, IrqLine, PioBuffer, Unit, opcode,
};
use vmdma_core::memory::{DeviceId, Region, RegionMap, StaticBytes, StaticRam, VolatileSlice};
use vmdma_core::pci::{PciFunction, header};

/// Guest RAM of the example (64 KiB at guest-physical 0).
pub const RAM_BYTES: usize = 64 * 1024;
/// Sectors of the RAM disk.
pub const DISK_SECTORS: usize = 32;
/// Bytes of bounce space.
pub const BOUNCE_BYTES: usize = 4096;
/// I/O-vector entries per block request.
pub const IOV: usize = 16;
/// PRD entries per command.
pub const PRD: usize = 64;
/// Bytes of PIO buffer (one sector: READ/WRITE MULTIPLE up to 1).
pub const PIO_BYTES: usize = 512;
/// Where the BMDMA registers go (BAR4).
pub const BMDMA: u16 = 0xC000;

/// The address space type: two regions at most.
pub type Space = AddressSpace<'static, 2>;
/// The bounce arena type: 4 KiB, 8 live mappings, 2 waiters.
pub type Arena = BounceArena<BOUNCE_BYTES, 8, 2>;
/// The controller type of this embedding.
pub type Controller = IdeController<'static, Space, RamDisk, &'static IrqPin, IOV, PRD>;

static RAM: StaticRam<RAM_BYTES> = StaticRam::new();
static DISK: StaticBytes<{ DISK_SECTORS * SECTOR_SIZE }> = StaticBytes::new();
/// The medium of the CD-ROM slave (feature `atapi`): four 2048-byte blocks.
#[cfg(feature = "atapi")]
static CD: StaticBytes<{ 4 * 2048 }> = StaticBytes::new();
static ARENA: Arena = Arena::new();
static PIO: PioBuffer<PIO_BYTES> = PioBuffer::new();
/// Guest-physical memory: RAM at 0, built at compile time.
static SPACE: Space = AddressSpace::new(regions(), &ARENA);
static IRQ: IrqPin = IrqPin::new();
/// The controller, built at compile time.
static IDE: Mutex<Controller> = Mutex::new(IdeController::empty(&SPACE, &IRQ, &PIO));

/// The region map, evaluated at compile time (a bad list would be a build
/// error, never a runtime one).
#[expect(
    clippy::panic,
    reason = "const evaluation only: a bad region list fails the build"
)]
const fn regions() -> RegionMap<'static, 2> {
    let Ok(ram) = Region::ram(0, RAM.guest_ram()) else {
        panic!("guest RAM region")
    };
    if RegionMap::<2>::validate(&[ram]).is_err() {
        panic!("region map")
    }
    RegionMap::from_validated([ram])
}

/// The IDE channel's interrupt line, as a flag and a count of raises.
#[derive(Debug)]
pub struct IrqPin {
    level: AtomicBool,
    raised: AtomicU32,
}

impl IrqPin {
    const fn new() -> Self {
        IrqPin {
            level: AtomicBool::new(false),
            raised: AtomicU32::new(0),
        }
    }

    /// The current level.
    pub fn level(&self) -> bool {
        self.level.load(Ordering::Acquire)
    }

    /// Raises so far.
    pub fn raised(&self) -> u32 {
        self.raised.load(Ordering::Acquire)
    }
}

impl IrqLine for IrqPin {
    fn set_level(&self, high: bool) {
        if high {
            self.raised.fetch_add(1, Ordering::AcqRel);
        }
        self.level.store(high, Ordering::Release);
    }
}

/// A disk in a static buffer; requests complete inside `submit`.
#[derive(Debug)]
pub struct RamDisk {
    data: VolatileSlice<'static>,
    done: Deque<Completion, 4>,
}

impl RamDisk {
    fn new(data: VolatileSlice<'static>) -> Self {
        RamDisk {
            data,
            done: Deque::new(),
        }
    }

    /// Copies sector bytes at `offset` out of the disk.
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> usize {
        self.data.copy_to(offset, buf)
    }

    /// Runs `req` (a refusal before any I/O is `Err`) and gives the
    /// result.
    fn run(
        &mut self,
        token: &RequestToken,
        req: BlockRequest<'_, '_>,
    ) -> Result<Result<(), BlockError>, BlockError> {
        let sectors = (self.data.len() / SECTOR_SIZE) as u64;
        match req {
            BlockRequest::Read { sector, iov } | BlockRequest::Write { sector, iov } => {
                let write = matches!(req, BlockRequest::Write { .. });
                let (off, _) = check_rw(sectors, sector, iov)?;
                let mut pos = usize::try_from(off).map_err(|_| BlockError::OutOfRange)?;
                for l in iov {
                    let s = l.view(token).ok_or(BlockError::NotLeased)?;
                    let disk = self
                        .data
                        .subslice(pos, s.len())
                        .ok_or(BlockError::OutOfRange)?;
                    if write {
                        s.copy_to_volatile(&disk);
                    } else {
                        disk.copy_to_volatile(&s);
                    }
                    pos += s.len();
                }
                Ok(Ok(()))
            }
            BlockRequest::Flush => Ok(Ok(())),
            BlockRequest::Discard { sector, count } => {
                check_range(sectors, sector, count)?;
                Ok(Ok(()))
            }
        }
    }
}

impl<'m> BlockDevice<'m> for RamDisk {
    fn sector_count(&self) -> u64 {
        (self.data.len() / SECTOR_SIZE) as u64
    }

    fn is_read_only(&self) -> bool {
        false
    }

    fn submit(&mut self, token: RequestToken, req: BlockRequest<'_, 'm>) -> Result<(), Refused> {
        if self.done.is_full() {
            return Err(Refused::new(token, BlockError::QueueFull));
        }
        match self.run(&token, req) {
            Ok(result) => self
                .done
                .push_back(Completion::new(token, result))
                .map_err(|c| Refused::new(c.token, BlockError::QueueFull)),
            Err(e) => Err(Refused::new(token, e)),
        }
    }

    fn poll(&mut self) -> Option<Completion> {
        self.done.pop_front()
    }

    fn wait(&mut self) -> Option<Completion> {
        self.done.pop_front()
    }
}

/// What can go wrong in the example.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EmbedError {
    /// A static was claimed twice (boot ran twice).
    AlreadyBooted,
    /// Building the address space or attaching the disk failed.
    Setup,
    /// A register did not read what the driver expects.
    Register {
        /// What was read.
        what: &'static str,
        /// The value.
        got: u32,
    },
    /// The data in memory or on the disk is not what was written.
    Data {
        /// Which transfer.
        what: &'static str,
    },
}

impl core::fmt::Display for EmbedError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            EmbedError::AlreadyBooted => f.write_str("already booted"),
            EmbedError::Setup => f.write_str("setting up the address space or disk failed"),
            EmbedError::Register { what, got } => write!(f, "{what}: read {got:#x}"),
            EmbedError::Data { what } => write!(f, "{what}: data mismatch"),
        }
    }
}

/// The byte at `offset` of the disk's initial contents.
pub const fn disk_byte(offset: usize) -> u8 {
    ((offset / SECTOR_SIZE) as u8).wrapping_mul(17) ^ (offset as u8)
}

/// Boot: the RAM disk filled, the controller configured with a device id
/// from the address space and the disk attached, PCI set up as firmware and
/// the guest driver would.
pub fn boot() -> Result<(), EmbedError> {
    let disk = DISK.claim().ok_or(EmbedError::AlreadyBooted)?;
    for sector in 0..DISK_SECTORS {
        let mut buf = [0u8; SECTOR_SIZE];
        for (i, b) in buf.iter_mut().enumerate() {
            *b = disk_byte(sector * SECTOR_SIZE + i);
        }
        disk.copy_from(sector * SECTOR_SIZE, &buf);
    }
    let id: DeviceId = SPACE.new_device().map_err(|_| EmbedError::Setup)?;
    let mut ide = IDE.lock();
    ide.configure(&IdeConfig::new(id))
        .map_err(|_| EmbedError::Setup)?;
    ide.attach(Unit::Master, RamDisk::new(disk))
        .map_err(|_| EmbedError::Setup)?;
    #[cfg(feature = "atapi")]
    {
        let cd = CD.claim().ok_or(EmbedError::AlreadyBooted)?;
        ide.attach_cdrom(Unit::Slave, RamDisk::new(cd))
            .map_err(|_| EmbedError::Setup)?;
    }
    ide.firmware_init(BMDMA).map_err(|_| EmbedError::Setup)?;
    // The guest driver enables I/O decode and bus mastering.
    ide.config_write(header::COMMAND, AccessWidth::Word, 0x0005);
    Ok(())
}

/// Delivers completions and bounce wake-ups (the host's main loop or its
/// completion interrupt calls this).
pub fn service() {
    let mut ide = IDE.lock();
    ide.poll();
    let space = &SPACE;
    // Each hand-out is one release: bounded by what was freed.
    for _ in 0..8 {
        match space.poll_retry() {
            Some(c) if c == ide.requester() => ide.on_bounce_free(),
            Some(_) => {}
            None => break,
        }
    }
}

/// A guest port write (what a trap handler does with an OUT).
fn outb(port: u16, v: u8) {
    IDE.lock().write_port(port, AccessWidth::Byte, u32::from(v));
    service();
}

/// A guest port read (IN).
fn inb(port: u16) -> u8 {
    let v = IDE
        .lock()
        .read_port(port, AccessWidth::Byte)
        .unwrap_or(0xFF);
    service();
    v.to_le_bytes().first().copied().unwrap_or(0xFF)
}

/// A guest word port read (the data port).
fn inw(port: u16) -> u16 {
    let v = IDE
        .lock()
        .read_port(port, AccessWidth::Word)
        .unwrap_or(0xFFFF);
    service();
    u16::try_from(v & 0xFFFF).unwrap_or(0xFFFF)
}

/// A guest dword port write.
fn outl(port: u16, v: u32) {
    IDE.lock().write_port(port, AccessWidth::Dword, v);
    service();
}

fn expect(what: &'static str, got: u8, want: u8) -> Result<(), EmbedError> {
    if got == want {
        Ok(())
    } else {
        Err(EmbedError::Register {
            what,
            got: u32::from(got),
        })
    }
}

/// One DMA command as an OS driver issues it: PRD table at 0x1000 pointing
/// at `buf` for `count` sectors, LBA28 task file, command, START, wait for
/// BM INT, stop, Status, acknowledge.
fn dma(opcode: u8, lba: u8, count: u8, buf: u32) -> Result<(), EmbedError> {
    let space = &SPACE;
    let bytes = u32::from(count) * SECTOR_SIZE as u32;
    let prd = [buf.to_le_bytes(), (bytes | 1 << 31).to_le_bytes()];
    let mut raw = [0u8; 8];
    for (dst, src) in raw.iter_mut().zip(prd.iter().flatten()) {
        *dst = *src;
    }
    space
        .write(DeviceId::HOST, 0x1000, &raw)
        .map_err(|_| EmbedError::Setup)?;
    outl(BMDMA + 4, 0x1000);
    outb(0x1F6, 0xE0);
    outb(0x1F2, count);
    outb(0x1F3, lba);
    outb(0x1F4, 0);
    outb(0x1F5, 0);
    let dir = if opcode == opcode::READ_DMA {
        0x08
    } else {
        0x00
    };
    outb(BMDMA, dir);
    outb(0x1F7, opcode);
    outb(BMDMA, dir | 0x01);
    let mut bm = 0;
    for _ in 0..16 {
        bm = inb(BMDMA + 2);
        if bm & BmStatus::INTERRUPT.bits() != 0 {
            break;
        }
    }
    expect("BM status", bm & 0x07, BmStatus::INTERRUPT.bits())?;
    outb(BMDMA, dir);
    expect("Status", inb(0x1F7), 0x50)?;
    outb(BMDMA + 2, bm);
    Ok(())
}

/// The demonstration: boot; the PCI identity through configuration
/// space; IDENTIFY DEVICE through the data port; a READ DMA of 4 sectors
/// into guest RAM and a WRITE DMA of 2 sectors back, each checked byte for
/// byte; a software reset; and the drain a host does before shutting down.
/// Every register entry point of the controller is reached, so the
/// no-panic build proves all of them.
pub fn demo() -> Result<(), EmbedError> {
    boot()?;
    let space = &SPACE;
    let id = IDE.lock().config_read(0, AccessWidth::Dword);
    if id != 0x7010_8086 {
        return Err(EmbedError::Register {
            what: "PCI vendor/device",
            got: id,
        });
    }
    // IDENTIFY DEVICE by PIO: 256 words; word 27.. holds the model string.
    outb(0x1F6, 0xA0);
    outb(0x1F7, opcode::IDENTIFY_DEVICE);
    expect("Status (DRQ)", inb(0x1F7), 0x58)?;
    let mut model = [0u8; 4];
    for w in 0..256u16 {
        let v = inw(0x1F0);
        if (27..29).contains(&w) {
            let [hi, lo] = v.to_be_bytes();
            let at = usize::from(w - 27) * 2;
            if let Some(dst) = model.get_mut(at..at + 2) {
                dst.copy_from_slice(&[hi, lo]);
            }
        }
    }
    if &model != b"VMDM" {
        return Err(EmbedError::Data { what: "IDENTIFY" });
    }
    // READ DMA: sectors 5..9 to 0x2000.
    dma(opcode::READ_DMA, 5, 4, 0x2000)?;
    let mut got = [0u8; SECTOR_SIZE];
    for s in 0..4usize {
        space
            .read(DeviceId::HOST, 0x2000 + (s * SECTOR_SIZE) as u64, &mut got)
            .map_err(|_| EmbedError::Setup)?;
        let base = (5 + s) * SECTOR_SIZE;
        if got
            .iter()
            .enumerate()
            .any(|(i, b)| *b != disk_byte(base + i))
        {
            return Err(EmbedError::Data { what: "READ DMA" });
        }
    }
    // WRITE DMA: a new pattern from 0x4000 to sectors 20..22.
    let pattern = [0xC3u8; SECTOR_SIZE];
    for s in 0..2u64 {
        space
            .write(DeviceId::HOST, 0x4000 + s * SECTOR_SIZE as u64, &pattern)
            .map_err(|_| EmbedError::Setup)?;
    }
    dma(opcode::WRITE_DMA, 20, 2, 0x4000)?;
    let ide = IDE.lock();
    let disk = ide.disk(Unit::Master).ok_or(EmbedError::Setup)?;
    for s in 19..23usize {
        disk.read_at(s * SECTOR_SIZE, &mut got);
        let written = (20..22).contains(&s);
        let ok = got.iter().enumerate().all(|(i, b)| {
            if written {
                *b == 0xC3
            } else {
                *b == disk_byte(s * SECTOR_SIZE + i)
            }
        });
        if !ok {
            return Err(EmbedError::Data { what: "WRITE DMA" });
        }
    }
    drop(ide);
    if IRQ.raised() < 3 {
        return Err(EmbedError::Register {
            what: "IRQ 14 raises",
            got: IRQ.raised(),
        });
    }
    #[cfg(feature = "snapshot")]
    snapshot_round_trip()?;
    // Software reset, as a driver's error handling does.
    outb(0x3F6, 0x0C);
    outb(0x3F6, 0x08);
    expect("Error after SRST", inb(0x1F1), 0x01)?;
    if !IDE.lock().drain() {
        return Err(EmbedError::Setup);
    }
    Ok(())
}

/// Saves the controller's state into a stack buffer, restores it into the
/// same (idle) controller and restarts it, as a host taking a snapshot
/// and resuming from it would (feature `snapshot`).
#[cfg(feature = "snapshot")]
fn snapshot_round_trip() -> Result<(), EmbedError> {
    use vmdma_core::snapshot::{Reader, Writer};
    let mut buf = [0u8; PIO_BYTES + Controller::STATE_OVERHEAD];
    let mut ide = IDE.lock();
    let mut w = Writer::new(&mut buf);
    ide.save_state(&mut w).map_err(|_| EmbedError::Setup)?;
    let n = w.len();
    let saved = buf.get(..n).ok_or(EmbedError::Setup)?;
    ide.restore_state(&mut Reader::new(saved))
        .map_err(|_| EmbedError::Setup)?;
    ide.restart();
    Ok(())
}

/// RAM the state of one channel takes at this embedding's capacities:
/// controller, address space (with its region map), the bounce arena (with
/// its retry queue) and the PIO buffer. Guest RAM and the disk are not
/// state of the channel.
pub const fn channel_state_bytes() -> usize {
    core::mem::size_of::<Controller>()
        + core::mem::size_of::<Space>()
        + core::mem::size_of::<Arena>()
        + core::mem::size_of::<PioBuffer<PIO_BYTES>>()
}

/// The RAM budget of [`channel_state_bytes`].
pub const STATE_BUDGET: usize = 12 * 1024;

// Checked when the crate compiles, for every target it is built for.
const _: () = assert!(channel_state_bytes() <= STATE_BUDGET);

/// `size_of` of the controller, the address space, the bounce arena (with
/// its retry queue) and the PIO buffer, in that order, for the target
/// being built (the bare-metal image exports it for the size report).
pub const STATE_SIZES: [u32; 4] = [
    core::mem::size_of::<Controller>() as u32,
    core::mem::size_of::<Space>() as u32,
    core::mem::size_of::<Arena>() as u32,
    core::mem::size_of::<PioBuffer<PIO_BYTES>>() as u32,
];

#[cfg(test)]
mod tests {
    use super::*;

    /// The example runs as a host test too (one boot per process: the
    /// statics are claimed once, so this is the crate's only test that
    /// boots).
    #[test]
    fn demo_reads_and_writes_through_dma() {
        assert_eq!(demo(), Ok(()));
        assert_eq!(boot(), Err(EmbedError::AlreadyBooted));
    }

    #[test]
    fn state_fits_the_budget() {
        std::println!(
            "controller {} B, address space {} B, arena {} B, PIO buffer {} B: {} B of {} B",
            core::mem::size_of::<Controller>(),
            core::mem::size_of::<Space>(),
            core::mem::size_of::<Arena>(),
            core::mem::size_of::<PioBuffer<PIO_BYTES>>(),
            channel_state_bytes(),
            STATE_BUDGET
        );
        assert!(channel_state_bytes() <= STATE_BUDGET);
    }
}
