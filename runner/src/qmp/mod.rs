//! QMP, QEMU's monitor protocol, as far as vmdma's monitors share it: the
//! greeting, capability negotiation, a stream of JSON objects with a
//! bounded buffer, and QEMU's reply, error and event shapes (the `id` of a
//! request echoed in its reply). What each command does is the caller's
//! ([`Commands`]): `vmdma run --qmp` ([`crate::monitor`]) and `vmdma qtest`
//! (the vmdma-qtest crate) serve different sets.
//!
//! Input is a stream of JSON objects (not necessarily one per line);
//! [`Session::feed`] buffers at most [`MAX_INPUT`] bytes of an unfinished
//! object. Malformed or oversized input gets a `GenericError` reply and the
//! buffer is dropped, as QEMU's parser resynchronises; the session goes on.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

/// Most bytes of one unfinished QMP request kept.
pub const MAX_INPUT: usize = 64 << 10;

/// What a command did.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Success with this `return` value.
    Return(Value),
    /// Failure: the error class (`GenericError`, `CommandNotFound`, ...)
    /// and the description.
    Error(&'static str, String),
    /// The command was `quit`: reply with success, then end.
    Quit,
}

/// The commands a monitor serves after negotiation.
pub trait Commands {
    /// Runs `name` with its `arguments` (if any). Events the command causes
    /// go to `events` (as [`event`] objects); they are sent before the
    /// reply, as QEMU does for `stop` and `cont`.
    fn execute(
        &mut self,
        name: &str,
        arguments: Option<&Value>,
        events: &mut Vec<Value>,
    ) -> Outcome;
}

/// What to send after some input.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Send this object (a reply or an event; the caller adds the line end).
    Send(Value),
    /// Send this reply, then end (the `quit` command).
    Quit(Value),
}

/// One monitor connection: negotiation state and the unfinished input.
#[derive(Debug, Default)]
pub struct Session {
    buf: Vec<u8>,
    negotiated: bool,
}

impl Session {
    /// A session before capability negotiation.
    pub fn new() -> Self {
        Session::default()
    }

    /// True once `qmp_capabilities` succeeded (events are sent only then).
    pub fn negotiated(&self) -> bool {
        self.negotiated
    }

    /// Bytes of an unfinished request held.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Feeds bytes from the socket; what to send is appended to `out`.
    /// After a [`Output::Quit`] the rest of the input is ignored.
    pub fn feed(&mut self, data: &[u8], commands: &mut dyn Commands, out: &mut Vec<Output>) {
        let mut buf = std::mem::take(&mut self.buf);
        buf.extend_from_slice(data);
        let mut consumed = 0;
        {
            let mut stream = serde_json::Deserializer::from_slice(&buf).into_iter::<Value>();
            loop {
                match stream.next() {
                    Some(Ok(v)) => {
                        consumed = stream.byte_offset();
                        if self.execute(&v, commands, out) {
                            return;
                        }
                    }
                    Some(Err(e)) if e.is_eof() => break,
                    Some(Err(e)) => {
                        out.push(Output::Send(error(
                            "GenericError",
                            &format!("JSON parse error, {e}"),
                            None,
                        )));
                        return;
                    }
                    None => {
                        consumed = stream.byte_offset();
                        break;
                    }
                }
            }
        }
        buf.drain(..consumed.min(buf.len()));
        self.buf = buf;
        if self.buf.len() > MAX_INPUT {
            self.buf = Vec::new();
            out.push(Output::Send(error(
                "GenericError",
                &format!("JSON input longer than {MAX_INPUT} bytes"),
                None,
            )));
        }
    }

    /// Runs one request; true if it was `quit`.
    fn execute(
        &mut self,
        request: &Value,
        commands: &mut dyn Commands,
        out: &mut Vec<Output>,
    ) -> bool {
        let Some(obj) = request.as_object() else {
            out.push(Output::Send(error(
                "GenericError",
                "QMP input must be a JSON object",
                None,
            )));
            return false;
        };
        let id = obj.get("id");
        let Some(command) = obj.get("execute").and_then(Value::as_str) else {
            out.push(Output::Send(error(
                "GenericError",
                "QMP input lacks member 'execute'",
                id,
            )));
            return false;
        };
        let reply = match (command, self.negotiated) {
            ("qmp_capabilities", false) => {
                self.negotiated = true;
                success(json!({}), id)
            }
            ("qmp_capabilities", true) => error(
                "CommandNotFound",
                "Capabilities negotiation is already complete, command ignored",
                id,
            ),
            (_, false) => error(
                "CommandNotFound",
                "Expecting capabilities negotiation with 'qmp_capabilities'",
                id,
            ),
            (name, true) => {
                let mut events = Vec::new();
                let outcome = commands.execute(name, obj.get("arguments"), &mut events);
                out.extend(events.into_iter().map(Output::Send));
                match outcome {
                    Outcome::Return(v) => success(v, id),
                    Outcome::Error(class, desc) => error(class, &desc, id),
                    Outcome::Quit => {
                        out.push(Output::Quit(success(json!({}), id)));
                        return true;
                    }
                }
            }
        };
        out.push(Output::Send(reply));
        false
    }
}

