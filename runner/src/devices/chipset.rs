//! The PCI side of the machine: configuration mechanism #1 (0xCF8/0xCFC),
//! an i440FX-like host bridge (00:00.0), the PIIX3 ISA bridge (00:01.0) and
//! the PIIX3 IDE function (00:01.1) from `vmdma-core`, whose legacy ports
//! (0x1F0–0x1F7, 0x3F6) and BMDMA BAR the controller decodes itself.
//!
//! It sits on the port bus as a [`PortDecoder`], so a guest that moves BAR4
//! is followed. After every access it delivers block completions and
//! bounce-space notifications to the controller.

use std::sync::Arc;

use vmdma_core::block::BlockDevice;
use vmdma_core::dma::BounceWait;
use vmdma_core::ide::{
    AttachError, DriveInfo, IdeConfig, IdeController, IdeStats, MediaError, PioStorage, TrayState,
    Unit,
};
use vmdma_core::memory::MemError;
use vmdma_core::pci::{
    AccessWidth, ConfigMechanism1, HostBridge, IsaBridge, PciAddress, PciError, PciFunction,
};

use crate::control::LastCommand;
use crate::control::RunControl;
use crate::devices::bus::PortDecoder;
use crate::devices::irq::IrqLine;
use crate::devices::last_command::TaskFileShadow;
use crate::devices::mmio::GuestSpace;
use crate::disk::Disk;

/// Saving and restoring the chipset's device state.
mod snapshot;

/// Configuration mechanism #1 ports.
const CF8: u16 = ConfigMechanism1::PORT_BASE;
const CF8_LEN: u16 = ConfigMechanism1::PORT_COUNT;

/// Where the runner, acting as firmware, places the BMDMA BAR (SeaBIOS
/// uses the same kind of address).
pub const BMDMA_BASE: u16 = 0xC000;

/// The port ranges (first port, ports) whose writes KVM may coalesce
/// instead of exiting (`kvm::coalesced`; the vCPU loop applies them in
/// order before the next exit is handled).
///
/// A write may be coalesced only if, until the next exit, nothing but a
/// later read (an exit, which drains the ring first) could observe it: no
/// interrupt, no DMA, no output. Here that is
///
/// - the IDE task file, 0x1F1–0x1F6 (Features .. Device): the controller
///   only stores them. Whatever BAR4 is moved to, no bus-master command
///   register (BAR4 + 0 or + 8, 16-byte aligned) can land there;
/// - the bus-master status (BMDMA_BASE + 2, write-1-to-clear of INT/ERR)
///   and PRD pointer (BMDMA_BASE + 4 .. + 8), where the runner puts BAR4;
///   moved elsewhere, those ports decode to nothing, and a coalesced write
///   there is dropped just as late as it would have been dropped at once.
///
/// The command register, BM command (START), Device Control, the data
/// port and everything else still exit. (COM1's transmit register is
/// coalesced while the UART has no interrupt enabled, a zone the serial
/// model switches itself: see `devices::serial`.)
pub const COALESCED_ZONES: [(u16, u32); 2] = [
    // IDE primary command block: Features, Count, LBA low/mid/high, Device.
    (0x1F1, 6),
    // BMDMA primary: status (+2), its device-specific neighbour (+3,
    // unclaimed), PRD pointer (+4..+8).
    (BMDMA_BASE + 2, 6),
];

/// The IDE channel's interrupt: ISA IRQ 14.
pub const IDE_IRQ: u32 = 14;

/// Bounce notifications handled per access at most (each one either moves
/// data or re-queues the channel, so a handful is plenty).
const MAX_RETRIES_PER_ACCESS: usize = 16;

/// Where the IDE channel's INTRQ goes: the in-kernel irqchip in the KVM
/// runner, a recorder in the qtest front end.
pub trait IrqSink: Send {
    /// Drives the line high or low (the controller calls it on changes).
    fn set_level(&self, high: bool);
}

