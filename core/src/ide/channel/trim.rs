//! DATA SET MANAGEMENT / TRIM: range entries read from the PRD buffers and
//! passed to the backend's discard, one request at a time.
//!
//! Each 8-byte little-endian entry holds the LBA in bits 47:0 and the
//! sector count in bits 63:48; entries with count 0 are skipped, an entry
//! past the end of the disk aborts the command (QEMU: `-EINVAL` → ABRT).
//! Entries are read through guest memory (copies, not mappings) and may
//! straddle PRD boundaries. A backend that does not support discard
//! (`BlockError::Unsupported`) is treated as one that ignores it, like
//! QEMU's `discard=ignore`. The loop is bounded by the number of entries.
//!
//! TRIM is a DMA command: it waits for the bus master (`dma_accept`), walks
//! the PRD table and ends (`dma_complete`, `dma_fail`) as READ/WRITE DMA
//! do; its start (`trim_accept`, `trim_start`), its discards and their
//! completion are here.

use crate::block::{BlockDevice, BlockError, BlockRequest, Completion, RequestToken};
use crate::dma::{SgEntry, SgList};
use crate::memory::{DeviceId, MemError};

use super::super::IrqLine;
use super::super::command::feature;
use super::super::error::IdeError;
use super::super::identify::MAX_DSM_BLOCKS;
use super::super::stats::bump;
use super::dma::Failure;
use super::{Channel, DmaCmd, DmaKind, Op, Outcome, TrimRun, Unit};

/// Bytes per range entry.
const ENTRY: u64 = 8;

/// Reads `buf.len()` bytes of the SG stream at the cursor and advances it.
fn read_sg(
    mem: &(impl crate::dma::DmaMemory + ?Sized),
    requester: DeviceId,
    sg: &[SgEntry],
    index: &mut usize,
    offset: &mut u64,
    buf: &mut [u8],
) -> Result<(), MemError> {
    let mut done = 0usize;
    // Every round either copies at least one byte or moves to the next
    // entry, so it ends within `buf.len() + sg.len()` rounds.
    for _ in 0..=(buf.len() + sg.len()) {
        if done == buf.len() {
            return Ok(());
        }
        let Some(e) = sg.get(*index) else {
            break;
        };
        let left = e.len.saturating_sub(*offset);
        if left == 0 {
            *index += 1;
            *offset = 0;
            continue;
        }
        let n = usize::try_from(left)
            .unwrap_or(usize::MAX)
            .min(buf.len() - done);
        let addr = e
            .addr
            .checked_add(*offset)
            .ok_or(MemError::Overflow { addr: e.addr })?;
        let dst = buf
            .get_mut(done..done + n)
            .ok_or(MemError::Overflow { addr })?;
        mem.read(requester, addr, dst)?;
        done += n;
        *offset += n as u64;
    }
    if done == buf.len() {
        Ok(())
    } else {
        Err(MemError::ZeroLength)
    }
}

/// Where a TRIM round stopped.
enum Stop {
    Wait,
    Done,
    Failed(Failure, IdeError),
}

