//! Saving, restoring and restarting the channel (feature `snapshot`).
//!
//! The saved state is what the guest can observe plus what is needed to
//! re-issue the operation outstanding, never host addresses: a DMA is its
//! command, where its PRD walk started and the bytes completed before the
//! request in flight; a TRIM the offset of the next range entry to issue;
//! a PIO block its unit, address and count (a write also keeps the bytes
//! of the block, part of the PIO buffer); a flush what follows it.
//!
//! Restoring happens in two steps. `parse` reads and validates everything
//! against this channel (disk sizes, capacities, reachable states) and
//! changes nothing; `apply` installs a parsed image and never fails. The
//! operation a restore brings back is kept aside (`SavedOp`) and re-issued
//! by `restart` (QEMU's `ide_restart_bh` idea, for requests that had not
//! finished): DMA re-walks the PRD table from guest RAM and skips the
//! bytes already completed, a PIO block is re-read or re-written, a flush
//! or TRIM range re-issued.

use crate::block::{BlockDevice, SECTOR_SIZE};
use crate::dma::{BlockDir, DmaMemory, SgList, SgTransfer};
use crate::snapshot::{Reader, SnapshotError, Writer};

use super::super::IrqLine;
use super::super::bus_master::BusMaster;
use super::super::error::IdeError;
use super::super::identify::{MAX_DSM_BLOCKS, transfer_mode_of};
use super::super::registers::{AtaError, BmCommand, BmStatus, DeviceControl, DeviceHead, Status};
use super::super::taskfile::{Geometry, TaskFile};
use super::dma::Failure;
use super::pio::{Phase, PioDir};
use super::{AfterFlush, Channel, Deferred, DmaCmd, DmaKind, DmaRun, Op, PioBlock, TrimRun, Unit};

const SECTOR: u64 = SECTOR_SIZE as u64;
/// Most sectors one DMA command moves (LBA48 count 0).
const MAX_DMA_SECTORS: u32 = 65536;
/// Bytes of one TRIM range entry.
const TRIM_ENTRY: u64 = 8;
/// Bytes of the PIO buffer written per chunk (no heap, a small stack copy).
const CHUNK: usize = 64;

/// The operation a restore left to re-issue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SavedOp {
    /// READ/WRITE DMA (or an ATAPI READ by DMA): `done` bytes had completed.
    Dma {
        cmd: DmaCmd,
        prd_start: u32,
        done: u64,
    },
    /// TRIM: the range entry at byte `offset` is the next to issue.
    Trim {
        cmd: DmaCmd,
        prd_start: u32,
        offset: u64,
    },
    /// A flush, and what follows it.
    Flush { unit: Unit, then: AfterFlush },
    /// A PIO read block.
    PioRead(PioBlock),
    /// A PIO write block (its bytes are in the PIO buffer).
    PioWrite(PioBlock),
    /// An ATAPI PIO READ block.
    #[cfg(feature = "atapi")]
    PacketRead(super::packet::CdBlock),
}

/// A drive's settings as saved.
#[derive(Clone, Copy, Debug)]
struct DriveImage {
    geometry: Geometry,
    multiple: u8,
    write_cache: bool,
    transfer: super::super::identify::TransferMode,
    #[cfg(feature = "atapi")]
    atapi: Option<super::super::atapi::AtapiState>,
}

/// A validated channel state, ready to apply.
pub(crate) struct ChannelImage<'r> {
    irq_level: bool,
    selected: Unit,
    control: DeviceControl,
    bm: BusMaster,
    deferred: Deferred,
    #[cfg(feature = "atapi")]
    bus_master_on: bool,
    tfs: [TaskFile; 2],
    drives: [Option<DriveImage>; 2],
    phase: Phase,
    pos: usize,
    end: usize,
    pio_bytes: &'r [u8],
    pending: Option<DmaCmd>,
    saved_op: Option<SavedOp>,
}

fn invalid(what: &'static str) -> SnapshotError {
    SnapshotError::Invalid(what)
}

fn ensure(ok: bool, what: &'static str) -> Result<(), SnapshotError> {
    if ok { Ok(()) } else { Err(invalid(what)) }
}

fn unit_code(u: Unit) -> u8 {
    match u {
        Unit::Master => 0,
        Unit::Slave => 1,
    }
}

fn read_unit(r: &mut Reader<'_>) -> Result<Unit, SnapshotError> {
    match r.u8()? {
        0 => Ok(Unit::Master),
        1 => Ok(Unit::Slave),
        _ => Err(invalid("unit")),
    }
}

fn unit_index(u: Unit) -> usize {
    usize::from(unit_code(u))
}

fn kind_code(k: DmaKind) -> u8 {
    match k {
        DmaKind::Read => 0,
        DmaKind::Write => 1,
        DmaKind::Trim => 2,
        #[cfg(feature = "atapi")]
        DmaKind::CdRead => 3,
        #[cfg(feature = "atapi")]
        DmaKind::CdReply => 4,
    }
}

fn read_kind(r: &mut Reader<'_>) -> Result<DmaKind, SnapshotError> {
    match r.u8()? {
        0 => Ok(DmaKind::Read),
        1 => Ok(DmaKind::Write),
        2 => Ok(DmaKind::Trim),
        #[cfg(feature = "atapi")]
        3 => Ok(DmaKind::CdRead),
        #[cfg(feature = "atapi")]
        4 => Ok(DmaKind::CdReply),
        _ => Err(invalid("DMA command kind")),
    }
}

