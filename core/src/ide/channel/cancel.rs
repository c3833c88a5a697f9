//! The guest and host actions that end an operation early or wait for
//! it: BMDMA stop (START 1 → 0), SRST, power-on reset, the bounded drain
//! they wait with, and `settle`, which applies a stop or reset deferred
//! until the request in flight completes. What each operation does when
//! it is cut short is its own (`dma`: a DMA waiting for START is dropped,
//! one waiting for bounce space fails; `pio`: the data phase stops).
//!
//! # Stop and reset while a request is in flight
//! Like QEMU's `ide_cancel_dma_sync`, a partial DMA must not reach the
//! disk or memory behind the guest's back, so the operation is completed,
//! not torn: BMDMA START 1 → 0 and the SRST rising edge first *drain* —
//! they wait for the request in flight with the backend's bounded
//! [`BlockDevice::wait`] and let the operation run to its end. If the
//! backend does not finish within its bound, the effect is *deferred*: the
//! operation keeps its memory and runs on as completions arrive through
//! `poll`, and the stop or reset is applied when it ends. Guest-visible
//! outcomes:
//!
//! | action | drained in time | deferred (until the operation ends) |
//! |---|---|---|
//! | START 1 → 0 | the command completes (Status, IRQ, BM INT), then ACTIVE clears | START reads 0 at once; ACTIVE stays set; then as on the left |
//! | SRST | reset: Status DRDY\|DSC, Error 0x01, signature, device 0 selected, BM ACTIVE clear, IRQ (BM INT) | both devices read BSY; then as on the left |
//!
//! A DMA waiting for bounce space has no request in flight; stop or reset
//! fails it (BM ERR, ABRT) since it cannot finish, then applies as above.

use crate::block::BlockDevice;
use crate::dma::BounceWait;

use super::super::IrqLine;
use super::super::bus_master::BusMaster;
use super::super::registers::{AtaError, DeviceControl, Status};
use super::super::stats::bump;
use super::super::taskfile::TaskFile;
use super::{Channel, DmaRun, Op, Unit};

/// Rounds a drain may take: one per block request of the longest command
/// (65536 sectors, or 8 blocks of TRIM ranges), with margin.
const DRAIN_ROUNDS: u32 = 1 << 17;

impl<'m, M, B, I, const IOV: usize, const PRD: usize> Channel<'m, M, B, I, IOV, PRD>
where
    M: crate::dma::DmaMemory + ?Sized,
    B: BlockDevice<'m>,
    I: IrqLine,
{
    /// Runs the outstanding operation towards its end, waiting for the
    /// backend (`BlockDevice::wait`, bounded by the backend). Returns true
    /// when no request is left in flight; false when the backend's bound ran
    /// out (the operation then goes on through `poll`). A DMA still waiting
    /// for bounce space after one more try is failed (BMDMA ERR + ABRT): it
    /// cannot make progress while the guest stops or resets it. A DMA
    /// command not yet started and an open PIO data phase are left alone.
    pub(crate) fn drain(&mut self) -> bool {
        for _ in 0..DRAIN_ROUNDS {
            match self.in_flight_unit() {
                Some(u) => {
                    let c = self
                        .units
                        .get_mut(u)
                        .drive
                        .as_mut()
                        .and_then(|d| d.block.wait());
                    match c {
                        Some(c) => self.deliver(c),
                        None => return false,
                    }
                }
                None => match self.op {
                    Op::Dma(DmaRun { .. }) => {
                        self.dma_advance();
                        if self.in_flight_unit().is_none() {
                            self.fail_bounce_wait();
                        }
                    }
                    _ => return true,
                },
            }
        }
        self.in_flight_unit().is_none()
    }

    /// BMDMA START went 1 → 0: drain, then clear ACTIVE (now or when the
    /// operation ends).
    pub(super) fn bm_stop(&mut self) {
        if self.drain() {
            self.bm.set_active(false);
            // The drain may have delivered the request a deferred SRST was
            // waiting for: the reset happens now, not at some later
            // completion.
            self.settle();
        } else {
            self.deferred.stop = true;
            bump(&mut self.stats.deferred_stops, 1);
        }
    }

    /// The SRST rising edge: both devices BSY, drain, reset (now or when
    /// the operation ends).
    pub(super) fn software_reset(&mut self) {
        for unit in self.units.both_mut() {
            if unit.drive.is_some() {
                unit.tf.status.insert(Status::BSY);
            }
        }
        self.drop_pending_dma();
        self.pio.stop();
        if self.drain() {
            self.reset_devices();
        } else {
            self.deferred.reset = true;
            bump(&mut self.stats.deferred_resets, 1);
        }
    }

    /// Applies a deferred stop or reset once no request is in flight.
    pub(crate) fn settle(&mut self) {
        if !(self.deferred.stop || self.deferred.reset) || self.in_flight_unit().is_some() {
            return;
        }
        // A DMA left without a request is waiting for bounce space.
        self.fail_bounce_wait();
        if self.deferred.reset {
            self.reset_devices();
        }
        if self.deferred.stop {
            self.deferred.stop = false;
            self.bm.set_active(false);
        }
    }

    /// The reset itself (nothing in flight): a DMA command still waiting
    /// for START is dropped, an open PIO phase ends, both devices' registers
    /// reset, the diagnostic runs (Error 0x01, Status DRDY|DSC, signature),
    /// BM ACTIVE clears and the IRQ is raised.
    ///
    /// Deviation: device 0 ends up selected (QEMU keeps its internal unit
    /// while the Device register reads 0xA0).
    fn reset_devices(&mut self) {
        self.deferred.reset = false;
        self.drop_pending_dma();
        self.pio.stop();
        for unit in self.units.both_mut() {
            let present = unit.drive.is_some();
            unit.tf = TaskFile::after_reset(present);
            unit.tf.error = AtaError::AMNF;
            if let Some(d) = unit.drive.as_mut() {
                d.soft_reset();
                if d.is_atapi() {
                    // ATAPI: the signature, and DRDY clear after SRST.
                    unit.tf.set_packet_signature();
                    unit.tf.status = Status::empty();
                }
            }
        }
        self.selected = Unit::Master;
        self.bm.set_active(false);
        self.raise_irq();
    }

    /// The power-on state again, keeping the disks and the PIO buffer:
    /// only once nothing is in flight (the bounded drain first). Returns
    /// false, without resetting, while a request is still in flight (what
    /// the drain already delivered stays delivered): its memory stays the
    /// request's until it completes.
    pub(crate) fn power_on_reset(&mut self) -> bool {
        if !self.drain() {
            return false;
        }
        self.settle();
        self.mem.cancel_retry(self.requester);
        // Nothing is in flight: the transfer's mappings end normally.
        // A DMA command still waiting for START ends here, counted.
        self.drop_pending_dma();
        self.op = Op::Idle;
        self.pio.stop();
        for unit in self.units.both_mut() {
            unit.tf = TaskFile::after_reset(unit.drive.is_some());
            if let Some(d) = unit.drive.as_mut() {
                d.soft_reset();
                if d.is_atapi() {
                    unit.tf.set_packet_signature();
                }
            }
        }
        self.selected = Unit::Master;
        self.control = DeviceControl::empty();
        self.bm = BusMaster::new();
        self.lower_irq();
        true
    }
}
