//! The MMC command set: a 12-byte packet in, an [`Action`] out (and the
//! reply bytes, for commands that return data).

use super::super::identify::IdentifyData;
use super::{AtapiState, Changed, MediaEvent, Sense, sense_key};

/// The largest reply a command other than READ builds (READ DISC
/// INFORMATION: 34 bytes; INQUIRY: 36).
pub(crate) const REPLY_MAX: usize = 64;

/// Most blocks one READ may ask for: its 512-byte sector count must fit
/// the 32 bits of a DMA command.
const MAX_READ_BLOCKS: u64 = (u32::MAX / 4) as u64;

/// Images larger than a CD (80 minutes: 360 000 blocks) report the DVD-ROM
/// profile in GET CONFIGURATION, as QEMU does.
const CD_MAX_BLOCKS: u64 = 360_000;

/// MMC opcodes the drive implements (and those it checks flags of).
pub mod op {
    /// TEST UNIT READY.
    pub const TEST_UNIT_READY: u8 = 0x00;
    /// REQUEST SENSE.
    pub const REQUEST_SENSE: u8 = 0x03;
    /// INQUIRY.
    pub const INQUIRY: u8 = 0x12;
    /// START STOP UNIT.
    pub const START_STOP_UNIT: u8 = 0x1B;
    /// PREVENT ALLOW MEDIUM REMOVAL.
    pub const PREVENT_ALLOW: u8 = 0x1E;
    /// READ CAPACITY.
    pub const READ_CAPACITY: u8 = 0x25;
    /// READ(10).
    pub const READ_10: u8 = 0x28;
    /// SEEK(10) (not implemented; a non-data command).
    pub const SEEK_10: u8 = 0x2B;
    /// READ TOC/PMA/ATIP.
    pub const READ_TOC: u8 = 0x43;
    /// GET CONFIGURATION.
    pub const GET_CONFIGURATION: u8 = 0x46;
    /// GET EVENT STATUS NOTIFICATION.
    pub const GET_EVENT_STATUS: u8 = 0x4A;
    /// READ DISC INFORMATION.
    pub const READ_DISC_INFORMATION: u8 = 0x51;
    /// MODE SENSE(10).
    pub const MODE_SENSE_10: u8 = 0x5A;
    /// READ(12).
    pub const READ_12: u8 = 0xA8;
    /// READ DVD STRUCTURE (not implemented; checks for a medium).
    pub const READ_DVD_STRUCTURE: u8 = 0xAD;
    /// MECHANISM STATUS.
    pub const MECHANISM_STATUS: u8 = 0xBD;
    /// READ CD (not implemented; checks for a medium).
    pub const READ_CD: u8 = 0xBE;
}

/// Commands that run while a unit attention is pending.
fn allows_unit_attention(opcode: u8) -> bool {
    matches!(
        opcode,
        op::REQUEST_SENSE | op::INQUIRY | op::GET_CONFIGURATION | op::GET_EVENT_STATUS
    )
}

/// Commands that need a medium.
fn checks_ready(opcode: u8) -> bool {
    matches!(
        opcode,
        op::TEST_UNIT_READY
            | op::READ_CAPACITY
            | op::READ_10
            | op::SEEK_10
            | op::READ_TOC
            | op::READ_DISC_INFORMATION
            | op::READ_12
            | op::READ_DVD_STRUCTURE
            | op::READ_CD
    )
}

/// Commands that may move data to the host (a PIO byte-count limit of 0
/// is refused for them).
pub(crate) fn moves_data(opcode: u8) -> bool {
    matches!(
        opcode,
        op::REQUEST_SENSE
            | op::INQUIRY
            | op::READ_CAPACITY
            | op::READ_10
            | op::READ_TOC
            | op::GET_CONFIGURATION
            | op::GET_EVENT_STATUS
            | op::READ_DISC_INFORMATION
            | op::MODE_SENSE_10
            | op::READ_12
            | op::MECHANISM_STATUS
    )
}

/// What the channel does with a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Success without data: Status 0x50, interrupt reason 3, IRQ.
    Done,
    /// Success with the first `len` bytes of the reply buffer to send.
    Data(usize),
    /// Read `blocks` (> 0) 2048-byte blocks from block `lba` (checked
    /// against the medium).
    Read {
        /// First block.
        lba: u64,
        /// Blocks (at most 2^30 - 1).
        blocks: u32,
    },
    /// CHECK CONDITION with this sense (stored by the caller).
    Check(Sense),
    /// A unit attention is pending: Error = key << 4, Status ERR only,
    /// interrupt reason 0, IRQ (the sense stays).
    UnitAttention,
    /// A data command in PIO with a byte-count limit of 0: ATA ABRT.
    Abort,
}

