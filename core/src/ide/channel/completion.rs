//! Completions that outlive a register access, routed to the operation
//! that waits for them: the host's `poll` (and a drain, see `cancel`)
//! hands each to the operation's own file (`dma_completed`,
//! `trim_completed`, `flush_completed`, the PIO block's), and
//! `retry_bounce` moves on a DMA that waited for bounce space.

use crate::block::{BlockDevice, Completion};
use crate::dma::BounceWait;

use super::super::IrqLine;
use super::super::error::IdeError;
use super::super::stats::bump;
use super::{Channel, DmaRun, Op, Unit};

/// Completions one `poll` call delivers at most (one request is in flight
/// at a time; the bound only caps a backend that keeps returning foreign
/// completions).
const POLL_ROUNDS: usize = 64;

impl<'m, M, B, I, const IOV: usize, const PRD: usize> Channel<'m, M, B, I, IOV, PRD>
where
    M: crate::dma::DmaMemory + ?Sized,
    B: BlockDevice<'m>,
    I: IrqLine,
{
    /// The unit whose backend has a request of this channel in flight.
    pub(super) fn in_flight_unit(&self) -> Option<Unit> {
        match &self.op {
            Op::Dma(DmaRun { cmd, xfer, .. }) if xfer.in_flight().is_some() => Some(cmd.unit),
            Op::Trim { run, .. } if run.token.is_some() => Some(run.cmd.unit),
            Op::Flush { unit, .. } => Some(*unit),
            Op::PioRead { block, .. } | Op::PioWrite { block, .. } => Some(block.unit),
            #[cfg(feature = "atapi")]
            Op::PacketRead { block, .. } => Some(block.after.unit),
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
        if any {
            self.settle();
        }
        any
    }

    /// Bounce space was freed: a transfer waiting for it tries again. A
    /// channel that no longer waits leaves the retry queue, so it cannot
    /// hold up the clients behind it.
    pub(crate) fn retry_bounce(&mut self) {
        if matches!(self.op, Op::Dma(DmaRun { .. })) && self.in_flight_unit().is_none() {
            self.dma_advance();
            self.settle();
        } else {
            self.mem.cancel_retry(self.requester);
        }
    }

    /// Hands a completion to the operation waiting for it.
    pub(super) fn deliver(&mut self, c: Completion) {
        match &mut self.op {
            Op::Dma(DmaRun { xfer, .. }) if xfer.in_flight() == Some(c.id()) => {
                self.dma_completed(c);
                return;
            }
            Op::Trim { run, .. } if run.token == Some(c.id()) => {
                self.trim_completed(c);
                return;
            }
            &mut Op::Flush { unit, token, then } if token == c.id() => {
                self.flush_completed(unit, then, c.result);
                return;
            }
            &mut Op::PioRead { block, token } if token == c.id() => {
                self.op = Op::Idle;
                let outcome = self.pio_read_done(block, c.result);
                self.finish(block.unit, outcome);
                return;
            }
            &mut Op::PioWrite { block, token } if token == c.id() => {
                self.op = Op::Idle;
                let outcome = self.pio_write_written(block, c.result);
                self.finish(block.unit, outcome);
                return;
            }
            #[cfg(feature = "atapi")]
            &mut Op::PacketRead { block, token } if token == c.id() => {
                self.op = Op::Idle;
                let outcome = self.packet_read_done(block, c.result);
                self.finish(block.after.unit, outcome);
                return;
            }
            _ => {}
        }
        // Not this channel's request (one of a transfer dropped in flight,
        // say): it is over, so bounce space kept for it can be freed.
        bump(&mut self.stats.stray_completions, 1);
        self.last_error = Some(IdeError::StrayCompletion);
        self.mem.reclaim(c.token);
    }
}