fn write_cmd(w: &mut Writer<'_>, c: &DmaCmd) -> Result<(), SnapshotError> {
    w.u8(unit_code(c.unit))?;
    w.u8(kind_code(c.kind))?;
    w.bool(c.lba.is_some())?;
    w.u64(c.lba.unwrap_or(0))?;
    w.u32(c.count)
}

fn read_cmd(r: &mut Reader<'_>) -> Result<DmaCmd, SnapshotError> {
    let unit = read_unit(r)?;
    let kind = read_kind(r)?;
    let has_lba = r.bool("DMA command address flag")?;
    let lba = r.u64()?;
    let count = r.u32()?;
    Ok(DmaCmd {
        unit,
        kind,
        lba: has_lba.then_some(lba),
        count,
    })
}

fn write_block(w: &mut Writer<'_>, b: &PioBlock) -> Result<(), SnapshotError> {
    w.u8(unit_code(b.unit))?;
    w.u32(b.per_block)?;
    w.u64(b.lba)?;
    w.u32(b.count)
}

fn read_block(r: &mut Reader<'_>) -> Result<PioBlock, SnapshotError> {
    Ok(PioBlock {
        unit: read_unit(r)?,
        per_block: r.u32()?,
        lba: r.u64()?,
        count: r.u32()?,
    })
}

fn write_tf(w: &mut Writer<'_>, tf: &TaskFile) -> Result<(), SnapshotError> {
    for b in [
        tf.feature,
        tf.hob_feature,
        tf.hob_nsector,
        tf.sector,
        tf.hob_sector,
        tf.lcyl,
        tf.hob_lcyl,
        tf.hcyl,
        tf.hob_hcyl,
        tf.select.bits(),
        tf.status.bits(),
        tf.error.bits(),
    ] {
        w.u8(b)?;
    }
    w.u32(tf.nsector)?;
    w.bool(tf.lba48)
}

fn read_tf(r: &mut Reader<'_>) -> Result<TaskFile, SnapshotError> {
    let [
        feature,
        hob_feature,
        hob_nsector,
        sector,
        hob_sector,
        lcyl,
        hob_lcyl,
        hcyl,
        hob_hcyl,
        select,
        status,
        error,
    ] = r.array::<12>()?;
    let nsector = r.u32()?;
    let lba48 = r.bool("task file LBA48 flag")?;
    ensure(nsector <= MAX_DMA_SECTORS, "task file sector count")?;
    let select = DeviceHead::from_bits_retain(select);
    ensure(
        select.contains(DeviceHead::OBSOLETE),
        "task file device register",
    )?;
    Ok(TaskFile {
        feature,
        hob_feature,
        nsector,
        hob_nsector,
        sector,
        hob_sector,
        lcyl,
        hob_lcyl,
        hcyl,
        hob_hcyl,
        select,
        status: Status::from_bits_retain(status),
        error: AtaError::from_bits_retain(error),
        lba48,
    })
}

pub(crate) fn write_bm(w: &mut Writer<'_>, bm: &BusMaster) -> Result<(), SnapshotError> {
    w.u8(bm.command.bits())?;
    w.u8(bm.status.bits())?;
    w.u32(bm.table)?;
    w.u32(bm.cursor)
}

/// Status bits a BMDMA status register can hold.
const BM_STATUS_BITS: BmStatus = BmStatus::ACTIVE
    .union(BmStatus::ERROR)
    .union(BmStatus::INTERRUPT)
    .union(BmStatus::DRIVE0_DMA)
    .union(BmStatus::DRIVE1_DMA);

pub(crate) fn read_bm(r: &mut Reader<'_>) -> Result<BusMaster, SnapshotError> {
    let command = BmCommand::from_bits(r.u8()?).ok_or(invalid("BMDMA command register"))?;
    let status = BmStatus::from_bits(r.u8()?)
        .filter(|s| BM_STATUS_BITS.contains(*s))
        .ok_or(invalid("BMDMA status register"))?;
    let table = r.u32()?;
    let cursor = r.u32()?;
    ensure(table & 3 == 0, "BMDMA PRD table pointer")?;
    ensure(cursor & 3 == 0, "BMDMA PRD fetch pointer")?;
    Ok(BusMaster {
        command,
        status,
        table,
        cursor,
    })
}

#[cfg(feature = "atapi")]
mod atapi_codec {
    use super::super::super::atapi::{AtapiState, Changed, MediaEvent, Sense};
    use super::super::packet::{CdBlock, DataIn};
    use super::*;

    pub(super) fn write_state(w: &mut Writer<'_>, a: &AtapiState) -> Result<(), SnapshotError> {
        w.bytes(&[a.sense.key, a.sense.asc, a.sense.ascq])?;
        w.bool(a.tray_open)?;
        w.bool(a.locked)?;
        w.u8(match a.changed {
            Changed::No => 0,
            Changed::Loaded => 1,
            Changed::Reported => 2,
        })?;
        w.u8(match a.event {
            MediaEvent::None => 0,
            MediaEvent::EjectRequest => 1,
            MediaEvent::NewMedia => 2,
        })
    }