/// Reads of the packet, out-of-range bytes read 0 (a packet is always 12
/// bytes, so they never are).
fn b(cdb: &[u8], i: usize) -> u8 {
    cdb.get(i).copied().unwrap_or(0)
}

fn be16(cdb: &[u8], i: usize) -> u16 {
    u16::from_be_bytes([b(cdb, i), b(cdb, i + 1)])
}

fn be32(cdb: &[u8], i: usize) -> u32 {
    u32::from_be_bytes([b(cdb, i), b(cdb, i + 1), b(cdb, i + 2), b(cdb, i + 3)])
}

/// Writes `v` at `out[i..]` big-endian, as far as it fits.
fn put(out: &mut [u8], i: usize, v: &[u8]) {
    if let Some(dst) = out.get_mut(i..i + v.len()) {
        dst.copy_from_slice(v);
    }
}

/// The reply length: what the command built, cut at the allocation length.
fn reply(len: usize, alloc: u16) -> Action {
    Action::Data(len.min(usize::from(alloc)))
}

/// Runs the packet `cdb` on a drive in state `st` whose medium holds
/// `blocks` 2048-byte blocks (0: no medium), writing any reply into `out`.
/// `pio_no_limit`: PIO with a byte-count limit the device cannot use (0).
pub(crate) fn execute(
    st: &mut AtapiState,
    identify: &IdentifyData,
    cdb: &[u8],
    blocks: u64,
    pio_no_limit: bool,
    out: &mut [u8; REPLY_MAX],
) -> Action {
    let opcode = b(cdb, 0);
    let present = st.medium_present(blocks);
    if st.sense.key == sense_key::UNIT_ATTENTION && !allows_unit_attention(opcode) {
        return Action::UnitAttention;
    }
    if !allows_unit_attention(opcode) && present && st.changed != Changed::No {
        return Action::Check(if st.changed == Changed::Loaded {
            st.changed = Changed::Reported;
            Sense::NO_MEDIUM
        } else {
            st.changed = Changed::No;
            Sense::MEDIUM_CHANGED
        });
    }
    if checks_ready(opcode) && !present {
        return Action::Check(Sense::NO_MEDIUM);
    }
    if pio_no_limit && moves_data(opcode) {
        return Action::Abort;
    }
    *out = [0; REPLY_MAX];
    match opcode {
        op::TEST_UNIT_READY => Action::Done,
        op::REQUEST_SENSE => request_sense(st, cdb, out),
        op::INQUIRY => inquiry(identify, cdb, out),
        op::START_STOP_UNIT => start_stop(st, cdb, blocks),
        op::PREVENT_ALLOW => {
            st.locked = b(cdb, 4) & 1 != 0;
            Action::Done
        }
        op::READ_CAPACITY => {
            let last = u32::try_from(blocks.saturating_sub(1)).unwrap_or(u32::MAX);
            put(out, 0, &last.to_be_bytes());
            put(out, 4, &2048u32.to_be_bytes());
            Action::Data(8)
        }
        op::READ_10 => read(u64::from(be32(cdb, 2)), u64::from(be16(cdb, 7)), blocks),
        op::READ_12 => read(u64::from(be32(cdb, 2)), u64::from(be32(cdb, 6)), blocks),
        op::READ_TOC => read_toc(cdb, blocks, out),
        op::GET_CONFIGURATION => get_configuration(cdb, blocks, present, out),
        op::GET_EVENT_STATUS => event_status(st, cdb, present, out),
        op::READ_DISC_INFORMATION => {
            if b(cdb, 1) & 0x07 != 0 {
                return Action::Check(Sense::INVALID_FIELD);
            }
            put(out, 0, &[0, 32, 0x0E, 1, 1, 1, 1, 0x20]);
            reply(34, be16(cdb, 7))
        }
        op::MODE_SENSE_10 => mode_sense(st, cdb, out),
        op::MECHANISM_STATUS => {
            put(out, 5, &[1]);
            reply(8, be16(cdb, 8))
        }
        _ => Action::Check(Sense::INVALID_OPCODE),
    }
}

