//! The IDE (ATA) driver for the primary channel of a PIIX controller:
//! register access and waits ([`channel`]), PIO data transfers ([`pio`]) and
//! bus-master DMA ([`dma`]).
//!
//! It follows the register sequences of Linux's libata SFF/BMDMA code, and
//! every wait is a bounded poll.
#![forbid(unsafe_code)]

pub mod channel;
pub mod dma;
pub mod packet;
pub mod pio;

use core::fmt;

use vmdma_guest::ata::taskfile::AddressError;
use vmdma_guest::prd::PrdError;

/// Why a driver operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AtaError {
    /// A bounded wait expired.
    Timeout {
        /// What the driver was waiting for.
        what: &'static str,
        /// The last status seen.
        status: u8,
    },
    /// The device reported an error (Status ERR or DF).
    Device {
        /// Status register.
        status: u8,
        /// Error register.
        error: u8,
    },
    /// The device did not request data (DRQ clear) when it should have.
    NoDataRequest {
        /// Status register.
        status: u8,
    },
    /// The bus master ended a transfer without INT, or with ERR.
    BusMaster {
        /// BM status when the transfer ended.
        bm_status: u8,
        /// Status register.
        status: u8,
    },
    /// The address or count cannot be encoded.
    Address(AddressError),
    /// The PRD table cannot be built.
    Prd(PrdError),
    /// A buffer is too small for the transfer.
    Buffer,
}

impl fmt::Display for AtaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AtaError::Timeout { what, status } => {
                write!(f, "timeout waiting for {what} (status {status:#04x})")
            }
            AtaError::Device { status, error } => {
                write!(f, "device error: status {status:#04x} error {error:#04x}")
            }
            AtaError::NoDataRequest { status } => {
                write!(f, "device did not set DRQ (status {status:#04x})")
            }
            AtaError::BusMaster { bm_status, status } => write!(
                f,
                "bus master error: BM status {bm_status:#04x}, status {status:#04x}"
            ),
            AtaError::Address(e) => write!(f, "{e}"),
            AtaError::Prd(e) => write!(f, "{e}"),
            AtaError::Buffer => f.write_str("buffer too small for the transfer"),
        }
    }
}

impl From<AddressError> for AtaError {
    fn from(e: AddressError) -> Self {
        AtaError::Address(e)
    }
}

impl From<PrdError> for AtaError {
    fn from(e: PrdError) -> Self {
        AtaError::Prd(e)
    }
}
