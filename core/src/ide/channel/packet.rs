//! The ATAPI PACKET protocol of a CD-ROM unit (feature `atapi`): the ATA
//! commands an ATAPI device accepts, the command packet, data to the host
//! by PIO (blocks bounded by the byte-count limit) or by the bus master
//! (READ straight into guest memory through the same PRD walk and SG
//! transfer as READ DMA; short replies copied from the PIO buffer), and
//! the status phase. What a packet means is `ide::atapi`'s business.
//!
//! PIO blocks of a READ do not follow block boundaries (a limit of 5120
//! bytes gives blocks of 2.5 CD blocks): each DRQ block is read from the
//! backend as the whole CD blocks it touches into the PIO buffer, and
//! offered from its offset there, so a block is at most what the buffer
//! holds (8 KiB in the runner: up to 6 KiB per DRQ block).

use crate::block::{BlockDevice, BlockError, BlockRequest, Leased, RequestToken};
use crate::dma::{BlockDir, SgList, SgTransfer, TransferError};

use super::super::IrqLine;
use super::super::atapi::{self, Action, CD_BLOCK, PACKET_BYTES, REPLY_MAX, SECTORS_PER_BLOCK};
use super::super::command::opcode;
use super::super::controller::MediaError;
use super::super::error::IdeError;
use super::super::registers::{AtaError, Status};
use super::super::stats::bump;
use super::dma::Failure;
use super::pio::Phase;
use super::{AfterFlush, Channel, DmaCmd, DmaKind, DmaRun, Op, Outcome, Unit};

/// ATAPI-only ATA opcodes.
pub(crate) mod ata_op {
    /// DEVICE RESET.
    pub const DEVICE_RESET: u8 = 0x08;
    /// PACKET.
    pub const PACKET: u8 = 0xA0;
    /// IDENTIFY PACKET DEVICE.
    pub const IDENTIFY_PACKET_DEVICE: u8 = 0xA1;
}

/// PACKET Features bits.
const FEATURE_DMA: u8 = 0x01;
const FEATURE_OVL: u8 = 0x02;

/// The rest of a PIO data transfer after the current block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DataIn {
    pub unit: Unit,
    /// Bytes still to offer after this block.
    pub left: u64,
    /// The byte-count limit the host gave with PACKET.
    pub limit: u16,
    /// For a READ: the byte offset on the medium of the next block (`None`:
    /// a reply, already in the buffer after this block).
    pub disk: Option<u64>,
}

/// A READ's PIO block in flight at the backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CdBlock {
    /// The transfer once this block is offered.
    pub after: DataIn,
    /// Where the block's bytes start in the buffer, and how many.
    pub start: usize,
    pub len: usize,
}

/// The size of the next PIO block: at most `limit` bytes (even unless it
/// is the last block) and at most `cap`; 0 when no such block exists.
fn block_len(left: u64, limit: u16, cap: u64) -> u64 {
    let n = left.min(cap);
    if n > u64::from(limit) {
        u64::from(limit & !1)
    } else if n < left {
        n & !1
    } else {
        n
    }
}

