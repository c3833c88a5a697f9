//! The PIO data phase: the data port, and the per-block reads and writes of
//! READ/WRITE SECTORS and READ/WRITE MULTIPLE.
//!
//! A block is read from (or written to) the backend synchronously inside
//! the register access that needs it: the request borrows the channel's
//! PIO buffer, so it must finish before the access returns. (QEMU does
//! these asynchronously behind BSY; the guest sees the same register
//! sequence, minus the BSY phase.)

use crate::block::{BlockDevice, BlockError, BlockRequest, SECTOR_SIZE};
use crate::memory::VolatileSlice;
use crate::pci::AccessWidth;

use super::super::IrqLine;
use super::super::drive::Drive;
use super::super::error::IdeError;
use super::super::identify::MAX_MULTIPLE;
use super::super::registers::Status;
use super::super::stats::bump;
use super::super::taskfile::TaskFile;
use super::{Channel, Outcome, Unit};

/// The PIO buffer holds one DRQ block: up to the largest multiple count.
const PIO_BUFFER_LEN: usize = MAX_MULTIPLE as usize * SECTOR_SIZE;

/// How many foreign completions a synchronous wait skips before giving up.
const MAX_STRAYS: usize = 16;

/// The first sector and sector count of the next PIO block: at most
/// `per_block` of the `remaining` sectors, at the task file's address,
/// checked against the disk (block by block, as QEMU does).
fn block_target<B: BlockDevice>(
    tf: &TaskFile,
    drive: &Drive<B>,
    remaining: u32,
    per_block: u32,
) -> Result<(u64, u32), IdeError> {
    let n = remaining.min(per_block);
    let lba = tf.lba(drive.geometry).ok_or(IdeError::BadChsAddress)?;
    if !drive.range_ok(lba, u64::from(n)) {
        return Err(IdeError::OutOfRange {
            lba,
            count: u64::from(n),
        });
    }
    Ok((lba, n))
}

/// What the current data phase is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    Idle,
    /// IDENTIFY data, device to host.
    Identify(Unit),
    /// A READ SECTORS/MULTIPLE block, device to host.
    Read {
        unit: Unit,
        per_block: u32,
    },
    /// A WRITE SECTORS/MULTIPLE block, host to device.
    Write {
        unit: Unit,
        per_block: u32,
    },
}

/// The data-phase buffer and cursor.
pub(super) struct Pio {
    buf: [u8; PIO_BUFFER_LEN],
    pos: usize,
    end: usize,
    phase: Phase,
}

impl Pio {
    pub(super) const fn new() -> Self {
        Pio {
            buf: [0; PIO_BUFFER_LEN],
            pos: 0,
            end: 0,
            phase: Phase::Idle,
        }
    }

    /// Ends the data phase (the caller clears DRQ).
    pub(super) fn stop(&mut self) {
        self.phase = Phase::Idle;
        self.pos = 0;
        self.end = 0;
    }

    fn start(&mut self, phase: Phase, len: usize) {
        self.phase = phase;
        self.pos = 0;
        self.end = len.min(PIO_BUFFER_LEN);
    }

    fn unit(&self) -> Option<Unit> {
        match self.phase {
            Phase::Idle => None,
            Phase::Identify(u) | Phase::Read { unit: u, .. } | Phase::Write { unit: u, .. } => {
                Some(u)
            }
        }
    }

    fn device_to_host(&self) -> bool {
        matches!(self.phase, Phase::Identify(_) | Phase::Read { .. })
    }
}

/// Runs one request on `block` and waits for its completion.
fn block_io_sync<B: BlockDevice>(block: &mut B, req: BlockRequest<'_, '_>) -> Result<(), IdeError> {
    let token = block.submit(req).map_err(IdeError::Block)?;
    for _ in 0..MAX_STRAYS {
        match block.wait() {
            Some(c) if c.token == token => return c.result.map_err(IdeError::Block),
            Some(_) => continue,
            None => return Err(IdeError::LostCompletion),
        }
    }
    Err(IdeError::LostCompletion)
}

