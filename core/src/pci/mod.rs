//! PCI configuration space: the functions a standard guest finds on bus 0,
//! and configuration mechanism #1 (ports `0xCF8`/`0xCFC`) through which it
//! finds them.
//!
//! ## Pieces
//! - [`ConfigSpace`]: the 256 bytes of one function with a per-byte write
//!   mask (read-only, read/write) and a write-1-to-clear mask, and typed
//!   accessors for the type-0 header.
//! - [`PciFunction`]: what a function offers to configuration cycles
//!   (`config_read` / `config_write` at an offset with an access width).
//! - [`HostBridge`] (i440FX-like, `8086:1237`), [`IsaBridge`] (PIIX3
//!   function 0, `8086:7000`, multi-function header so that scanners look at
//!   function 1) and [`Piix3Ide`] (PIIX3 IDE, `8086:7010`, the BMDMA BAR).
//!   [`crate::ide::IdeController`] embeds a [`Piix3Ide`] and implements
//!   [`PciFunction`] itself, so the bus-master and I/O-decode bits it obeys
//!   are the ones the guest wrote.
//! - [`ConfigMechanism1`]: the address latch and the data window; it
//!   forwards cycles to a host-provided [`PciBus`], which maps a
//!   [`PciAddress`] to a function.
//!
//! ## No-panic contract
//! Offsets are `u8` (inside the 256-byte space by construction); bytes an
//! access reaches past offset `0xFF` read as `0xFF` and are not written.
//! Every access width is one of [`AccessWidth`]'s three, so no guest value
//! can make an out-of-range shift or index.
#![forbid(unsafe_code)]

mod access;
mod config_space;
mod host_bridge;
mod isa_bridge;
mod mechanism1;
mod piix_ide;
#[cfg(feature = "snapshot")]
mod snapshot;

pub use access::AccessWidth;
pub use config_space::{ConfigSpace, PciCommand, header};
pub use host_bridge::HostBridge;
pub use isa_bridge::IsaBridge;
pub use mechanism1::{ConfigMechanism1, PciAddress, PciBus};
pub use piix_ide::Piix3Ide;

/// A PCI function as configuration cycles see it.
pub trait PciFunction {
    /// Reads `width` bytes of configuration space at `offset`
    /// (little-endian; bytes past `0xFF` read as `0xFF`).
    fn config_read(&self, offset: u8, width: AccessWidth) -> u32;

    /// Writes the low `width` bytes of `value` at `offset`, through the
    /// function's write masks (read-only bits keep their value).
    fn config_write(&mut self, offset: u8, width: AccessWidth, value: u32);
}

/// Errors of host-side PCI set-up calls (never caused by the guest).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PciError {
    /// An I/O BAR base that is zero, misaligned for the BAR size, or whose
    /// end does not fit in the 64 KiB port space.
    BadIoBase {
        /// The refused base.
        base: u16,
    },
}

impl core::fmt::Display for PciError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PciError::BadIoBase { base } => write!(f, "unusable I/O BAR base {base:#x}"),
        }
    }
}

impl core::error::Error for PciError {}

#[cfg(test)]
mod tests;
