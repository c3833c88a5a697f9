//! The ATAPI CD-ROM (feature `atapi`): the drive's own state (sense data,
//! tray, lock, media-change sequence, GESN event) and the MMC command set,
//! as pure functions of a 12-byte packet. The channel (`channel::packet`)
//! carries packets in and data out (PIO with the byte-count limit, or the
//! bus master); this module decides what a packet means.
//!
//! Behaviour follows QEMU 7.2's `ide-cd` (the project's reference
//! `qemu-atapi-behaviour.md`), with these differences:
//! - READ(10)/(12) check `lba + count` in 64-bit arithmetic, and a
//!   transfer length that does not fit the command (more than 2^30 blocks)
//!   is refused with 05/24 (QEMU: a 32-bit sum that can wrap).
//! - READ TOC format 2 (raw), READ CD, READ DVD STRUCTURE, SEEK and SET CD
//!   SPEED are not implemented (05/20), nor INQUIRY vital product data
//!   pages (05/24).
//! - In PIO, a byte-count limit of 1 (no even block size possible) for a
//!   transfer of more than one byte is refused like a limit of 0 (ATA
//!   ABRT); QEMU would offer empty blocks.
//!
//! # No-panic contract
//! Every field of the packet is read with bounds-checked accessors; reply
//! buffers are fixed arrays written through `get_mut`; block arithmetic is
//! 64-bit and checked.

mod commands;

pub use commands::op;
pub(crate) use commands::{Action, REPLY_MAX, execute};

/// Bytes in a command packet (IDENTIFY PACKET DEVICE word 0 bits 1:0 = 0).
pub const PACKET_BYTES: usize = 12;
/// Bytes in a CD-ROM block.
pub const CD_BLOCK: u64 = 2048;
/// 512-byte sectors of the backend per CD-ROM block.
pub const SECTORS_PER_BLOCK: u64 = 4;

/// ATAPI interrupt reason (Sector Count register) values.
pub mod reason {
    /// CoD: the device waits for a command packet.
    pub const COMMAND: u8 = 0x01;
    /// IO: data to the host.
    pub const DATA_IN: u8 = 0x02;
    /// CoD|IO: the status phase (command complete).
    pub const STATUS: u8 = 0x03;
}

/// SCSI sense keys used by the drive.
pub mod sense_key {
    /// No sense.
    pub const NO_SENSE: u8 = 0x00;
    /// Not ready (no medium).
    pub const NOT_READY: u8 = 0x02;
    /// Illegal request.
    pub const ILLEGAL_REQUEST: u8 = 0x05;
    /// Unit attention (medium may have changed).
    pub const UNIT_ATTENTION: u8 = 0x06;
    /// Aborted command.
    pub const ABORTED_COMMAND: u8 = 0x0B;
}

/// Additional sense codes (ASC) used by the drive.
pub mod asc {
    /// Invalid command operation code.
    pub const INVALID_OPCODE: u8 = 0x20;
    /// Logical block address out of range.
    pub const LBA_OUT_OF_RANGE: u8 = 0x21;
    /// Invalid field in CDB.
    pub const INVALID_FIELD: u8 = 0x24;
    /// Not ready to ready change, medium may have changed.
    pub const MEDIUM_MAY_HAVE_CHANGED: u8 = 0x28;
    /// Saving parameters not supported.
    pub const SAVING_NOT_SUPPORTED: u8 = 0x39;
    /// Medium not present.
    pub const MEDIUM_NOT_PRESENT: u8 = 0x3A;
    /// Medium removal prevented.
    pub const REMOVAL_PREVENTED: u8 = 0x53;
}

/// Sense data: key, ASC, ASCQ.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sense {
    /// Sense key (low 4 bits).
    pub key: u8,
    /// Additional sense code.
    pub asc: u8,
    /// Additional sense code qualifier.
    pub ascq: u8,
}

impl Sense {
    /// `key`/`asc`/00.
    pub const fn new(key: u8, asc: u8) -> Self {
        Sense { key, asc, ascq: 0 }
    }
    /// 02/3A/00: medium not present.
    pub const NO_MEDIUM: Sense = Sense::new(sense_key::NOT_READY, asc::MEDIUM_NOT_PRESENT);
    /// 06/28/00: medium may have changed.
    pub const MEDIUM_CHANGED: Sense =
        Sense::new(sense_key::UNIT_ATTENTION, asc::MEDIUM_MAY_HAVE_CHANGED);
    /// 05/20/00: invalid opcode.
    pub const INVALID_OPCODE: Sense = Sense::new(sense_key::ILLEGAL_REQUEST, asc::INVALID_OPCODE);
    /// 05/24/00: invalid field in CDB.
    pub const INVALID_FIELD: Sense = Sense::new(sense_key::ILLEGAL_REQUEST, asc::INVALID_FIELD);
    /// 0B/00/00: aborted command (a DMA that reached no memory).
    pub const ABORTED: Sense = Sense::new(sense_key::ABORTED_COMMAND, 0);
    /// 05/21/00: LBA out of range.
    pub const OUT_OF_RANGE: Sense = Sense::new(sense_key::ILLEGAL_REQUEST, asc::LBA_OUT_OF_RANGE);
}

/// GESN media event codes (one-shot).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum MediaEvent {
    /// Nothing to report.
    #[default]
    None,
    /// The host asked for the medium to be ejected (code 1).
    EjectRequest,
    /// A new medium was loaded (code 2).
    NewMedia,
}

/// Where the drive is in the sequence a host-side medium change starts:
/// the first non-ALLOW_UA command gets 02/3A, the next 06/28.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Changed {
    /// No change pending.
    #[default]
    No,
    /// Changed; the next command reports "no medium".
    Loaded,
    /// "No medium" reported; the next command reports the change.
    Reported,
}

/// The state of one ATAPI drive besides its task file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct AtapiState {
    /// The sense data of the last error (kept across successes; a unit
    /// attention is cleared by REQUEST SENSE).
    pub sense: Sense,
    /// The tray is open (the medium, if any, is out of reach).
    pub tray_open: bool,
    /// PREVENT ALLOW MEDIUM REMOVAL: the guest locked the tray.
    pub locked: bool,
    /// The media-change sequence.
    pub changed: Changed,
    /// The pending GESN media event.
    pub event: MediaEvent,
}

impl AtapiState {
    /// What every reset restores: sense cleared, no change pending, tray
    /// closed and unlocked (as QEMU's `ide_reset`).
    pub(crate) fn reset(&mut self) {
        *self = AtapiState::default();
    }

    /// A medium is reachable: tray closed and `blocks` > 0.
    pub(crate) fn medium_present(&self, blocks: u64) -> bool {
        !self.tray_open && blocks > 0
    }

    /// The host changed the medium (tray closed afterwards): the 3A/28
    /// sequence and the GESN new-media event are armed.
    pub(crate) fn medium_changed(&mut self) {
        self.tray_open = false;
        self.changed = Changed::Loaded;
        self.event = MediaEvent::NewMedia;
    }
}
