//! The PIIX3 IDE controller as the host sees it: the primary channel's
//! legacy ports, the BMDMA block behind BAR4, and the PCI function.

use crate::block::BlockDevice;
use crate::dma::DmaMemory;
use crate::memory::{DeviceId, VolatileSlice};
use crate::pci::{AccessWidth, PciError, PciFunction, Piix3Ide};

use super::IrqLine;
use super::bus_master::BusMaster;
use super::channel::{Channel, Unit};
use super::drive::Drive;
use super::error::IdeError;
use super::identify::DriveInfo;
use super::pio_buffer::PioStorage;
use super::prd::MAX_PRD_ENTRIES;
use super::stats::IdeStats;

#[cfg(feature = "snapshot")]
mod snapshot;

/// Default I/O vector capacity of one DMA block request: enough for Linux's
/// largest PRD table (128 SG elements, each split at 64 KiB boundaries)
/// without splitting the command.
pub const DEFAULT_IOV: usize = 256;

/// Which I/O block of the controller an access is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IoBlock {
    /// The command block (`0x1F0..=0x1F7`), offsets 0..=7.
    Command,
    /// The control block (`0x3F6`): offset 0 is Alternate Status (read) /
    /// Device Control (write).
    Control,
    /// The BMDMA block (BAR4), offsets 0..=15: 0..=7 the primary channel,
    /// 8..=15 the secondary (registers without a channel behind them).
    BusMaster,
}

/// Construction parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IdeConfig<'a> {
    /// The identity the controller's DMA carries (re-entrancy checks) and
    /// the id under which it waits for bounce space: the host calls
    /// [`IdeController::on_bounce_free`] when [`BounceWait::poll_retry`](crate::dma::BounceWait::poll_retry)
    /// returns it. Get it from
    /// [`AddressSpace::new_device`](crate::dma::AddressSpace::new_device).
    pub requester: DeviceId,
    /// IDENTIFY strings of the master disk.
    pub master: DriveInfo<'a>,
    /// IDENTIFY strings of the slave disk (if one is attached).
    pub slave: DriveInfo<'a>,
}

impl IdeConfig<'static> {
    /// A configuration with vmdma's default drive identities.
    pub const fn new(requester: DeviceId) -> Self {
        IdeConfig {
            requester,
            master: DriveInfo::MASTER,
            slave: DriveInfo::SLAVE,
        }
    }
}

impl<'a> IdeConfig<'a> {
    /// The same configuration with other drive identities.
    pub const fn with_drives(self, master: DriveInfo<'a>, slave: DriveInfo<'a>) -> Self {
        IdeConfig {
            requester: self.requester,
            master,
            slave,
        }
    }
}

/// Why [`IdeController::reset`] did not reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResetError {
    /// A block request is still in flight after the bounded drain.
    InFlight,
}

impl core::fmt::Display for ResetError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("a block request is still in flight")
    }
}

impl core::error::Error for ResetError {}

/// Why a disk could not be attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttachError {
    /// The PIO buffer was already claimed by another controller.
    PioBufferInUse,
    /// A disk is already attached at that position.
    SlotTaken(Unit),
    /// `configure` was not called (the controller has no device id yet).
    NotConfigured,
    /// `configure` after a disk was attached.
    AlreadyAttached,
}

impl core::fmt::Display for AttachError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            AttachError::PioBufferInUse => {
                f.write_str("the PIO buffer belongs to another controller")
            }
            AttachError::SlotTaken(u) => write!(f, "a disk is already attached as {u:?}"),
            AttachError::NotConfigured => f.write_str("the controller is not configured yet"),
            AttachError::AlreadyAttached => {
                f.write_str("the controller cannot be reconfigured once a disk is attached")
            }
        }
    }
}

impl core::error::Error for AttachError {}

/// The tray of a CD-ROM drive, as the host sees it.
#[cfg(feature = "atapi")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrayState {
    /// The tray is open (no medium reachable).
    pub open: bool,
    /// The guest locked it (PREVENT ALLOW MEDIUM REMOVAL).
    pub locked: bool,
}

/// Why a medium could not be changed.
#[cfg(feature = "atapi")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MediaError {
    /// No CD-ROM drive at that position.
    NotCdrom,
    /// The guest locked the tray (PREVENT ALLOW MEDIUM REMOVAL) and the
    /// change was not forced; the drive got an eject request (GESN).
    Locked,
    /// A request of the channel is in flight, or a DMA waits for START.
    Busy,
}