    pub(super) fn read_state(r: &mut Reader<'_>) -> Result<AtapiState, SnapshotError> {
        let [key, asc, ascq] = r.array::<3>()?;
        ensure(key <= 0x0F, "ATAPI sense key")?;
        let tray_open = r.bool("ATAPI tray flag")?;
        let locked = r.bool("ATAPI lock flag")?;
        let changed = match r.u8()? {
            0 => Changed::No,
            1 => Changed::Loaded,
            2 => Changed::Reported,
            _ => return Err(invalid("ATAPI media-change state")),
        };
        let event = match r.u8()? {
            0 => MediaEvent::None,
            1 => MediaEvent::EjectRequest,
            2 => MediaEvent::NewMedia,
            _ => return Err(invalid("ATAPI media event")),
        };
        Ok(AtapiState {
            sense: Sense { key, asc, ascq },
            tray_open,
            locked,
            changed,
            event,
        })
    }

    pub(super) fn write_data_in(w: &mut Writer<'_>, d: &DataIn) -> Result<(), SnapshotError> {
        w.u8(unit_code(d.unit))?;
        w.u64(d.left)?;
        w.u16(d.limit)?;
        w.bool(d.disk.is_some())?;
        w.u64(d.disk.unwrap_or(0))
    }

    pub(super) fn read_data_in(r: &mut Reader<'_>) -> Result<DataIn, SnapshotError> {
        let unit = read_unit(r)?;
        let left = r.u64()?;
        let limit = r.u16()?;
        let has_disk = r.bool("ATAPI transfer source flag")?;
        let disk = r.u64()?;
        Ok(DataIn {
            unit,
            left,
            limit,
            disk: has_disk.then_some(disk),
        })
    }

    pub(super) fn write_cd_block(w: &mut Writer<'_>, b: &CdBlock) -> Result<(), SnapshotError> {
        write_data_in(w, &b.after)?;
        w.usize(b.start)?;
        w.usize(b.len)
    }

    pub(super) fn read_cd_block(r: &mut Reader<'_>) -> Result<CdBlock, SnapshotError> {
        Ok(CdBlock {
            after: read_data_in(r)?,
            start: r.usize("ATAPI block start")?,
            len: r.usize("ATAPI block length")?,
        })
    }
}

/// Op tags.
mod tag {
    pub const IDLE: u8 = 0;
    pub const DMA_PENDING: u8 = 1;
    pub const DMA: u8 = 2;
    pub const TRIM: u8 = 3;
    pub const FLUSH: u8 = 4;
    pub const PIO_READ: u8 = 5;
    pub const PIO_WRITE: u8 = 6;
    pub const PACKET_READ: u8 = 7;
}

/// Phase tags.
mod phase_tag {
    pub const IDLE: u8 = 0;
    pub const IDENTIFY: u8 = 1;
    pub const READ: u8 = 2;
    pub const WRITE: u8 = 3;
    pub const PACKET: u8 = 4;
    pub const PACKET_IN: u8 = 5;
}