impl IrqSink for IrqLine {
    fn set_level(&self, high: bool) {
        // KVM_IRQ_LINE on a valid GSI of an existing irqchip does not fail;
        // if it ever did there is nothing better to do than carry on (the
        // guest sees a lost interrupt and times out).
        let _ = IrqLine::set_level(self, high);
    }
}

/// INTRQ of the IDE channel.
pub struct IdeIrq(Box<dyn IrqSink>);

impl std::fmt::Debug for IdeIrq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdeIrq")
    }
}

impl vmdma_core::ide::IrqLine for IdeIrq {
    fn set_level(&self, high: bool) {
        self.0.set_level(high);
    }
}

/// Why the chipset could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ChipsetError {
    /// The address space has no device id left for the IDE function.
    #[error("IDE device id: {0}")]
    DeviceId(MemError),
    /// The controller refused its configuration.
    #[error("IDE configuration: {0}")]
    Configure(AttachError),
    /// A disk could not be attached.
    #[error("IDE disk: {0}")]
    Attach(AttachError),
    /// Presetting BAR4 and I/O decode failed.
    #[error("IDE firmware setup: {0}")]
    FirmwareInit(PciError),
    /// A slot address is not a valid PCI address.
    #[error("bad PCI address 00:{dev:02x}.{func}")]
    PciAddress {
        /// Device number.
        dev: u8,
        /// Function number.
        func: u8,
    },
}

/// The disks of the primary channel and how they identify themselves.
#[derive(Debug)]
pub struct IdeDisks<'m> {
    /// Device 0, if any.
    pub master: Option<Disk<'m>>,
    /// Device 1, if any.
    pub slave: Option<Disk<'m>>,
    /// IDENTIFY strings of device 0.
    pub master_info: DriveInfo<'m>,
    /// IDENTIFY strings of device 1.
    pub slave_info: DriveInfo<'m>,
    /// Which of device 0 and 1 are ATAPI CD-ROM drives.
    pub cdrom: [bool; 2],
}

impl<'m> IdeDisks<'m> {
    /// `master` alone, with vmdma's default identity.
    pub fn master(master: Disk<'m>) -> Self {
        IdeDisks {
            master: Some(master),
            slave: None,
            master_info: DriveInfo::MASTER,
            slave_info: DriveInfo::SLAVE,
            cdrom: [false; 2],
        }
    }
}

/// The controller type the runner uses.
pub type Ide<'m> = IdeController<'m, GuestSpace<'m>, Disk<'m>, IdeIrq>;

/// How long shutting down waits for the disk (the requests in flight, then
/// the flush) unless the caller says otherwise. It is checked after each
/// of the backend's bounded waits (io_uring: 2 s), so the drain and the
/// flush may each overrun it by one wait.
pub const SHUTDOWN_BOUND: std::time::Duration = std::time::Duration::from_secs(30);

/// What shutting down was doing when the disk stopped answering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShutdownStage {
    /// Waiting for the guest's requests in flight.
    Drain,
    /// Waiting for the flush of the disk.
    Flush,
}

/// The disk did not answer within the shutdown bound: its requests are
/// still in flight, so guest memory must stay mapped and the disk was not
/// flushed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StuckDisk {
    /// What shutting down was waiting for.
    pub stage: ShutdownStage,
    /// Requests the backends still have.
    pub in_flight: usize,
    /// The bound that ran out.
    pub bound: std::time::Duration,
    /// The guest's last ATA command.
    pub command: Option<LastCommand>,
}

impl std::fmt::Display for StuckDisk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the disk did not answer: {} request(s) still in flight after {:.1} s ",
            self.in_flight,
            self.bound.as_secs_f64()
        )?;
        match (self.stage, self.command) {
            (ShutdownStage::Drain, Some(c)) => write!(f, "(the guest's {c})")?,
            (ShutdownStage::Drain, None) => write!(f, "(the guest's)")?,
            (ShutdownStage::Flush, _) => write!(f, "(the runner's flush at exit)")?,
        }
        write!(f, "; the disk was NOT flushed")
    }
}