/// REQUEST SENSE: fixed-format sense data (18 bytes); reading a unit
/// attention clears it.
fn request_sense(st: &mut AtapiState, cdb: &[u8], out: &mut [u8]) -> Action {
    let s = st.sense;
    put(out, 0, &[0xF0, 0, s.key & 0x0F]);
    put(out, 7, &[10]);
    put(out, 12, &[s.asc, s.ascq]);
    if s.key == sense_key::UNIT_ATTENTION {
        st.sense = Sense::default();
    }
    reply(18, u16::from(b(cdb, 4)))
}

/// INQUIRY: standard data only (36 bytes); vital product data pages are
/// refused.
fn inquiry(identify: &IdentifyData, cdb: &[u8], out: &mut [u8]) -> Action {
    if b(cdb, 1) & 1 != 0 {
        return Action::Check(Sense::INVALID_FIELD);
    }
    // Peripheral type 5 (CD/DVD), removable, SPC-3 response format 2
    // with HiSup... as QEMU: version 0, byte 3 = 0x21, additional length 31.
    put(out, 0, &[0x05, 0x80, 0x00, 0x21, 31]);
    put(out, 8, b"VMDMA   ");
    if let Some(product) = out.get_mut(16..32) {
        identify.string(27, 8, product);
    }
    if let Some(rev) = out.get_mut(32..36) {
        identify.string(23, 2, rev);
    }
    reply(36, u16::from(b(cdb, 4)))
}

/// START STOP UNIT: LoEj opens or closes the tray (the medium stays in the
/// drive); ejecting a locked drive is refused.
fn start_stop(st: &mut AtapiState, cdb: &[u8], blocks: u64) -> Action {
    let byte4 = b(cdb, 4);
    let (start, loej, power) = (byte4 & 1 != 0, byte4 & 2 != 0, byte4 >> 4);
    if power != 0 || !loej {
        return Action::Done;
    }
    if !start {
        if st.locked && !st.tray_open {
            let key = if blocks > 0 {
                sense_key::NOT_READY
            } else {
                sense_key::ILLEGAL_REQUEST
            };
            return Action::Check(Sense::new(key, super::asc::REMOVAL_PREVENTED));
        }
        st.tray_open = true;
    } else {
        st.tray_open = false;
    }
    Action::Done
}

/// READ(10)/(12): range-checked in 64 bits.
fn read(lba: u64, count: u64, blocks: u64) -> Action {
    if count == 0 {
        return Action::Done;
    }
    match lba.checked_add(count) {
        Some(end) if lba < blocks && end <= blocks => match u32::try_from(count) {
            Ok(n) if count <= MAX_READ_BLOCKS => Action::Read { lba, blocks: n },
            _ => Action::Check(Sense::INVALID_FIELD),
        },
        _ => Action::Check(Sense::OUT_OF_RANGE),
    }
}

/// A block address as MSF (0, minutes, seconds, frames), 2 seconds of
/// lead-in added.
fn msf(lba: u64) -> [u8; 4] {
    let frames = u32::try_from(lba.saturating_add(150)).unwrap_or(u32::MAX);
    let low = |v: u32| v.to_le_bytes().first().copied().unwrap_or(0);
    [
        0,
        low(frames / (75 * 60)),
        low((frames / 75) % 60),
        low(frames % 75),
    ]
}

/// An address field: MSF or a big-endian block number.
fn address(lba: u64, use_msf: bool) -> [u8; 4] {
    if use_msf {
        msf(lba)
    } else {
        u32::try_from(lba).unwrap_or(u32::MAX).to_be_bytes()
    }
}

/// READ TOC/PMA/ATIP formats 0 (TOC: track 1 and the lead-out) and 1
/// (session information). The format is in byte 9 bits 7:6 (SFF-8020i),
/// or, when those are 0, in byte 2 bits 3:0 (MMC).
fn read_toc(cdb: &[u8], blocks: u64, out: &mut [u8]) -> Action {
    let format = match b(cdb, 9) >> 6 {
        0 => b(cdb, 2) & 0x0F,
        f => f,
    };
    let use_msf = b(cdb, 1) & 2 != 0;
    let start = b(cdb, 6);
    let alloc = be16(cdb, 7);
    match format {
        0 => {
            if start > 1 && start != 0xAA {
                return Action::Check(Sense::INVALID_FIELD);
            }
            put(out, 2, &[1, 1]);
            let mut len = 4;
            if start <= 1 {
                put(out, len, &[0, 0x14, 1, 0]);
                put(out, len + 4, &address(0, use_msf));
                len += 8;
            }
            put(out, len, &[0, 0x16, 0xAA, 0]);
            put(out, len + 4, &address(blocks, use_msf));
            len += 8;
            put(out, 0, &u16::try_from(len - 2).unwrap_or(0).to_be_bytes());
            reply(len, alloc)
        }
        1 => {
            put(out, 0, &[0, 0x0A, 1, 1]);
            reply(12, alloc)
        }
        _ => Action::Check(Sense::INVALID_FIELD),
    }
}