impl<'m, M, B, I, const IOV: usize, const PRD: usize> Channel<'m, M, B, I, IOV, PRD>
where
    M: crate::dma::DmaMemory + ?Sized,
    B: BlockDevice<'m>,
    I: IrqLine,
{
    /// DATA SET MANAGEMENT was issued on unit `u`: TRIM only, with at most
    /// `MAX_DSM_BLOCKS` blocks of ranges; then it waits for the bus master
    /// like any DMA command.
    pub(super) fn trim_accept(&mut self, u: Unit, opcode: u8, bus_master: bool) -> Outcome {
        let tf = self.tf(u);
        if tf.feature != feature::DSM_TRIM {
            return Outcome::Abort(IdeError::Unsupported {
                opcode,
                feature: tf.feature,
            });
        }
        // The count of 512-byte blocks of ranges is the low byte of Sector
        // Count, as in QEMU (whose ide-test writes it once, leaving the
        // reset signature's 1 in the HOB byte); ACS-2 makes it a 16-bit
        // count, which only matters above 255 blocks, far beyond the 8
        // IDENTIFY word 105 allows. Unlike the data commands, 0 means none.
        tf.lba48 = true;
        tf.nsector &= 0xFF;
        if tf.nsector > u32::from(MAX_DSM_BLOCKS) {
            return Outcome::Abort(IdeError::BadParameter { opcode });
        }
        self.dma_accept(u, DmaKind::Trim, bus_master)
    }

    /// The TRIM `cmd` starts now that the bus master is active: its range
    /// entries are the bytes its PRDs describe.
    pub(super) fn trim_start(&mut self, cmd: DmaCmd, bus_master: bool) {
        if cmd.count == 0 {
            // No blocks of ranges: done at once (a data command never
            // asks for 0 sectors).
            self.dma_complete(cmd, false);
            return;
        }
        if !bus_master {
            self.dma_without_bus_master(cmd, Ok(()));
            return;
        }
        // Built in place and filled there (see `dma_start`).
        self.op = Op::Trim {
            run: TrimRun {
                cmd,
                stay_active: false,
                offset: 0,
                sg_index: 0,
                sg_offset: 0,
                token: None,
            },
            sg: SgList::new(),
        };
        let Some(stay) = self.dma_walk(cmd) else {
            return;
        };
        if let Op::Trim { run, .. } = &mut self.op {
            run.stay_active = stay;
        }
        self.trim_advance();
    }

    /// Issues discards until one is in flight or the ranges end.
    pub(super) fn trim_advance(&mut self) {
        let Op::Trim { run, .. } = self.op else {
            return;
        };
        match self.trim_rounds() {
            Stop::Wait => {}
            Stop::Done => self.dma_complete(run.cmd, run.stay_active),
            Stop::Failed(f, e) => self.dma_fail(run.cmd, 0, f, e),
        }
    }

    /// Moves the TRIM's cursor (in place) over the range entries.
    fn trim_rounds(&mut self) -> Stop {
        let Op::Trim { run, sg } = &mut self.op else {
            return Stop::Wait;
        };
        if run.token.is_some() {
            return Stop::Wait;
        }
        let total = sg.total();
        let Some(drive) = self.units.get_mut(run.cmd.unit).drive.as_mut() else {
            return Stop::Failed(Failure::Device, IdeError::NoDevice);
        };
        let entries = total / ENTRY;
        for _ in 0..=entries {
            if run.offset + ENTRY > total {
                return Stop::Done;
            }
            let mut raw = [0u8; 8];
            if let Err(e) = read_sg(
                self.mem,
                self.requester,
                sg.entries(),
                &mut run.sg_index,
                &mut run.sg_offset,
                &mut raw,
            ) {
                return Stop::Failed(Failure::HostBus, IdeError::Fetch(e));
            }
            run.offset += ENTRY;
            let entry = u64::from_le_bytes(raw);
            let lba = entry & 0xFFFF_FFFF_FFFF;
            let count = entry >> 48;
            if count == 0 {
                continue;
            }
            if !drive.range_ok(lba, count) {
                return Stop::Failed(Failure::Device, IdeError::OutOfRange { lba, count });
            }
            bump(&mut self.stats.trim_ranges, 1);
            let token = RequestToken::new();
            let id = token.id();
            match drive
                .block
                .submit(token, BlockRequest::Discard { sector: lba, count })
                .map_err(|r| r.error)
            {
                Err(BlockError::Unsupported) => continue,
                Err(e) => return Stop::Failed(Failure::Device, IdeError::Block(e)),
                Ok(()) => match drive.block.poll() {
                    Some(c) if c.id() == id => match c.result {
                        Ok(()) | Err(BlockError::Unsupported) => continue,
                        Err(e) => return Stop::Failed(Failure::Device, IdeError::Block(e)),
                    },
                    Some(c) => {
                        bump(&mut self.stats.stray_completions, 1);
                        self.mem.reclaim(c.token);
                        run.token = Some(id);
                        return Stop::Wait;
                    }
                    None => {
                        run.token = Some(id);
                        return Stop::Wait;
                    }
                },
            }
        }
        Stop::Done
    }

    /// The discard in flight completed: on to the next range, or fail.
    pub(super) fn trim_completed(&mut self, c: Completion) {
        let Op::Trim { run, .. } = &mut self.op else {
            return;
        };
        run.token = None;
        let cmd = run.cmd;
        match c.result {
            Ok(()) | Err(BlockError::Unsupported) => self.trim_advance(),
            Err(e) => self.dma_fail(cmd, 0, Failure::Device, IdeError::Block(e)),
        }
    }
}
