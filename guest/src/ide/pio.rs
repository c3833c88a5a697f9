//! PIO protocols: data-in (READ SECTORS, READ MULTIPLE,
//! IDENTIFY) and data-out (WRITE SECTORS, WRITE MULTIPLE), with 16-bit
//! (`rep insw`/`outsw`) or 32-bit (`rep insd`/`outsd`) data transfers.
//!
//! Completion is found by polling Alternate Status; the final Status read
//! acknowledges the interrupt.

use vmdma_guest::ata::regs::{cmd, status};
use vmdma_guest::ata::taskfile::{Drive, TaskFile};
use vmdma_guest::stamp::SECTOR;

use super::AtaError;
use super::channel::Channel;
use crate::arch::io;

/// Width of data-port accesses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Width {
    /// 16-bit (`insw`/`outsw`).
    Bits16,
    /// 32-bit (`insd`/`outsd`), as Linux's ata_piix uses.
    Bits32,
}

fn failed(s: u8) -> bool {
    s & (status::ERR | status::DF) != 0
}

/// The device's error: reads Error and Status (acknowledging INTRQ).
fn device_error(ch: &Channel) -> AtaError {
    let error = ch.error();
    AtaError::Device {
        status: ch.status(),
        error,
    }
}

/// Runs a PIO data-in command that moves `buf.len()` bytes (a multiple of
/// 512) in DRQ blocks of `block_sectors` sectors. Returns the final Status.
pub fn data_in(
    ch: &Channel,
    tf: &TaskFile,
    opcode: u8,
    width: Width,
    block_sectors: usize,
    buf: &mut [u8],
) -> Result<u8, AtaError> {
    let block = block_sectors.max(1) * SECTOR;
    ch.issue(tf, opcode)?;
    for chunk in buf.chunks_mut(block) {
        let st = ch.wait_not_busy("PIO data-in block")?;
        if failed(st) {
            return Err(device_error(ch));
        }
        if st & status::DRQ == 0 {
            return Err(AtaError::NoDataRequest {
                status: ch.status(),
            });
        }
        match width {
            Width::Bits16 => io::insw(ch.data_port(), chunk),
            Width::Bits32 => io::insd(ch.data_port(), chunk),
        }
    }
    finish(ch)
}

/// Runs a PIO data-out command that moves `buf.len()` bytes (a multiple of
/// 512) in DRQ blocks of `block_sectors` sectors. Returns the final Status.
pub fn data_out(
    ch: &Channel,
    tf: &TaskFile,
    opcode: u8,
    width: Width,
    block_sectors: usize,
    buf: &[u8],
) -> Result<u8, AtaError> {
    let block = block_sectors.max(1) * SECTOR;
    ch.issue(tf, opcode)?;
    for chunk in buf.chunks(block) {
        let st = ch.wait_not_busy("PIO data-out block")?;
        if failed(st) {
            return Err(device_error(ch));
        }
        if st & status::DRQ == 0 {
            return Err(AtaError::NoDataRequest {
                status: ch.status(),
            });
        }
        match width {
            Width::Bits16 => io::outsw(ch.data_port(), chunk),
            Width::Bits32 => io::outsd(ch.data_port(), chunk),
        }
    }
    finish(ch)
}

/// Waits for the end of a data command and checks its final status.
fn finish(ch: &Channel) -> Result<u8, AtaError> {
    let st = ch.wait_not_busy("PIO command completion")?;
    if failed(st) {
        return Err(device_error(ch));
    }
    let st = ch.status();
    if st & status::DRQ != 0 {
        return Err(AtaError::Device {
            status: st,
            error: ch.error(),
        });
    }
    Ok(st)
}

/// IDENTIFY DEVICE into `buf`.
pub fn identify(ch: &Channel, drive: Drive, buf: &mut [u8; 512]) -> Result<u8, AtaError> {
    let tf = TaskFile::plain(drive, 0, 0);
    data_in(ch, &tf, cmd::IDENTIFY, Width::Bits16, 1, buf)
}
