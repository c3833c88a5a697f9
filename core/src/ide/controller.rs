//! The PIIX3 IDE controller as the host sees it: the primary channel's
//! legacy ports, the BMDMA block behind BAR4, and the PCI function.

use crate::block::BlockDevice;
use crate::dma::{ClientId, DmaMemory};
use crate::memory::DeviceId;
use crate::pci::{AccessWidth, PciError, PciFunction, Piix3Ide};

use super::IrqLine;
use super::bus_master::BusMaster;
use super::channel::{Channel, Unit};
use super::drive::Drive;
use super::error::IdeError;
use super::identify::DriveInfo;
use super::stats::IdeStats;

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
pub struct IdeConfig<'a> {
    /// The identity the controller's DMA carries (re-entrancy checks).
    pub requester: DeviceId,
    /// The id under which the channel waits for bounce space; the host
    /// calls [`IdeController::on_bounce_free`] when
    /// [`DmaMemory::poll_retry`] returns it.
    pub client: ClientId,
    /// IDENTIFY strings of the master disk.
    pub master: DriveInfo<'a>,
    /// IDENTIFY strings of the slave disk (if one is attached).
    pub slave: DriveInfo<'a>,
}

impl IdeConfig<'static> {
    /// A configuration with vmdma's default drive identities.
    pub const fn new(requester: DeviceId, client: ClientId) -> Self {
        IdeConfig {
            requester,
            client,
            master: DriveInfo::MASTER,
            slave: DriveInfo::SLAVE,
        }
    }
}

/// A PIIX3 IDE controller: the primary channel (master disk, optional
/// slave) with bus-master DMA, and its PCI function (`8086:7010`).
///
/// `'m` is the lifetime of the DMA memory `M` (an
/// [`AddressSpace`](crate::dma::AddressSpace), an
/// [`Iommu`](crate::iommu::Iommu), or `dyn DmaMemory`); `B` the disks'
/// block device; `I` the IRQ line (IRQ 14); `IOV` the most mappings per
/// block request. The controller is `Send` when `M` is `Sync` and `B` and
/// `I` are `Send` (an address space is `Sync`).
pub struct IdeController<'m, M: ?Sized, B, I, const IOV: usize = DEFAULT_IOV> {
    channel: Channel<'m, M, B, I, IOV>,
    pci: Piix3Ide,
    secondary: BusMaster,
}

impl<M: ?Sized, B, I, const IOV: usize> core::fmt::Debug for IdeController<'_, M, B, I, IOV> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("IdeController")
            .field("pci", &self.pci)
            .field("stats", &self.channel.stats)
            .finish_non_exhaustive()
    }
}

impl<'m, M, B, I, const IOV: usize> IdeController<'m, M, B, I, IOV>
where
    M: DmaMemory + ?Sized,
    B: BlockDevice,
    I: IrqLine,
{
    /// First port of the primary command block.
    pub const COMMAND_BLOCK_BASE: u16 = 0x1F0;
    /// The primary control port (Alternate Status / Device Control).
    pub const CONTROL_PORT: u16 = 0x3F6;
    /// The ISA IRQ of the primary channel.
    pub const IRQ: u8 = 14;

    /// A controller after power-on: both devices reset, PCI Command 0 (no
    /// I/O decode, no bus mastering), BAR4 unassigned.
    pub fn new(mem: &'m M, irq: I, master: B, slave: Option<B>, config: &IdeConfig<'_>) -> Self {
        Self::with_drives(mem, irq, Some(master), slave, config)
    }

    /// [`IdeController::new`] where the master may be absent too (a
    /// channel with no disk answers as QEMU's does: Status reads 0 and
    /// commands are ignored).
    pub fn with_drives(
        mem: &'m M,
        irq: I,
        master: Option<B>,
        slave: Option<B>,
        config: &IdeConfig<'_>,
    ) -> Self {
        let master = master.map(|m| Drive::new(m, &config.master));
        let slave = slave.map(|s| Drive::new(s, &config.slave));
        IdeController {
            channel: Channel::new(mem, irq, config.requester, config.client, master, slave),
            pci: Piix3Ide::new(),
            secondary: BusMaster::new(),
        }
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
        let bus_master = self.pci.bus_master_enabled();
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
        self.channel.poll()
    }

    /// Resumes a DMA transfer that waited for bounce-buffer space; call it
    /// when [`DmaMemory::poll_retry`] returns [`IdeController::client_id`].
    pub fn on_bounce_free(&mut self) {
        self.channel.retry_bounce();
    }

    /// Completes whatever is outstanding (waiting on the backends), e.g.
    /// before the host shuts down. Afterwards no request is in flight.
    pub fn drain(&mut self) {
        self.channel.drain();
    }

    /// True when no block request is in flight and no transfer waits for
    /// bounce space.
    pub fn is_idle(&self) -> bool {
        self.channel.is_quiescent()
    }

    /// The retry-queue client id of the channel.
    pub fn client_id(&self) -> ClientId {
        self.channel.client()
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

impl<M, B, I, const IOV: usize> PciFunction for IdeController<'_, M, B, I, IOV>
where
    M: DmaMemory + ?Sized,
    B: BlockDevice,
    I: IrqLine,
{
    fn config_read(&self, offset: u8, width: AccessWidth) -> u32 {
        self.pci.config_read(offset, width)
    }

    fn config_write(&mut self, offset: u8, width: AccessWidth, value: u32) {
        self.pci.config_write(offset, width, value);
    }
}
