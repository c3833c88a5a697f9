//! One IDE channel: two device slots sharing a task-file interface, the
//! bus-master engine, the IRQ line, and the command state machine.
//!
//! The channel is driven by register accesses ([`Channel::read_register`],
//! [`Channel::write_register`], the data port, Device Control and the BMDMA
//! registers) and by the host's [`Channel::poll`] (block completions) and
//! [`Channel::retry_bounce`] (bounce space freed). At most one operation is
//! outstanding per channel (`Op`), and at most one block request of it is
//! in flight; every loop in here is bounded by a sector or entry count.
//!
//! # Requests in flight
//! A request's memory (DMA mappings, held by the transfer's lease; the PIO
//! buffer) stays reserved until its completion arrives. Nothing the guest
//! does ends an operation while one of its requests is in flight: a new
//! command is ignored (the device is BSY or DRQ), and BMDMA stop and SRST
//! first wait for the request (bounded by the backend's `wait`); if it does
//! not finish in time their effect is *deferred* until it does (see
//! `cancel`).
//!
//! Files: each operation starts, completes and is cut short in its own.
//! - `exec`: command dispatch, and the commands that move no data.
//! - `pio`: the PIO data phase (data port, PIO blocks).
//! - `dma`: bus-master DMA: the BMDMA registers, accepting a DMA command,
//!   the PRD walk and the end of every DMA command, and the READ/WRITE DMA
//!   transfer.
//! - `trim`: DATA SET MANAGEMENT (TRIM), a DMA command of discards.
//! - `flush`: FLUSH CACHE and the write-through flushes.
//! - `packet` (feature `atapi`): the ATAPI PACKET protocol of a CD-ROM
//!   unit: command packets, data in by PIO or DMA, status.
//! - `completion`: the host's `poll` and bounce retries, routing each
//!   completion to its operation.
//! - `cancel`: BMDMA stop, SRST and power-on reset, the bounded drain they
//!   wait with, and the deferred stop and reset (`settle`).

mod cancel;
mod completion;
mod dma;
mod exec;
mod flush;
#[cfg(feature = "atapi")]
mod packet;
mod pio;
#[cfg(feature = "snapshot")]
pub(crate) mod snapshot;
mod trim;

use crate::block::{BlockDevice, RequestId};
use crate::dma::{DmaMemory, SgList, SgTransfer};
use crate::memory::{DeviceId, VolatileSlice};

use super::IrqLine;
use super::bus_master::BusMaster;
use super::drive::Drive;
use super::error::IdeError;
use super::registers::{BmStatus, CommandBlockReg, DeviceControl, DeviceHead, Status};
use super::stats::IdeStats;
use super::taskfile::TaskFile;

/// A device position on the channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unit {
    /// Device 0.
    Master,
    /// Device 1.
    Slave,
}

/// One device slot: its task file, and the disk if one is attached.
#[derive(Debug)]
pub(crate) struct UnitState<B> {
    pub tf: TaskFile,
    pub drive: Option<Drive<B>>,
}

/// The two slots.
#[derive(Debug)]
pub(crate) struct Units<B> {
    master: UnitState<B>,
    slave: UnitState<B>,
}

impl<B> Units<B> {
    pub(crate) fn get(&self, u: Unit) -> &UnitState<B> {
        match u {
            Unit::Master => &self.master,
            Unit::Slave => &self.slave,
        }
    }

    pub(crate) fn get_mut(&mut self, u: Unit) -> &mut UnitState<B> {
        match u {
            Unit::Master => &mut self.master,
            Unit::Slave => &mut self.slave,
        }
    }

    pub(crate) fn both_mut(&mut self) -> [&mut UnitState<B>; 2] {
        [&mut self.master, &mut self.slave]
    }
}

/// What a DMA command moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DmaKind {
    Read,
    Write,
    Trim,
    /// An ATAPI READ: `lba`/`count` in 512-byte sectors of the backend.
    #[cfg(feature = "atapi")]
    CdRead,
    /// An ATAPI reply of `count` bytes from the PIO buffer.
    #[cfg(feature = "atapi")]
    CdReply,
}

#[cfg(feature = "atapi")]
impl DmaKind {
    /// An ATAPI transfer (completes with a packet status).
    pub(crate) fn is_packet(self) -> bool {
        matches!(self, DmaKind::CdRead | DmaKind::CdReply)
    }
}

