//! Bus-master DMA: accepting a DMA command, the BMDMA register edges, the
//! PRD walk, the SG transfer, and the three PRD-length outcomes. The
//! transfer is READ/WRITE DMA's; TRIM (`trim`) starts on its own and
//! shares the accept, the PRD walk and the end (`dma_complete`,
//! `dma_finish`, `dma_fail`) with it.
//!
//! Flow (QEMU's `ide_dma_cb` in one pass, since vmdma prepares the whole
//! transfer at once):
//! 1. The command sets Status DRDY|DSC|DRQ and waits (`Op::DmaPending`)
//!    until ACTIVE is set; START before or after the command both work.
//! 2. Kick: the PRD table is walked (bounded) into the SG list, limited to
//!    the command's bytes. Fewer bytes than needed: the short-PRD outcome
//!    (Status 0x50, no IRQ, ACTIVE cleared, no data). Then the range check
//!    (ABRT + IRQ, ACTIVE cleared).
//! 3. The data moves through [`SgTransfer`]: one vectored request when the
//!    mappings fit the I/O vector, more only when they do not (or when
//!    bounce space runs short).
//! 4. Done: Status 0x50, IRQ (BM INT), ACTIVE stays set only if the PRDs
//!    described more than needed (the long outcome).
//!
//! Deviations (guest-visible, documented in the module docs): a DMA access
//! that reaches no memory (a hole, a refused MMIO access, an IOMMU fault)
//! and an unreadable PRD end the command with BMDMA Status ERR|INT and ATA
//! ABRT + IRQ, as a PCI master abort would on a real PIIX; QEMU instead
//! completes into an empty address space.
//!
//! DMA while PCI bus mastering is off is no master abort: with Command bit
//! 2 clear the function may not start bus cycles at all (PCI Local Bus 3.0,
//! §6.2.2), so nothing is fetched, read or written. The outcome follows
//! QEMU (its `ide-test` case `bmdma/no_busmaster` pins it), whose disabled
//! bus-master address space reads as zeros: a zeroed PRD table is 512
//! entries of 64 KiB without EOT, more than any command moves, so the
//! command ends like one with a long PRD table (Status 0x50, IRQ, BMDMA
//! Status ACTIVE|INT; INT alone for a 32 MiB command). Unlike QEMU, no
//! data reaches the disk (QEMU writes the zeros it read) and the command
//! is counted in [`IdeStats::dma_without_bus_master`].
//!
//! [`IdeStats::dma_without_bus_master`]: crate::ide::IdeStats::dma_without_bus_master

use crate::block::{BlockDevice, Completion, SECTOR_SIZE};
use crate::dma::{BlockDir, DmaMemory, Progress, SgList, SgTransfer, TransferError};
use crate::pci::AccessWidth;

use super::super::IrqLine;
use super::super::bus_master::StartEdge;
use super::super::error::IdeError;
use super::super::prd::{self, WalkError};
use super::super::registers::{BmStatus, Status};
use super::super::stats::bump;
use super::{AfterFlush, Channel, DmaCmd, DmaKind, DmaRun, Op, Outcome, Unit};

const SECTOR: u64 = SECTOR_SIZE as u64;
/// Bytes an all-zero PRD entry describes (a count of 0 means 64 KiB).
const ZERO_PRD_BYTES: u64 = 64 * 1024;

/// How a failed DMA command shows on the BMDMA Status register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Failure {
    /// ATA ABRT only (range, read-only disk, backend I/O error).
    Device,
    /// ATA ABRT and BMDMA ERR (no memory behind an address): a PCI master
    /// abort.
    HostBus,
}

/// Where a round of [`Channel::dma_advance`] stopped.
enum Stop {
    /// A request is in flight or the transfer waits for bounce space.
    Wait,
    /// All data moved.
    Done,
    /// The transfer failed.
    Failed(Failure, IdeError),
}

/// The outcome class of a transfer error.
pub(super) fn classify(e: TransferError) -> Failure {
    match e {
        TransferError::Block(_) => Failure::Device,
        TransferError::Memory(_)
        | TransferError::Unmappable
        | TransferError::Retry(_)
        | TransferError::Contended => Failure::HostBus,
        _ => Failure::Device,
    }
}

