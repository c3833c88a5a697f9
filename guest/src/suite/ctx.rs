//! The state the tests share: the channel, the DMA memory, what IDENTIFY
//! said about the disk, the platform, and counters for patterns and LBAs.

use vmdma_guest::ata::identify::Identify;
use vmdma_guest::ata::regs::status;
use vmdma_guest::ata::taskfile::Drive;
use vmdma_guest::cmdline::{MmioScratch, Options};
use vmdma_guest::msg::Msg;
use vmdma_guest::stamp::Template;

use super::Fail;
use crate::arch::dma_memory::{DmaMemory, Stage};
use crate::ide::channel::{Channel, DEVCTL_NORMAL};
use crate::ide::pio;
use crate::pic;

/// Which VMM the guest runs on. The only signal is `vmdma.mmio_scratch` on
/// the command line (QEMU has no such region); the suites keep the
/// differences to the MMIO tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Platform {
    /// QEMU (or any VMM without the scratch region).
    Qemu,
    /// vmdma (announced the MMIO scratch region).
    Vmdma,
}

/// First LBA handed out by [`Ctx::alloc`].
const ALLOC_START: u64 = 2048;
/// Gap left between allocations (so that a transfer running past its end
/// lands in unused sectors, never in another test's data).
const ALLOC_GAP: u64 = 64;

/// Shared test state.
pub struct Ctx {
    /// The primary IDE channel.
    pub ch: Channel,
    /// DMA buffer and PRD table.
    pub mem: &'static mut DmaMemory,
    /// Staging buffer.
    pub stage: &'static mut Stage,
    /// IDENTIFY data read at start-up (before any test changed settings).
    pub id: Identify,
    /// Disk capacity in sectors.
    pub capacity: u64,
    /// The platform.
    pub platform: Platform,
    /// The MMIO scratch region, if any.
    pub scratch: Option<MmioScratch>,
    pub(super) template: Template,
    next_pattern: u32,
    next_lba: u64,
}

impl Ctx {
    /// Sets up the channel and identifies the master drive.
    pub fn new(
        options: &Options,
        bmiba: u16,
        mem: &'static mut DmaMemory,
        stage: &'static mut Stage,
    ) -> Result<Self, Fail> {
        let ch = Channel::primary(bmiba);
        ch.set_devctl(DEVCTL_NORMAL);
        ch.stop_bus_master();
        if ch.select(Drive::Master).is_err() {
            ch.soft_reset()?;
            ch.select(Drive::Master)?;
        }
        let mut raw = [0u8; 512];
        pio::identify(&ch, Drive::Master, &mut raw)?;
        let id = Identify::from_bytes(&raw);
        let capacity = id.capacity();
        crate::ensure!(
            capacity > ALLOC_START * 2,
            "disk has only {capacity} sectors"
        );
        let platform = if options.mmio_scratch.is_some() {
            Platform::Vmdma
        } else {
            Platform::Qemu
        };
        crate::banner!(
            "vmdma-guest: platform {platform:?}; disk \"{}\" serial \"{}\" firmware \"{}\", {capacity} sectors{}",
            id.model().trimmed(),
            id.serial().trimmed(),
            id.firmware().trimmed(),
            if id.lba48() { " (LBA48)" } else { "" },
        );
        Ok(Ctx {
            ch,
            mem,
            stage,
            id,
            capacity,
            platform,
            scratch: options.mmio_scratch,
            template: Template::new(0),
            next_pattern: 1,
            next_lba: ALLOC_START,
        })
    }

    /// A pattern no earlier write used.
    pub fn pattern(&mut self) -> u32 {
        let p = self.next_pattern;
        self.next_pattern = self.next_pattern.wrapping_add(1);
        p
    }

    /// `sectors` fresh sectors at the low end of the disk, not used by any
    /// other test.
    pub fn alloc(&mut self, sectors: u64) -> Result<u64, Fail> {
        let lba = self.next_lba;
        let end = lba
            .checked_add(sectors)
            .and_then(|e| e.checked_add(ALLOC_GAP))
            .filter(|e| *e <= self.capacity)
            .ok_or_else(|| Fail(Msg::from_text("disk too small for the test allocations")))?;
        self.next_lba = end.next_multiple_of(8);
        Ok(lba)
    }

    /// Puts the channel back into the state every test starts from: bus
    /// master stopped, nIEN clear, IRQ 14 edge-triggered and unmasked,
    /// master selected and idle, no interrupt pending. Returns a reason if
    /// the channel was not idle (BSY or DRQ stuck) and had to be reset.
    pub fn recover(&mut self) -> Option<Msg> {
        self.ch.stop_bus_master();
        self.ch.set_devctl(DEVCTL_NORMAL);
        pic::set_irq14_level(false);
        pic::set_irq14_masked(false);
        let mut problem = None;
        if self.ch.select(Drive::Master).is_err() {
            let st = self.ch.alt_status();
            problem = Some(vmdma_guest::msg!(
                "channel left busy (status {st:#04x}); reset it"
            ));
            if self.ch.soft_reset().is_err() || self.ch.select(Drive::Master).is_err() {
                problem = Some(vmdma_guest::msg!(
                    "channel left busy (status {st:#04x}) and SRST did not recover it"
                ));
            }
        }
        let _ = self.ch.status();
        let _ = self.ch.clear_bm_status();
        self.ch.drain_irq();
        if self.ch.alt_status() & (status::BSY | status::DRQ) != 0 && problem.is_none() {
            problem = Some(Msg::from_text("channel not idle after the test"));
        }
        problem
    }
}
