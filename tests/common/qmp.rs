//! A QMP client for the integration tests (raw lines on the Unix socket)
//! and a `vmdma run --qmp` child that is killed if a test fails half-way.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{sparse_image, write_file};

/// One line-oriented QMP client on a Unix socket.
pub struct Client {
    /// The socket's read side (for tests that read past the protocol).
    pub reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Client {
    /// Connects (retrying while the runner starts) and reads the greeting.
    pub fn connect(path: &Path) -> (Client, Value) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("connect {}: {e}", path.display()),
            }
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut c = Client {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        };
        let greeting = c.read();
        (c, greeting)
    }

    pub fn read(&mut self) -> Value {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        assert!(line.ends_with("\r\n"), "QMP lines end with CRLF: {line:?}");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
    }

    /// The next object, waiting until `deadline` (read timeouts are
    /// retried); `None` when the runner closed the connection.
    pub fn next_until(&mut self, deadline: Instant) -> Option<Value> {
        let mut line = String::new();
        loop {
            match self.reader.read_line(&mut line) {
                Ok(0) => return None,
                Ok(_) => {
                    return Some(
                        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}")),
                    );
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) && Instant::now() < deadline => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("reading from the monitor: {e}"),
            }
        }
    }

    /// `human-monitor-command` with `line`; returns its text output.
    pub fn hmp(&mut self, line: &str) -> String {
        let (_, reply) = self.call(json!({
            "execute": "human-monitor-command",
            "arguments": {"command-line": line},
        }));
        reply["return"]
            .as_str()
            .unwrap_or_else(|| panic!("{line}: {reply}"))
            .to_string()
    }

    /// Sends `bytes`; false if the runner has closed the connection.
    pub fn try_send(&mut self, bytes: &[u8]) -> bool {
        self.writer.write_all(bytes).is_ok()
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
    }

    /// Sends `request`, returns what came back up to and including the
    /// reply (events first).
    pub fn call(&mut self, request: Value) -> (Vec<Value>, Value) {
        self.send_raw(format!("{request}\n").as_bytes());
        let mut events = Vec::new();
        loop {
            let v = self.read();
            if v.get("event").is_some() {
                events.push(v);
            } else {
                return (events, v);
            }
        }
    }

    /// [`Client::call`], or `None` if the runner has closed the
    /// connection (it ended) before the reply.
    pub fn try_call(&mut self, request: Value) -> Option<(Vec<Value>, Value)> {
        if !self.try_send(format!("{request}\n").as_bytes()) {
            return None;
        }
        let mut events = Vec::new();
        loop {
            let v = self.next_until(Instant::now() + Duration::from_secs(20))?;
            if v.get("event").is_some() {
                events.push(v);
            } else {
                return Some((events, v));
            }
        }
    }

    pub fn ok(&mut self, command: &str) -> Vec<Value> {
        let (events, reply) = self.call(json!({ "execute": command }));
        assert_eq!(reply, json!({"return": {}}), "{command}");
        events
    }

    pub fn status(&mut self) -> Value {
        self.call(json!({"execute": "query-status"})).1["return"].clone()
    }
}

/// A running `vmdma run --qmp` in a temporary directory.
pub struct Vm {
    /// The runner (taken by `wait`).
    pub child: Option<Child>,
    /// The monitor's socket.
    pub socket: PathBuf,
    /// The temporary directory (disk image, socket, files of the test).
    pub dir: tempfile::TempDir,
}

impl Vm {
    /// Starts `vmdma run` with `kernel` (None: the bundled guest), a disk of
    /// `disk_bytes` and the monitor on a socket in a temporary directory.
    pub fn start(kernel: Option<&[u8]>, disk_bytes: u64, extra: &[&str]) -> Vm {
        let dir = tempfile::tempdir().unwrap();
        let img = sparse_image(dir.path(), "disk.img", disk_bytes);
        let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        if let Some(k) = kernel {
            let k = write_file(dir.path(), "kernel.elf", k);
            args.extend(["--kernel".to_string(), k.display().to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Vm::start_with_disk(dir, &img.display().to_string(), &args)
    }

    /// Starts `vmdma run --disk DISK --qmp ... EXTRA...` with the monitor's
    /// socket in `dir` (which the `Vm` keeps).
    pub fn start_with_disk(dir: tempfile::TempDir, disk: &str, extra: &[&str]) -> Vm {
        let socket = dir.path().join("qmp.sock");
        let qmp = format!("unix:{},server=on,wait=off", socket.display());
        let child = Command::new(env!("CARGO_BIN_EXE_vmdma"))
            .args(["run", "--disk", disk, "--qmp", &qmp, "--timeout", "120"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Vm {
            child: Some(child),
            socket,
            dir,
        }
    }

    /// [`Vm::wait`], keeping the temporary directory (files the runner
    /// left, or removed, in it).
    pub fn wait_keeping_dir(mut self) -> (Output, tempfile::TempDir) {
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        (self.wait(), dir)
    }

    /// Waits (at most 120 s) for the runner to end.
    pub fn wait(mut self) -> Output {
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("vmdma did not end");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().unwrap()
    }
}

impl Drop for Vm {
    /// A test that failed half-way does not leave the runner behind.
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // Whether the runner had already ended says what went wrong:
            // print its status and output with the test's failure.
            let ended = c.try_wait().ok().flatten();
            let _ = c.kill();
            if let Ok(out) = c.wait_with_output()
                && std::thread::panicking()
            {
                eprintln!(
                    "vmdma {}: {}\n--- its stdout:\n{}\n--- its stderr:\n{}",
                    if ended.is_some() {
                        "had ended"
                    } else {
                        "was killed"
                    },
                    ended.map_or_else(|| out.status.to_string(), |s| s.to_string()),
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
}
