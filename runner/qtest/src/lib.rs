//! `vmdma qtest`: a front end that speaks QEMU's qtest protocol, so QEMU's
//! own `tests/qtest/ide-test` (libqtest, libqos) can drive vmdma's IDE
//! controller register by register, without KVM and without a vCPU.
//!
//! libqtest starts `$QTEST_QEMU_BINARY` with a QEMU command line; the
//! wrapper `runner/qtest/vmdma-system-x86_64` (libqtest takes the target
//! architecture from the `-system-ARCH` suffix) runs `vmdma qtest` with it.
//!
//! ```text
//! args ──── the QEMU command line → QtestConfig (or a one-line usage error)
//! machine ─ RAM buffer + core region map, port bus: fw_cfg, chipset
//!           (host bridge, ISA bridge, PIIX3 IDE over raw files), IRQ recorder
//! server ── sockets + epoll + signals; per line: service, parse, execute,
//!           IRQ lines, reply
//!  ├ protocol  request parsing (bounded), line splitting
//!  ├ codec     strtoul-style numbers, hex, base64
//!  ├ qmp       greeting, qmp_capabilities, quit, errors
//!  └ fw_cfg    the RAM size for libqos' allocator
//! ```
//!
//! Exit status: 0 when the client closes the socket, on QMP `quit` and on
//! SIGTERM/SIGINT/SIGHUP; 64 for a command line it cannot honour; 65 for a
//! disk image it cannot use; 70 for other failures.
//!
//! A crate of its own on top of the `vmdma` library (the board, the disks,
//! the port bus): the `vmdma` command (`vmdma-cli`) runs it as `vmdma qtest`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod args;
pub mod codec;
mod error;
pub mod fw_cfg;
pub mod machine;
pub mod protocol;
pub mod qmp;
pub mod server;

use std::fs::OpenOptions;

use vmdma_core::ide::DriveInfo;

use vmdma::disk;

pub use error::QtestError;

use args::{DiskConfig, QtestConfig};
use machine::{MachineDisks, with_machine};
use server::Server;

/// Runs the front end with the arguments after `vmdma qtest`.
pub fn run(args: &[String]) -> Result<(), QtestError> {
    server::install_signal_handlers().map_err(QtestError::SignalHandlers)?;
    let config = args::parse(args)?;
    serve(&config)
}

/// The image of a disk or CD-ROM (`None`: a CD-ROM drive without medium).
fn open_disk(d: &DiskConfig) -> Result<Option<disk::Image>, QtestError> {
    let Some(path) = &d.path else {
        return Ok(None);
    };
    let spec = disk::DiskSpec {
        read_only: d.read_only,
        policy: d.policy,
        faults: d.faults.clone(),
        ..disk::DiskSpec::new(path)
    };
    disk::open(&spec)
        .map(Some)
        .map_err(|source| QtestError::Disk {
            path: path.display().to_string(),
            source,
        })
}

fn info<'a>(d: Option<&'a DiskConfig>, default: DriveInfo<'static>) -> DriveInfo<'a> {
    let Some(d) = d else {
        return default;
    };
    let default = if d.cdrom { DriveInfo::CDROM } else { default };
    let s = &d.strings;
    DriveInfo {
        model: s.model.as_deref().unwrap_or(default.model),
        serial: s.serial.as_deref().unwrap_or(default.serial),
        firmware: s.ver.as_deref().unwrap_or(default.firmware),
    }
}

fn serve(config: &QtestConfig) -> Result<(), QtestError> {
    let [u0, u1] = &config.units;
    let units = [
        u0.as_ref().map(open_disk).transpose()?.flatten(),
        u1.as_ref().map(open_disk).transpose()?.flatten(),
    ];
    let cdrom = [u0, u1].map(|u| u.as_ref().is_some_and(|d| d.cdrom));
    let disks = MachineDisks {
        units,
        cdrom,
        info: [
            info(u0.as_ref(), DriveInfo::MASTER),
            info(u1.as_ref(), DriveInfo::SLAVE),
        ],
    };
    // Appended to, not truncated: with QTEST_LOG libqtest passes
    // /dev/fd/2, which every process of a test run shares.
    let log = match &config.qtest_log {
        Some(p) => Some(
            OpenOptions::new()
                .append(true)
                .create(true)
                .open(p)
                .map_err(|source| QtestError::Log {
                    path: p.display().to_string(),
                    source,
                })?,
        ),
        None => None,
    };
    let qtest = server::connect(&config.qtest_socket, "qtest")?;
    let qmp = match &config.qmp_socket {
        Some(p) => Some(server::connect(p, "QMP")?),
        None => None,
    };
    let mut server = Server::new(qtest, qmp, log).map_err(QtestError::Setup)?;
    with_machine(config.ram, disks, |m| server.run(m))?.map_err(QtestError::Serving)?;
    Ok(())
}
