//! An IDE/ATA hard-disk controller with PIIX bus-master DMA, and its PCI
//! function: the primary channel of a PIIX3 (`8086:7010`) in compatibility
//! mode, with a master disk and an optional slave.
//!
//! The model is host-agnostic: it knows nothing of KVM, files or threads.
//! The host provides the DMA memory ([`DmaMemory`](crate::dma::DmaMemory)),
//! the disks ([`BlockDevice`](crate::block::BlockDevice)) and the IRQ line
//! ([`IrqLine`]), and forwards port accesses.
//!
//! # Host interface
//! ```text
//! IdeController::new(&mem, irq, &pio_buffer, master, slave, &IdeConfig::new(device_id))
//! port exit  ─▶ decode_port(port) ─▶ Some((block, offset)) ─▶ read/write(block, offset, width[, value])
//! 0xCF8..0xCFF ─▶ ConfigMechanism1 ─▶ PciBus ─▶ the controller's PciFunction impl
//! backend completion ─▶ poll()          bounce space freed (poll_retry == requester()) ─▶ on_bounce_free()
//! shutdown ─▶ drain() until true, then drop
//! snapshot (feature `snapshot`) ─▶ save_state(&mut Writer)     resume ─▶ restore_state(&mut Reader), RAM, restart()
//! ```
//! - Ports: `0x1F0..=0x1F7` (command block; data port 8/16/32-bit),
//!   `0x3F6` (Alternate Status / Device Control), and the 16 BMDMA ports
//!   at BAR4, which decode only while the PCI Command register enables I/O
//!   space and BAR4 is assigned ([`IdeController::decode_port`] knows the
//!   current mapping). IRQ 14.
//! - [`IrqLine`]: level semantics. The line is raised when a command
//!   completes, a PIO block is ready or written, a DMA ends, or on SRST,
//!   unless Device Control nIEN is set; it is lowered by a Status read or a
//!   Command write, never by Alternate Status.
//! - Completions: a backend that completes inside `submit` (like `preadv`)
//!   finishes a DMA command inside the register write that started it, and
//!   a PIO block inside the access that asked for it. One that completes
//!   later (io_uring, a worker thread) finishes in [`poll`], which the host
//!   calls when the backend signals; PIO then has a real BSY phase.
//! - Memory of requests in flight: DMA mappings stay leased to their
//!   request, and the PIO buffer ([`PioBuffer`], outside the controller)
//!   stays put, until the completion arrives, whatever the guest does.
//!   Stopping the bus master (START 1 → 0) and SRST wait for it with the
//!   backend's bounded `wait` and, if it does not finish in time, take
//!   effect when it does (see the table in the channel's `cancel`
//!   module, summarised under *Behaviour*).
//! - Bounce space: a DMA to MMIO that finds the arena full waits on the
//!   retry queue under its requester id; the host calls
//!   [`on_bounce_free`] when `poll_retry` hands that id back.
//!
//! # Example
//! ```
//! use vmdma_core::block::MemDisk;
//! use vmdma_core::dma::{AddressSpace, BounceArena, BounceWait};
//! use vmdma_core::ide::{AccessWidth, IdeConfig, IdeController, IrqLine, PioBuffer};
//! use vmdma_core::memory::{RamBacking, RegionMap};
//! use vmdma_core::pci::{ConfigMechanism1, HostBridge, IsaBridge, PciAddress, PciFunction};
//!
//! struct Irq14; // a KVM host would issue KVM_IRQ_LINE(14, high) here
//! impl IrqLine for Irq14 {
//!     fn set_level(&self, _high: bool) {}
//! }
//!
//! let mut ram = vec![0u8; 1 << 20];
//! let mut image = vec![0u8; 64 * 512];
//! let arena = BounceArena::<{ 16 * 1024 }>::new();
//! let pio = PioBuffer::<{ 16 * 512 }>::new();
//! let mut map = RegionMap::<8>::new();
//! map.add_ram(0, RamBacking::from_mut_slice(&mut ram)).unwrap();
//! let ide_id = map.new_device().unwrap();
//! let mem = AddressSpace::new(map, &arena);
//! let config = IdeConfig::new(ide_id);
//! let mut ide: IdeController<'_, AddressSpace<'_, 8>, MemDisk<'_>, Irq14> =
//!     IdeController::new(&mem, Irq14, &pio, MemDisk::new(&mut image, false), None, &config)
//!         .unwrap();
//! ide.firmware_init(0xC000).unwrap(); // BAR4 and I/O decode, as firmware would
//!
//! // A port-I/O exit: 8-bit read of 0x1F7 (Status).
//! let (block, offset) = ide.decode_port(0x1F7).unwrap();
//! assert_eq!(ide.read(block, offset, AccessWidth::Byte), 0x50);
//!
//! // Configuration cycles through 0xCF8/0xCFC reach the same object.
//! let (mut host, mut isa, mut cf8) = (HostBridge::new(), IsaBridge::new(), ConfigMechanism1::new());
//! let mut bus = [
//!     (PciAddress::new(0, 0, 0).unwrap(), &mut host as &mut dyn PciFunction),
//!     (PciAddress::new(0, 1, 0).unwrap(), &mut isa),
//!     (PciAddress::new(0, 1, 1).unwrap(), &mut ide),
//! ];
//! cf8.write(&mut bus[..], 0, AccessWidth::Dword, 0x8000_0900); // 00:01.1, register 0
//! assert_eq!(cf8.read(&mut bus[..], 4, AccessWidth::Dword), 0x7010_8086);
//!
//! // After the backend signals completions, and when bounce space frees up:
//! ide.poll();
//! while let Some(client) = mem.poll_retry() {
//!     if client == ide.requester() {
//!         ide.on_bounce_free();
//!     }
//! }
//! // Before the memory goes away: nothing may be left in flight.
//! assert!(ide.drain());
//! ```
//!
//! # Behaviour
//! Sections 4, 6 and 8 of the QEMU reference: task-file registers with the
//! HOB FIFO, writes ignored while BSY/DRQ, absent slave (Status/Error read
//! 0, commands ignored), SRST on the rising edge with signature and
//! diagnostic code, the hard-disk command set, ABRT for anything else,
//! LBA28 count 0 = 256 and LBA48 count 0 = 65536, the three PRD-length
//! outcomes (short: Status 0x50, no IRQ, BM 0x00; exact: IRQ, BM 0x04;
//! long: IRQ, BM 0x05), START before or after the command.
//!
//! A request in flight is never torn and its memory never released early:
//!
//! | guest action while a request is in flight | drained within the backend's bound | not yet finished |
//! |---|---|---|
//! | BMDMA START 1 → 0 | the command completes (Status, IRQ, BM INT), then ACTIVE clears (QEMU's `ide_cancel_dma_sync`) | START reads 0 at once, ACTIVE stays set until the request completes; then as on the left |
//! | SRST | reset: Status DRDY\|DSC, Error 0x01, signature, device 0 selected, BM INT with ACTIVE clear, IRQ — the same for READ, WRITE and TRIM | both devices read BSY until the request completes; then as on the left |
//! | a new command | ignored (BSY or DRQ), as on QEMU | ignored |
//! | PCI bus mastering off | the request completes; later DMA fails | the same |
//!
//! # Where vmdma differs from QEMU, and why
//! - DMA that reaches no memory (a hole, a refused MMIO access, an IOMMU
//!   fault) and an unreadable PRD table end with BMDMA Status ERR|INT and
//!   ATA ABRT + IRQ (a PCI master abort on a real PIIX). QEMU completes
//!   such DMA into an empty address space (reads give zeros, writes
//!   vanish) and reports success.
//! - DMA while PCI bus mastering is off reports what QEMU reports (its
//!   zeroed PRD table is longer than any command: IRQ, BMDMA Status
//!   ACTIVE|INT, no error) but moves nothing: with Command bit 2 clear the
//!   function may start no bus cycles (PCI 3.0 §6.2.2), so vmdma reads no
//!   memory and does no disk I/O, where QEMU writes zeros to the disk for
//!   a WRITE DMA. `IdeStats::dma_without_bus_master` counts such commands.
//! - The guest stopping the bus master (or resetting) while the transfer
//!   waits for bounce space ends the command with BMDMA ERR and ABRT (it
//!   cannot finish; nothing is in flight).
//! - A sector whose pieces do not map one by one (more pieces than the I/O
//!   vector holds, or MMIO pieces that do not all get bounce space) is
//!   staged through one 512-byte range of bounce space; it fails only if
//!   the arena is smaller than a sector.
//! - PIO blocks show a BSY phase only with a backend that completes later
//!   (with a synchronous one the block is ready within the access).
//! - The default identity is model "VMDMA HARDDISK", serial "VD00001"
//!   (slave "VD00002"), firmware "0.1" ([`DriveInfo`]; QEMU: "QEMU
//!   HARDDISK", "QM0000n", "2.5+").
//! - INITIALIZE DEVICE PARAMETERS sets the CHS translation (QEMU: no-op);
//!   0 sectors per track is refused with ABRT.
//! - SMART is not implemented (ABRT), and IDENTIFY does not claim it.
//!   IDENTIFY word 59 follows SET MULTIPLE MODE, word 50 has bit 14, and
//!   word 255 carries the checksum (QEMU caches the words of the first
//!   IDENTIFY and leaves 255 zero).
//! - SET FEATURES 0x03 refuses transfer modes IDENTIFY does not list.
//! - TRIM parses range entries across PRD boundaries; a backend without
//!   discard support counts as success. (Its block count is the low byte
//!   of Sector Count, as in QEMU; ACS-2 would add the HOB byte.)
//! - EXECUTE DEVICE DIAGNOSTIC runs on both devices and selects device 0
//!   (QEMU only clears the Device register's DEV bit).
//! - After SRST device 0 is selected; a DMA command still waiting for
//!   START is dropped.
//! - Only 0x40–0x4B of the PCI device-specific area are writable (QEMU:
//!   all of 0x40–0xFF); their decode-enable bits are preset because vmdma
//!   runs no firmware.
//! - The secondary channel has BMDMA registers (plain storage) but no
//!   task-file ports.
//!
//! # ATAPI CD-ROM (feature `atapi`)
//! `IdeController::attach_cdrom` puts a CD-ROM drive on either unit: the
//! ATAPI signature (0x14/0xEB) after reset, SRST and EXECUTE DEVICE
//! DIAGNOSTIC (Status 0, no IRQ), IDENTIFY PACKET DEVICE, IDENTIFY DEVICE
//! and READ SECTORS aborted with the signature, DEVICE RESET, and PACKET
//! with PIO (blocks bounded by the byte-count limit, interrupt reasons as
//! ATA/ATAPI-6) or DMA (READ straight into guest memory through the PRD
//! walk and SG transfer READ DMA uses). The MMC commands, sense data and
//! the media-change sequence are in the `atapi` module;
//! `IdeController::change_medium` is the host's media change. A backend
//! of 0 sectors is an empty drive.
//!
//! # No-panic contract
//! Every guest value is validated where it enters: register writes are
//! stored as bytes, PRDs are parsed into [`Prd`] and walked at most 512
//! entries / 4 KiB, addresses and counts use checked or saturating
//! arithmetic, and every loop is bounded by a sector, entry or request
//! count. Failures become ATA/BMDMA status bits plus an [`IdeError`] in
//! [`IdeController::last_error`].
//!
//! [`poll`]: IdeController::poll
//! [`on_bounce_free`]: IdeController::on_bounce_free
#![forbid(unsafe_code)]

