//! What a host I/O error does: QEMU's `werror=` and `rerror=` (`--disk
//! PATH,werror=enospc,rerror=report`, the defaults).
//!
//! - `report`: the command fails with an ATA error (ABRT, and for DMA the
//!   BMDMA error bit), as a disk that failed would;
//! - `ignore`: the command completes as if the request had succeeded (a
//!   read leaves whatever the buffer held);
//! - `stop`: the VM pauses (QMP events `BLOCK_IO_ERROR` and `STOP`, status
//!   `io-error`), the failed request is kept, and `cont` submits it again,
//!   so the guest sees one command that took long and succeeded (or fails
//!   again and stops again);
//! - `enospc` (writes only): `stop` when the error is ENOSPC (a full or
//!   thin-provisioned host filesystem that can be grown), `report`
//!   otherwise.
//!
//! Writes, flushes and discards follow `werror`, reads `rerror`, as in
//! QEMU. Pausing needs someone who can resume: without `--qmp` the runner
//! refuses an explicit `stop`, and the default `enospc` reports (see
//! [`ErrorPolicy::without_monitor`]).

use vmdma_core::block::BlockError;

/// One policy's action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnError {
    /// Fail the command.
    Report,
    /// Complete the command as if it had succeeded.
    Ignore,
    /// Pause the VM and retry on resume.
    Stop,
    /// `Stop` for ENOSPC, `Report` for the rest (writes only).
    Enospc,
}

impl OnError {
    /// The option's spelling.
    pub const fn name(self) -> &'static str {
        match self {
            OnError::Report => "report",
            OnError::Ignore => "ignore",
            OnError::Stop => "stop",
            OnError::Enospc => "enospc",
        }
    }

    /// Parses a `werror` (`enospc` allowed) or `rerror` value.
    pub fn parse(s: &str, write: bool) -> Option<Self> {
        Some(match s {
            "report" => OnError::Report,
            "ignore" => OnError::Ignore,
            "stop" => OnError::Stop,
            "enospc" if write => OnError::Enospc,
            _ => return None,
        })
    }

    /// What this policy does with `error`.
    pub fn decide(self, error: BlockError) -> Decision {
        match self {
            OnError::Report => Decision::Report,
            OnError::Ignore => Decision::Ignore,
            OnError::Stop => Decision::Stop,
            OnError::Enospc if error == BlockError::Io(libc::ENOSPC) => Decision::Stop,
            OnError::Enospc => Decision::Report,
        }
    }

    /// True if some error makes this policy stop.
    pub const fn may_stop(self) -> bool {
        matches!(self, OnError::Stop | OnError::Enospc)
    }
}

/// What happens to one failed request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The guest gets the error.
    Report,
    /// The guest gets success.
    Ignore,
    /// The VM pauses; the request is kept for `cont`.
    Stop,
}

impl Decision {
    /// QEMU's name in `BLOCK_IO_ERROR`'s `action`.
    pub const fn name(self) -> &'static str {
        match self {
            Decision::Report => "report",
            Decision::Ignore => "ignore",
            Decision::Stop => "stop",
        }
    }
}

/// A disk's two policies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorPolicy {
    /// Writes, flushes, discards.
    pub write: OnError,
    /// Reads.
    pub read: OnError,
}

impl Default for ErrorPolicy {
    /// QEMU's defaults: `werror=enospc`, `rerror=report`.
    fn default() -> Self {
        ErrorPolicy {
            write: OnError::Enospc,
            read: OnError::Report,
        }
    }
}

impl ErrorPolicy {
    /// Every error reported (nothing stops).
    pub const REPORT: ErrorPolicy = ErrorPolicy {
        write: OnError::Report,
        read: OnError::Report,
    };

    /// The policy of a request: reads follow `read`, the rest `write`.
    pub const fn for_request(self, is_read: bool) -> OnError {
        if is_read { self.read } else { self.write }
    }

    /// The policy for a VM with no monitor to resume it: `enospc` becomes
    /// `report` (a pause nobody can end would hang the VM for good). An
    /// explicit `stop` is refused earlier, at the command line.
    pub fn without_monitor(self) -> ErrorPolicy {
        let f = |p: OnError| match p {
            OnError::Enospc => OnError::Report,
            p => p,
        };
        ErrorPolicy {
            write: f(self.write),
            read: f(self.read),
        }
    }

    /// True if either policy can stop the VM.
    pub const fn may_stop(self) -> bool {
        self.write.may_stop() || self.read.may_stop()
    }

    /// True if a policy is an explicit `stop`.
    pub const fn stops_explicitly(self) -> bool {
        matches!(self.write, OnError::Stop) || matches!(self.read, OnError::Stop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_meanings() {
        let p = ErrorPolicy::default();
        let enospc = BlockError::Io(libc::ENOSPC);
        let eio = BlockError::Io(libc::EIO);
        assert_eq!(p.for_request(false).decide(enospc), Decision::Stop);
        assert_eq!(p.for_request(false).decide(eio), Decision::Report);
        assert_eq!(p.for_request(true).decide(enospc), Decision::Report);
        assert_eq!(OnError::Ignore.decide(eio), Decision::Ignore);
        assert_eq!(OnError::Stop.decide(BlockError::OutOfRange), Decision::Stop);
        assert_eq!(OnError::parse("enospc", false), None, "not for reads");
        assert_eq!(OnError::parse("enospc", true), Some(OnError::Enospc));
        assert_eq!(OnError::parse("halt", true), None);
        assert!(p.may_stop());
        assert!(!p.without_monitor().may_stop());
        assert_eq!(
            ErrorPolicy {
                write: OnError::Stop,
                read: OnError::Report
            }
            .without_monitor()
            .write,
            OnError::Stop
        );
    }
}
