//! The PIO data phase: the data port, and the per-block reads and writes of
//! READ/WRITE SECTORS and READ/WRITE MULTIPLE.
//!
//! Each block goes to the backend as one request on the channel's PIO
//! buffer. A backend that completes inside `submit` makes the block ready
//! within the register access that asked for it; one that completes later
//! gives the device a real BSY phase (Status DRDY|BSY, DRQ clear) until the
//! completion arrives through `poll`, as on QEMU. The buffer lives outside
//! the controller (see [`PioBuffer`](crate::ide::PioBuffer)), so it stays
//! valid while the request is in flight.

use crate::block::{BlockDevice, BlockError, BlockRequest, Leased, RequestToken, SECTOR_SIZE};
use crate::memory::VolatileSlice;
use crate::pci::AccessWidth;

use super::super::IrqLine;
use super::super::drive::Drive;
use super::super::error::IdeError;
use super::super::registers::{AtaError, Status};
use super::super::stats::bump;
use super::super::taskfile::TaskFile;
use super::{AfterFlush, Channel, Op, Outcome, PioBlock, Unit};

/// The first sector and sector count of the next PIO block: at most
/// `per_block` of the `remaining` sectors, at the task file's address,
/// checked against the disk (block by block, as QEMU does).
fn block_target<'m, B: BlockDevice<'m>>(
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
    /// An ATAPI command packet, host to device.
    #[cfg(feature = "atapi")]
    Packet {
        unit: Unit,
        dma: bool,
    },
    /// An ATAPI data block, device to host.
    #[cfg(feature = "atapi")]
    PacketIn(super::packet::DataIn),
}

/// The data-phase buffer and cursor.
pub(super) struct Pio<'m> {
    pub(super) buf: VolatileSlice<'m>,
    pub(super) pos: usize,
    pub(super) end: usize,
    pub(super) phase: Phase,
}

impl<'m> Pio<'m> {
    pub(super) const fn new() -> Self {
        Pio {
            buf: VolatileSlice::empty(),
            pos: 0,
            end: 0,
            phase: Phase::Idle,
        }
    }

    /// Uses `buf` (a claimed PIO buffer) from now on.
    pub(super) fn set_buffer(&mut self, buf: VolatileSlice<'m>) {
        self.buf = buf;
        self.stop();
    }

    /// Ends the data phase (the caller clears DRQ).
    pub(super) fn stop(&mut self) {
        self.phase = Phase::Idle;
        self.pos = 0;
        self.end = 0;
    }

    pub(super) fn start(&mut self, phase: Phase, len: usize) {
        self.start_range(phase, 0, len);
    }

    /// A data phase over bytes `start..end` of the buffer (clamped to it).
    pub(super) fn start_range(&mut self, phase: Phase, start: usize, end: usize) {
        self.phase = phase;
        self.end = end.min(self.buf.len());
        self.pos = start.min(self.end);
    }

    fn unit(&self) -> Option<Unit> {
        match self.phase {
            Phase::Idle => None,
            Phase::Identify(u) | Phase::Read { unit: u, .. } | Phase::Write { unit: u, .. } => {
                Some(u)
            }
            #[cfg(feature = "atapi")]
            Phase::Packet { unit, .. } => Some(unit),
            #[cfg(feature = "atapi")]
            Phase::PacketIn(d) => Some(d.unit),
        }
    }

    /// The unit whose data phase is open.
    #[cfg(feature = "atapi")]
    pub(super) fn phase_unit(&self) -> Option<Unit> {
        self.unit()
    }

    /// The buffer.
    #[cfg(feature = "atapi")]
    pub(super) fn buffer(&self) -> &VolatileSlice<'m> {
        &self.buf
    }

    fn device_to_host(&self) -> bool {
        #[cfg(feature = "atapi")]
        if matches!(self.phase, Phase::PacketIn(_)) {
            return true;
        }
        matches!(self.phase, Phase::Identify(_) | Phase::Read { .. })
    }

    /// The first `len` bytes of the buffer, for a block request.
    fn block(&self, len: usize) -> Option<VolatileSlice<'m>> {
        self.buf.subslice(0, len)
    }
}

