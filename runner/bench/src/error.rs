//! The bench's own errors: [`BenchError`] ends the whole bench (the `vmdma`
//! command prints it as one line and exits with [`BenchError::exit_status`]);
//! a run that fails only leaves its cell empty, with its
//! [`SampleError`](crate::sample::SampleError) in the report.

use std::io;
use std::path::PathBuf;

use thiserror::Error;
use vmdma_protocol::{EXIT_USAGE, EXIT_VMM_ERROR};

use crate::image::ImageError;
use crate::plan::PlanError;

/// Why `vmdma bench` could not plan, prepare or write its report.
#[derive(Debug, Error)]
pub enum BenchError {
    /// The options do not make a plan (status `EXIT_USAGE`).
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// This binary was built without the bundled guest, which the bench
    /// boots.
    #[error(
        "this vmdma was built without the bundled guest (guest/ was missing); pass --kernel ELF"
    )]
    NoBundledGuest,
    /// A file of the bench's own (`what`: the scratch directory, the guest
    /// ELF, this executable, the markdown or JSON file) failed.
    #[error("bench: {what}: {source}")]
    Io {
        /// Which file.
        what: &'static str,
        /// The error.
        source: io::Error,
    },
    /// The image could not be created, filled, warmed or synced.
    #[error("bench: {0}")]
    Image(#[from] ImageError),
    /// The image could not be opened for the host runs.
    #[error("bench: open {}: {source}", path.display())]
    HostOpen {
        /// The image.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The JSON report could not be rendered.
    #[error("bench: {0}")]
    Json(#[from] serde_json::Error),
}

impl BenchError {
    /// The process exit status for this error: `EXIT_USAGE` for a bad plan,
    /// `EXIT_VMM_ERROR` otherwise.
    pub fn exit_status(&self) -> u8 {
        match self {
            BenchError::Plan(_) => EXIT_USAGE,
            BenchError::NoBundledGuest
            | BenchError::Io { .. }
            | BenchError::Image(_)
            | BenchError::HostOpen { .. }
            | BenchError::Json(_) => EXIT_VMM_ERROR,
        }
    }
}

/// Why the QEMU columns are absent (from probing `QEMU --version`).
#[derive(Debug, Error)]
pub enum QemuError {
    /// `--qemu none`.
    #[error("QEMU left out (--qemu none)")]
    LeftOut,
    /// The binary could not be run.
    #[error("QEMU not found ({qemu}: {source})")]
    NotFound {
        /// The binary.
        qemu: String,
        /// The error.
        source: io::Error,
    },
    /// `QEMU --version` failed.
    #[error("QEMU not usable ({qemu} --version failed)")]
    NotUsable {
        /// The binary.
        qemu: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_messages() {
        let plan = BenchError::from(PlanError::RandomSpan(1000));
        assert_eq!(plan.exit_status(), 64);
        assert_eq!(
            plan.to_string(),
            "--random-span 1000 is not a multiple of 4K"
        );
        let io = BenchError::Io {
            what: "JSON file",
            source: io::Error::from_raw_os_error(libc::ENOSPC),
        };
        assert_eq!(io.exit_status(), 70);
        assert!(io.to_string().starts_with("bench: JSON file: "), "{io}");
        assert_eq!(BenchError::NoBundledGuest.exit_status(), 70);
        let open = BenchError::HostOpen {
            path: "/x.img".into(),
            source: io::Error::from_raw_os_error(libc::ENOENT),
        };
        assert!(
            open.to_string().starts_with("bench: open /x.img: "),
            "{open}"
        );
    }
}