impl<'m, M, B, I, const IOV: usize, const PRD: usize> Channel<'m, M, B, I, IOV, PRD>
where
    M: DmaMemory + ?Sized,
    B: BlockDevice<'m>,
    I: IrqLine,
{
    /// The operation outstanding, as what re-issues it.
    fn saved_op(&self) -> Option<SavedOp> {
        if let Some(s) = self.restart {
            return Some(s);
        }
        match &self.op {
            Op::Idle | Op::DmaPending(_) => None,
            Op::Dma(DmaRun { cmd, xfer, .. }) => Some(SavedOp::Dma {
                cmd: *cmd,
                prd_start: self.prd_start,
                done: xfer.bytes_done(),
            }),
            Op::Trim { run, .. } => Some(SavedOp::Trim {
                cmd: run.cmd,
                prd_start: self.prd_start,
                // The range whose discard is in flight is issued again.
                offset: if run.token.is_some() {
                    run.offset.saturating_sub(TRIM_ENTRY)
                } else {
                    run.offset
                },
            }),
            &Op::Flush { unit, then, .. } => Some(SavedOp::Flush { unit, then }),
            &Op::PioRead { block, .. } => Some(SavedOp::PioRead(block)),
            &Op::PioWrite { block, .. } => Some(SavedOp::PioWrite(block)),
            #[cfg(feature = "atapi")]
            &Op::PacketRead { block, .. } => Some(SavedOp::PacketRead(block)),
        }
    }

    /// Bytes of the PIO buffer the state refers to (from its start).
    fn pio_live_bytes(&self) -> usize {
        let len = self.pio.buf.len();
        let mut n = match self.pio.phase {
            Phase::Idle => 0,
            _ => self.pio.end,
        };
        #[cfg(feature = "atapi")]
        {
            // A reply is in the buffer beyond the block offered.
            let reply_pending = matches!(self.pio.phase, Phase::PacketIn(d) if d.disk.is_none())
                || matches!(
                    self.op,
                    Op::DmaPending(DmaCmd {
                        kind: DmaKind::CdReply,
                        ..
                    })
                );
            if reply_pending {
                n = len;
            }
        }
        if let Some(SavedOp::PioWrite(b)) = self.saved_op() {
            n = n.max(block_bytes(b.count));
        }
        n.min(len)
    }

    /// Saves the channel (see the module docs). Changes nothing.
    pub(crate) fn save(&self, w: &mut Writer<'_>) -> Result<(), SnapshotError> {
        w.bool(self.irq_level)?;
        w.u8(unit_code(self.selected))?;
        w.u8(self.control.bits())?;
        write_bm(w, &self.bm)?;
        w.bool(self.deferred.stop)?;
        w.bool(self.deferred.reset)?;
        #[cfg(feature = "atapi")]
        w.bool(self.bus_master_on)?;
        #[cfg(not(feature = "atapi"))]
        w.bool(false)?;
        for u in [Unit::Master, Unit::Slave] {
            let unit = self.units.get(u);
            write_tf(w, &unit.tf)?;
            let Some(d) = unit.drive.as_ref() else {
                w.u8(0)?;
                continue;
            };
            w.u8(if d.is_atapi() { 2 } else { 1 })?;
            w.u64(d.sectors())?;
            w.u16(d.geometry.cylinders)?;
            w.u8(d.geometry.heads)?;
            w.u8(d.geometry.sectors)?;
            w.u8(d.multiple)?;
            w.bool(d.write_cache)?;
            for word in d.identify.transfer_mode_words() {
                w.u16(word)?;
            }
            #[cfg(feature = "atapi")]
            if let Some(a) = d.atapi.as_ref() {
                atapi_codec::write_state(w, a)?;
            }
        }
        match self.pio.phase {
            Phase::Idle => w.u8(phase_tag::IDLE)?,
            Phase::Identify(u) => {
                w.u8(phase_tag::IDENTIFY)?;
                w.u8(unit_code(u))?;
            }
            Phase::Read { unit, per_block } => {
                w.u8(phase_tag::READ)?;
                w.u8(unit_code(unit))?;
                w.u32(per_block)?;
            }
            Phase::Write { unit, per_block } => {
                w.u8(phase_tag::WRITE)?;
                w.u8(unit_code(unit))?;
                w.u32(per_block)?;
            }
            #[cfg(feature = "atapi")]
            Phase::Packet { unit, dma } => {
                w.u8(phase_tag::PACKET)?;
                w.u8(unit_code(unit))?;
                w.bool(dma)?;
            }
            #[cfg(feature = "atapi")]
            Phase::PacketIn(d) => {
                w.u8(phase_tag::PACKET_IN)?;
                atapi_codec::write_data_in(w, &d)?;
            }
        }
        w.usize(self.pio.pos)?;
        w.usize(self.pio.end)?;
        let live = self.pio_live_bytes();
        w.usize(live)?;
        let mut chunk = [0u8; CHUNK];
        let mut at = 0usize;
        while at < live {
            let n = (live - at).min(CHUNK);
            let part = chunk.get_mut(..n).unwrap_or_default();
            self.pio.buf.copy_to(at, part);
            w.bytes(part)?;
            at += n;
        }
        if let Op::DmaPending(cmd) = &self.op {
            w.u8(tag::DMA_PENDING)?;
            return write_cmd(w, cmd);
        }
        match self.saved_op() {
            None => w.u8(tag::IDLE),
            Some(SavedOp::Dma {
                cmd,
                prd_start,
                done,
            }) => {
                w.u8(tag::DMA)?;
                write_cmd(w, &cmd)?;
                w.u32(prd_start)?;
                w.u64(done)
            }
            Some(SavedOp::Trim {
                cmd,
                prd_start,
                offset,
            }) => {
                w.u8(tag::TRIM)?;
                write_cmd(w, &cmd)?;
                w.u32(prd_start)?;
                w.u64(offset)
            }
            Some(SavedOp::Flush { unit, then }) => {
                w.u8(tag::FLUSH)?;
                w.u8(unit_code(unit))?;
                match then {
                    AfterFlush::Command => w.u8(0),
                    AfterFlush::Dma { cmd, stay_active } => {
                        w.u8(1)?;
                        write_cmd(w, &cmd)?;
                        w.bool(stay_active)
                    }
                    AfterFlush::PioWrite(b) => {
                        w.u8(2)?;
                        write_block(w, &b)
                    }
                }
            }
            Some(SavedOp::PioRead(b)) => {
                w.u8(tag::PIO_READ)?;
                write_block(w, &b)
            }
            Some(SavedOp::PioWrite(b)) => {
                w.u8(tag::PIO_WRITE)?;
                write_block(w, &b)
            }
            #[cfg(feature = "atapi")]
            Some(SavedOp::PacketRead(b)) => {
                w.u8(tag::PACKET_READ)?;
                atapi_codec::write_cd_block(w, &b)
            }
        }
    }

    /// Capacity of the disk at `u` (`None`: no drive).
    fn capacity(&self, u: Unit) -> Option<u64> {
        self.drive(u).map(|d| d.sectors())
    }

    /// Reads one unit's drive settings and checks them against the drive
    /// attached here.
    fn parse_drive(
        &self,
        u: Unit,
        r: &mut Reader<'_>,
    ) -> Result<Option<DriveImage>, SnapshotError> {
        let kind = r.u8()?;
        let here = self.drive(u);
        let here_kind = here.map_or(0, |d| if d.is_atapi() { 2 } else { 1 });
        if kind > 2 {
            return Err(invalid("drive kind"));
        }
        if kind != here_kind {
            return Err(SnapshotError::Mismatch {
                what: match u {
                    Unit::Master => "device 0 (0 none, 1 disk, 2 CD-ROM)",
                    Unit::Slave => "device 1 (0 none, 1 disk, 2 CD-ROM)",
                },
                saved: u64::from(kind),
                here: u64::from(here_kind),
            });
        }
        let Some(d) = here else {
            return Ok(None);
        };
        let sectors = r.u64()?;
        if sectors != d.sectors() {
            return Err(SnapshotError::Mismatch {
                what: match u {
                    Unit::Master => "device 0 size in sectors",
                    Unit::Slave => "device 1 size in sectors",
                },
                saved: sectors,
                here: d.sectors(),
            });
        }
        let geometry = Geometry {
            cylinders: r.u16()?,
            heads: r.u8()?,
            sectors: r.u8()?,
        };
        let reachable = geometry == d.default_geometry
            || Geometry::with_params(sectors, geometry.heads, geometry.sectors) == Some(geometry);
        ensure(reachable, "drive CHS translation")?;
        let multiple = r.u8()?;
        ensure(
            multiple <= d.max_multiple && (multiple == 0 || multiple.is_power_of_two()),
            "drive multiple count",
        )?;
        let write_cache = r.bool("drive write-cache flag")?;
        let words = [r.u16()?, r.u16()?, r.u16()?];
        let transfer = transfer_mode_of(words).ok_or(invalid("drive transfer mode"))?;
        #[cfg(feature = "atapi")]
        let atapi = if d.is_atapi() {
            Some(atapi_codec::read_state(r)?)
        } else {
            None
        };
        Ok(Some(DriveImage {
            geometry,
            multiple,
            write_cache,
            transfer,
            #[cfg(feature = "atapi")]
            atapi,
        }))
    }

    /// Checks a DMA command against the drives and the PIO buffer.
    /// A running walk of a PRD table: its command (checked), where the
    /// walk starts, and its progress in bytes (a multiple of `granule`, at
    /// most the command's length; `what` names it in the error).
    fn read_walk(
        &self,
        r: &mut Reader<'_>,
        granule: u64,
        what: &'static str,
    ) -> Result<(DmaCmd, u32, u64), SnapshotError> {
        let cmd = read_cmd(r)?;
        let prd_start = r.u32()?;
        let progress = r.u64()?;
        self.check_cmd(&cmd, true)?;
        ensure(prd_start & 3 == 0, "PRD walk start")?;
        ensure(progress % granule == 0 && progress <= cmd.bytes(), what)?;
        Ok((cmd, prd_start, progress))
    }

    fn check_cmd(&self, c: &DmaCmd, running: bool) -> Result<(), SnapshotError> {
        let Some(capacity) = self.capacity(c.unit) else {
            return Err(invalid("DMA command for a unit without a drive"));
        };
        let atapi_unit = self.drive(c.unit).is_some_and(|d| d.is_atapi());
        match c.kind {
            DmaKind::Read | DmaKind::Write => {
                ensure(!atapi_unit, "ATA DMA command on a CD-ROM")?;
                ensure(
                    (1..=MAX_DMA_SECTORS).contains(&c.count),
                    "DMA command sector count",
                )?;
                if running {
                    let lba = c
                        .lba
                        .ok_or(invalid("running DMA command without address"))?;
                    ensure(
                        crate::block::check_range(capacity, lba, u64::from(c.count)).is_ok(),
                        "running DMA command beyond the disk",
                    )?;
                }
            }
            DmaKind::Trim => {
                ensure(!atapi_unit, "TRIM on a CD-ROM")?;
                ensure(c.count <= u32::from(MAX_DSM_BLOCKS), "TRIM block count")?;
                ensure(!running || c.count > 0, "running TRIM without ranges")?;
            }
            #[cfg(feature = "atapi")]
            DmaKind::CdRead => {
                ensure(atapi_unit, "ATAPI DMA on a disk")?;
                let lba = c.lba.ok_or(invalid("ATAPI READ without address"))?;
                ensure(
                    c.count > 0
                        && crate::block::check_range(capacity, lba, u64::from(c.count)).is_ok(),
                    "ATAPI READ beyond the medium",
                )?;
            }
            #[cfg(feature = "atapi")]
            DmaKind::CdReply => {
                ensure(atapi_unit && !running, "ATAPI reply by DMA")?;
                ensure(
                    c.lba.is_none()
                        && usize::try_from(c.count)
                            .is_ok_and(|n| n <= super::super::atapi::REPLY_MAX),
                    "ATAPI reply length",
                )?;
            }
        }
        Ok(())
    }

    /// Checks a PIO block against the drive and the task file it comes
    /// from: re-issuing it must target the same sectors.
    fn check_block(
        &self,
        b: &PioBlock,
        tfs: &[TaskFile; 2],
        drives: &[Option<DriveImage>; 2],
    ) -> Result<(), SnapshotError> {
        let (Some(drive), Some(img)) = (
            self.drive(b.unit),
            drives.get(unit_index(b.unit)).copied().flatten(),
        ) else {
            return Err(invalid("PIO block for a unit without a drive"));
        };
        ensure(!drive.is_atapi(), "ATA PIO block on a CD-ROM")?;
        ensure(
            (1..=u32::from(drive.max_multiple.max(1))).contains(&b.per_block)
                && (1..=b.per_block).contains(&b.count)
                && block_bytes(b.count) <= self.pio.buf.len(),
            "PIO block size",
        )?;
        ensure(
            drive.range_ok(b.lba, u64::from(b.count)),
            "PIO block beyond the disk",
        )?;
        let tf = tfs.get(unit_index(b.unit)).ok_or(invalid("unit"))?;
        ensure(
            tf.lba(img.geometry) == Some(b.lba) && tf.nsector.min(b.per_block) == b.count,
            "PIO block does not match its task file",
        )
    }

    /// Reads and validates a channel state saved by [`Channel::save`],
    /// against this channel's drives and PIO buffer. Changes nothing.
    pub(crate) fn parse<'r>(&self, r: &mut Reader<'r>) -> Result<ChannelImage<'r>, SnapshotError> {
        let irq_level = r.bool("IRQ level")?;
        let selected = read_unit(r)?;
        let control = DeviceControl::from_bits_retain(r.u8()?);
        ensure(
            !control.contains(DeviceControl::SRST),
            "device control with SRST held",
        )?;
        let bm = read_bm(r)?;
        let deferred = Deferred {
            stop: r.bool("deferred stop")?,
            reset: r.bool("deferred reset")?,
        };
        let bus_master_on = r.bool("bus master flag")?;
        #[cfg(not(feature = "atapi"))]
        let _ = bus_master_on;
        let mut tfs = [TaskFile::after_reset(false); 2];
        let mut drives = [None; 2];
        for (i, u) in [Unit::Master, Unit::Slave].into_iter().enumerate() {
            let tf = read_tf(r)?;
            let d = self.parse_drive(u, r)?;
            if let Some(slot) = tfs.get_mut(i) {
                *slot = tf;
            }
            if let Some(slot) = drives.get_mut(i) {
                *slot = d;
            }
        }
        let present = |u: Unit| drives.get(unit_index(u)).is_some_and(Option::is_some);
        let status = |u: Unit| tfs.get(unit_index(u)).map_or(Status::empty(), |t| t.status);

        // The PIO data phase.
        let phase = match r.u8()? {
            phase_tag::IDLE => Phase::Idle,
            phase_tag::IDENTIFY => Phase::Identify(read_unit(r)?),
            phase_tag::READ => Phase::Read {
                unit: read_unit(r)?,
                per_block: r.u32()?,
            },
            phase_tag::WRITE => Phase::Write {
                unit: read_unit(r)?,
                per_block: r.u32()?,
            },
            #[cfg(feature = "atapi")]
            phase_tag::PACKET => Phase::Packet {
                unit: read_unit(r)?,
                dma: r.bool("ATAPI packet DMA flag")?,
            },
            #[cfg(feature = "atapi")]
            phase_tag::PACKET_IN => Phase::PacketIn(atapi_codec::read_data_in(r)?),
            #[cfg(not(feature = "atapi"))]
            phase_tag::PACKET | phase_tag::PACKET_IN => {
                return Err(SnapshotError::Mismatch {
                    what: "ATAPI support (feature atapi)",
                    saved: 1,
                    here: 0,
                });
            }
            _ => return Err(invalid("PIO phase")),
        };
        let pos = r.usize("PIO position")?;
        let end = r.usize("PIO block end")?;
        let live = r.usize("PIO buffer bytes")?;
        let buf_len = self.pio.buf.len();
        ensure(live <= buf_len, "PIO buffer bytes beyond the buffer")?;
        let pio_bytes = r.bytes(live)?;
        let phase_unit = match phase {
            Phase::Idle => None,
            Phase::Identify(u) | Phase::Read { unit: u, .. } | Phase::Write { unit: u, .. } => {
                Some(u)
            }
            #[cfg(feature = "atapi")]
            Phase::Packet { unit, .. } => Some(unit),
            #[cfg(feature = "atapi")]
            Phase::PacketIn(d) => Some(d.unit),
        };
        match phase_unit {
            None => ensure(pos == 0 && end == 0, "PIO position without a data phase")?,
            Some(u) => {
                ensure(present(u), "PIO data phase on a unit without a drive")?;
                ensure(
                    pos < end && end <= buf_len && end <= live,
                    "PIO position beyond the block or the buffer",
                )?;
                ensure(
                    status(u).contains(Status::DRQ) && !status(u).contains(Status::BSY),
                    "PIO data phase without DRQ",
                )?;
                let atapi_unit = self.drive(u).is_some_and(|d| d.is_atapi());
                match phase {
                    Phase::Read { per_block, .. } | Phase::Write { per_block, .. } => {
                        let max = self
                            .drive(u)
                            .map_or(1, |d| u32::from(d.max_multiple.max(1)));
                        ensure(
                            !atapi_unit && (1..=max).contains(&per_block),
                            "PIO phase sectors per block",
                        )?;
                        ensure(end % SECTOR_SIZE == 0, "PIO block length")?;
                    }
                    Phase::Identify(_) => {
                        ensure(end == SECTOR_SIZE, "IDENTIFY block length")?;
                    }
                    #[cfg(feature = "atapi")]
                    Phase::Packet { .. } => ensure(
                        atapi_unit && end == super::super::atapi::PACKET_BYTES,
                        "ATAPI packet phase",
                    )?,
                    #[cfg(feature = "atapi")]
                    Phase::PacketIn(d) => ensure(
                        atapi_unit
                            && d.limit != 0
                            && d.disk
                                .is_none_or(|off| off <= self.capacity(u).unwrap_or(0) * SECTOR),
                        "ATAPI data-in phase",
                    )?,
                    Phase::Idle => {}
                }
            }
        }

        // The operation outstanding.
        let mut pending = None;
        let mut saved_op = None;
        match r.u8()? {
            tag::IDLE => {}
            tag::DMA_PENDING => {
                let cmd = read_cmd(r)?;
                self.check_cmd(&cmd, false)?;
                ensure(!bm.active(), "DMA command waiting for START while ACTIVE")?;
                pending = Some(cmd);
            }
            tag::DMA => {
                let (cmd, prd_start, done) = self.read_walk(r, SECTOR, "DMA bytes completed")?;
                ensure(
                    matches!(cmd.kind, DmaKind::Read | DmaKind::Write)
                        || cfg!(feature = "atapi") && kind_code(cmd.kind) == 3,
                    "running DMA kind",
                )?;
                saved_op = Some(SavedOp::Dma {
                    cmd,
                    prd_start,
                    done,
                });
            }
            tag::TRIM => {
                let (cmd, prd_start, offset) =
                    self.read_walk(r, TRIM_ENTRY, "TRIM range offset")?;
                ensure(cmd.kind == DmaKind::Trim, "running TRIM kind")?;
                saved_op = Some(SavedOp::Trim {
                    cmd,
                    prd_start,
                    offset,
                });
            }
            tag::FLUSH => {
                let unit = read_unit(r)?;
                ensure(present(unit), "flush on a unit without a drive")?;
                let then = match r.u8()? {
                    0 => AfterFlush::Command,
                    1 => {
                        let cmd = read_cmd(r)?;
                        let stay_active = r.bool("DMA long-PRD flag")?;
                        ensure(
                            cmd.kind == DmaKind::Write && cmd.unit == unit,
                            "write-through flush after a DMA",
                        )?;
                        self.check_cmd(&cmd, true)?;
                        AfterFlush::Dma { cmd, stay_active }
                    }
                    2 => {
                        let b = read_block(r)?;
                        ensure(b.unit == unit, "write-through flush after a PIO block")?;
                        self.check_block(&b, &tfs, &drives)?;
                        AfterFlush::PioWrite(b)
                    }
                    _ => return Err(invalid("what follows a flush")),
                };
                saved_op = Some(SavedOp::Flush { unit, then });
            }
            tag::PIO_READ => {
                let b = read_block(r)?;
                self.check_block(&b, &tfs, &drives)?;
                saved_op = Some(SavedOp::PioRead(b));
            }
            tag::PIO_WRITE => {
                let b = read_block(r)?;
                self.check_block(&b, &tfs, &drives)?;
                ensure(
                    live >= block_bytes(b.count),
                    "PIO write block without its bytes",
                )?;
                saved_op = Some(SavedOp::PioWrite(b));
            }
            #[cfg(feature = "atapi")]
            tag::PACKET_READ => {
                let b = atapi_codec::read_cd_block(r)?;
                let u = b.after.unit;
                ensure(
                    self.drive(u).is_some_and(|d| d.is_atapi()),
                    "ATAPI READ block on a unit without a CD-ROM",
                )?;
                let medium = self.capacity(u).unwrap_or(0).saturating_mul(SECTOR);
                let start = b
                    .after
                    .disk
                    .and_then(|off| off.checked_sub(u64::try_from(b.len).ok()?));
                ensure(
                    b.len > 0
                        && b.start < 2048
                        && b.start.saturating_add(b.len) <= buf_len
                        && b.after.limit != 0
                        && start.is_some_and(|s| s < medium),
                    "ATAPI READ block",
                )?;
                saved_op = Some(SavedOp::PacketRead(b));
            }
            #[cfg(not(feature = "atapi"))]
            tag::PACKET_READ => {
                return Err(SnapshotError::Mismatch {
                    what: "ATAPI support (feature atapi)",
                    saved: 1,
                    here: 0,
                });
            }
            _ => return Err(invalid("operation tag")),
        }

        // Reachable combinations.
        let op_unit = match (&pending, &saved_op) {
            (Some(c), _) => Some(c.unit),
            (_, Some(SavedOp::Dma { cmd, .. } | SavedOp::Trim { cmd, .. })) => Some(cmd.unit),
            (_, Some(SavedOp::Flush { unit, .. })) => Some(*unit),
            (_, Some(SavedOp::PioRead(b) | SavedOp::PioWrite(b))) => Some(b.unit),
            #[cfg(feature = "atapi")]
            (_, Some(SavedOp::PacketRead(b))) => Some(b.after.unit),
            _ => None,
        };
        if let Some(u) = op_unit {
            ensure(
                phase_unit.is_none(),
                "PIO data phase during another operation",
            )?;
            let s = status(u);
            match (&pending, &saved_op) {
                (Some(_), _) | (_, Some(SavedOp::Dma { .. } | SavedOp::Trim { .. })) => {
                    ensure(s.contains(Status::DRQ), "DMA command without DRQ")?;
                }
                _ => ensure(s.contains(Status::BSY), "request in flight without BSY")?,
            }
        }
        if matches!(saved_op, Some(SavedOp::Dma { .. } | SavedOp::Trim { .. })) {
            ensure(bm.active(), "running DMA without BMDMA ACTIVE")?;
        }
        // A deferred STOP or SRST may outlive its request (a completion
        // delivered by a later drain leaves it for the next `settle`), so
        // it is no sign of a request; while an SRST is deferred the
        // devices' status is whatever the request's end left.
        for u in [Unit::Master, Unit::Slave] {
            let s = status(u);
            if deferred.reset {
                continue;
            }
            if op_unit == Some(u) {
                continue;
            }
            ensure(!s.contains(Status::BSY), "BSY with nothing in flight")?;
            if s.contains(Status::DRQ) {
                ensure(phase_unit == Some(u), "DRQ without a data phase")?;
            }
        }
        Ok(ChannelImage {
            irq_level,
            selected,
            control,
            bm,
            deferred,
            #[cfg(feature = "atapi")]
            bus_master_on,
            tfs,
            drives,
            phase,
            pos,
            end,
            pio_bytes,
            pending,
            saved_op,
        })
    }

    /// Installs a state [`Channel::parse`] accepted; issues nothing (see
    /// [`Channel::restart`]).
    pub(crate) fn apply(&mut self, img: ChannelImage<'_>) {
        if self.irq_level != img.irq_level {
            self.irq_level = img.irq_level;
            self.irq.set_level(img.irq_level);
        }
        self.selected = img.selected;
        self.control = img.control;
        self.bm = img.bm;
        self.deferred = img.deferred;
        #[cfg(feature = "atapi")]
        {
            self.bus_master_on = img.bus_master_on;
        }
        for (i, u) in [Unit::Master, Unit::Slave].into_iter().enumerate() {
            let slot = self.units.get_mut(u);
            if let Some(tf) = img.tfs.get(i) {
                slot.tf = *tf;
            }
            if let (Some(d), Some(Some(saved))) = (slot.drive.as_mut(), img.drives.get(i)) {
                d.geometry = saved.geometry;
                d.identify.set_current_geometry(saved.geometry);
                d.multiple = saved.multiple;
                d.identify.set_multiple(saved.multiple);
                d.write_cache = saved.write_cache;
                d.identify.set_write_cache(saved.write_cache);
                d.identify.set_transfer_mode(saved.transfer);
                #[cfg(feature = "atapi")]
                {
                    d.atapi = saved.atapi;
                }
            }
        }
        self.pio.buf.copy_from(0, img.pio_bytes);
        self.pio.phase = img.phase;
        self.pio.pos = img.pos;
        self.pio.end = img.end;
        self.op = match img.pending {
            Some(c) => Op::DmaPending(c),
            None => Op::Idle,
        };
        self.restart = img.saved_op;
        if let Some(SavedOp::Dma { prd_start, .. } | SavedOp::Trim { prd_start, .. }) = self.restart
        {
            self.prd_start = prd_start;
        }
    }

    /// Bytes of the PIO buffer.
    pub(crate) fn pio_buffer_len(&self) -> usize {
        self.pio.buf.len()
    }

    /// True when a restored operation waits for [`Channel::restart`].
    pub(crate) fn restart_pending(&self) -> bool {
        self.restart.is_some()
    }

    /// Re-issues the operation a restore brought back, from where it was.
    pub(crate) fn restart(&mut self) {
        let Some(saved) = self.restart.take() else {
            return;
        };
        match saved {
            SavedOp::Dma {
                cmd,
                prd_start,
                done,
            } => self.restart_dma(cmd, prd_start, done),
            SavedOp::Trim {
                cmd,
                prd_start,
                offset,
            } => self.restart_trim(cmd, prd_start, offset),
            SavedOp::Flush { unit, then } => {
                let outcome = self.flush_start(unit, then);
                self.finish(unit, outcome);
            }
            SavedOp::PioRead(b) => {
                let outcome = self.pio_submit_block(b.unit, b.per_block, PioDir::Read);
                self.finish(b.unit, outcome);
            }
            SavedOp::PioWrite(b) => {
                let len = block_bytes(b.count);
                let outcome = self.pio_submit_block(b.unit, b.per_block, PioDir::Write { len });
                self.finish(b.unit, outcome);
            }
            #[cfg(feature = "atapi")]
            SavedOp::PacketRead(b) => {
                let len = u64::try_from(b.len).unwrap_or(0);
                let before = super::packet::DataIn {
                    left: b.after.left.saturating_add(len),
                    disk: b.after.disk.map(|d| d.saturating_sub(len)),
                    ..b.after
                };
                let outcome = self.packet_next_block(before, 0);
                self.finish(b.after.unit, outcome);
            }
        }
        self.settle();
    }

    /// READ/WRITE DMA again: the PRD walk from where it started, the bytes
    /// completed skipped, then the transfer.
    fn restart_dma(&mut self, cmd: DmaCmd, prd_start: u32, done: u64) {
        let dir = if cmd.kind == DmaKind::Write {
            BlockDir::Write
        } else {
            BlockDir::Read
        };
        self.bm.cursor = prd_start;
        self.op = Op::Dma(DmaRun {
            cmd,
            stay_active: false,
            sg: SgList::new(),
            xfer: SgTransfer::of_sectors(
                self.requester,
                dir,
                cmd.lba.unwrap_or(0),
                u64::from(cmd.count),
            ),
        });
        let Some(stay) = self.dma_walk(cmd) else {
            return;
        };
        let skipped = match &mut self.op {
            Op::Dma(DmaRun {
                stay_active,
                sg,
                xfer,
                ..
            }) => {
                *stay_active = stay;
                xfer.skip(sg.entries(), done)
            }
            _ => Ok(()),
        };
        match skipped {
            Ok(()) => self.dma_advance(),
            Err(e) => {
                self.op = Op::Idle;
                self.dma_fail(cmd, 0, Failure::Device, IdeError::Transfer(e));
            }
        }
    }

    /// TRIM again: the PRD walk, then the ranges from `offset` on.
    fn restart_trim(&mut self, cmd: DmaCmd, prd_start: u32, offset: u64) {
        self.bm.cursor = prd_start;
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
        if let Op::Trim { run, sg } = &mut self.op {
            run.stay_active = stay;
            let mut left = offset;
            let mut index = sg.entries().len();
            let mut within = 0;
            for (i, e) in sg.entries().iter().enumerate() {
                if left < e.len {
                    index = i;
                    within = left;
                    break;
                }
                left -= e.len;
            }
            run.offset = offset;
            run.sg_index = index;
            run.sg_offset = within;
        }
        self.trim_advance();
    }
}

/// Bytes in `n` sectors.
fn block_bytes(n: u32) -> usize {
    usize::try_from(n)
        .unwrap_or(usize::MAX)
        .saturating_mul(SECTOR_SIZE)
}