/// An accepted DMA command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DmaCmd {
    pub unit: Unit,
    pub kind: DmaKind,
    /// First sector (`None`: a CHS address with sector 0, refused at start).
    pub lba: Option<u64>,
    /// Sectors (read/write) or 512-byte blocks of TRIM ranges (an ATAPI
    /// reply: bytes).
    pub count: u32,
}

impl DmaCmd {
    /// Bytes the PRD table must describe.
    pub(crate) fn bytes(&self) -> u64 {
        #[cfg(feature = "atapi")]
        if self.kind == DmaKind::CdReply {
            return u64::from(self.count);
        }
        u64::from(self.count) * crate::block::SECTOR_SIZE as u64
    }
}

/// A PIO block in flight at the backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PioBlock {
    pub unit: Unit,
    /// Sectors per DRQ block of the command.
    pub per_block: u32,
    /// First sector and sector count of this block.
    pub lba: u64,
    pub count: u32,
}

/// What happens when a flush completes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AfterFlush {
    /// FLUSH CACHE or SET FEATURES 0x82: the command completes.
    Command,
    /// A DMA write with the write cache disabled: the DMA completes.
    Dma { cmd: DmaCmd, stay_active: bool },
    /// A PIO write block with the write cache disabled: the block is done.
    PioWrite(PioBlock),
}

/// Progress of a TRIM command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TrimRun {
    pub cmd: DmaCmd,
    pub stay_active: bool,
    /// Byte offset of the next range entry in the SG list.
    pub offset: u64,
    /// Position of that byte: SG entry index and offset inside it.
    pub sg_index: usize,
    pub sg_offset: u64,
    /// The discard in flight.
    pub token: Option<RequestId>,
}

/// A running DMA read/write: its command, its SG list, and the transfer
/// holding the mappings of the request in flight.
///
/// `repr(C)`, fields in this order on purpose: the SG list comes before
/// the transfer, whose first fields are not zero, so the zeroed scalars of
/// a new run never sit on both sides of an uninitialised buffer and
/// building one does not zero the buffers (the compiler merges such zero
/// stores across the gap: ~38 KiB zeroed per command at the runner's IOV
/// 256 / PRD 512 otherwise; see `SgList` and `SgTransfer` for their own
/// field order).
#[repr(C)]
pub(crate) struct DmaRun<'m, const IOV: usize, const PRD: usize> {
    pub cmd: DmaCmd,
    pub stay_active: bool,
    pub sg: SgList<PRD>,
    pub xfer: SgTransfer<'m, IOV>,
}

/// The operation outstanding on the channel, with the state only it has:
/// the PRD list and the transfer (with its lease) belong to the DMA that
/// runs, so no other operation can carry them.
/// `repr(C)`: each variant's fields lie in the order written, and `Dma`'s
/// SG list comes before its transfer, whose first fields are not zero. So
/// the zeroed scalars of a new operation never sit on both sides of an
/// uninitialised buffer, and building one does not zero the buffers (a
/// compiler that merges the zero stores across the gap would zero ~38 KiB
/// per command at the runner's sizes; see `SgList` and `SgTransfer`).
pub(crate) enum Op<'m, const IOV: usize, const PRD: usize> {
    /// Nothing.
    Idle,
    /// A DMA command waits for the bus master to start (Status DRQ).
    DmaPending(DmaCmd),
    /// A DMA read/write runs (see `dma`).
    Dma(DmaRun<'m, IOV, PRD>),
    /// A TRIM runs over the range entries its SG list describes (see
    /// `trim`).
    Trim { run: TrimRun, sg: SgList<PRD> },
    /// A flush is in flight.
    Flush {
        unit: Unit,
        token: RequestId,
        then: AfterFlush,
    },
    /// A PIO block is being read into the PIO buffer (Status BSY).
    PioRead { block: PioBlock, token: RequestId },
    /// A PIO block is being written from the PIO buffer (Status BSY).
    PioWrite { block: PioBlock, token: RequestId },
    /// An ATAPI PIO block is being read into the PIO buffer (Status BSY).
    #[cfg(feature = "atapi")]
    PacketRead {
        block: packet::CdBlock,
        token: RequestId,
    },
}

/// Guest actions whose effect waits for the request in flight.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Deferred {
    /// BMDMA START went 1 → 0: clear ACTIVE once the operation ends.
    pub stop: bool,
    /// SRST rose: reset both devices once the operation ends (both show
    /// BSY meanwhile).
    pub reset: bool,
}