#[cfg(feature = "atapi")]
pub mod atapi;
mod bus_master;
mod channel;
mod command;
mod controller;
mod drive;
mod error;
mod identify;
mod pio_buffer;
mod prd;
mod registers;
mod stats;
mod taskfile;

pub use channel::Unit;
pub use command::{AtaCommand, feature, opcode};
pub use controller::{AttachError, DEFAULT_IOV, IdeConfig, IdeController, IoBlock, ResetError};
#[cfg(feature = "atapi")]
pub use controller::{MediaError, TrayState};
pub use error::IdeError;
pub use identify::{DriveInfo, IDENTIFY_WORDS};
pub use pio_buffer::{PioBuffer, PioStorage};
pub use prd::{MAX_PRD_ENTRIES, Prd};
pub use registers::{
    AtaError, BmCommand, BmRegister, BmStatus, CommandBlockReg, DeviceControl, DeviceHead, Status,
};
pub use stats::IdeStats;

pub use crate::pci::AccessWidth;

/// The controller's interrupt line, implemented by the host.
///
/// Level semantics: `set_level(true)` asserts the line, `set_level(false)`
/// deasserts it. The controller calls it only on changes.
pub trait IrqLine {
    /// Drives the line high (asserted) or low.
    fn set_level(&self, high: bool);
}

impl<T: IrqLine + ?Sized> IrqLine for &T {
    fn set_level(&self, high: bool) {
        (**self).set_level(high);
    }
}

#[cfg(test)]
mod tests;
