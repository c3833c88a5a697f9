//! The runner's top-level error and its mapping to process exit statuses.

use std::io;

use thiserror::Error;
use vmdma_protocol::{EXIT_BAD_INPUT, EXIT_USAGE, EXIT_VMM_ERROR};

use crate::board::BoardError;
use crate::boot::BootError;
use crate::boot::elf::ElfError;
use crate::boot::pvh::PvhError;
use crate::devices::bus::BusError;
use crate::devices::chipset::ShutdownError;
use crate::disk::DiskError;
use crate::io_thread::IoThreadError;
use crate::kvm::vcpu::VcpuError;
use crate::kvm::vm::VmError;
use crate::monitor::MonitorError;
use crate::sandbox::SandboxError;
use crate::vcpu_loop::LoopError;

/// Exit status when the run ended but the disk still had requests in
/// flight after the shutdown bound, so it was not flushed (and guest
/// memory was left mapped): `EX_IOERR` of sysexits.h. The runner's own
/// status, not in `vmdma_protocol` (the guest never sees it).
pub const EXIT_DISK_STUCK: u8 = 74;

/// Everything that ends a run without the guest deciding its outcome.
/// Displayed as one line after `vmdma: error: `.
#[derive(Debug, Error)]
pub enum Error {
    /// The command line is invalid.
    #[error("{0}")]
    Usage(String),
    /// The run was stopped but could not be ended cleanly: the disk was
    /// not flushed (status [`EXIT_DISK_STUCK`]).
    #[error("{0}")]
    NotFlushed(String),
    /// The kernel file could not be read.
    #[error("kernel {path}: {source}")]
    KernelRead {
        /// The file.
        path: String,
        /// The error.
        source: io::Error,
    },
    /// The kernel path names something other than a regular file.
    #[error("kernel {path}: not a regular file ({what})")]
    KernelNotRegular {
        /// The file.
        path: String,
        /// What it is instead.
        what: &'static str,
    },
    /// The kernel file is larger than guest RAM.
    #[error("kernel {path}: the file is larger than guest RAM ({limit} bytes)")]
    KernelTooLarge {
        /// The file.
        path: String,
        /// The guest RAM size.
        limit: u64,
    },
    /// The kernel is not a bootable PVH ELF.
    #[error("kernel {path}: {source}")]
    Kernel {
        /// The file (or "bundled guest").
        path: String,
        /// What is wrong with it.
        source: ElfError,
    },
    /// The guest command line is invalid.
    #[error("--cmdline: {0}")]
    Cmdline(PvhError),
    /// The disk image cannot be used.
    #[error("disk {path}: {source}")]
    Disk {
        /// The image file.
        path: String,
        /// What is wrong with it.
        source: DiskError,
    },
    /// The CD-ROM image cannot be used.
    #[error("cdrom {path}: {reason}")]
    Cdrom {
        /// The image file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The temporary disk image could not be created.
    #[error("temporary disk: {0}")]
    TempDisk(DiskError),
    /// This binary was built without the bundled guest.
    #[error(
        "this vmdma was built without the bundled guest (guest/ was missing); pass --kernel ELF"
    )]
    NoBundledGuest,
    /// The bundled guest ELF could not be written.
    #[error("cannot write {path}: {source}")]
    WriteGuestElf {
        /// Output path.
        path: String,
        /// The error.
        source: io::Error,
    },
    /// An output file (`--manifest`, `--stats-json`) could not be created
    /// or written.
    #[error("{option} {path}: {source}")]
    Output {
        /// The option that named the file.
        option: &'static str,
        /// The file.
        path: String,
        /// The error.
        source: io::Error,
    },
    /// The VM could not be created.
    #[error(transparent)]
    Vm(#[from] VmError),
    /// A vCPU operation failed.
    #[error("vCPU: {0}")]
    Vcpu(#[from] VcpuError),
    /// Loading the (already validated) kernel failed.
    #[error("loading the kernel: {0}")]
    Boot(#[from] BootError),
    /// The board (address space, disks, chipset) could not be built.
    #[error("device setup: {0}")]
    Board(#[from] BoardError),
    /// A port device could not be put on the bus.
    #[error("device setup: {0}")]
    Bus(#[from] BusError),
    /// KVM refused the coalesced port zones.
    #[error("device setup: KVM_REGISTER_COALESCED_MMIO: {0}")]
    CoalescedPio(kvm_ioctls::Error),
    /// The vCPU loop failed.
    #[error(transparent)]
    Loop(#[from] LoopError),
    /// Shutting the disk down failed (other than by not answering, which
    /// ends the process with [`EXIT_DISK_STUCK`]).
    #[error("{0}")]
    Shutdown(#[from] ShutdownError),
    /// The vCPU thread ended without a stop reason.
    #[error("the vCPU stopped without a reason")]
    NoStopReason,
    /// A signal handler of the supervisor (the vCPU kick, SIGINT,
    /// SIGTERM) could not be installed.
    #[error("cannot install the {what} signal handler: {source}")]
    SignalHandler {
        /// Which handler.
        what: &'static str,
        /// The error.
        source: vmm_sys_util::errno::Error,
    },
    /// The vCPU thread could not be started.
    #[error("cannot start the vCPU thread: {0}")]
    VcpuThreadSpawn(io::Error),
    /// The vCPU thread panicked.
    #[error("the vCPU thread panicked")]
    VcpuThreadPanicked,
    /// The vCPU thread could not enter its sandbox.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// The I/O thread could not start, failed, or could not be stopped.
    #[error(transparent)]
    IoThread(#[from] IoThreadError),
    /// The QMP monitor thread (`--qmp`) could not start, or failed.
    #[error(transparent)]
    Monitor(#[from] MonitorError),
    /// `--incoming`: the snapshot cannot be restored (malformed, or made by
    /// another VM).
    #[error("--incoming {path}: {source}")]
    Incoming {
        /// The snapshot file.
        path: String,
        /// What is wrong.
        source: crate::snapshot::SnapshotError,
    },
    /// Putting the snapshot's state into the new VM failed.
    #[error("restoring the snapshot: {0}")]
    Restore(crate::snapshot::SnapshotError),
    /// The eventfd between the disk and the monitor could not be made.
    #[error("disk events eventfd: {0}")]
    DiskEvents(std::io::Error),
}

impl Error {
    /// The process exit status for this error.
    pub fn exit_status(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::Cmdline(_) => EXIT_USAGE,
            Error::NotFlushed(_) => EXIT_DISK_STUCK,
            Error::KernelRead { .. }
            | Error::KernelNotRegular { .. }
            | Error::KernelTooLarge { .. }
            | Error::Kernel { .. }
            | Error::Disk { .. }
            | Error::Cdrom { .. }
            | Error::Incoming { .. } => EXIT_BAD_INPUT,
            Error::TempDisk(_)
            | Error::NoBundledGuest
            | Error::WriteGuestElf { .. }
            | Error::Output { .. }
            | Error::Vm(_)
            | Error::Vcpu(_)
            | Error::Boot(_)
            | Error::Board(_)
            | Error::Bus(_)
            | Error::CoalescedPio(_)
            | Error::Loop(_)
            | Error::Shutdown(_)
            | Error::NoStopReason
            | Error::SignalHandler { .. }
            | Error::VcpuThreadSpawn(_)
            | Error::VcpuThreadPanicked
            | Error::Sandbox(_)
            | Error::IoThread(_)
            | Error::Monitor(_)
            | Error::Restore(_)
            | Error::DiskEvents(_) => EXIT_VMM_ERROR,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(Error::Usage("x".into()).exit_status(), 64);
        assert_eq!(
            Error::Kernel {
                path: "k".into(),
                source: ElfError::MissingPvhNote
            }
            .exit_status(),
            65
        );
        assert_eq!(
            Error::Disk {
                path: "d".into(),
                source: DiskError::Empty
            }
            .exit_status(),
            65
        );
        assert_eq!(Error::NoStopReason.exit_status(), 70);
        assert_eq!(
            Error::Kernel {
                path: "k".into(),
                source: ElfError::MissingPvhNote
            }
            .to_string(),
            "kernel k: no PVH entry note (Xen note type 18, XEN_ELFNOTE_PHYS32_ENTRY); not a PVH kernel"
        );
    }
}