/// How a command handler left the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Finished without data: clear BSY, set DSC if asked, raise the IRQ.
    Done { dsc: bool },
    /// Finished with ABRT (and the IRQ).
    Abort(IdeError),
    /// The handler started a data phase, a DMA or an asynchronous request,
    /// and set Status and the IRQ itself.
    Started,
}

/// One IDE channel with up to two disks of type `B`, an IRQ line `I`, DMA
/// transfers of at most `IOV` mappings per block request and PRD tables of
/// at most `PRD` entries.
pub(crate) struct Channel<'m, M: ?Sized, B, I, const IOV: usize, const PRD: usize> {
    mem: &'m M,
    irq: I,
    irq_level: bool,
    requester: DeviceId,
    units: Units<B>,
    selected: Unit,
    control: DeviceControl,
    pub(crate) bm: BusMaster,
    pio: pio::Pio<'m>,
    op: Op<'m, IOV, PRD>,
    deferred: Deferred,
    /// PCI bus mastering was on at the last register write (a packet
    /// that starts a DMA arrives through the data port).
    #[cfg(feature = "atapi")]
    pub(crate) bus_master_on: bool,
    pub(crate) stats: IdeStats,
    pub(crate) last_error: Option<IdeError>,
    /// Where the PRD walk of the running DMA command started (the fetch
    /// pointer before it): a restored command re-walks from there.
    #[cfg(feature = "snapshot")]
    prd_start: u32,
    /// The operation a restore left to re-issue (`restart`).
    #[cfg(feature = "snapshot")]
    restart: Option<snapshot::SavedOp>,
}

