//! A minimal QMP monitor: the greeting, `qmp_capabilities`, `quit`, and a
//! `CommandNotFound` error for every other command. Enough for libqtest,
//! which negotiates capabilities at start and ends the process with
//! SIGTERM.
//!
//! Input is a stream of JSON objects (not necessarily one per line);
//! [`QmpSession::feed`] buffers at most [`MAX_QMP_INPUT`] bytes of an
//! unfinished object. Malformed or oversized input gets a `GenericError`
//! reply and the buffer is dropped, as QEMU's parser resynchronises.

use serde_json::{Value, json};

/// Most bytes of one unfinished QMP request kept.
pub const MAX_QMP_INPUT: usize = 64 << 10;

/// What the session wants done after some input.
#[derive(Clone, Debug, PartialEq)]
pub enum QmpOutput {
    /// Send this reply (a JSON object; the caller adds the line end).
    Reply(Value),
    /// Send this reply, then end the process (the `quit` command).
    Quit(Value),
}

/// One monitor connection.
#[derive(Debug, Default)]
pub struct QmpSession {
    buf: Vec<u8>,
    negotiated: bool,
}

impl QmpSession {
    /// A session before capability negotiation.
    pub fn new() -> Self {
        QmpSession::default()
    }

    /// The greeting QEMU sends on connect (version 7.2.0, no capabilities).
    pub fn greeting() -> Value {
        json!({
            "QMP": {
                "version": {
                    "qemu": {"micro": 0, "minor": 2, "major": 7},
                    "package": concat!("vmdma ", env!("CARGO_PKG_VERSION")),
                },
                "capabilities": [],
            }
        })
    }

    /// Feeds bytes from the socket; replies are appended to `out`.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<QmpOutput>) {
        let mut buf = std::mem::take(&mut self.buf);
        buf.extend_from_slice(data);
        let mut consumed = 0;
        let mut failed = false;
        {
            let mut stream = serde_json::Deserializer::from_slice(&buf).into_iter::<Value>();
            loop {
                match stream.next() {
                    Some(Ok(v)) => {
                        consumed = stream.byte_offset();
                        let reply = self.execute(&v);
                        let stop = matches!(reply, QmpOutput::Quit(_));
                        out.push(reply);
                        if stop {
                            break;
                        }
                    }
                    Some(Err(e)) if e.is_eof() => break,
                    Some(Err(e)) => {
                        out.push(QmpOutput::Reply(error(
                            "GenericError",
                            &format!("JSON parse error, {e}"),
                            None,
                        )));
                        failed = true;
                        break;
                    }
                    None => {
                        consumed = stream.byte_offset();
                        break;
                    }
                }
            }
        }
        if failed {
            return;
        }
        buf.drain(..consumed.min(buf.len()));
        self.buf = buf;
        if self.buf.len() > MAX_QMP_INPUT {
            self.buf = Vec::new();
            out.push(QmpOutput::Reply(error(
                "GenericError",
                &format!("JSON input longer than {MAX_QMP_INPUT} bytes"),
                None,
            )));
        }
    }

    fn execute(&mut self, request: &Value) -> QmpOutput {
        let Some(obj) = request.as_object() else {
            return QmpOutput::Reply(error(
                "GenericError",
                "QMP input must be a JSON object",
                None,
            ));
        };
        let id = obj.get("id");
        let Some(command) = obj.get("execute").and_then(Value::as_str) else {
            return QmpOutput::Reply(error(
                "GenericError",
                "QMP input lacks member 'execute'",
                id,
            ));
        };
        match (command, self.negotiated) {
            ("qmp_capabilities", false) => {
                self.negotiated = true;
                QmpOutput::Reply(success(id))
            }
            ("qmp_capabilities", true) => QmpOutput::Reply(error(
                "CommandNotFound",
                "Capabilities negotiation is already complete, command ignored",
                id,
            )),
            (_, false) => QmpOutput::Reply(error(
                "CommandNotFound",
                "Expecting capabilities negotiation with 'qmp_capabilities'",
                id,
            )),
            ("quit", true) => QmpOutput::Quit(success(id)),
            (other, true) => {
                let name: String = other.chars().take(64).collect();
                QmpOutput::Reply(error(
                    "CommandNotFound",
                    &format!(
                        "The command {name} has not been found (vmdma serves qmp_capabilities and quit)"
                    ),
                    id,
                ))
            }
        }
    }
}