impl<'m, M, B, I, const IOV: usize, const PRD: usize> Channel<'m, M, B, I, IOV, PRD>
where
    M: crate::dma::DmaMemory + ?Sized,
    B: BlockDevice<'m>,
    I: IrqLine,
{
    /// True if unit `u` is an ATAPI device.
    pub(super) fn is_packet_unit(&self, u: Unit) -> bool {
        self.units
            .get(u)
            .drive
            .as_ref()
            .is_some_and(|d| d.atapi.is_some())
    }

    /// The ATA commands of an ATAPI device (QEMU's allow-list; anything
    /// else is aborted).
    pub(super) fn packet_dispatch(&mut self, u: Unit, op: u8) -> Outcome {
        match op {
            opcode::READ_SECTORS | opcode::IDENTIFY_DEVICE => {
                // The signature tells the host to use the packet commands.
                self.tf(u).set_packet_signature();
                Outcome::Abort(IdeError::PacketDevice { opcode: op })
            }
            opcode::EXECUTE_DEVICE_DIAGNOSTIC => self.execute_device_diagnostic(),
            ata_op::PACKET => self.packet_start(u),
            ata_op::IDENTIFY_PACKET_DEVICE => self.identify(u),
            opcode::FLUSH_CACHE => {
                let blocks = self.drive(u).map_or(0, |d| d.cd_blocks());
                if blocks == 0 {
                    // No medium: nothing to flush, and no backend to ask.
                    Outcome::Abort(IdeError::NoMedium)
                } else {
                    self.flush_start(u, AfterFlush::Command)
                }
            }
            opcode::SET_FEATURES => self.set_features(u, op),
            _ => Outcome::Abort(IdeError::Unsupported {
                opcode: op,
                feature: self.units.get(u).tf.feature,
            }),
        }
    }

    /// DEVICE RESET (ATAPI only; accepted while BSY or DRQ): the device's
    /// own reset, once nothing of it is in flight (otherwise ignored, like
    /// any command while BSY; a DMA waiting for bounce space fails first,
    /// as under SRST). Status 0, the signature, no IRQ.
    pub(super) fn device_reset(&mut self, u: Unit) {
        let running_here = self.in_flight_unit() == Some(u)
            || matches!(&self.op, Op::Dma(DmaRun { cmd, .. }) if cmd.unit == u);
        if running_here && !self.drain() {
            return;
        }
        if let Op::DmaPending(cmd) = self.op
            && cmd.unit == u
        {
            self.drop_pending_dma();
        }
        if self.pio.phase_unit() == Some(u) {
            self.pio.stop();
        }
        let unit = self.units.get_mut(u);
        if let Some(d) = unit.drive.as_mut() {
            d.soft_reset();
        }
        unit.tf.set_packet_signature();
        unit.tf.status = Status::empty();
        unit.tf.error = AtaError::empty();
    }

    /// The host replaces the medium of unit `u` (see
    /// `IdeController::change_medium`).
    pub(crate) fn change_medium(
        &mut self,
        u: Unit,
        block: B,
        force: bool,
    ) -> Result<B, MediaError> {
        if !self.is_packet_unit(u) {
            return Err(MediaError::NotCdrom);
        }
        if !matches!(self.op, Op::Idle) {
            return Err(MediaError::Busy);
        }
        let Some(drive) = self.units.get_mut(u).drive.as_mut() else {
            return Err(MediaError::NotCdrom);
        };
        let Some(st) = drive.atapi.as_mut() else {
            return Err(MediaError::NotCdrom);
        };
        if st.locked && !st.tray_open && !force {
            st.event = atapi::MediaEvent::EjectRequest;
            return Err(MediaError::Locked);
        }
        st.locked = false;
        st.medium_changed();
        let old = core::mem::replace(&mut drive.block, block);
        // A READ phase with more of the old medium to come ends; a reply
        // (sense, GESN, INQUIRY...) is already in the buffer and goes on,
        // as QEMU lets a transfer finish across a media change.
        if matches!(self.pio.phase, super::pio::Phase::PacketIn(d) if d.unit == u && d.disk.is_some())
        {
            self.pio.stop();
            let tf = self.tf(u);
            tf.status = Status::DRDY | Status::DSC;
        }
        Ok(old)
    }

    /// The host opens the tray of unit `u` (QMP `eject`; see
    /// `IdeController::open_tray`).
    pub(crate) fn open_tray(&mut self, u: Unit, force: bool) -> Result<(), MediaError> {
        if !self.is_packet_unit(u) {
            return Err(MediaError::NotCdrom);
        }
        let Some(st) = self
            .units
            .get_mut(u)
            .drive
            .as_mut()
            .and_then(|d| d.atapi.as_mut())
        else {
            return Err(MediaError::NotCdrom);
        };
        if st.tray_open {
            return Ok(());
        }
        if st.locked && !force {
            st.event = atapi::MediaEvent::EjectRequest;
            return Err(MediaError::Locked);
        }
        st.locked = false;
        st.tray_open = true;
        Ok(())
    }

    /// The host closes the tray of unit `u` (see
    /// `IdeController::close_tray`).
    pub(crate) fn close_tray(&mut self, u: Unit) -> Result<(), MediaError> {
        let Some(st) = self
            .units
            .get_mut(u)
            .drive
            .as_mut()
            .and_then(|d| d.atapi.as_mut())
        else {
            return Err(MediaError::NotCdrom);
        };
        if st.tray_open {
            st.medium_changed();
        }
        Ok(())
    }

    /// PACKET: DRQ for the 12-byte packet, interrupt reason "command", no
    /// IRQ. Overlap is not supported (ABRT).
    fn packet_start(&mut self, u: Unit) -> Outcome {
        let tf = self.tf(u);
        if tf.feature & FEATURE_OVL != 0 {
            return Outcome::Abort(IdeError::Unsupported {
                opcode: ata_op::PACKET,
                feature: tf.feature,
            });
        }
        let dma = tf.feature & FEATURE_DMA != 0;
        set_reason(&mut tf.nsector, atapi::reason::COMMAND);
        tf.status = Status::DRDY | Status::DSC | Status::DRQ;
        if self.pio.buffer().len() < PACKET_BYTES {
            return Outcome::Abort(IdeError::NoPioBuffer);
        }
        self.pio.start(Phase::Packet { unit: u, dma }, PACKET_BYTES);
        Outcome::Started
    }

    /// The 12th byte of the packet arrived: run it.
    pub(super) fn packet_received(&mut self, u: Unit, dma: bool) -> Outcome {
        let mut cdb = [0u8; PACKET_BYTES];
        self.pio.buffer().copy_to(0, &mut cdb);
        let unit = self.units.get_mut(u);
        let limit = u16::from_le_bytes([unit.tf.lcyl, unit.tf.hcyl]);
        let Some(drive) = unit.drive.as_mut() else {
            return Outcome::Abort(IdeError::NoDevice);
        };
        let blocks = drive.cd_blocks();
        let Some(st) = drive.atapi.as_mut() else {
            return Outcome::Abort(IdeError::NoDevice);
        };
        let mut reply = [0u8; REPLY_MAX];
        let pio_no_limit = !dma && limit == 0;
        match atapi::execute(st, &drive.identify, &cdb, blocks, pio_no_limit, &mut reply) {
            Action::Done | Action::Data(0) => self.packet_ok(u),
            Action::Data(len) => {
                let data = reply.get(..len).unwrap_or(&[]);
                if !self.pio_fill(data) {
                    return Outcome::Abort(IdeError::NoPioBuffer);
                }
                let n = u64::try_from(len).unwrap_or(u64::MAX);
                if dma {
                    let count = u32::try_from(len).unwrap_or(0);
                    self.packet_dma(u, DmaKind::CdReply, None, count)
                } else {
                    let first = DataIn {
                        unit: u,
                        left: n,
                        limit,
                        disk: None,
                    };
                    self.packet_next_block(first, 0)
                }
            }
            Action::Read { lba, blocks } => {
                if dma {
                    let sector = lba.saturating_mul(SECTORS_PER_BLOCK);
                    self.packet_dma(u, DmaKind::CdRead, Some(sector), blocks.saturating_mul(4))
                } else {
                    let first = DataIn {
                        unit: u,
                        left: u64::from(blocks).saturating_mul(CD_BLOCK),
                        limit,
                        disk: Some(lba.saturating_mul(CD_BLOCK)),
                    };
                    self.packet_next_block(first, 0)
                }
            }
            Action::Check(sense) => self.packet_check(u, sense),
            Action::UnitAttention => {
                let key = st.sense.key;
                let tf = self.tf(u);
                tf.error = AtaError::from_bits_retain(key << 4);
                tf.status = Status::ERR;
                tf.nsector = 0;
                self.raise_irq();
                Outcome::Started
            }
            Action::Abort => Outcome::Abort(IdeError::ByteCountLimit),
        }
    }

    /// Offers the next PIO block of `d` (the previous one ended at `at` in
    /// the buffer), or ends the command when nothing is left.
    pub(super) fn packet_next_block(&mut self, d: DataIn, at: usize) -> Outcome {
        if d.left == 0 {
            return self.packet_ok(d.unit);
        }
        let Some(offset) = d.disk else {
            let n = block_len(d.left, d.limit, u64::MAX);
            let len = usize::try_from(n).unwrap_or(0);
            if len == 0 {
                return Outcome::Abort(IdeError::ByteCountLimit);
            }
            let after = DataIn {
                left: d.left - n,
                ..d
            };
            return self.packet_offer(CdBlock {
                after,
                start: at,
                len,
            });
        };
        // A READ: whole CD blocks into the buffer, offered from `skip`.
        let skip = offset % CD_BLOCK;
        let buf_blocks = u64::try_from(self.pio.buffer().len()).unwrap_or(0) / CD_BLOCK;
        let cap = (buf_blocks * CD_BLOCK).saturating_sub(skip);
        let n = block_len(d.left, d.limit, cap);
        if n == 0 {
            return Outcome::Abort(IdeError::ByteCountLimit);
        }
        let first = offset / CD_BLOCK;
        let count = (skip + n).div_ceil(CD_BLOCK);
        let block = CdBlock {
            after: DataIn {
                left: d.left - n,
                disk: Some(offset + n),
                ..d
            },
            start: usize::try_from(skip).unwrap_or(0),
            len: usize::try_from(n).unwrap_or(0),
        };
        let u = d.unit;
        let bytes = usize::try_from(count * CD_BLOCK).unwrap_or(usize::MAX);
        let Some(buf) = self.pio.buffer().subslice(0, bytes) else {
            return Outcome::Abort(IdeError::NoPioBuffer);
        };
        let Some(drive) = self.units.get_mut(u).drive.as_mut() else {
            return Outcome::Abort(IdeError::NoDevice);
        };
        let token = RequestToken::new();
        let id = token.id();
        let iov = [Leased::new(buf, &token)];
        let request = BlockRequest::Read {
            sector: first * SECTORS_PER_BLOCK,
            iov: &iov,
        };
        let polled = match drive.block.submit(token, request) {
            Err(r) if r.token.id() == id => {
                return self.packet_read_done(block, Err(r.error));
            }
            Err(r) => {
                // Another token: ours may still be held with the buffer.
                self.mem.reclaim(r.token);
                None
            }
            Ok(()) => drive.block.poll(),
        };
        match polled {
            Some(c) if c.id() == id => self.packet_read_done(block, c.result),
            other => {
                if let Some(c) = other {
                    bump(&mut self.stats.stray_completions, 1);
                    self.mem.reclaim(c.token);
                }
                self.tf(u).status = Status::DRDY | Status::BSY;
                self.op = Op::PacketRead { block, token: id };
                Outcome::Started
            }
        }
    }

    /// A READ's PIO block arrived in the buffer: offer it, or fail the
    /// command (an I/O error reads as an address out of range, as in
    /// QEMU).
    pub(super) fn packet_read_done(
        &mut self,
        block: CdBlock,
        result: Result<(), BlockError>,
    ) -> Outcome {
        match result {
            Ok(()) => {
                let bytes = u64::try_from(block.len).unwrap_or(0);
                bump(&mut self.stats.bytes_read, bytes);
                self.packet_offer(block)
            }
            Err(e) => {
                self.last_error = Some(IdeError::Block(e));
                self.packet_check(block.after.unit, atapi::Sense::OUT_OF_RANGE)
            }
        }
    }

    /// Opens a PIO data block: byte count in LBA mid/high, interrupt reason
    /// "data in", DRQ, IRQ.
    fn packet_offer(&mut self, block: CdBlock) -> Outcome {
        let u = block.after.unit;
        let tf = self.tf(u);
        let [lo, hi, ..] = block.len.to_le_bytes();
        tf.lcyl = lo;
        tf.hcyl = hi;
        set_reason(&mut tf.nsector, atapi::reason::DATA_IN);
        tf.status = Status::DRDY | Status::DSC | Status::DRQ;
        let end = block.start.saturating_add(block.len);
        self.pio
            .start_range(Phase::PacketIn(block.after), block.start, end);
        self.raise_irq();
        Outcome::Started
    }

    /// A data transfer by the bus master: waits for START (DRQ) like READ
    /// DMA, then moves `count` sectors from `sector` (a READ) or `count`
    /// bytes of the PIO buffer (a reply).
    fn packet_dma(&mut self, u: Unit, kind: DmaKind, sector: Option<u64>, count: u32) -> Outcome {
        self.tf(u).status = Status::DRDY | Status::DSC | Status::DRQ;
        self.op = Op::DmaPending(DmaCmd {
            unit: u,
            kind,
            lba: sector,
            count,
        });
        if self.bm.active() {
            self.dma_kick(self.bus_master_on);
        }
        Outcome::Started
    }

    /// A reply by DMA: the PRD walk, then the bytes from the PIO buffer
    /// into the memory the PRDs describe.
    pub(super) fn packet_reply_dma(&mut self, cmd: DmaCmd, bus_master: bool) {
        if !bus_master {
            self.dma_without_bus_master(cmd, Ok(()));
            return;
        }
        self.op = Op::Dma(DmaRun {
            cmd,
            stay_active: false,
            sg: SgList::new(),
            xfer: SgTransfer::of_sectors(self.requester, BlockDir::Read, 0, 0),
        });
        let Some(stay) = self.dma_walk(cmd) else {
            return;
        };
        let mut data = [0u8; REPLY_MAX];
        let len = usize::try_from(cmd.count).unwrap_or(0).min(REPLY_MAX);
        let data = data.get_mut(..len).unwrap_or(&mut []);
        self.pio.buffer().copy_to(0, data);
        let mut failed = None;
        if let Op::Dma(DmaRun { sg, .. }) = &self.op {
            let mut rest: &[u8] = data;
            for e in sg.entries() {
                let n = usize::try_from(e.len).unwrap_or(usize::MAX).min(rest.len());
                let (now, later) = rest.split_at(n);
                if let Err(err) = self.mem.write(self.requester, e.addr, now) {
                    failed = Some(err);
                    break;
                }
                rest = later;
                if rest.is_empty() {
                    break;
                }
            }
        }
        match failed {
            Some(err) => self.dma_fail(
                cmd,
                0,
                Failure::HostBus,
                IdeError::Transfer(TransferError::Memory(err)),
            ),
            None => self.dma_finish(cmd, stay),
        }
    }

    /// The end of an ATAPI DMA: good status, or a check condition (BMDMA
    /// ERR too for a host-bus failure).
    pub(super) fn packet_dma_end(&mut self, cmd: DmaCmd, failure: Option<Failure>) {
        match failure {
            None => {
                self.packet_ok(cmd.unit);
            }
            Some(f) => {
                if f == Failure::HostBus {
                    self.bm
                        .status
                        .insert(super::super::registers::BmStatus::ERROR);
                    bump(&mut self.stats.host_bus_errors, 1);
                }
                let sense = match f {
                    Failure::HostBus => atapi::Sense::ABORTED,
                    Failure::Device => atapi::Sense::OUT_OF_RANGE,
                };
                self.packet_check(cmd.unit, sense);
            }
        }
    }

    /// Good status: Status 0x50, interrupt reason "status", IRQ.
    fn packet_ok(&mut self, u: Unit) -> Outcome {
        self.pio.stop();
        let tf = self.tf(u);
        tf.error = AtaError::empty();
        tf.status = Status::DRDY | Status::DSC;
        set_reason(&mut tf.nsector, atapi::reason::STATUS);
        self.raise_irq();
        Outcome::Started
    }

    /// CHECK CONDITION: the sense is stored, Error = key << 4, Status
    /// DRDY|ERR, interrupt reason "status", IRQ.
    fn packet_check(&mut self, u: Unit, sense: atapi::Sense) -> Outcome {
        self.pio.stop();
        let unit = self.units.get_mut(u);
        if let Some(st) = unit.drive.as_mut().and_then(|d| d.atapi.as_mut()) {
            st.sense = sense;
        }
        let tf = &mut unit.tf;
        tf.error = AtaError::from_bits_retain((sense.key & 0x0F) << 4);
        tf.status = Status::DRDY | Status::ERR;
        set_reason(&mut tf.nsector, atapi::reason::STATUS);
        self.raise_irq();
        Outcome::Started
    }
}

/// Sets the interrupt reason (bits 2:0 of Sector Count), keeping the tag.
fn set_reason(nsector: &mut u32, reason: u8) {
    *nsector = (*nsector & 0xF8) | u32::from(reason);
}