impl<'m, M, B, I, const IOV: usize, const PRD: usize> Channel<'m, M, B, I, IOV, PRD>
where
    M: crate::dma::DmaMemory + ?Sized,
    B: BlockDevice<'m>,
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
        // An access past the end of the block reads 0 and moves nothing,
        // except that one access may finish a block of odd length (an
        // ATAPI transfer's last block).
        let avail = self.pio.end.saturating_sub(self.pio.pos);
        let n = if width.bytes() <= avail {
            width.bytes()
        } else if avail % 2 == 1 {
            avail
        } else {
            return 0;
        };
        let end = self.pio.pos + n;
        let mut v = [0u8; 4];
        if let Some(dst) = v.get_mut(..n) {
            self.pio.buf.copy_to(self.pio.pos, dst);
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
        if let Some(src) = bytes.get(..width.bytes()) {
            self.pio.buf.copy_from(self.pio.pos, src);
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
                self.pio.stop();
                let outcome = self.pio_read_block(u, per_block);
                self.finish(u, outcome);
            }
            Phase::Write { per_block, .. } => {
                let outcome = self.pio_write_block(u, per_block);
                self.finish(u, outcome);
            }
            #[cfg(feature = "atapi")]
            Phase::Packet { dma, .. } => {
                self.pio.stop();
                let outcome = self.packet_received(u, dma);
                self.finish(u, outcome);
            }
            #[cfg(feature = "atapi")]
            Phase::PacketIn(d) => {
                let at = self.pio.end;
                self.pio.stop();
                let outcome = self.packet_next_block(d, at);
                self.finish(u, outcome);
            }
        }
    }

    /// Starts a data-in phase of `len` bytes already in the buffer.
    pub(super) fn pio_start_in(&mut self, phase: Phase, len: usize) {
        self.pio.start(phase, len);
    }

    /// Copies `data` to the front of the PIO buffer; false if it does not
    /// fit (no buffer).
    pub(super) fn pio_fill(&mut self, data: &[u8]) -> bool {
        self.pio.buf.copy_from(0, data) == data.len()
    }

    /// Reads the next block of a PIO read command and offers it (DRQ,
    /// IRQ), now or when the backend completes (BSY meanwhile); with
    /// nothing left, ends the command (Status 0x50, no IRQ). The address is
    /// checked block by block, as in QEMU.
    pub(super) fn pio_read_block(&mut self, u: Unit, per_block: u32) -> Outcome {
        let unit = self.units.get_mut(u);
        unit.tf.status = Status::DRDY | Status::DSC;
        unit.tf.error = AtaError::empty();
        let remaining = unit.tf.nsector;
        if remaining == 0 {
            self.pio.stop();
            return Outcome::Started;
        }
        self.pio_submit_block(u, per_block, PioDir::Read)
    }

    /// A PIO read block arrived in the buffer: offer it (DRQ, IRQ).
    pub(super) fn pio_read_done(&mut self, b: PioBlock, result: Result<(), BlockError>) -> Outcome {
        if let Err(e) = result {
            return Outcome::Abort(IdeError::Block(e));
        }
        let unit = self.units.get_mut(b.unit);
        let Some(drive) = unit.drive.as_ref() else {
            return Outcome::Abort(IdeError::NoDevice);
        };
        unit.tf
            .set_lba(b.lba.saturating_add(u64::from(b.count)), drive.geometry);
        unit.tf.nsector = unit.tf.nsector.saturating_sub(b.count);
        unit.tf.status = Status::DRDY | Status::DSC | Status::DRQ;
        let len = block_bytes(b.count);
        bump(&mut self.stats.bytes_read, len as u64);
        self.pio.start(
            Phase::Read {
                unit: b.unit,
                per_block: b.per_block,
            },
            len,
        );
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

    /// Writes the block the guest just filled (BSY until the backend
    /// completes, if it completes later).
    fn pio_write_block(&mut self, u: Unit, per_block: u32) -> Outcome {
        let len = self.pio.end;
        self.pio.stop();
        self.pio_submit_block(u, per_block, PioDir::Write { len })
    }

    /// The step PIO reads and writes share: checks the next block's
    /// address, hands the PIO buffer to the backend and finishes the block
    /// now if the backend completed it inline, or leaves the channel busy
    /// until its completion.
    pub(super) fn pio_submit_block(&mut self, u: Unit, per_block: u32, dir: PioDir) -> Outcome {
        let unit = self.units.get_mut(u);
        let remaining = unit.tf.nsector;
        let Some(drive) = unit.drive.as_mut() else {
            return Outcome::Abort(IdeError::NoDevice);
        };
        let (lba, count) = match block_target(&unit.tf, drive, remaining, per_block) {
            Ok(t) => t,
            Err(e) => return Outcome::Abort(e),
        };
        let len = match dir {
            PioDir::Read => block_bytes(count),
            PioDir::Write { len } => len,
        };
        let Some(buf) = self.pio.block(len) else {
            return Outcome::Abort(IdeError::NoPioBuffer);
        };
        let token = RequestToken::new();
        let id = token.id();
        let iov = [Leased::new(buf, &token)];
        let block = PioBlock {
            unit: u,
            per_block,
            lba,
            count,
        };
        let request = match dir {
            PioDir::Read => BlockRequest::Read {
                sector: lba,
                iov: &iov,
            },
            PioDir::Write { .. } => BlockRequest::Write {
                sector: lba,
                iov: &iov,
            },
        };
        let polled = match drive.block.submit(token, request) {
            Err(r) if r.token.id() == id => return Outcome::Abort(IdeError::Block(r.error)),
            // Refused with some other token: the backend may still hold
            // this block's token and the PIO buffer with it, so the block
            // stays in flight until its own token comes back.
            Err(r) => {
                self.mem.reclaim(r.token);
                None
            }
            Ok(()) => drive.block.poll(),
        };
        let token = id;
        match (polled, dir) {
            (Some(c), PioDir::Read) if c.id() == token => self.pio_read_done(block, c.result),
            (Some(c), PioDir::Write { .. }) if c.id() == token => {
                self.pio_write_written(block, c.result)
            }
            (other, _) => {
                if let Some(c) = other {
                    bump(&mut self.stats.stray_completions, 1);
                    self.mem.reclaim(c.token);
                }
                unit.tf.status = Status::DRDY | Status::BSY;
                self.op = match dir {
                    PioDir::Read => Op::PioRead { block, token },
                    PioDir::Write { .. } => Op::PioWrite { block, token },
                };
                Outcome::Started
            }
        }
    }

    /// A PIO write block reached the backend: flush first if the write
    /// cache is off, then the block is done.
    pub(super) fn pio_write_written(
        &mut self,
        b: PioBlock,
        result: Result<(), BlockError>,
    ) -> Outcome {
        if let Err(e) = result {
            return Outcome::Abort(IdeError::Block(e));
        }
        let write_through = self.drive(b.unit).is_some_and(|d| !d.write_cache);
        if write_through {
            return self.flush_start(b.unit, AfterFlush::PioWrite(b));
        }
        self.pio_write_done(b)
    }

    /// A PIO write block is done: open the next one or end the command;
    /// the IRQ follows every block, the last included.
    pub(super) fn pio_write_done(&mut self, b: PioBlock) -> Outcome {
        let unit = self.units.get_mut(b.unit);
        let Some(drive) = unit.drive.as_ref() else {
            return Outcome::Abort(IdeError::NoDevice);
        };
        unit.tf
            .set_lba(b.lba.saturating_add(u64::from(b.count)), drive.geometry);
        unit.tf.nsector = unit.tf.nsector.saturating_sub(b.count);
        unit.tf.status = Status::DRDY | Status::DSC;
        bump(&mut self.stats.bytes_written, block_bytes(b.count) as u64);
        if unit.tf.nsector > 0 {
            self.pio_write_start(b.unit, b.per_block);
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
}

/// Which way a PIO block moves.
#[derive(Clone, Copy)]
pub(super) enum PioDir {
    /// Disk → PIO buffer → guest.
    Read,
    /// Guest → PIO buffer (`len` bytes filled) → disk.
    Write { len: usize },
}
