//! Why `vmdma qtest` stopped with an error, and its exit status.

use vmdma::disk;
use vmdma_protocol::{EXIT_BAD_INPUT, EXIT_USAGE, EXIT_VMM_ERROR};

use crate::{args, machine};

/// Why the front end stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum QtestError {
    /// The command line asks for something unsupported.
    #[error(transparent)]
    Usage(#[from] args::UsageError),
    /// A disk image cannot be used.
    #[error("qtest: disk {path}: {source}")]
    Disk {
        /// The image.
        path: String,
        /// Why.
        source: disk::DiskError,
    },
    /// The machine could not be built.
    #[error("qtest: {0}")]
    Machine(#[from] machine::MachineError),
    /// The signal handlers (SIGTERM, SIGINT, SIGHUP) could not be installed.
    #[error("qtest: signal handlers: {0}")]
    SignalHandlers(std::io::Error),
    /// The `-qtest-log` file could not be opened.
    #[error("qtest: -qtest-log {path}: {source}")]
    Log {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Nobody listens on a socket the command line names.
    #[error("qtest: {what} socket {path}: {source}")]
    Connect {
        /// `qtest` or `QMP`.
        what: &'static str,
        /// The socket.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The server could not be set up (the QMP greeting, epoll).
    #[error("qtest: QMP: {0}")]
    Setup(std::io::Error),
    /// Serving failed (a socket or epoll error).
    #[error("qtest: serving: {0}")]
    Serving(std::io::Error),
}

impl QtestError {
    /// The process exit status.
    pub fn exit_status(&self) -> u8 {
        match self {
            QtestError::Usage(_) => EXIT_USAGE,
            QtestError::Disk { .. } => EXIT_BAD_INPUT,
            QtestError::Machine(_)
            | QtestError::SignalHandlers(_)
            | QtestError::Log { .. }
            | QtestError::Connect { .. }
            | QtestError::Setup(_)
            | QtestError::Serving(_) => EXIT_VMM_ERROR,
        }
    }
}
