//! FLUSH CACHE (and SET FEATURES 0x82, which flushes): a flush request to
//! the backend, and what follows it (`AfterFlush`): the command completes,
//! or, with the write cache off, the DMA write or PIO write block that
//! asked for a write-through flush completes.

use crate::block::{BlockDevice, BlockError, BlockRequest, RequestToken};

use super::super::IrqLine;
use super::super::error::IdeError;
use super::super::registers::Status;
use super::super::stats::bump;
use super::dma::Failure;
use super::{AfterFlush, Channel, Op, Outcome, Unit};

impl<'m, M, B, I, const IOV: usize, const PRD: usize> Channel<'m, M, B, I, IOV, PRD>
where
    M: crate::dma::DmaMemory + ?Sized,
    B: BlockDevice<'m>,
    I: IrqLine,
{
    /// Submits a flush for unit `u` (Status DRDY|BSY until it completes).
    pub(super) fn flush_start(&mut self, u: Unit, then: AfterFlush) -> Outcome {
        if !matches!(then, AfterFlush::Command) {
            bump(&mut self.stats.write_through_flushes, 1);
        }
        let unit = self.units.get_mut(u);
        unit.tf.status = Status::DRDY | Status::BSY;
        let Some(drive) = unit.drive.as_mut() else {
            return self.flush_done(then, Ok(()));
        };
        let token = RequestToken::new();
        let id = token.id();
        match drive.block.submit(token, BlockRequest::Flush) {
            Err(r) => self.flush_done(then, Err(r.error)),
            Ok(()) => match drive.block.poll() {
                Some(c) if c.id() == id => self.flush_done(then, c.result),
                other => {
                    if let Some(c) = other {
                        bump(&mut self.stats.stray_completions, 1);
                        self.mem.reclaim(c.token);
                    }
                    self.op = Op::Flush {
                        unit: u,
                        token: id,
                        then,
                    };
                    Outcome::Started
                }
            },
        }
    }

    /// The flush in flight for unit `u` completed with `result` (through
    /// `poll` or a drain): the operation ends.
    pub(super) fn flush_completed(
        &mut self,
        u: Unit,
        then: AfterFlush,
        result: Result<(), BlockError>,
    ) {
        let outcome = self.flush_done(then, result);
        self.finish(u, outcome);
    }

    /// A flush finished with `result`.
    fn flush_done(&mut self, then: AfterFlush, result: Result<(), BlockError>) -> Outcome {
        self.op = Op::Idle;
        match then {
            AfterFlush::Command => match result {
                Ok(()) => Outcome::Done { dsc: true },
                Err(e) => Outcome::Abort(IdeError::Block(e)),
            },
            AfterFlush::Dma { cmd, stay_active } => {
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
            AfterFlush::PioWrite(block) => match result {
                Ok(()) => self.pio_write_done(block),
                Err(e) => Outcome::Abort(IdeError::Block(e)),
            },
        }
    }
}
