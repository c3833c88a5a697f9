//! Transfer parameters (addressing mode, opcodes, START order, waits) and
//! the checks of a DMA outcome.

use vmdma_guest::ata::regs::{bm, cmd};
use vmdma_guest::ata::taskfile::{Drive, LBA28_LIMIT, TaskFile};
use vmdma_guest::msg;

use super::fail;
use crate::ide::dma::{Direction, DmaCommand, DmaOutcome, StartOrder, Wait};
use crate::suite::Fail;

/// Addressing mode of a transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// 28-bit commands (READ DMA, READ SECTORS, ...).
    Lba28,
    /// 48-bit commands (READ DMA EXT, ...).
    Lba48,
}

impl Mode {
    /// LBA28 when the range and count fit, else LBA48.
    pub fn for_range(lba: u64, sectors: u32) -> Self {
        if sectors <= 256 && lba.saturating_add(u64::from(sectors)) <= LBA28_LIMIT {
            Mode::Lba28
        } else {
            Mode::Lba48
        }
    }

    /// The task file of a read/write of `sectors` at `lba` on the master.
    pub fn taskfile(self, lba: u64, sectors: u32) -> Result<TaskFile, Fail> {
        let tf = match self {
            Mode::Lba28 => TaskFile::lba28(Drive::Master, lba, sectors, 0),
            Mode::Lba48 => TaskFile::lba48(Drive::Master, lba, sectors, 0),
        };
        tf.map_err(|e| fail(msg!("{e}")))
    }

    /// READ DMA / WRITE DMA opcode.
    pub fn dma_opcode(self, dir: Direction) -> u8 {
        match (self, dir) {
            (Mode::Lba28, Direction::ToMemory) => cmd::READ_DMA,
            (Mode::Lba28, Direction::FromMemory) => cmd::WRITE_DMA,
            (Mode::Lba48, Direction::ToMemory) => cmd::READ_DMA_EXT,
            (Mode::Lba48, Direction::FromMemory) => cmd::WRITE_DMA_EXT,
        }
    }

    /// READ SECTORS / WRITE SECTORS opcode.
    pub fn pio_opcode(self, write: bool) -> u8 {
        match (self, write) {
            (Mode::Lba28, false) => cmd::READ_SECTORS,
            (Mode::Lba28, true) => cmd::WRITE_SECTORS,
            (Mode::Lba48, false) => cmd::READ_SECTORS_EXT,
            (Mode::Lba48, true) => cmd::WRITE_SECTORS_EXT,
        }
    }
}

/// A DMA transfer's parameters.
#[derive(Clone, Copy, Debug)]
pub struct Xfer {
    /// First LBA.
    pub lba: u64,
    /// Sector count in the command.
    pub sectors: u32,
    /// Addressing mode.
    pub mode: Mode,
    /// START order.
    pub order: StartOrder,
    /// Completion detection.
    pub wait: Wait,
    /// Clear START right after setting it.
    pub stop_early: bool,
    /// Task-file write probe between command and START.
    pub probe: Option<(u16, u8)>,
}

impl Xfer {
    /// Defaults: mode chosen by range, Linux's order, BM status polling.
    pub fn new(lba: u64, sectors: u32) -> Self {
        Xfer {
            lba,
            sectors,
            mode: Mode::for_range(lba, sectors),
            order: StartOrder::AfterCommand,
            wait: Wait::BmStatus,
            stop_early: false,
            probe: None,
        }
    }

    /// The driver command for this transfer in direction `dir`.
    pub fn command(&self, dir: Direction) -> Result<DmaCommand, Fail> {
        Ok(DmaCommand {
            order: self.order,
            wait: self.wait,
            stop_early: self.stop_early,
            probe: self.probe,
            ..DmaCommand::new(
                self.mode.dma_opcode(dir),
                self.mode.taskfile(self.lba, self.sectors)?,
                dir,
            )
        })
    }
}

/// Fails unless `o` is a clean completion (Status 0x50-ish, BM INT only
/// after stop, interrupt raised).
pub fn expect_clean(what: &str, o: &DmaOutcome) -> Result<(), Fail> {
    if o.is_clean_success() {
        return Ok(());
    }
    Err(fail(msg!(
        "{what}: status {:#04x} error {:#04x}, BM status {:#04x} at completion / {:#04x} after stop, irq {}",
        o.status,
        o.error,
        o.bm_at_completion,
        o.bm_after_stop,
        o.irq_requested || o.irqs > 0
    )))
}

/// Fails unless BM status `v` (masked to ACTIVE|ERR|INT) equals `want`.
pub fn expect_bm(v: u8, want: u8, what: &str) -> Result<(), Fail> {
    let got = v & (bm::STATUS_ACTIVE | bm::STATUS_ERR | bm::STATUS_INT);
    if got != want {
        return Err(fail(msg!(
            "{what}: BM status {got:#04x} (raw {v:#04x}), want {want:#04x}"
        )));
    }
    Ok(())
}
