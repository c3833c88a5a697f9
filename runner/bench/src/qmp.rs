//! A small QMP client (one JSON object per line on a Unix socket) for the
//! snapshot measurement: the same client talks to `vmdma run --qmp` and to
//! QEMU's `-qmp`, so both are timed the same way.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use thiserror::Error;

/// What went wrong on the monitor.
#[derive(Debug, Error)]
pub enum QmpError {
    /// The socket did not accept a connection before the deadline.
    #[error("QMP connect {path}: {source}")]
    Connect {
        /// The socket.
        path: String,
        /// The last error.
        source: io::Error,
    },
    /// Reading or writing the socket failed (or it closed).
    #[error("QMP: {0}")]
    Io(#[from] io::Error),
    /// A line that is not a JSON object.
    #[error("QMP: not JSON: {0:?}")]
    NotJson(String),
    /// The command answered with an error.
    #[error("QMP {command}: {reply}")]
    Refused {
        /// The command.
        command: String,
        /// The reply.
        reply: String,
    },
}

/// One monitor connection, capabilities negotiated.
pub struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Client {
    /// Connects to `path` (retrying while the VMM starts, until `deadline`
    /// or until `gone` says the VMM has ended), reads the greeting and
    /// negotiates capabilities.
    pub fn connect(
        path: &Path,
        deadline: Instant,
        gone: impl Fn() -> bool,
    ) -> Result<Client, QmpError> {
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(e) if Instant::now() >= deadline || gone() => {
                    return Err(QmpError::Connect {
                        path: path.display().to_string(),
                        source: e,
                    });
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        };
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut c = Client {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        };
        c.read()?;
        c.execute("qmp_capabilities", None)?;
        Ok(c)
    }

    fn read(&mut self) -> Result<Value, QmpError> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
        }
        serde_json::from_str(&line).map_err(|_| QmpError::NotJson(line))
    }

    /// Sends `command` (with `arguments`) and returns its `return` value;
    /// events before the reply are skipped.
    pub fn execute(&mut self, command: &str, arguments: Option<Value>) -> Result<Value, QmpError> {
        let mut req = json!({ "execute": command });
        if let Some(a) = arguments {
            req["arguments"] = a;
        }
        self.writer.write_all(format!("{req}\r\n").as_bytes())?;
        loop {
            let v = self.read()?;
            if v.get("event").is_some() {
                continue;
            }
            return match v.get("return") {
                Some(r) => Ok(r.clone()),
                None => Err(QmpError::Refused {
                    command: command.into(),
                    reply: v.to_string(),
                }),
            };
        }
    }
}

/// A finished migration as `query-migrate` reports it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Migrated {
    /// `total-time`, in ms.
    pub total_ms: u64,
}

/// `query-migrate`'s answer: `Ok(Some(..))` completed, `Ok(None)` still
/// running (or not started), `Err(text)` failed or cancelled.
pub fn migration_status(ret: &Value) -> Result<Option<Migrated>, String> {
    match ret.get("status").and_then(Value::as_str) {
        Some("completed") => Ok(Some(Migrated {
            total_ms: ret.get("total-time").and_then(Value::as_u64).unwrap_or(0),
        })),
        Some("failed") | Some("cancelled") => Err(ret.to_string()),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_migrate_answers() {
        let done = json!({"status": "completed", "total-time": 32, "downtime": 30});
        assert_eq!(migration_status(&done), Ok(Some(Migrated { total_ms: 32 })));
        assert_eq!(migration_status(&json!({"status": "active"})), Ok(None));
        assert_eq!(migration_status(&json!({})), Ok(None), "not started yet");
        let failed = json!({"status": "failed", "error-desc": "disk full"});
        assert!(migration_status(&failed).unwrap_err().contains("disk full"));
    }

    #[test]
    fn talks_to_a_monitor_on_a_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("qmp.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut w = s;
            w.write_all(b"{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n")
                .unwrap();
            let mut seen = Vec::new();
            for reply in [
                "{\"return\": {}}",
                "{\"event\": \"STOP\"}\r\n{\"return\": {\"status\": \"paused\"}}",
                "{\"error\": {\"class\": \"GenericError\", \"desc\": \"no\"}}",
            ] {
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                seen.push(line);
                w.write_all(format!("{reply}\r\n").as_bytes()).unwrap();
            }
            seen
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut c = Client::connect(&path, deadline, || false).unwrap();
        let st = c.execute("query-status", None).unwrap();
        assert_eq!(st["status"], "paused", "the event before it is skipped");
        let e = c
            .execute("migrate", Some(json!({"uri": "exec:cat > x"})))
            .unwrap_err();
        assert!(e.to_string().starts_with("QMP migrate: "), "{e}");
        let seen = server.join().unwrap();
        let sent = |i: usize| -> Value {
            assert!(seen[i].ends_with("\r\n"), "{:?}", seen[i]);
            serde_json::from_str(&seen[i]).unwrap()
        };
        assert_eq!(sent(0), json!({"execute": "qmp_capabilities"}));
        assert_eq!(
            sent(2),
            json!({"execute": "migrate", "arguments": {"uri": "exec:cat > x"}})
        );
        let e = Client::connect(
            &dir.path().join("none.sock"),
            Instant::now() + Duration::from_millis(20),
            || false,
        )
        .err()
        .unwrap();
        assert!(matches!(e, QmpError::Connect { .. }), "{e}");
        // A VMM that ended: no waiting for the (distant) deadline.
        let far = Instant::now() + Duration::from_secs(3600);
        let e = Client::connect(&dir.path().join("none.sock"), far, || true)
            .err()
            .unwrap();
        assert!(matches!(e, QmpError::Connect { .. }), "{e}");
    }
}