/// Why [`Chipset::shutdown`] did not end cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ShutdownError {
    /// Requests are still in flight (see [`StuckDisk`]).
    #[error("{0}")]
    Stuck(StuckDisk),
    /// The flush completed with an error (nothing is in flight).
    #[error("flushing the disk: {0}")]
    Flush(vmdma_core::block::BlockError),
    /// The flush could not be submitted.
    #[error("flushing the disk: {0}")]
    FlushSubmit(vmdma_core::block::BlockError),
}

/// The PCI functions and the IDE controller, reachable through port I/O.
pub struct Chipset<'m> {
    space: &'m GuestSpace<'m>,
    /// 00:00.0, 00:01.0, 00:01.1.
    slots: [PciAddress; 3],
    cf8: ConfigMechanism1,
    host: HostBridge,
    isa: IsaBridge,
    ide: Box<Ide<'m>>,
    /// The command block as the guest wrote it (for the shutdown message).
    shadow: TaskFileShadow,
    /// Where each new command is also published, for a supervisor that
    /// cannot take the chipset's lock (a vCPU blocked inside a port access
    /// holds it).
    publish: Option<Arc<RunControl>>,
}

impl std::fmt::Debug for Chipset<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chipset").finish_non_exhaustive()
    }
}

impl<'m> Chipset<'m> {
    /// Builds the chipset with `disk` as the primary master, DMA into
    /// `space` (under a device id of its own), PIO blocks in `pio`, and
    /// presets what firmware would (BAR4, I/O decode, the IDE
    /// decode-enable bits).
    pub fn new(
        space: &'m GuestSpace<'m>,
        pio: &'m dyn PioStorage,
        disk: Disk<'m>,
        irq: impl IrqSink + 'static,
    ) -> Result<Self, ChipsetError> {
        Self::with_disks(space, pio, IdeDisks::master(disk), irq)
    }

    /// [`Chipset::new`] with any set of primary-channel disks (none, a
    /// master, a slave, both) and their IDENTIFY strings.
    pub fn with_disks(
        space: &'m GuestSpace<'m>,
        pio: &'m dyn PioStorage,
        disks: IdeDisks<'m>,
        irq: impl IrqSink + 'static,
    ) -> Result<Self, ChipsetError> {
        let id = space.new_device().map_err(ChipsetError::DeviceId)?;
        let config = IdeConfig::new(id).with_drives(disks.master_info, disks.slave_info);
        // The same const constructor an embedder's `static` uses. Here the
        // controller (about 35 KiB at IOV 256 / PRD 512) goes to the heap;
        // rustc builds the value on the stack first and moves it (measured:
        // a 40 KiB frame in Chipset::new, once per VM, on the main thread's
        // 8 MiB stack). Building it in place would take unsafe field-by-field
        // writes in the device model, which stays free of unsafe; hosts with
        // small stacks use a `static` instead (see core/README.md).
        let mut ide = Box::new(IdeController::empty(space, IdeIrq(Box::new(irq)), pio));
        ide.configure(&config).map_err(ChipsetError::Configure)?;
        let [cd0, cd1] = disks.cdrom;
        for (unit, disk, cdrom) in [
            (Unit::Master, disks.master, cd0),
            (Unit::Slave, disks.slave, cd1),
        ] {
            match disk {
                Some(d) if cdrom => ide.attach_cdrom(unit, d),
                Some(d) => ide.attach(unit, d),
                None => Ok(()),
            }
            .map_err(ChipsetError::Attach)?;
        }
        ide.firmware_init(BMDMA_BASE)
            .map_err(ChipsetError::FirmwareInit)?;
        let at =
            |dev, func| PciAddress::new(0, dev, func).ok_or(ChipsetError::PciAddress { dev, func });
        Ok(Chipset {
            space,
            slots: [at(0, 0)?, at(1, 0)?, at(1, 1)?],
            cf8: ConfigMechanism1::new(),
            host: HostBridge::new(),
            isa: IsaBridge::new(),
            ide,
            shadow: TaskFileShadow::default(),
            publish: None,
        })
    }

    /// Publishes every ATA command the guest writes to `control` too.
    pub fn publish_commands(&mut self, control: Arc<RunControl>) {
        self.publish = Some(control);
    }