impl<'m, M, B, I, const IOV: usize, const PRD: usize> Channel<'m, M, B, I, IOV, PRD>
where
    M: DmaMemory + ?Sized,
    B: BlockDevice<'m>,
    I: IrqLine,
{
    /// A BMDMA register read (offset 0..8 of this channel's half).
    pub(crate) fn bm_read(&self, offset: u16, width: AccessWidth) -> u32 {
        self.bm.read(offset, width)
    }

    /// A BMDMA register write; START edges start or stop the engine.
    pub(crate) fn bm_write(
        &mut self,
        offset: u16,
        width: AccessWidth,
        value: u32,
        bus_master: bool,
    ) {
        match self.bm.write(offset, width, value) {
            Some(StartEdge::Rising) => {
                self.bm.cursor = self.bm.table;
                // The guest restarted the engine: a stop still waiting for
                // the old operation no longer applies.
                self.deferred.stop = false;
                if !self.bm.active() {
                    self.bm.set_active(true);
                    if matches!(self.op, Op::DmaPending(_)) {
                        self.dma_kick(bus_master);
                    }
                }
            }
            Some(StartEdge::Falling) => {
                // Like QEMU's ide_cancel_dma_sync: a partial DMA must not
                // reach the disk, so the running transfer is completed
                // (drained), then ACTIVE is cleared (see `cancel`).
                self.bm_stop();
            }
            None => {}
        }
    }

    /// A DMA command was issued: wait for the bus master (DRQ), or start at
    /// once if it is already active.
    pub(super) fn dma_accept(&mut self, u: Unit, kind: DmaKind, bus_master: bool) -> Outcome {
        let unit = self.units.get_mut(u);
        let Some(drive) = unit.drive.as_ref() else {
            return Outcome::Abort(IdeError::NoDevice);
        };
        unit.tf.status = Status::DRDY | Status::DSC | Status::DRQ;
        let cmd = DmaCmd {
            unit: u,
            kind,
            lba: unit.tf.lba(drive.geometry),
            count: unit.tf.nsector,
        };
        self.op = Op::DmaPending(cmd);
        if self.bm.active() {
            self.dma_kick(bus_master);
        }
        Outcome::Started
    }

    /// Starts the pending DMA command now that the bus master is active:
    /// TRIM in `trim`, READ/WRITE DMA here.
    pub(super) fn dma_kick(&mut self, bus_master: bool) {
        let Op::DmaPending(cmd) = self.op else {
            return;
        };
        self.op = Op::Idle;
        match cmd.kind {
            DmaKind::Trim => self.trim_start(cmd, bus_master),
            #[cfg(feature = "atapi")]
            DmaKind::CdReply => self.packet_reply_dma(cmd, bus_master),
            _ => self.dma_start(cmd, bus_master),
        }
    }

    /// A READ/WRITE DMA `cmd` starts: its PRD walk, its range check, then
    /// the transfer.
    fn dma_start(&mut self, cmd: DmaCmd, bus_master: bool) {
        if !bus_master {
            self.dma_without_bus_master(cmd, self.dma_sectors(cmd).map(drop));
            return;
        }
        let dir = if cmd.kind == DmaKind::Write {
            BlockDir::Write
        } else {
            BlockDir::Read
        };
        let lba = self.dma_sectors(cmd);
        // Built where it lives, and filled there: the SG list and the
        // transfer are tens of KiB at the runner's sizes, not to be built
        // on the stack and moved in.
        self.op = Op::Dma(DmaRun {
            cmd,
            stay_active: false,
            sg: SgList::new(),
            xfer: SgTransfer::of_sectors(
                self.requester,
                dir,
                *lba.as_ref().unwrap_or(&0),
                u64::from(cmd.count),
            ),
        });
        let Some(stay) = self.dma_walk(cmd) else {
            return;
        };
        // The PRD outcome first, then the range (as QEMU orders them).
        if let Err(e) = lba {
            self.op = Op::Idle;
            self.dma_fail(cmd, 0, Failure::Device, e);
            return;
        }
        if let Op::Dma(DmaRun { stay_active, .. }) = &mut self.op {
            *stay_active = stay;
        }
        self.dma_advance();
    }

    /// The PRD walk every DMA command (TRIM too) starts with: the PRD table
    /// into the SG list of the operation just put in `self.op` (`Op::Dma`
    /// or `Op::Trim`), in place, limited to the command's bytes; the
    /// operation is taken down again if the command ends here. Returns whether the PRDs
    /// described more than that (ACTIVE stays set at the end), or `None`
    /// when the command already ended: an unreadable or oversized table
    /// (BMDMA ERR, ABRT), or a short one (no data, no error, no IRQ).
    pub(super) fn dma_walk(&mut self, cmd: DmaCmd) -> Option<bool> {
        let limit = cmd.bytes();
        let (Op::Dma(DmaRun { sg, .. }) | Op::Trim { sg, .. }) = &mut self.op else {
            return None;
        };
        #[cfg(feature = "snapshot")]
        {
            self.prd_start = self.bm.cursor;
        }
        let walked = prd::walk(
            self.mem,
            self.requester,
            self.bm.table,
            &mut self.bm.cursor,
            limit,
            sg,
        );
        let total = sg.total();
        if walked.is_err() || total < limit {
            // The command ends here, before its operation started.
            self.op = Op::Idle;
        }
        let described = match walked {
            Ok(d) => d,
            Err(WalkError::Fetch(e)) => {
                self.dma_fail(cmd, 0, Failure::HostBus, IdeError::Fetch(e));
                return None;
            }
            Err(WalkError::SgFull) => {
                self.dma_fail(
                    cmd,
                    0,
                    Failure::HostBus,
                    IdeError::Transfer(TransferError::Unmappable),
                );
                return None;
            }
        };
        if total < limit {
            // Short PRD table: no data, no error, no IRQ; the guest times
            // out (QEMU since 2.3, the CVE-2014-9718 fix).
            self.tf(cmd.unit).status = Status::DRDY | Status::DSC;
            self.bm.set_active(false);
            bump(&mut self.stats.short_prd_tables, 1);
            bump(&mut self.stats.dma_ended, 1);
            return None;
        }
        Some(described > limit)
    }

    /// The first sector of a read or write `cmd`, once its address and
    /// range are checked.
    fn dma_sectors(&self, cmd: DmaCmd) -> Result<u64, IdeError> {
        let lba = cmd.lba.ok_or(IdeError::BadChsAddress)?;
        let in_range = self
            .units
            .get(cmd.unit)
            .drive
            .as_ref()
            .is_some_and(|d| d.range_ok(lba, u64::from(cmd.count)));
        if in_range {
            Ok(lba)
        } else {
            Err(IdeError::OutOfRange {
                lba,
                count: u64::from(cmd.count),
            })
        }
    }

    /// A DMA command started while PCI bus mastering is off (see the module
    /// docs): no PRD fetch, no memory access, no disk I/O; the command ends
    /// as QEMU's does with an all-zero PRD table (512 × 64 KiB, no EOT). A
    /// read or write outside the disk (`range`, its range check) still
    /// aborts, as it would there.
    pub(super) fn dma_without_bus_master(&mut self, cmd: DmaCmd, range: Result<(), IdeError>) {
        bump(&mut self.stats.dma_without_bus_master, 1);
        if let Err(e) = range {
            self.dma_fail(cmd, 0, Failure::Device, e);
            return;
        }
        let entries = u64::try_from(prd::MAX_PRD_ENTRIES).unwrap_or(u64::MAX);
        let zeroed_table = ZERO_PRD_BYTES.saturating_mul(entries);
        let stay_active = zeroed_table > cmd.bytes();
        self.dma_finish(cmd, stay_active);
    }

    /// Moves the running transfer on: submits, and collects completions a
    /// synchronous backend already has, until it must wait or ends. Each
    /// round moves at least one sector, so the loop is bounded by the
    /// sector count.
    pub(super) fn dma_advance(&mut self) {
        let Op::Dma(DmaRun {
            cmd, stay_active, ..
        }) = self.op
        else {
            return;
        };
        match self.dma_rounds() {
            Stop::Wait => {}
            Stop::Done => self.dma_complete(cmd, stay_active),
            Stop::Failed(f, e) => {
                let done = match &self.op {
                    Op::Dma(DmaRun { xfer, .. }) => xfer.bytes_done() / SECTOR,
                    _ => 0,
                };
                self.dma_fail(cmd, done, f, e);
            }
        }
    }

    fn dma_rounds(&mut self) -> Stop {
        let Op::Dma(DmaRun { cmd, sg, xfer, .. }) = &mut self.op else {
            return Stop::Wait;
        };
        let Some(drive) = self.units.get_mut(cmd.unit).drive.as_mut() else {
            return Stop::Failed(Failure::Device, IdeError::NoDevice);
        };
        if xfer.in_flight().is_some() {
            return Stop::Wait;
        }
        for _ in 0..=cmd.count {
            match xfer.step(self.mem, sg.entries(), &mut drive.block) {
                Ok(Progress::Submitted(token)) => match drive.block.poll() {
                    Some(c) if c.id() == token => {
                        if let Err(e) = xfer.complete(self.mem, sg.entries(), c) {
                            return Stop::Failed(classify(e), IdeError::Transfer(e));
                        }
                    }
                    Some(c) => {
                        bump(&mut self.stats.stray_completions, 1);
                        self.last_error = Some(IdeError::StrayCompletion);
                        self.mem.reclaim(c.token);
                        return Stop::Wait;
                    }
                    None => return Stop::Wait,
                },
                Ok(Progress::WaitingForBounce) => {
                    bump(&mut self.stats.bounce_waits, 1);
                    return Stop::Wait;
                }
                Ok(Progress::Done) => return Stop::Done,
                Err(e) => return Stop::Failed(classify(e), IdeError::Transfer(e)),
            }
        }
        Stop::Failed(
            Failure::Device,
            IdeError::Transfer(TransferError::Unmappable),
        )
    }

    /// The request in flight of the running transfer completed: on with
    /// the transfer, or fail after the sectors it moved.
    pub(super) fn dma_completed(&mut self, c: Completion) {
        let Op::Dma(DmaRun { cmd, sg, xfer, .. }) = &mut self.op else {
            return;
        };
        let cmd = *cmd;
        match xfer.complete(self.mem, sg.entries(), c) {
            Ok(()) => self.dma_advance(),
            Err(e) => {
                let done = xfer.bytes_done() / SECTOR;
                self.dma_fail(cmd, done, classify(e), IdeError::Transfer(e));
            }
        }
    }

    /// The data phase of `cmd` ended well: flush first if the write cache is
    /// off, then complete.
    pub(super) fn dma_complete(&mut self, cmd: DmaCmd, stay_active: bool) {
        let write_through = cmd.kind == DmaKind::Write
            && self
                .units
                .get(cmd.unit)
                .drive
                .as_ref()
                .is_some_and(|d| !d.write_cache);
        self.account_transfer(cmd);
        if write_through {
            let outcome = self.flush_start(cmd.unit, AfterFlush::Dma { cmd, stay_active });
            self.finish(cmd.unit, outcome);
            return;
        }
        self.dma_finish(cmd, stay_active);
    }

    /// Completes `cmd`: address registers at the next sector, count 0,
    /// Status 0x50, IRQ (BM INT), ACTIVE = `stay_active`.
    pub(super) fn dma_finish(&mut self, cmd: DmaCmd, stay_active: bool) {
        self.op = Op::Idle;
        bump(&mut self.stats.dma_ended, 1);
        #[cfg(feature = "atapi")]
        if cmd.kind.is_packet() {
            self.packet_dma_end(cmd, None);
            self.bm.set_active(stay_active);
            return;
        }
        let unit = self.units.get_mut(cmd.unit);
        if let (Some(lba), Some(d)) = (cmd.lba, unit.drive.as_ref())
            && cmd.kind != DmaKind::Trim
        {
            unit.tf
                .set_lba(lba.saturating_add(u64::from(cmd.count)), d.geometry);
        }
        unit.tf.nsector = 0;
        unit.tf.status = Status::DRDY | Status::DSC;
        self.raise_irq();
        self.bm.set_active(stay_active);
    }

    /// Ends `cmd` with ABRT after `done` sectors moved: the address
    /// registers show the failing sector, BMDMA ERR for a host-bus failure,
    /// ACTIVE cleared, IRQ.
    pub(super) fn dma_fail(&mut self, cmd: DmaCmd, done: u64, failure: Failure, e: IdeError) {
        self.account_transfer(cmd);
        self.op = Op::Idle;
        bump(&mut self.stats.dma_ended, 1);
        #[cfg(feature = "atapi")]
        if cmd.kind.is_packet() {
            self.last_error = Some(e);
            self.packet_dma_end(cmd, Some(failure));
            self.bm.set_active(false);
            return;
        }
        let unit = self.units.get_mut(cmd.unit);
        if let (Some(lba), Some(d)) = (cmd.lba, unit.drive.as_ref())
            && cmd.kind != DmaKind::Trim
        {
            unit.tf.set_lba(lba.saturating_add(done), d.geometry);
            unit.tf.nsector = cmd
                .count
                .saturating_sub(u32::try_from(done).unwrap_or(u32::MAX));
        }
        unit.tf.abort();
        if failure == Failure::HostBus {
            self.bm.status.insert(BmStatus::ERROR);
            bump(&mut self.stats.host_bus_errors, 1);
        }
        self.bm.set_active(false);
        self.record_error(e);
        self.raise_irq();
    }

    /// Fails a DMA that waits for bounce space (no request in flight).
    pub(super) fn fail_bounce_wait(&mut self) {
        if let Op::Dma(DmaRun { cmd, xfer, .. }) = &self.op
            && self.in_flight_unit().is_none()
        {
            let (cmd, done) = (*cmd, xfer.bytes_done() / SECTOR);
            self.dma_fail(
                cmd,
                done,
                Failure::HostBus,
                IdeError::StoppedWaitingForBounce,
            );
        }
    }

    /// A DMA command still waiting for START ends with the reset.
    pub(super) fn drop_pending_dma(&mut self) {
        if let Op::DmaPending(_) = self.op {
            self.op = Op::Idle;
            bump(&mut self.stats.dma_dropped, 1);
            bump(&mut self.stats.dma_ended, 1);
        }
    }

    /// Folds the finished transfer into the stats and ends the operation
    /// (which drops the transfer). Only called when no request of it is in
    /// flight (every caller ends the command after a completion, a failure
    /// before submission, or a bounce wait); were one in flight, dropping
    /// would quarantine its bounce space.
    fn account_transfer(&mut self, cmd: DmaCmd) {
        // By reference, then dropped in place: the transfer holds up to IOV
        // pieces and is not to be moved onto the stack.
        if let Op::Dma(DmaRun { xfer: x, .. }) = &mut self.op
            && x.in_flight().is_none()
        {
            let bytes = x.bytes_done();
            let s = &mut self.stats;
            bump(&mut s.bounced_bytes, x.bounced_bytes());
            bump(&mut s.staged_bytes, x.staged_bytes());
            match cmd.kind {
                DmaKind::Read => bump(&mut s.bytes_read, bytes),
                #[cfg(feature = "atapi")]
                DmaKind::CdRead => bump(&mut s.bytes_read, bytes),
                #[cfg(feature = "atapi")]
                DmaKind::CdReply => {}
                DmaKind::Write => bump(&mut s.bytes_written, bytes),
                DmaKind::Trim => {}
            }
            if x.is_done() {
                bump(&mut s.dma_completed, 1);
                bump(&mut s.dma_block_requests, u64::from(x.requests()));
                s.dma_max_requests = s.dma_max_requests.max(x.requests());
            }
            // Not in flight here (callers wait first); leaves the retry queue.
            let _ = x.cancel(self.mem);
        }
        self.op = Op::Idle;
    }
}