fn with_id(mut v: Value, id: Option<&Value>) -> Value {
    if let (Some(id), Some(obj)) = (id, v.as_object_mut()) {
        obj.insert("id".into(), id.clone());
    }
    v
}

fn success(id: Option<&Value>) -> Value {
    with_id(json!({"return": {}}), id)
}

fn error(class: &str, desc: &str, id: Option<&Value>) -> Value {
    with_id(json!({"error": {"class": class, "desc": desc}}), id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(s: &mut QmpSession, data: &str) -> Vec<QmpOutput> {
        let mut out = Vec::new();
        s.feed(data.as_bytes(), &mut out);
        out
    }

    fn class(o: &QmpOutput) -> Option<&str> {
        let QmpOutput::Reply(v) = o else { return None };
        v["error"]["class"].as_str()
    }

    #[test]
    fn handshake_and_quit() {
        assert_eq!(QmpSession::greeting()["QMP"]["version"]["qemu"]["major"], 7);
        let mut s = QmpSession::new();
        let out = feed(&mut s, r#"{"execute": "quit"}"#);
        assert_eq!(
            class(&out[0]),
            Some("CommandNotFound"),
            "not negotiated yet"
        );
        let out = feed(&mut s, r#"{"execute": "qmp_capabilities", "id": 7}"#);
        assert_eq!(out, vec![QmpOutput::Reply(json!({"return": {}, "id": 7}))]);
        let out = feed(&mut s, r#"{"execute":"query-status"}{"execute":"quit"}"#);
        assert_eq!(out.len(), 2);
        assert_eq!(class(&out[0]), Some("CommandNotFound"));
        assert_eq!(out[1], QmpOutput::Quit(json!({"return": {}})));
    }

    #[test]
    fn split_objects_are_reassembled() {
        let mut s = QmpSession::new();
        assert!(feed(&mut s, r#"{"exec"#).is_empty());
        assert!(feed(&mut s, r#"ute": "qmp_capa"#).is_empty());
        let out = feed(&mut s, "bilities\"}\r\n");
        assert_eq!(out, vec![QmpOutput::Reply(json!({"return": {}}))]);
        assert!(s.buf.is_empty());
    }

    #[test]
    fn hostile_input_gets_errors_and_bounded_buffers() {
        let mut s = QmpSession::new();
        for bad in ["[1, 2]", "42", r#"{"id": 1}"#, r#"{"execute": 5}"#] {
            let out = feed(&mut s, bad);
            assert_eq!(class(&out[0]), Some("GenericError"), "{bad}");
        }
        let out = feed(&mut s, "}{");
        assert_eq!(class(&out[0]), Some("GenericError"));
        assert!(s.buf.is_empty(), "dropped after a syntax error");
        // An endless string: dropped once it passes the limit.
        let mut out = Vec::new();
        s.feed(b"{\"execute\": \"", &mut out);
        let chunk = vec![b'a'; 16 << 10];
        for _ in 0..5 {
            s.feed(&chunk, &mut out);
        }
        assert!(!out.is_empty());
        assert!(out.iter().all(|o| class(o) == Some("GenericError")));
        assert!(s.buf.len() <= MAX_QMP_INPUT);
        // After the garbage, a valid request is served again.
        let out = feed(&mut s, "{\"execute\": \"qmp_capabilities\"}");
        assert_eq!(out.last(), Some(&QmpOutput::Reply(json!({"return": {}}))));
        // Deep nesting is refused by the parser's recursion limit.
        let deep = "[".repeat(10_000);
        let out = feed(&mut QmpSession::new(), &deep);
        assert!(out.len() <= 1);
    }
}