    /// The tray of the CD-ROM drive on device 1 (`None`: there is none).
    pub fn cdrom_tray(&self) -> Option<TrayState> {
        self.ide.tray(Unit::Slave)
    }

    /// Opens the tray of the CD-ROM drive on device 1 (QMP `eject`).
    pub fn cdrom_open_tray(&mut self, force: bool) -> Result<(), MediaError> {
        self.ide.open_tray(Unit::Slave, force)
    }

    /// Puts `disk` in the CD-ROM drive on device 1 as its new medium (QMP
    /// `blockdev-change-medium`); returns the old one. The guest sees a
    /// media change.
    pub fn cdrom_change_medium(
        &mut self,
        disk: Disk<'m>,
        force: bool,
    ) -> Result<Disk<'m>, MediaError> {
        self.ide.change_medium(Unit::Slave, disk, force)
    }

    /// Closes the tray of the CD-ROM drive on device 1 (QMP
    /// `blockdev-close-tray`): the guest sees a media change.
    pub fn cdrom_close_tray(&mut self) -> Result<(), MediaError> {
        self.ide.close_tray(Unit::Slave)
    }

    /// The IDE controller's counters.
    pub fn ide_stats(&self) -> IdeStats {
        *self.ide.stats()
    }

    /// The master's disk backend.
    pub fn disk(&self) -> Option<&Disk<'m>> {
        self.ide.disk(Unit::Master)
    }

    /// The disk backend of unit 0 or 1, mutably (the monitor's fault
    /// injection and releases).
    pub fn disk_mut(&mut self, unit: Unit) -> Option<&mut Disk<'m>> {
        self.ide.disk_mut(unit)
    }

    /// Ends the devices' work before the VM goes away: every request in
    /// flight is completed (waiting for the disk), then the disk is flushed
    /// so data the guest wrote is durable, all within `bound` (checked
    /// after each of the backend's bounded waits). The image lock goes with
    /// the file when the chipset is dropped.
    ///
    /// [`ShutdownError::Stuck`] means the disk still has requests: the
    /// caller must not unmap guest memory (nor drop the disk, whose own
    /// drop waits for them).
    pub fn shutdown(&mut self, bound: std::time::Duration) -> Result<(), ShutdownError> {
        let deadline = std::time::Instant::now() + bound;
        // Requests held at a breakpoint or stopped by an error policy will
        // not be resumed any more: they complete with an error.
        for unit in [Unit::Master, Unit::Slave] {
            if let Some(disk) = self.ide.disk_mut(unit) {
                disk.abandon_kept();
            }
        }
        while !self.ide.drain() {
            if std::time::Instant::now() >= deadline {
                return Err(ShutdownError::Stuck(
                    self.stuck(ShutdownStage::Drain, bound),
                ));
            }
        }
        for unit in [Unit::Master, Unit::Slave] {
            if let Some(disk) = self.ide.disk_mut(unit) {
                match flush(disk, deadline) {
                    Flushed::Yes => {}
                    Flushed::Failed(e) => return Err(ShutdownError::Flush(e)),
                    Flushed::NotSubmitted(e) => return Err(ShutdownError::FlushSubmit(e)),
                    Flushed::Stuck => {
                        return Err(ShutdownError::Stuck(
                            self.stuck(ShutdownStage::Flush, bound),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// What is left in flight, for [`ShutdownError::Stuck`].
    fn stuck(&self, stage: ShutdownStage, bound: std::time::Duration) -> StuckDisk {
        StuckDisk {
            stage,
            in_flight: [Unit::Master, Unit::Slave]
                .into_iter()
                .filter_map(|u| self.ide.disk(u))
                .map(Disk::in_flight)
                .sum(),
            bound,
            command: self.shadow.last(),
        }
    }

    /// Moves the devices on: delivers backend completions and bounce
    /// wake-ups (at most 16 per call). Called after every port access the
    /// chipset claims, by the I/O thread, and by a host without vCPU exits
    /// (the qtest front end) between its own commands.
    pub fn service(&mut self) {
        // Requests the disk kept back and the monitor released go to the
        // engine first (this runs on a thread that may do disk I/O).
        for unit in [Unit::Master, Unit::Slave] {
            if let Some(disk) = self.ide.disk_mut(unit) {
                disk.submit_released();
            }
        }
        self.ide.poll();
        for _ in 0..MAX_RETRIES_PER_ACCESS {
            match self.space.poll_retry() {
                Some(c) if c == self.ide.requester() => self.ide.on_bounce_free(),
                Some(_) => {}
                None => break,
            }
        }
    }

    fn config(&mut self, port: u16, width: AccessWidth, value: Option<u32>) -> u32 {
        let [host, isa, ide] = self.slots;
        let mut bus = [
            (host, &mut self.host as &mut dyn PciFunction),
            (isa, &mut self.isa as &mut dyn PciFunction),
            (ide, &mut *self.ide as &mut dyn PciFunction),
        ];
        match value {
            Some(v) => {
                self.cf8.write(&mut bus[..], port - CF8, width, v);
                0
            }
            None => self.cf8.read(&mut bus[..], port - CF8, width),
        }
    }
}

/// How a flush at shutdown went.
enum Flushed {
    /// Done (or nothing to flush: a read-only disk).
    Yes,
    /// The backend refused it; nothing is in flight.
    NotSubmitted(vmdma_core::block::BlockError),
    /// It completed with an error.
    Failed(vmdma_core::block::BlockError),
    /// It is still in flight at the deadline.
    Stuck,
}

/// Flushes `disk` (unless read-only), waiting until `deadline`.
fn flush<'m>(disk: &mut Disk<'m>, deadline: std::time::Instant) -> Flushed {
    if <Disk<'m> as BlockDevice<'m>>::is_read_only(disk) {
        return Flushed::Yes;
    }
    let token = vmdma_core::block::RequestToken::new();
    let id = token.id();
    if let Err(r) = disk.submit(token, vmdma_core::block::BlockRequest::Flush) {
        return Flushed::NotSubmitted(r.error);
    }
    loop {
        match disk.wait() {
            Some(c) if c.id() == id => {
                return match c.result {
                    Ok(()) => Flushed::Yes,
                    Err(e) => Flushed::Failed(e),
                };
            }
            Some(_) => {}
            None if std::time::Instant::now() >= deadline => return Flushed::Stuck,
            None => {}
        }
    }
}

fn is_cf8(port: u16, len: usize) -> bool {
    port >= CF8 && usize::from(port - CF8) + len <= usize::from(CF8_LEN)
}

impl PortDecoder for Chipset<'_> {
    fn read(&mut self, port: u16, data: &mut [u8]) -> bool {
        let Some(width) = AccessWidth::from_len(data.len()) else {
            return false;
        };
        let value = if is_cf8(port, data.len()) {
            Some(self.config(port, width, None))
        } else {
            self.ide.read_port(port, width)
        };
        let Some(v) = value else { return false };
        let bytes = v.to_le_bytes();
        data.copy_from_slice(&bytes[..data.len()]);
        self.service();
        true
    }

    fn write(&mut self, port: u16, data: &[u8]) -> bool {
        let Some(width) = AccessWidth::from_len(data.len()) else {
            return false;
        };
        let mut b = [0u8; 4];
        b[..data.len()].copy_from_slice(data);
        let v = u32::from_le_bytes(b);
        let handled = if is_cf8(port, data.len()) {
            self.config(port, width, Some(v));
            true
        } else {
            if let Some((block, offset)) = self.ide.decode_port(port)
                && let Some(c) = self.shadow.write(block, offset, v)
                && let Some(control) = &self.publish
            {
                control.note_command(c);
            }
            self.ide.write_port(port, width, v)
        };
        if handled {
            self.service();
        }
        handled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coalesced_zones_cover_only_side_effect_free_ports() {
        for (port, len) in COALESCED_ZONES {
            let ports = port..port + len as u16;
            for p in [0x1F0, 0x1F7, 0x3F6, BMDMA_BASE] {
                assert!(!ports.contains(&p), "{p:#x} has side effects");
            }
        }
    }
}
