//! The PCI side of the machine: configuration mechanism #1 (0xCF8/0xCFC),
//! an i440FX-like host bridge (00:00.0), the PIIX3 ISA bridge (00:01.0) and
//! the PIIX3 IDE function (00:01.1) from `vmdma-core`, whose legacy ports
//! (0x1F0–0x1F7, 0x3F6) and BMDMA BAR the controller decodes itself.
//!
//! It sits on the port bus as a [`PortDecoder`], so a guest that moves BAR4
//! is followed. After every access it delivers block completions and
//! bounce-space notifications to the controller.

use vmdma_core::dma::DmaMemory;
use vmdma_core::ide::{IdeConfig, IdeController, IdeStats};
use vmdma_core::memory::DeviceId;
use vmdma_core::pci::{
    AccessWidth, ConfigMechanism1, HostBridge, IsaBridge, PciAddress, PciFunction,
};

use crate::devices::bus::PortDecoder;
use crate::devices::irq::IrqLine;
use crate::devices::mmio::GuestSpace;
use crate::disk::RawDisk;
use crate::disk::accounting::Accounted;
use vmdma_core::dma::ClientId;

/// Configuration mechanism #1 ports.
const CF8: u16 = ConfigMechanism1::PORT_BASE;
const CF8_LEN: u16 = ConfigMechanism1::PORT_COUNT;

/// Where the runner, acting as firmware, places the BMDMA BAR (SeaBIOS
/// uses the same kind of address).
pub const BMDMA_BASE: u16 = 0xC000;

/// The IDE channel's interrupt: ISA IRQ 14.
pub const IDE_IRQ: u32 = 14;

/// The IDE controller's identity for DMA (re-entrancy checks) and for the
/// bounce retry queue.
pub const IDE_DEVICE: DeviceId = DeviceId(1);
/// The IDE controller's retry-queue client id.
pub const IDE_CLIENT: ClientId = ClientId(1);

/// Bounce notifications handled per access at most (each one either moves
/// data or re-queues the channel, so a handful is plenty).
const MAX_RETRIES_PER_ACCESS: usize = 16;

/// INTRQ of the IDE channel, driven through `KVM_IRQ_LINE`.
#[derive(Debug)]
pub struct IdeIrq(pub IrqLine);

impl vmdma_core::ide::IrqLine for IdeIrq {
    fn set_level(&self, high: bool) {
        // KVM_IRQ_LINE on a valid GSI of an existing irqchip does not fail;
        // if it ever did there is nothing better to do than carry on (the
        // guest sees a lost interrupt and times out).
        let _ = self.0.set_level(high);
    }
}

/// The controller type the runner uses.
pub type Ide<'m> = IdeController<'m, GuestSpace<'m>, Disk, IdeIrq>;

/// The disk behind the controller: the raw image, its data path counted.
pub type Disk = Accounted<RawDisk>;

/// The PCI functions and the IDE controller, reachable through port I/O.
pub struct Chipset<'m> {
    space: &'m GuestSpace<'m>,
    /// 00:00.0, 00:01.0, 00:01.1.
    slots: [PciAddress; 3],
    cf8: ConfigMechanism1,
    host: HostBridge,
    isa: IsaBridge,
    ide: Box<Ide<'m>>,
}

impl std::fmt::Debug for Chipset<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chipset").finish_non_exhaustive()
    }
}

impl<'m> Chipset<'m> {
    /// Builds the chipset with `disk` as the primary master, DMA into
    /// `space`, and presets what firmware would (BAR4, I/O decode, the IDE
    /// decode-enable bits).
    pub fn new(space: &'m GuestSpace<'m>, disk: Disk, irq: IrqLine) -> Result<Self, String> {
        let config = IdeConfig::new(IDE_DEVICE, IDE_CLIENT);
        let mut ide = Box::new(IdeController::new(space, IdeIrq(irq), disk, None, &config));
        ide.firmware_init(BMDMA_BASE)
            .map_err(|e| format!("IDE firmware setup: {e}"))?;
        let at = |dev, func| {
            PciAddress::new(0, dev, func)
                .ok_or_else(|| format!("bad PCI address 00:{dev:02x}.{func}"))
        };
        Ok(Chipset {
            space,
            slots: [at(0, 0)?, at(1, 0)?, at(1, 1)?],
            cf8: ConfigMechanism1::new(),
            host: HostBridge::new(),
            isa: IsaBridge::new(),
            ide,
        })
    }

    /// The IDE controller's counters.
    pub fn ide_stats(&self) -> IdeStats {
        *self.ide.stats()
    }

    /// Finishes anything in flight (backend completions, bounce waits).
    fn service(&mut self) {
        self.ide.poll();
        for _ in 0..MAX_RETRIES_PER_ACCESS {
            match self.space.poll_retry() {
                Some(c) if c == self.ide.client_id() => self.ide.on_bounce_free(),
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
            self.ide.write_port(port, width, v)
        };
        if handled {
            self.service();
        }
        handled
    }
}