impl<M, B, I, const IOV: usize> Channel<'_, M, B, I, IOV>
where
    M: crate::dma::DmaMemory + ?Sized,
    B: BlockDevice,
    I: IrqLine,
{
    /// A 16- or 32-bit read of the data port (0 outside a device-to-host
    /// data phase or past the block end, without advancing).
    pub(crate) fn read_data(&mut self, width: AccessWidth) -> u32 {
        let u = self.selected;
        if !self.units.get(u).tf.status.contains(Status::DRQ)
            || !self.pio.device_to_host()
            || self.pio.unit() != Some(u)
        {
            return 0;
        }
        let Some(end) = self.pio.pos.checked_add(width.bytes()) else {
            return 0;
        };
        if end > self.pio.end {
            return 0;
        }
        let mut v = [0u8; 4];
        if let (Some(src), Some(dst)) = (
            self.pio.buf.get(self.pio.pos..end),
            v.get_mut(..width.bytes()),
        ) {
            dst.copy_from_slice(src);
        }
        self.pio.pos = end;
        if end >= self.pio.end {
            self.tf(u).status.remove(Status::DRQ);
            self.end_of_block(u);
        }
        u32::from_le_bytes(v)
    }

    /// A 16- or 32-bit write of the data port (ignored outside a
    /// host-to-device data phase or past the block end).
    pub(crate) fn write_data(&mut self, width: AccessWidth, value: u32) {
        let u = self.selected;
        if !self.units.get(u).tf.status.contains(Status::DRQ)
            || self.pio.device_to_host()
            || self.pio.unit() != Some(u)
        {
            return;
        }
        let Some(end) = self.pio.pos.checked_add(width.bytes()) else {
            return;
        };
        if end > self.pio.end {
            return;
        }
        let bytes = value.to_le_bytes();
        if let (Some(dst), Some(src)) = (
            self.pio.buf.get_mut(self.pio.pos..end),
            bytes.get(..width.bytes()),
        ) {
            dst.copy_from_slice(src);
        }
        self.pio.pos = end;
        if end >= self.pio.end {
            self.tf(u).status.remove(Status::DRQ);
            self.end_of_block(u);
        }
    }

    /// The guest moved the last byte of a block.
    fn end_of_block(&mut self, u: Unit) {
        match self.pio.phase {
            Phase::Idle => {}
            Phase::Identify(_) => self.pio.stop(),
            Phase::Read { per_block, .. } => {
                let outcome = self.pio_read_block(u, per_block);
                self.finish(u, outcome);
            }
            Phase::Write { per_block, .. } => {
                let outcome = self.pio_write_block(u, per_block);
                self.finish(u, outcome);
            }
        }
    }

    /// Starts a data-in phase of `len` bytes already in the buffer.
    pub(super) fn pio_start_in(&mut self, phase: Phase, len: usize) {
        self.pio.start(phase, len);
    }

    /// Copies `data` to the front of the PIO buffer.
    pub(super) fn pio_buffer(&mut self) -> &mut [u8; PIO_BUFFER_LEN] {
        &mut self.pio.buf
    }

    /// Reads the next block of a PIO read command and offers it (DRQ,
    /// IRQ); with nothing left, ends the command (Status 0x50, no IRQ).
    /// The address is checked block by block, as in QEMU.
    pub(super) fn pio_read_block(&mut self, u: Unit, per_block: u32) -> Outcome {
        let unit = self.units.get_mut(u);
        unit.tf.status = Status::DRDY | Status::DSC;
        unit.tf.error = super::super::registers::AtaError::empty();
        let remaining = unit.tf.nsector;
        if remaining == 0 {
            self.pio.stop();
            return Outcome::Started;
        }
        let Some(drive) = unit.drive.as_mut() else {
            return Outcome::Abort(IdeError::NoDevice);
        };
        let (lba, n) = match block_target(&unit.tf, drive, remaining, per_block) {
            Ok(t) => t,
            Err(e) => return Outcome::Abort(e),
        };
        let len = block_bytes(n);
        let Some(buf) = self.pio.buf.get_mut(..len) else {
            return Outcome::Abort(IdeError::Block(BlockError::Misaligned));
        };
        let iov = [VolatileSlice::from_mut_slice(buf)];
        if let Err(e) = block_io_sync(
            &mut drive.block,
            BlockRequest::Read {
                sector: lba,
                iov: &iov,
            },
        ) {
            return Outcome::Abort(e);
        }
        unit.tf
            .set_lba(lba.saturating_add(u64::from(n)), drive.geometry);
        unit.tf.nsector = remaining - n;
        unit.tf.status.insert(Status::DRQ);
        bump(&mut self.stats.bytes_read, len as u64);
        self.pio.start(Phase::Read { unit: u, per_block }, len);
        self.raise_irq();
        Outcome::Started
    }

    /// Opens the data-out phase for the next block of a PIO write command
    /// (DRQ, no IRQ).
    pub(super) fn pio_write_start(&mut self, u: Unit, per_block: u32) -> Outcome {
        let tf = self.tf(u);
        tf.status = Status::DRDY | Status::DSC | Status::DRQ;
        let n = tf.nsector.min(per_block);
        self.pio
            .start(Phase::Write { unit: u, per_block }, block_bytes(n));
        Outcome::Started
    }

    /// Writes the block the guest just filled, then opens the next one or
    /// ends the command; the IRQ follows every block, the last included.
    fn pio_write_block(&mut self, u: Unit, per_block: u32) -> Outcome {
        let len = self.pio.end;
        self.pio.stop();
        let unit = self.units.get_mut(u);
        let remaining = unit.tf.nsector;
        let Some(drive) = unit.drive.as_mut() else {
            return Outcome::Abort(IdeError::NoDevice);
        };
        let (lba, n) = match block_target(&unit.tf, drive, remaining, per_block) {
            Ok(t) => t,
            Err(e) => return Outcome::Abort(e),
        };
        let Some(buf) = self.pio.buf.get_mut(..len) else {
            return Outcome::Abort(IdeError::Block(BlockError::Misaligned));
        };
        let iov = [VolatileSlice::from_mut_slice(buf)];
        if let Err(e) = block_io_sync(
            &mut drive.block,
            BlockRequest::Write {
                sector: lba,
                iov: &iov,
            },
        ) {
            return Outcome::Abort(e);
        }
        if !drive.write_cache
            && let Err(e) = block_io_sync(&mut drive.block, BlockRequest::Flush)
        {
            return Outcome::Abort(e);
        }
        unit.tf
            .set_lba(lba.saturating_add(u64::from(n)), drive.geometry);
        unit.tf.nsector = remaining - n;
        unit.tf.status = Status::DRDY | Status::DSC;
        bump(&mut self.stats.bytes_written, len as u64);
        if unit.tf.nsector > 0 {
            self.pio_write_start(u, per_block);
        }
        self.raise_irq();
        Outcome::Started
    }
}

/// Bytes in `n` sectors of a PIO block (`n` is at most the multiple count).
fn block_bytes(n: u32) -> usize {
    usize::try_from(n)
        .unwrap_or(usize::MAX)
        .saturating_mul(SECTOR_SIZE)
        .min(PIO_BUFFER_LEN)
}