#[cfg(feature = "atapi")]
impl core::fmt::Display for MediaError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            MediaError::NotCdrom => "no CD-ROM drive there",
            MediaError::Locked => "the guest locked the tray (use force)",
            MediaError::Busy => "the drive is busy",
        })
    }
}

#[cfg(feature = "atapi")]
impl core::error::Error for MediaError {}

/// A PIIX3 IDE controller: the primary channel (master disk, optional
/// slave) with bus-master DMA, and its PCI function (`8086:7010`).
///
/// `'m` is the lifetime of the DMA memory `M` (an
/// [`AddressSpace`](crate::dma::AddressSpace), an
/// [`Iommu`](crate::iommu::Iommu), or `dyn DmaMemory`) and of the PIO
/// buffer; `B` the disks' block device, one type for both drives: hosts
/// that mix backends use an enum (the runner's `Disk`) or `&mut dyn
/// BlockDevice` (a blanket impl covers `&mut T`). A type parameter per
/// drive was left out on purpose: every channel path that touches a drive
/// would be instantiated twice, growing `.text` on the embedded targets
/// (budget in core/README.md) for what an enum already gives; `I` the IRQ line
/// (IRQ 14); `IOV` the most mappings per block request; `PRD` the most SG
/// entries a PRD table yields (QEMU reads at most 512 PRDs). The controller
/// is `Send` when `M` is `Sync` and `B` and `I` are `Send` (an address
/// space is `Sync`).
pub struct IdeController<
    'm,
    M: ?Sized,
    B,
    I,
    const IOV: usize = DEFAULT_IOV,
    const PRD: usize = MAX_PRD_ENTRIES,
> {
    channel: Channel<'m, M, B, I, IOV, PRD>,
    pci: Piix3Ide,
    secondary: BusMaster,
    pio: &'m dyn PioStorage,
    master_info: DriveInfo<'m>,
    slave_info: DriveInfo<'m>,
    /// `configure` was called (the device id is set).
    configured: bool,
}

impl<M: ?Sized, B, I, const IOV: usize, const PRD: usize> core::fmt::Debug
    for IdeController<'_, M, B, I, IOV, PRD>
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("IdeController")
            .field("pci", &self.pci)
            .field("stats", &self.channel.stats)
            .finish_non_exhaustive()
    }
}

