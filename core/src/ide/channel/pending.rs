//! Work that outlives a register access: flushes, completions delivered by
//! the host's poll, bounce retries, and the drain that START 1 → 0 and SRST
//! perform.

use crate::block::{BlockDevice, BlockError, BlockRequest, Completion};

use super::super::IrqLine;
use super::super::error::IdeError;
use super::super::registers::Status;
use super::super::stats::bump;
use super::dma::{Failure, classify};
use super::{AfterFlush, Channel, Op, Outcome, Unit};

/// Completions one `poll` call delivers at most (one request is in flight
/// at a time, so one or two suffice; the bound only caps a backend that
/// keeps returning foreign completions).
const POLL_ROUNDS: usize = 64;
/// Rounds a drain may take: one per block request of the longest command
/// (65536 sectors, or 4 Mi TRIM ranges), with margin.
const DRAIN_ROUNDS: u32 = 1 << 23;
/// The errno reported when a flush is abandoned.
const EIO: i32 = 5;

impl<M, B, I, const IOV: usize> Channel<'_, M, B, I, IOV>
where
    M: crate::dma::DmaMemory + ?Sized,
    B: BlockDevice,
    I: IrqLine,
{
    /// Submits a flush for unit `u` (Status DRDY|BSY until it completes).
    pub(super) fn flush_start(&mut self, u: Unit, then: AfterFlush) -> Outcome {
        let unit = self.units.get_mut(u);
        unit.tf.status = Status::DRDY | Status::BSY;
        let Some(drive) = unit.drive.as_mut() else {
            return self.flush_done(u, then, Ok(()));
        };
        match drive.block.submit(BlockRequest::Flush) {
            Err(e) => self.flush_done(u, then, Err(e)),
            Ok(token) => match drive.block.poll() {
                Some(c) if c.token == token => self.flush_done(u, then, c.result),
                other => {
                    if other.is_some() {
                        bump(&mut self.stats.stray_completions, 1);
                    }
                    self.op = Op::Flush {
                        unit: u,
                        token,
                        then,
                    };
                    Outcome::Started
                }
            },
        }
    }

    /// A flush finished with `result`.
    fn flush_done(&mut self, u: Unit, then: AfterFlush, result: Result<(), BlockError>) -> Outcome {
        self.op = Op::Idle;
        match then {
            AfterFlush::Command => match result {
                Ok(()) => Outcome::Done { dsc: true },
                Err(e) => Outcome::Abort(IdeError::Block(e)),
            },
            AfterFlush::Dma { cmd, stay_active } => {
                let _ = u;
                match result {
                    Ok(()) => self.dma_finish(cmd, stay_active),
                    Err(e) => self.dma_fail(
                        cmd,
                        u64::from(cmd.count),
                        Failure::Device,
                        IdeError::Block(e),
                    ),
                }
                Outcome::Started
            }
        }
    }

    /// The unit whose backend has a request of this channel in flight.
    fn in_flight_unit(&self) -> Option<Unit> {
        match self.op {
            Op::Dma { cmd, .. } if self.xfer.as_ref().is_some_and(|x| x.in_flight().is_some()) => {
                Some(cmd.unit)
            }
            Op::Trim(run) if run.token.is_some() => Some(run.cmd.unit),
            Op::Flush { unit, .. } => Some(unit),
            _ => None,
        }
    }

    /// Collects finished requests from the backend and moves the channel
    /// on. Returns whether anything was delivered.
    pub(crate) fn poll(&mut self) -> bool {
        let mut any = false;
        for _ in 0..POLL_ROUNDS {
            let Some(u) = self.in_flight_unit() else {
                break;
            };
            let Some(c) = self
                .units
                .get_mut(u)
                .drive
                .as_mut()
                .and_then(|d| d.block.poll())
            else {
                break;
            };
            self.deliver(c);
            any = true;
        }
        any
    }

    /// Bounce space was freed: a transfer waiting for it tries again.
    pub(crate) fn retry_bounce(&mut self) {
        if matches!(self.op, Op::Dma { .. }) && self.in_flight_unit().is_none() {
            self.dma_advance();
        }
    }

    /// Hands a completion to the operation waiting for it.
    fn deliver(&mut self, c: Completion) {
        match self.op {
            Op::Dma { cmd, .. } => {
                if let Some(x) = self.xfer.as_mut()
                    && x.in_flight() == Some(c.token)
                {
                    match x.complete(c) {
                        Ok(()) => self.dma_advance(),
                        Err(e) => {
                            let done = x.bytes_done() / crate::block::SECTOR_SIZE as u64;
                            self.dma_fail(cmd, done, classify(e), IdeError::Transfer(e));
                        }
                    }
                    return;
                }
            }
            Op::Trim(run) if run.token == Some(c.token) => {
                self.trim_completed(run, c);
                return;
            }
            Op::Flush { unit, token, then } if token == c.token => {
                let outcome = self.flush_done(unit, then, c.result);
                self.finish(unit, outcome);
                return;
            }
            _ => {}
        }
        bump(&mut self.stats.stray_completions, 1);
        self.last_error = Some(IdeError::StrayCompletion);
    }

    /// Runs the outstanding operation to its end, waiting for the backend
    /// (`BlockDevice::wait`), so that no request is left in flight. A DMA
    /// still waiting for bounce space after one more try is failed (BMDMA
    /// ERR + ABRT): it cannot make progress while the guest stops it.
    /// A DMA command not yet started is left alone.
    pub(crate) fn drain(&mut self) {
        for _ in 0..DRAIN_ROUNDS {
            match self.op {
                Op::Idle | Op::DmaPending(_) => return,
                Op::Dma { cmd, .. } if self.in_flight_unit().is_none() => {
                    self.dma_advance();
                    if matches!(self.op, Op::Dma { .. }) && self.in_flight_unit().is_none() {
                        let done = self
                            .xfer
                            .as_ref()
                            .map_or(0, |x| x.bytes_done() / crate::block::SECTOR_SIZE as u64);
                        self.dma_fail(
                            cmd,
                            done,
                            Failure::HostBus,
                            IdeError::StoppedWaitingForBounce,
                        );
                    }
                }
                Op::Trim(run) if run.token.is_none() => self.trim_advance(),
                _ => {
                    let Some(u) = self.in_flight_unit() else {
                        return;
                    };
                    let c = self
                        .units
                        .get_mut(u)
                        .drive
                        .as_mut()
                        .and_then(|d| d.block.wait());
                    match c {
                        Some(c) => self.deliver(c),
                        None => self.abandon(IdeError::LostCompletion),
                    }
                }
            }
        }
        self.abandon(IdeError::LostCompletion);
    }

    /// Ends the outstanding operation with an error without waiting; only
    /// when the backend says nothing is in flight (or the drain bound ran
    /// out, which the request counts make impossible).
    fn abandon(&mut self, e: IdeError) {
        match self.op {
            Op::Dma { cmd, .. } => {
                let done = self
                    .xfer
                    .as_ref()
                    .map_or(0, |x| x.bytes_done() / crate::block::SECTOR_SIZE as u64);
                self.mem.cancel_retry(self.client);
                self.xfer = None;
                self.dma_fail(cmd, done, Failure::Device, e);
            }
            Op::Trim(run) => self.dma_fail(run.cmd, 0, Failure::Device, e),
            Op::Flush { unit, then, .. } => {
                let outcome = self.flush_done(unit, then, Err(BlockError::Io(EIO)));
                self.finish(unit, outcome);
                self.last_error = Some(e);
            }
            Op::Idle | Op::DmaPending(_) => {}
        }
    }
}
