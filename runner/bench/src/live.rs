//! A child process (vmdma or QEMU) the bench talks to while it runs: its
//! console lines arrive as they are printed, each stamped with when the
//! bench read it, so that the bench can act on a line (take a snapshot)
//! and time a line (the restored guest's first). [`crate::spawn`] is the
//! simpler case of a child only waited for.

use std::io::{self, BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::spawn::{Finished, SpawnError};

/// A running child with its console.
pub struct Live {
    pid: u32,
    start: Instant,
    lines: Receiver<(String, Instant)>,
    stdout: JoinHandle<String>,
    stderr: JoinHandle<String>,
    done: Receiver<Instant>,
    exited: Arc<AtomicBool>,
    waiter: JoinHandle<io::Result<ExitStatus>>,
}

impl Live {
    /// Starts `cmd` with its stdout and stderr piped.
    pub fn spawn(mut cmd: Command) -> Result<Live, SpawnError> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let start = Instant::now();
        let mut child: Child = cmd.spawn().map_err(|source| SpawnError::Start {
            program: cmd.get_program().to_owned(),
            source,
        })?;
        let out = child.stdout.take().ok_or(SpawnError::NoPipe("stdout"))?;
        let mut err = child.stderr.take().ok_or(SpawnError::NoPipe("stderr"))?;
        let (tx, lines) = mpsc::channel();
        let stdout = thread::spawn(move || {
            let mut all = String::new();
            let mut r = BufReader::new(out);
            let mut line = Vec::new();
            loop {
                line.clear();
                match r.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let at = Instant::now();
                        let text = String::from_utf8_lossy(&line).into_owned();
                        all.push_str(&text);
                        let _ = tx.send((text, at));
                    }
                }
            }
            all
        });
        let stderr = thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = err.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        });
        let pid = child.id();
        let (done_tx, done) = mpsc::channel();
        let exited = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&exited);
        let waiter = thread::spawn(move || {
            let status = child.wait();
            let _ = done_tx.send(Instant::now());
            flag.store(true, Ordering::Release);
            status
        });
        Ok(Live {
            pid,
            start,
            lines,
            stdout,
            stderr,
            done,
            exited,
            waiter,
        })
    }

    /// Whether the child has ended.
    pub fn exited(&self) -> bool {
        self.exited.load(Ordering::Acquire)
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Waits for the first console line (a whole line, up to its `\n`)
    /// for which `pred` holds; returns it and the time from the spawn to
    /// when the bench read it. `None` if the child closed its stdout or the
    /// deadline passed first.
    pub fn wait_line(
        &self,
        pred: impl Fn(&str) -> bool,
        deadline: Instant,
    ) -> Option<(String, Duration)> {
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match self.lines.recv_timeout(left) {
                Ok((line, at)) if pred(&line) => return Some((line, at - self.start)),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// Waits for the child's exit (killing it after `timeout`, an error
    /// then) and returns what it printed and when it ended.
    pub fn finish(self, timeout: Duration) -> Result<Finished, SpawnError> {
        let ended = match self.done.recv_timeout(timeout) {
            Ok(t) => Some(t),
            Err(_) => {
                let _ = Command::new("kill")
                    .args(["-KILL", &self.pid.to_string()])
                    .status();
                None
            }
        };
        let status = self
            .waiter
            .join()
            .map_err(|_| SpawnError::Panicked("waiter"))?
            .map_err(SpawnError::Wait)?;
        let Some(ended) = ended else {
            return Err(SpawnError::Timeout(timeout));
        };
        let stdout = self
            .stdout
            .join()
            .map_err(|_| SpawnError::Panicked("stdout reader"))?;
        let stderr = self
            .stderr
            .join()
            .map_err(|_| SpawnError::Panicked("stderr reader"))?;
        Ok(Finished {
            code: status.code(),
            first_byte: None,
            stdout,
            stderr,
            exit: ended - self.start,
        })
    }
}

/// The first child of process `pid` (QEMU under `timeout`), from
/// `/proc/PID/task/PID/children`; `None` until it has one.
pub fn first_child(pid: u32) -> Option<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `VmHWM` (peak resident set) and `VmRSS` of a `/proc/PID/status` text,
/// in KiB.
pub fn rss_kib(status: &str) -> (Option<u64>, Option<u64>) {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse()
            .ok()
    };
    (field("VmHWM:"), field("VmRSS:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_as_they_come_and_the_end() {
        let mut c = Command::new("sh");
        c.args([
            "-c",
            "echo one; echo two; sleep 0.2; printf 'three\\nfour'; echo err >&2; exit 4",
        ]);
        let live = Live::spawn(c).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let (line, two) = live.wait_line(|l| l.starts_with("two"), deadline).unwrap();
        assert_eq!(line, "two\n");
        let (_, three) = live.wait_line(|l| l == "three\n", deadline).unwrap();
        assert!(two <= three);
        // "four" has no line end: it comes as the last piece when stdout
        // closes, and then nothing more.
        assert!(live.wait_line(|_| true, deadline).is_some());
        assert!(live.wait_line(|_| true, deadline).is_none());
        let deadline = Instant::now() + Duration::from_secs(10);
        while !live.exited() {
            assert!(Instant::now() < deadline, "exited() never turned true");
            thread::sleep(Duration::from_millis(5));
        }
        let f = live.finish(Duration::from_secs(10)).unwrap();
        assert_eq!(f.code, Some(4));
        assert_eq!(f.stdout, "one\ntwo\nthree\nfour");
        assert_eq!(f.stderr, "err\n");

        let mut slow = Command::new("sleep");
        slow.arg("5");
        let live = Live::spawn(slow).unwrap();
        assert!(!live.exited());
        assert!(
            live.wait_line(|_| true, Instant::now() + Duration::from_millis(50))
                .is_none()
        );
        let e = live.finish(Duration::from_millis(50)).unwrap_err();
        assert!(matches!(e, SpawnError::Timeout(_)), "{e}");
    }

    #[test]
    fn proc_status_and_children() {
        let status = "Name:\tqemu\nVmPeak:\t  300 kB\nVmHWM:\t   51234 kB\nVmRSS:\t   50000 kB\n";
        assert_eq!(rss_kib(status), (Some(51234), Some(50000)));
        assert_eq!(rss_kib("Name:\tx\n"), (None, None));
        let mut c = Command::new("sh");
        c.args(["-c", "sleep 5 & wait"]);
        let live = Live::spawn(c).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let child = loop {
            if let Some(p) = first_child(live.pid()) {
                break p;
            }
            assert!(Instant::now() < deadline, "no child");
            thread::sleep(Duration::from_millis(5));
        };
        let st = std::fs::read_to_string(format!("/proc/{child}/status")).unwrap();
        assert!(
            st.lines().any(|l| l == format!("PPid:\t{}", live.pid())),
            "{st}"
        );
        let _ = Command::new("kill").arg(child.to_string()).status();
        live.finish(Duration::from_secs(10)).unwrap();
    }
}