impl<'m, M, B, I, const IOV: usize, const PRD: usize> IdeController<'m, M, B, I, IOV, PRD>
where
    M: DmaMemory + ?Sized,
    B: BlockDevice<'m>,
    I: IrqLine,
{
    /// First port of the primary command block.
    pub const COMMAND_BLOCK_BASE: u16 = 0x1F0;
    /// The primary control port (Alternate Status / Device Control).
    pub const CONTROL_PORT: u16 = 0x3F6;
    /// The ISA IRQ of the primary channel.
    pub const IRQ: u8 = 14;

    /// A controller after power-on with no configuration and no disk yet:
    /// both device slots empty, PCI Command 0 (no I/O decode, no bus
    /// mastering), BAR4 unassigned. Give it its identity with
    /// [`IdeController::configure`], then attach disks with
    /// [`IdeController::attach`]; the PIO buffer is claimed with the first.
    ///
    /// `const`: a bare-metal host can make the controller a `static` (built
    /// at compile time, never on a stack) and configure it at boot, once the
    /// address space has handed out the controller's device id.
    pub const fn empty(mem: &'m M, irq: I, pio: &'m dyn PioStorage) -> Self {
        IdeController {
            channel: Channel::new(mem, irq, DeviceId::HOST),
            pci: Piix3Ide::new(),
            secondary: BusMaster::new(),
            pio,
            master_info: DriveInfo::MASTER,
            slave_info: DriveInfo::SLAVE,
            configured: false,
        }
    }

    /// Sets the controller's device id and its disks' IDENTIFY strings;
    /// only before the first disk is attached.
    pub fn configure(&mut self, config: &IdeConfig<'m>) -> Result<(), AttachError> {
        if self.channel.drive(Unit::Master).is_some() || self.channel.drive(Unit::Slave).is_some() {
            return Err(AttachError::AlreadyAttached);
        }
        self.channel.set_requester(config.requester);
        self.master_info = config.master;
        self.slave_info = config.slave;
        self.configured = true;
        Ok(())
    }

    /// A controller after power-on with `master` (and `slave`, if given)
    /// attached.
    pub fn new(
        mem: &'m M,
        irq: I,
        pio: &'m dyn PioStorage,
        master: B,
        slave: Option<B>,
        config: &IdeConfig<'m>,
    ) -> Result<Self, AttachError> {
        let mut c = Self::empty(mem, irq, pio);
        c.configure(config)?;
        c.attach(Unit::Master, master)?;
        if let Some(s) = slave {
            c.attach(Unit::Slave, s)?;
        }
        Ok(c)
    }

    /// Checks that a device can be attached at `unit`; claims the PIO
    /// buffer with the first one.
    fn claim_slot(&mut self, unit: Unit) -> Result<Option<VolatileSlice<'m>>, AttachError> {
        if !self.configured {
            return Err(AttachError::NotConfigured);
        }
        if self.channel.drive(unit).is_some() {
            return Err(AttachError::SlotTaken(unit));
        }
        let first =
            self.channel.drive(Unit::Master).is_none() && self.channel.drive(Unit::Slave).is_none();
        Ok(if first {
            Some(self.pio.claim().ok_or(AttachError::PioBufferInUse)?)
        } else {
            None
        })
    }

    /// Attaches a disk at `unit` (IDENTIFY strings from the configuration).
    pub fn attach(&mut self, unit: Unit, block: B) -> Result<(), AttachError> {
        let buf = self.claim_slot(unit)?;
        let info = match unit {
            Unit::Master => self.master_info,
            Unit::Slave => self.slave_info,
        };
        let drive = Drive::new(block, &info, self.pio.max_multiple());
        self.channel.attach(unit, drive, buf);
        Ok(())
    }

    /// Attaches an ATAPI CD-ROM drive at `unit` whose medium is `block`
    /// (read-only use; a backend of 0 sectors is an empty drive). Its
    /// IDENTIFY PACKET DEVICE strings come from the configuration.
    #[cfg(feature = "atapi")]
    pub fn attach_cdrom(&mut self, unit: Unit, block: B) -> Result<(), AttachError> {
        let buf = self.claim_slot(unit)?;
        let info = match unit {
            Unit::Master => self.master_info,
            Unit::Slave => self.slave_info,
        };
        self.channel.attach(unit, Drive::cdrom(block, &info), buf);
        Ok(())
    }

    /// Replaces the medium of the CD-ROM drive at `unit` with `block`, as
    /// a host-side media change (QMP `blockdev-change-medium`, `eject`
    /// with an empty backend): the tray closes, the guest sees "no
    /// medium" then "medium may have changed" on its next commands and a
    /// GESN new-media event (no interrupt: see below). Refused while a request
    /// of the channel is in flight or a DMA waits for START, and while the
    /// guest locked the tray unless `force` (then the lock is dropped).
    /// Returns the previous medium.
    #[cfg(feature = "atapi")]
    pub fn change_medium(&mut self, unit: Unit, block: B, force: bool) -> Result<B, MediaError> {
        self.channel.change_medium(unit, block, force)
    }

    /// The tray of the CD-ROM drive at `unit` (`None`: no CD-ROM there).
    #[cfg(feature = "atapi")]
    pub fn tray(&self, unit: Unit) -> Option<TrayState> {
        let st = self.channel.drive(unit)?.atapi.as_ref()?;
        Some(TrayState {
            open: st.tray_open,
            locked: st.locked,
        })
    }

    /// Opens the tray of the CD-ROM drive at `unit` (QMP `eject`): the
    /// medium, if any, is out of reach (NOT READY, medium not present) until
    /// `change_medium` puts one in or `close_tray` closes it. Refused while
    /// the guest locked the tray unless `force` (then the lock is dropped);
    /// a refusal posts a GESN eject request, as a drive's eject button
    /// does.
    ///
    /// None of the host's media operations raises INTRQ (QEMU raises one
    /// with no command running; ATA interrupts only for commands): guests
    /// learn of them by polling GESN or TEST UNIT READY, as Linux does. A
    /// host can therefore call them from a thread that may not touch the
    /// VM's interrupt lines.
    #[cfg(feature = "atapi")]
    pub fn open_tray(&mut self, unit: Unit, force: bool) -> Result<(), MediaError> {
        self.channel.open_tray(unit, force)
    }

    /// Closes the tray of the CD-ROM drive at `unit` (QMP
    /// `blockdev-close-tray`) over the medium it has: as after
    /// `change_medium`, the guest sees "no medium", then "medium may have
    /// changed", and a GESN new-media event (no interrupt). Nothing
    /// happens if the tray is closed.
    #[cfg(feature = "atapi")]
    pub fn close_tray(&mut self, unit: Unit) -> Result<(), MediaError> {
        self.channel.close_tray(unit)
    }

    /// Maps a port number to the block and offset it reaches, if the
    /// controller decodes it: `0x1F0..=0x1F7`, `0x3F6`, and the 16 ports at
    /// BAR4 while PCI I/O decode is on and BAR4 is assigned. The command
    /// block wins if the guest overlaps BAR4 with it.
    pub fn decode_port(&self, port: u16) -> Option<(IoBlock, u16)> {
        if let Some(off) = port.checked_sub(Self::COMMAND_BLOCK_BASE)
            && off < 8
        {
            return Some((IoBlock::Command, off));
        }
        if port == Self::CONTROL_PORT {
            return Some((IoBlock::Control, 0));
        }
        let base = self.pci.bmdma_base()?;
        let off = port.checked_sub(base)?;
        (off < Piix3Ide::BMDMA_BAR_SIZE).then_some((IoBlock::BusMaster, off))
    }

    /// [`IdeController::decode_port`] and [`IdeController::read`] in one:
    /// the value of a read of `port`, or `None` if the controller does not
    /// decode it.
    pub fn read_port(&mut self, port: u16, width: AccessWidth) -> Option<u32> {
        let (block, offset) = self.decode_port(port)?;
        Some(self.read(block, offset, width))
    }

    /// [`IdeController::decode_port`] and [`IdeController::write`] in one;
    /// returns whether the controller decodes `port`.
    pub fn write_port(&mut self, port: u16, width: AccessWidth, value: u32) -> bool {
        match self.decode_port(port) {
            Some((block, offset)) => {
                self.write(block, offset, width, value);
                true
            }
            None => false,
        }
    }

    /// A guest read of `width` at `offset` in `block`.
    ///
    /// The data port (command block offset 0) takes 16- and 32-bit reads;
    /// every other register is 8 bits wide, and wider accesses to them are
    /// split into byte accesses (bytes beyond the block read `0xFF`).
    pub fn read(&mut self, block: IoBlock, offset: u16, width: AccessWidth) -> u32 {
        #[cfg(feature = "snapshot")]
        self.channel.restart();
        match block {
            IoBlock::Command if offset == 0 && width != AccessWidth::Byte => {
                self.channel.read_data(width)
            }
            IoBlock::Command => self.read_bytes(width, |c, i| {
                let o = offset.checked_add(i)?;
                (o < 8).then(|| c.channel.read_register(o))
            }),
            IoBlock::Control => self.read_bytes(width, |c, i| {
                (offset.checked_add(i)? == 0).then(|| c.channel.read_alt_status())
            }),
            IoBlock::BusMaster => {
                if !self.pci.io_enabled() {
                    return width.all_ones();
                }
                match offset {
                    0..=7 => self.channel.bm_read(offset, width),
                    8..=15 => self.secondary.read(offset - 8, width),
                    _ => width.all_ones(),
                }
            }
        }
    }

    /// A guest write of the low `width` bytes of `value` at `offset` in
    /// `block` (widths as for [`IdeController::read`]).
    pub fn write(&mut self, block: IoBlock, offset: u16, width: AccessWidth, value: u32) {
        #[cfg(feature = "snapshot")]
        self.channel.restart();
        let bus_master = self.pci.bus_master_enabled();
        #[cfg(feature = "atapi")]
        {
            self.channel.bus_master_on = bus_master;
        }
        match block {
            IoBlock::Command if offset == 0 && width != AccessWidth::Byte => {
                self.channel.write_data(width, value);
            }
            IoBlock::Command => {
                for (i, b) in value
                    .to_le_bytes()
                    .into_iter()
                    .take(width.bytes())
                    .enumerate()
                {
                    let Some(o) = u16::try_from(i).ok().and_then(|i| offset.checked_add(i)) else {
                        break;
                    };
                    if o < 8 {
                        self.channel.write_register(o, b, bus_master);
                    }
                }
            }
            IoBlock::Control => {
                if offset == 0 {
                    let [b, ..] = value.to_le_bytes();
                    self.channel.write_device_control(b);
                }
            }
            IoBlock::BusMaster => {
                if !self.pci.io_enabled() {
                    return;
                }
                match offset {
                    0..=7 => self.channel.bm_write(offset, width, value, bus_master),
                    8..=15 => {
                        let edge = self.secondary.write(offset - 8, width, value);
                        self.secondary.apply_idle_edge(edge);
                    }
                    _ => {}
                }
            }
        }
    }

    /// Delivers finished block requests (asynchronous backends); call it
    /// when the backend signals completions. Returns whether any was
    /// delivered. Synchronous backends never need it.
    pub fn poll(&mut self) -> bool {
        #[cfg(feature = "snapshot")]
        self.channel.restart();
        self.channel.poll()
    }

    /// Resumes a DMA transfer that waited for bounce-buffer space; call it
    /// when [`BounceWait::poll_retry`](crate::dma::BounceWait::poll_retry) returns [`IdeController::requester`].
    pub fn on_bounce_free(&mut self) {
        #[cfg(feature = "snapshot")]
        self.channel.restart();
        self.channel.retry_bounce();
    }

    /// Runs whatever is outstanding to its end, waiting on the backends
    /// (each `wait` bounded by its backend), e.g. before the host shuts
    /// down. Returns true when no request is in flight afterwards; false if
    /// a backend's bound ran out (call again, or keep polling: the memory of
    /// the request stays reserved either way).
    pub fn drain(&mut self) -> bool {
        #[cfg(feature = "snapshot")]
        self.channel.restart();
        let drained = self.channel.drain();
        self.channel.settle();
        drained
    }

    /// Resets the controller in place to its power-on state, as a PCI
    /// reset would, for a host that restarts the device: PCI configuration
    /// (Command 0, BAR4 unassigned), both channels' bus-master registers,
    /// both devices' registers and the IRQ line. The disks, the claimed PIO
    /// buffer, the configuration and the counters stay. A request still in
    /// flight after the bounded drain refuses the reset ([`ResetError`]):
    /// poll and try again (its memory stays its own meanwhile; completions
    /// the drain delivered stay delivered). A
    /// controller that was dropped instead cannot be rebuilt on the same
    /// PIO buffer (it stays claimed), which is why this exists.
    pub fn reset(&mut self) -> Result<(), ResetError> {
        if !self.channel.power_on_reset() {
            return Err(ResetError::InFlight);
        }
        self.pci = Piix3Ide::new();
        self.secondary = BusMaster::new();
        Ok(())
    }

    /// True when no block request is in flight and no transfer waits for
    /// bounce space.
    pub fn is_idle(&self) -> bool {
        self.channel.is_quiescent()
    }

    /// The DMA requester id of the channel, which is also its retry-queue
    /// client id.
    pub fn requester(&self) -> DeviceId {
        self.channel.requester()
    }

    /// The current level of the IRQ line.
    pub fn irq_level(&self) -> bool {
        self.channel.irq_level()
    }

    /// The counters.
    pub fn stats(&self) -> &IdeStats {
        &self.channel.stats
    }

    /// Why the last failed command failed (for the host's logs).
    pub fn last_error(&self) -> Option<IdeError> {
        self.channel.last_error
    }

    /// The block device of the disk at `unit`.
    pub fn disk(&self, unit: Unit) -> Option<&B> {
        self.channel.drive(unit).map(|d| &d.block)
    }

    /// The block device of the disk at `unit`, mutably.
    pub fn disk_mut(&mut self, unit: Unit) -> Option<&mut B> {
        self.channel.drive_mut(unit).map(|d| &mut d.block)
    }

    /// The PCI function's configuration state.
    pub fn pci(&self) -> &Piix3Ide {
        &self.pci
    }

    /// Firmware-style set-up: BAR4 at `bmdma_base`, I/O decode on (bus
    /// mastering stays off until the guest driver enables it).
    pub fn firmware_init(&mut self, bmdma_base: u16) -> Result<(), PciError> {
        self.pci.firmware_init(bmdma_base)
    }

    fn read_bytes(
        &mut self,
        width: AccessWidth,
        mut f: impl FnMut(&mut Self, u16) -> Option<u8>,
    ) -> u32 {
        let mut v = 0u32;
        for i in 0..width.bytes() {
            let b = u16::try_from(i)
                .ok()
                .and_then(|i| f(self, i))
                .unwrap_or(0xFF);
            v |= u32::from(b) << (8 * i);
        }
        v
    }
}

impl<'m, M, B, I, const IOV: usize, const PRD: usize> PciFunction
    for IdeController<'m, M, B, I, IOV, PRD>
where
    M: DmaMemory + ?Sized,
    B: BlockDevice<'m>,
    I: IrqLine,
{
    fn config_read(&self, offset: u8, width: AccessWidth) -> u32 {
        self.pci.config_read(offset, width)
    }

    fn config_write(&mut self, offset: u8, width: AccessWidth, value: u32) {
        self.pci.config_write(offset, width, value);
    }
}