impl<'m, M, B, I, const IOV: usize, const PRD: usize> Channel<'m, M, B, I, IOV, PRD>
where
    M: DmaMemory + ?Sized,
    B: BlockDevice<'m>,
    I: IrqLine,
{
    /// A channel after power-on, with no disks.
    pub(crate) const fn new(mem: &'m M, irq: I, requester: DeviceId) -> Self {
        Channel {
            mem,
            irq,
            irq_level: false,
            requester,
            units: Units {
                master: UnitState {
                    tf: TaskFile::after_reset(false),
                    drive: None,
                },
                slave: UnitState {
                    tf: TaskFile::after_reset(false),
                    drive: None,
                },
            },
            selected: Unit::Master,
            control: DeviceControl::empty(),
            bm: BusMaster::new(),
            pio: pio::Pio::new(),
            op: Op::Idle,
            deferred: Deferred {
                stop: false,
                reset: false,
            },
            #[cfg(feature = "atapi")]
            bus_master_on: false,
            stats: IdeStats::new(),
            last_error: None,
            #[cfg(feature = "snapshot")]
            prd_start: 0,
            #[cfg(feature = "snapshot")]
            restart: None,
        }
    }

    /// Attaches `drive` at `u` (reset task file with the disk signature);
    /// `pio_buf` is the claimed PIO buffer, given with the first disk.
    pub(crate) fn attach(&mut self, u: Unit, drive: Drive<B>, pio_buf: Option<VolatileSlice<'m>>) {
        if let Some(b) = pio_buf {
            self.pio.set_buffer(b);
        }
        let slot = self.units.get_mut(u);
        slot.tf = TaskFile::after_reset(true);
        if drive.is_atapi() {
            slot.tf.set_packet_signature();
        }
        slot.drive = Some(drive);
    }

    /// Sets the DMA requester / retry-queue client id (before any disk).
    pub(crate) fn set_requester(&mut self, id: DeviceId) {
        self.requester = id;
    }

    /// The DMA requester / retry-queue client id of this channel.
    pub(crate) fn requester(&self) -> DeviceId {
        self.requester
    }

    /// The current level of the IRQ line.
    pub(crate) fn irq_level(&self) -> bool {
        self.irq_level
    }

    /// The disk in slot `u`.
    pub(crate) fn drive(&self, u: Unit) -> Option<&Drive<B>> {
        self.units.get(u).drive.as_ref()
    }

    /// The disk in slot `u`, mutably.
    pub(crate) fn drive_mut(&mut self, u: Unit) -> Option<&mut Drive<B>> {
        self.units.get_mut(u).drive.as_mut()
    }

    /// True when no block request is in flight and no transfer waits for
    /// bounce space (a DMA command may still wait for START, a PIO data
    /// phase may be open).
    pub(crate) fn is_quiescent(&self) -> bool {
        matches!(self.op, Op::Idle | Op::DmaPending(_))
    }

    fn present(&self, u: Unit) -> bool {
        self.units.get(u).drive.is_some()
    }

    fn tf(&mut self, u: Unit) -> &mut TaskFile {
        &mut self.units.get_mut(u).tf
    }

    /// An 8-bit read of command-block register `offset` (0..=7).
    pub(crate) fn read_register(&mut self, offset: u16) -> u8 {
        let Some(reg) = CommandBlockReg::from_offset(offset) else {
            return 0xFF;
        };
        let hob = self.control.contains(DeviceControl::HOB);
        let absent = !self.present(self.selected);
        match reg {
            CommandBlockReg::Data => {
                // An 8-bit read of the data port consumes a whole word.
                self.read_data(crate::pci::AccessWidth::Word)
                    .to_le_bytes()
                    .first()
                    .copied()
                    .unwrap_or(0)
            }
            CommandBlockReg::StatusCommand => {
                let v = if absent {
                    0
                } else {
                    self.units.get(self.selected).tf.status.bits()
                };
                self.lower_irq();
                v
            }
            CommandBlockReg::ErrorFeatures if absent => 0,
            _ => self.units.get(self.selected).tf.read(reg, hob),
        }
    }

    /// An 8-bit write of command-block register `offset` (0..=7).
    pub(crate) fn write_register(&mut self, offset: u16, v: u8, bus_master: bool) {
        let Some(reg) = CommandBlockReg::from_offset(offset) else {
            return;
        };
        let busy = self
            .units
            .get(self.selected)
            .tf
            .status
            .intersects(Status::BSY | Status::DRQ);
        if reg != CommandBlockReg::StatusCommand && busy {
            return;
        }
        match reg {
            // 8-bit writes to the data port are ignored, as in QEMU.
            CommandBlockReg::Data => {}
            CommandBlockReg::Device => {
                self.control.remove(DeviceControl::HOB);
                let select = DeviceHead::from_bits_retain(v) | DeviceHead::OBSOLETE;
                for unit in self.units.both_mut() {
                    unit.tf.select = select;
                }
                self.selected = if select.contains(DeviceHead::DEV) {
                    Unit::Slave
                } else {
                    Unit::Master
                };
            }
            CommandBlockReg::StatusCommand => {
                self.control.remove(DeviceControl::HOB);
                self.lower_irq();
                self.exec(v, bus_master);
            }
            _ => {
                self.control.remove(DeviceControl::HOB);
                for unit in self.units.both_mut() {
                    unit.tf.write_fifo(reg, v);
                }
            }
        }
    }

    /// A read of Alternate Status (does not touch the IRQ).
    pub(crate) fn read_alt_status(&self) -> u8 {
        if self.present(self.selected) {
            self.units.get(self.selected).tf.status.bits()
        } else {
            0
        }
    }

    /// A write of Device Control: nIEN and HOB are stored; a rising SRST
    /// edge resets both devices (see `cancel::software_reset`).
    pub(crate) fn write_device_control(&mut self, v: u8) {
        let new = DeviceControl::from_bits_retain(v);
        let rising =
            new.contains(DeviceControl::SRST) && !self.control.contains(DeviceControl::SRST);
        self.control = new;
        if rising {
            self.software_reset();
            self.control.remove(DeviceControl::SRST);
        }
    }

    /// Raises INTRQ unless nIEN is set; sets BMDMA Status INT when it does.
    fn raise_irq(&mut self) {
        if self.control.contains(DeviceControl::NIEN) {
            return;
        }
        self.bm.status.insert(BmStatus::INTERRUPT);
        if !self.irq_level {
            self.irq_level = true;
            self.irq.set_level(true);
        }
    }

    /// Lowers INTRQ (Status read, Command write).
    fn lower_irq(&mut self) {
        if self.irq_level {
            self.irq_level = false;
            self.irq.set_level(false);
        }
    }

    /// Ends a command the way `outcome` says.
    fn finish(&mut self, u: Unit, outcome: Outcome) {
        match outcome {
            Outcome::Done { dsc } => {
                let tf = self.tf(u);
                tf.status.remove(Status::BSY);
                if dsc && tf.error.is_empty() {
                    tf.status.insert(Status::DSC);
                }
                self.raise_irq();
            }
            Outcome::Abort(e) => {
                self.pio.stop();
                self.tf(u).abort();
                self.record_error(e);
                self.raise_irq();
            }
            Outcome::Started => {}
        }
    }

    fn record_error(&mut self, e: IdeError) {
        self.last_error = Some(e);
        super::stats::bump(&mut self.stats.aborted, 1);
    }
}
