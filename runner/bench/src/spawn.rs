//! Running one child process (vmdma or QEMU) with the timings the boot
//! measurement needs: process start → first byte on its stdout → exit.

use std::ffi::OsString;
use std::io::{self, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use thiserror::Error;

/// What a finished child did.
#[derive(Debug)]
pub struct Finished {
    /// Exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    /// Its stdout.
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
    /// Spawn to the first stdout byte (`None`: it printed nothing).
    pub first_byte: Option<Duration>,
    /// Spawn to exit.
    pub exit: Duration,
}

/// Why a child did not run to its end. (How it ended, its status, is the
/// caller's to judge.)
#[derive(Debug, Error)]
pub enum SpawnError {
    /// The program could not be started.
    #[error("cannot start {program:?}: {source}")]
    Start {
        /// The program.
        program: OsString,
        /// The error.
        source: io::Error,
    },
    /// The child's stdout or stderr (named) was not piped.
    #[error("no {0} pipe")]
    NoPipe(&'static str),
    /// Waiting for the child failed.
    #[error("wait: {0}")]
    Wait(io::Error),
    /// The child ran longer than the timeout and was killed.
    #[error("killed after {0:?}")]
    Timeout(Duration),
    /// One of the helper threads (named) panicked.
    #[error("{0} panicked")]
    Panicked(&'static str),
}

/// Runs `cmd` to its end, killing it after `timeout` (an error then).
pub fn run(mut cmd: Command, timeout: Duration) -> Result<Finished, SpawnError> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|source| SpawnError::Start {
        program: cmd.get_program().to_owned(),
        source,
    })?;
    let (first_tx, first_rx) = mpsc::channel::<Instant>();
    let mut out = child.stdout.take().ok_or(SpawnError::NoPipe("stdout"))?;
    let mut err = child.stderr.take().ok_or(SpawnError::NoPipe("stderr"))?;
    let out_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let mut first = Some(first_tx);
        loop {
            match out.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if let Some(tx) = first.take() {
                        let _ = tx.send(Instant::now());
                    }
                    buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
                }
            }
        }
        buf
    });
    let err_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        buf
    });
    // A blocking wait on its own thread gives the exit time exactly; on a
    // timeout the child is killed by pid (`kill -KILL`).
    let pid = child.id();
    let (done_tx, done_rx) = mpsc::channel();
    let waiter = thread::spawn(move || {
        let status = child.wait();
        let _ = done_tx.send(Instant::now());
        status
    });
    let ended = match done_rx.recv_timeout(timeout) {
        Ok(t) => Some(t),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            None
        }
    };
    let status = waiter
        .join()
        .map_err(|_| SpawnError::Panicked("waiter"))?
        .map_err(SpawnError::Wait)?;
    let Some(ended) = ended else {
        return Err(SpawnError::Timeout(timeout));
    };
    let exit = ended - start;
    let stdout = out_reader
        .join()
        .map_err(|_| SpawnError::Panicked("stdout reader"))?;
    let stderr = err_reader
        .join()
        .map_err(|_| SpawnError::Panicked("stderr reader"))?;
    let first_byte = first_rx.try_recv().ok().map(|t| t - start);
    Ok(Finished {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        first_byte,
        exit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timings_and_output() {
        let mut c = Command::new("sh");
        c.args(["-c", "printf hi; echo oops >&2; exit 3"]);
        let f = run(c, Duration::from_secs(10)).unwrap();
        assert_eq!((f.code, f.stdout.as_str()), (Some(3), "hi"));
        assert_eq!(f.stderr, "oops\n");
        // (The reader may see the byte after the waiter saw the exit.)
        assert!(f.first_byte.is_some());
        let mut quiet = Command::new("true");
        quiet.arg("x");
        assert!(
            run(quiet, Duration::from_secs(10))
                .unwrap()
                .first_byte
                .is_none()
        );
        let mut slow = Command::new("sleep");
        slow.arg("5");
        let e = run(slow, Duration::from_millis(100)).unwrap_err();
        assert!(matches!(e, SpawnError::Timeout(_)), "{e}");
        assert_eq!(e.to_string(), "killed after 100ms");
        let e = run(Command::new("/nonexistent"), Duration::from_secs(1)).unwrap_err();
        assert!(matches!(e, SpawnError::Start { .. }), "{e}");
        assert!(
            e.to_string().starts_with("cannot start \"/nonexistent\": "),
            "{e}"
        );
    }
}