/// The greeting QEMU sends on connect (version 7.2.0, no capabilities).
pub fn greeting() -> Value {
    json!({
        "QMP": {
            "version": version(),
            "capabilities": [],
        }
    })
}

/// The `CommandNotFound` description QEMU gives, with `what` (what this
/// monitor serves instead) after it.
pub fn not_found(name: &str, what: &str) -> Outcome {
    let name: String = name.chars().take(64).collect();
    Outcome::Error(
        "CommandNotFound",
        format!("The command {name} has not been found ({what})"),
    )
}

fn with_id(mut v: Value, id: Option<&Value>) -> Value {
    if let (Some(id), Some(obj)) = (id, v.as_object_mut()) {
        obj.insert("id".into(), id.clone());
    }
    v
}

/// `{"return": value}` with the request's `id`.
pub fn success(value: Value, id: Option<&Value>) -> Value {
    with_id(json!({ "return": value }), id)
}

/// `{"error": {"class", "desc"}}` with the request's `id`.
pub fn error(class: &str, desc: &str, id: Option<&Value>) -> Value {
    with_id(json!({"error": {"class": class, "desc": desc}}), id)
}

/// An event: `{"event", "data", "timestamp": {"seconds", "microseconds"}}`
/// (wall-clock time, as QEMU stamps them); `data` left out when `None`.
pub fn event(name: &str, data: Option<Value>) -> Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut v = json!({
        "event": name,
        "timestamp": {"seconds": now.as_secs(), "microseconds": now.subsec_micros()},
    });
    if let (Some(d), Some(obj)) = (data, v.as_object_mut()) {
        obj.insert("data".into(), d);
    }
    v
}

/// `BLOCK_IO_ERROR` for `e`, with QEMU's fields (`nospace`
/// always given; no `node-name`, which is optional).
pub fn block_io_error(e: &crate::disk::events::IoErrorEvent) -> Value {
    event(
        "BLOCK_IO_ERROR",
        Some(json!({
            "device": e.device,
            "operation": e.operation(),
            "action": e.decision.name(),
            "nospace": e.nospace,
            "reason": e.reason,
        })),
    )
}

/// `query-version`'s answer (the version of QEMU whose behaviour vmdma
/// follows, and vmdma's own in `package`).
pub fn version() -> Value {
    json!({
        "qemu": {"micro": 0, "minor": 2, "major": 7},
        "package": concat!("vmdma ", env!("CARGO_PKG_VERSION")),
    })
}

/// `query-commands`' answer for `names` (plus the two every session has).
pub fn commands(names: &[&str]) -> Value {
    let all = ["qmp_capabilities", "query-commands"]
        .iter()
        .chain(names)
        .map(|n| json!({ "name": n }))
        .collect::<Vec<_>>();
    Value::Array(all)
}

/// The `command-line` argument of `human-monitor-command`.
pub fn hmp_command_line(arguments: Option<&Value>) -> Result<&str, Outcome> {
    arguments
        .and_then(|a| a.get("command-line"))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            Outcome::Error(
                "GenericError",
                "Parameter 'command-line' is missing".to_string(),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A monitor with one command, `echo`, that returns its arguments and
    /// raises an event.
    struct Echo;

    impl Commands for Echo {
        fn execute(
            &mut self,
            name: &str,
            args: Option<&Value>,
            events: &mut Vec<Value>,
        ) -> Outcome {
            match name {
                "echo" => {
                    events.push(event("ECHO", None));
                    Outcome::Return(args.cloned().unwrap_or(json!({})))
                }
                "quit" => Outcome::Quit,
                other => not_found(other, "test"),
            }
        }
    }

    fn feed(s: &mut Session, data: &str) -> Vec<Output> {
        let mut out = Vec::new();
        s.feed(data.as_bytes(), &mut Echo, &mut out);
        out
    }

    #[test]
    fn events_come_before_the_reply_and_ids_are_echoed() {
        let mut s = Session::new();
        feed(&mut s, r#"{"execute": "qmp_capabilities"}"#);
        assert!(s.negotiated());
        let out = feed(
            &mut s,
            r#"{"execute": "echo", "arguments": {"a": 1}, "id": "x"}"#,
        );
        assert_eq!(out.len(), 2);
        let Output::Send(ev) = &out[0] else { panic!() };
        assert_eq!(ev["event"], "ECHO");
        assert!(ev["timestamp"]["seconds"].as_u64().unwrap() > 0);
        assert_eq!(out[1], Output::Send(json!({"return": {"a": 1}, "id": "x"})));
        let out = feed(&mut s, r#"{"execute": "nope", "id": [1]}"#);
        let Output::Send(e) = &out[0] else { panic!() };
        assert_eq!(e["error"]["class"], "CommandNotFound");
        assert_eq!(e["id"], json!([1]));
    }

    #[test]
    fn quit_ends_the_input() {
        let mut s = Session::new();
        let out = feed(
            &mut s,
            r#"{"execute":"qmp_capabilities"}{"execute":"quit","id":3}{"execute":"echo"}"#,
        );
        assert_eq!(
            out.last(),
            Some(&Output::Quit(json!({"return": {}, "id": 3})))
        );
        assert_eq!(out.len(), 2);
    }
}