/// GET CONFIGURATION from feature 0: the header with the current profile
/// and the profile list (DVD-ROM, CD-ROM).
fn get_configuration(cdb: &[u8], blocks: u64, present: bool, out: &mut [u8]) -> Action {
    if be16(cdb, 2) != 0 {
        return Action::Check(Sense::INVALID_FIELD);
    }
    let (dvd, cd) = (0x0010u16, 0x0008u16);
    let current = match (present, blocks > CD_MAX_BLOCKS) {
        (false, _) => 0,
        (true, true) => dvd,
        (true, false) => cd,
    };
    put(out, 0, &16u32.to_be_bytes());
    put(out, 6, &current.to_be_bytes());
    put(out, 8, &[0, 0, 0x03, 8]);
    put(out, 12, &dvd.to_be_bytes());
    put(out, 14, &[u8::from(current == dvd)]);
    put(out, 16, &cd.to_be_bytes());
    put(out, 18, &[u8::from(current == cd)]);
    reply(20, be16(cdb, 7).min(512))
}

/// GET EVENT STATUS NOTIFICATION, polled only: the media class (one-shot
/// event, tray and medium status) or "no event available".
fn event_status(st: &mut AtapiState, cdb: &[u8], present: bool, out: &mut [u8]) -> Action {
    if b(cdb, 1) & 1 == 0 {
        return Action::Check(Sense::INVALID_FIELD);
    }
    let alloc = be16(cdb, 7);
    const MEDIA_CLASS: u8 = 0x10;
    if b(cdb, 4) & MEDIA_CLASS == 0 {
        put(out, 0, &[0, 0, 0x80, MEDIA_CLASS]);
        return reply(4, alloc);
    }
    let code = if st.tray_open {
        0
    } else {
        match core::mem::take(&mut st.event) {
            MediaEvent::None => 0,
            MediaEvent::EjectRequest => 1,
            MediaEvent::NewMedia => 2,
        }
    };
    let status = if st.tray_open {
        1
    } else {
        u8::from(present) << 1
    };
    put(out, 0, &[0, 4, 0x04, MEDIA_CLASS, code, status, 0, 0]);
    reply(8, alloc)
}

/// MODE SENSE(10), current values of pages 01h (error recovery) and 2Ah
/// (capabilities); no block descriptor.
fn mode_sense(st: &AtapiState, cdb: &[u8], out: &mut [u8]) -> Action {
    let page = b(cdb, 2) & 0x3F;
    let pc = b(cdb, 2) >> 6;
    let alloc = be16(cdb, 7);
    match pc {
        0 => {}
        3 => {
            return Action::Check(Sense::new(
                sense_key::ILLEGAL_REQUEST,
                super::asc::SAVING_NOT_SUPPORTED,
            ));
        }
        _ => return Action::Check(Sense::INVALID_FIELD),
    }
    let len = match page {
        0x01 => {
            put(out, 8, &[0x01, 6, 0, 5]);
            16
        }
        0x2A => {
            let lock = if st.locked { 0x02 } else { 0 };
            put(out, 8, &[0x2A, 20, 0x3B, 0, 0x71, 0x60, 0x29 | lock, 0]);
            put(out, 16, &704u16.to_be_bytes()); // max read speed (4x), KB/s
            put(out, 18, &2u16.to_be_bytes()); // volume levels
            put(out, 20, &512u16.to_be_bytes()); // buffer, KiB
            put(out, 22, &704u16.to_be_bytes()); // current read speed
            30
        }
        _ => return Action::Check(Sense::INVALID_FIELD),
    };
    put(out, 0, &u16::try_from(len - 2).unwrap_or(0).to_be_bytes());
    put(out, 2, &[0x70]);
    reply(len, alloc)
}
