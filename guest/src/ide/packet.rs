//! The ATAPI PACKET protocol, polled: the 12-byte command packet, data in
//! by PIO (DRQ blocks of the size the device puts in LBA mid/high, at most
//! the byte-count limit) or by the bus master, and the status phase.

use vmdma_guest::ata::regs::{bm, reg, status};
use vmdma_guest::ata::taskfile::Drive;

use super::AtaError;
use super::channel::Channel;
use crate::arch::io;

/// PACKET.
pub const PACKET: u8 = 0xA0;
/// IDENTIFY PACKET DEVICE.
pub const IDENTIFY_PACKET_DEVICE: u8 = 0xA1;
/// Interrupt reason (Sector Count) bits 1:0: command packet, data in,
/// status.
pub const REASON_COMMAND: u8 = 0x01;
/// Data to the host.
pub const REASON_DATA_IN: u8 = 0x02;
/// Status phase.
pub const REASON_STATUS: u8 = 0x03;
/// DRQ blocks one command may have at most (bounds the loop).
const MAX_BLOCKS: usize = 4096;

/// How a packet command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketOutcome {
    /// Bytes the device offered (those past the buffer are read and
    /// dropped).
    pub bytes: usize,
    /// DRQ blocks.
    pub blocks: usize,
    /// The largest DRQ block.
    pub largest: u16,
    /// A block other than the last had an odd size.
    pub odd_inner_block: bool,
    /// Final Status (the read acknowledges INTRQ).
    pub status: u8,
    /// Final Error (sense key in bits 7:4 after CHECK CONDITION).
    pub error: u8,
    /// Interrupt reason at the end.
    pub reason: u8,
}

impl PacketOutcome {
    /// Good status: no ERR, DRQ and BSY clear, interrupt reason "status".
    pub fn good(&self) -> bool {
        self.status & (status::ERR | status::DRQ | status::BSY) == 0
            && self.reason & 3 == REASON_STATUS
    }
}

/// Issues PACKET to `drive` (Features = `features`, byte-count limit
/// `limit`) and sends `cdb`; returns the Status seen before the packet.
fn send(
    ch: &Channel,
    drive: Drive,
    cdb: &[u8; 12],
    features: u8,
    limit: u16,
) -> Result<u8, AtaError> {
    ch.select(drive)?;
    let [lo, hi] = limit.to_le_bytes();
    ch.write(reg::ERROR_FEATURES, features);
    ch.write(reg::LBA_MID, lo);
    ch.write(reg::LBA_HIGH, hi);
    ch.command(PACKET);
    let st = ch.wait_not_busy("DRQ for the command packet")?;
    if st & status::ERR != 0 {
        return Ok(st);
    }
    if st & status::DRQ == 0 || ch.read(reg::COUNT) & 3 != REASON_COMMAND {
        return Err(AtaError::NoDataRequest { status: st });
    }
    io::outsw(ch.data_port(), cdb);
    Ok(st)
}

/// Runs `cdb` by PIO with byte-count limit `limit`, reading the data into
/// `buf`.
pub fn pio(
    ch: &Channel,
    drive: Drive,
    cdb: &[u8; 12],
    limit: u16,
    buf: &mut [u8],
) -> Result<PacketOutcome, AtaError> {
    let before = send(ch, drive, cdb, 0, limit)?;
    let mut out = PacketOutcome {
        bytes: 0,
        blocks: 0,
        largest: 0,
        odd_inner_block: false,
        status: before,
        error: 0,
        reason: 0,
    };
    if before & status::ERR != 0 {
        return Ok(finish(ch, out));
    }
    let mut last_odd = false;
    for _ in 0..MAX_BLOCKS {
        let st = ch.wait_not_busy("PACKET data block or status")?;
        if st & status::DRQ == 0 {
            break;
        }
        if ch.read(reg::COUNT) & 3 != REASON_DATA_IN {
            return Err(AtaError::NoDataRequest { status: st });
        }
        let n = u16::from_le_bytes([ch.read(reg::LBA_MID), ch.read(reg::LBA_HIGH)]);
        if last_odd {
            out.odd_inner_block = true;
        }
        last_odd = n % 2 == 1;
        out.blocks += 1;
        out.largest = out.largest.max(n);
        let n = usize::from(n);
        for i in 0..n.div_ceil(2) {
            let w = io::inw(ch.data_port()).to_le_bytes();
            for (j, b) in w.iter().enumerate() {
                let at = out.bytes + 2 * i + j;
                if 2 * i + j < n
                    && let Some(slot) = buf.get_mut(at)
                {
                    *slot = *b;
                }
            }
        }
        out.bytes += n;
    }
    Ok(finish(ch, out))
}

/// Runs `cdb` with the bus master (the PRD table already at `prd`, data
/// to memory).
pub fn dma(
    ch: &Channel,
    drive: Drive,
    cdb: &[u8; 12],
    prd: u32,
) -> Result<PacketOutcome, AtaError> {
    ch.stop_bus_master();
    let _ = ch.clear_bm_status();
    ch.set_prd_pointer(prd);
    ch.set_bm_cmd(bm::CMD_WRITE_MEMORY);
    let before = send(ch, drive, cdb, 1, 0)?;
    let out = PacketOutcome {
        bytes: 0,
        blocks: 0,
        largest: 0,
        odd_inner_block: false,
        status: before,
        error: 0,
        reason: 0,
    };
    if before & status::ERR != 0 {
        return Ok(finish(ch, out));
    }
    ch.set_bm_cmd(bm::CMD_WRITE_MEMORY | bm::CMD_START);
    let mut s = 0;
    for _ in 0..1_000_000 {
        s = ch.bm_status();
        if s & bm::STATUS_INT != 0 || s & bm::STATUS_ACTIVE == 0 {
            break;
        }
    }
    ch.set_bm_cmd(bm::CMD_WRITE_MEMORY);
    let st = ch.wait_idle("PACKET DMA status phase")?;
    if s & bm::STATUS_INT == 0 || s & bm::STATUS_ERR != 0 {
        return Err(AtaError::BusMaster {
            bm_status: s,
            status: st,
        });
    }
    Ok(finish(ch, out))
}

fn finish(ch: &Channel, mut out: PacketOutcome) -> PacketOutcome {
    out.reason = ch.read(reg::COUNT);
    out.error = ch.error();
    out.status = ch.status();
    out
}
