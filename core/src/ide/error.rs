//! Why a command failed, for the host's logs. The guest sees only the ATA
//! and BMDMA status bits the channel sets; this records the cause.

use crate::block::BlockError;
use crate::dma::TransferError;
use crate::memory::MemError;

/// The cause of the last failed command (see `IdeController::last_error`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdeError {
    /// Sectors past the end of the disk were addressed.
    OutOfRange {
        /// First sector.
        lba: u64,
        /// Number of sectors.
        count: u64,
    },
    /// A CHS address with sector number 0.
    BadChsAddress,
    /// The block backend refused or failed a request.
    Block(BlockError),
    /// The DMA data transfer failed (mapping, bounce write-back, ...).
    Transfer(TransferError),
    /// A PRD or a TRIM range could not be read from guest memory.
    Fetch(MemError),
    /// The guest stopped the bus master while the transfer was waiting for
    /// bounce-buffer space.
    StoppedWaitingForBounce,
    /// The backend reported nothing in flight while a request was.
    LostCompletion,
    /// The addressed device slot has no disk (an internal inconsistency;
    /// commands to an absent device are ignored before they get here).
    NoDevice,
    /// A completion arrived for a request this channel did not submit.
    StrayCompletion,
    /// A command or feature vmdma does not implement.
    Unsupported {
        /// The opcode.
        opcode: u8,
        /// The Features register.
        feature: u8,
    },
    /// A parameter the command refuses (multiple count, transfer mode,
    /// geometry).
    BadParameter {
        /// The opcode.
        opcode: u8,
    },
    /// READ/WRITE MULTIPLE while the multiple count is 0.
    MultipleDisabled,
    /// A PIO command on a controller without a PIO buffer (no disk was ever
    /// attached).
    NoPioBuffer,
    /// An ATA command an ATAPI device answers with its signature and ABRT.
    #[cfg(feature = "atapi")]
    PacketDevice {
        /// The opcode.
        opcode: u8,
    },
    /// FLUSH CACHE on a CD-ROM drive without a medium.
    #[cfg(feature = "atapi")]
    NoMedium,
    /// A PIO data transfer with a byte-count limit no block fits (0, or 1
    /// for more than one byte).
    #[cfg(feature = "atapi")]
    ByteCountLimit,
}

impl core::fmt::Display for IdeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            IdeError::OutOfRange { lba, count } => {
                write!(
                    f,
                    "{count} sectors at LBA {lba} reach past the end of the disk"
                )
            }
            IdeError::BadChsAddress => f.write_str("CHS address with sector number 0"),
            IdeError::Block(e) => write!(f, "block request failed: {e}"),
            IdeError::Transfer(e) => write!(f, "DMA transfer failed: {e}"),
            IdeError::Fetch(e) => write!(f, "DMA descriptor fetch failed: {e}"),
            IdeError::StoppedWaitingForBounce => {
                f.write_str("bus master stopped while waiting for bounce space")
            }
            IdeError::LostCompletion => f.write_str("block backend lost a request"),
            IdeError::NoDevice => f.write_str("no disk in the addressed slot"),
            IdeError::StrayCompletion => f.write_str("completion for an unknown request"),
            IdeError::Unsupported { opcode, feature } => {
                write!(
                    f,
                    "unsupported command {opcode:#04x} (features {feature:#04x})"
                )
            }
            IdeError::BadParameter { opcode } => {
                write!(f, "invalid parameter for command {opcode:#04x}")
            }
            IdeError::MultipleDisabled => f.write_str("READ/WRITE MULTIPLE with multiple mode off"),
            IdeError::NoPioBuffer => f.write_str("no PIO buffer (no disk attached)"),
            #[cfg(feature = "atapi")]
            IdeError::PacketDevice { opcode } => {
                write!(f, "ATA command {opcode:#04x} sent to an ATAPI device")
            }
            #[cfg(feature = "atapi")]
            IdeError::NoMedium => f.write_str("no medium in the CD-ROM drive"),
            #[cfg(feature = "atapi")]
            IdeError::ByteCountLimit => f.write_str("PACKET PIO byte-count limit too small"),
        }
    }
}

impl core::error::Error for IdeError {}
