//! A minimal QMP monitor: the greeting, `qmp_capabilities`, `quit`, and a
//! `CommandNotFound` error for every other command. Enough for libqtest,
//! which negotiates capabilities at start and ends the process with
//! SIGTERM.
//!
//! The protocol itself (framing with a bounded buffer, negotiation, the
//! reply and error shapes) is the library's [`vmdma::qmp`], shared with
//! `vmdma run --qmp`; this module only says which commands exist here.

use serde_json::Value;
use vmdma::qmp::{self, Commands, Outcome, Output, Session};

/// Most bytes of one unfinished QMP request kept.
pub const MAX_QMP_INPUT: usize = qmp::MAX_INPUT;

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
    session: Session,
}

/// The commands of `vmdma qtest`'s monitor: `quit` only.
struct QuitOnly;

impl Commands for QuitOnly {
    fn execute(&mut self, name: &str, _: Option<&Value>, _: &mut Vec<Value>) -> Outcome {
        match name {
            "quit" => Outcome::Quit,
            other => qmp::not_found(other, "vmdma serves qmp_capabilities and quit"),
        }
    }
}

impl QmpSession {
    /// A session before capability negotiation.
    pub fn new() -> Self {
        QmpSession::default()
    }

    /// The greeting QEMU sends on connect (version 7.2.0, no capabilities).
    pub fn greeting() -> Value {
        qmp::greeting()
    }

    /// Feeds bytes from the socket; replies are appended to `out`.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<QmpOutput>) {
        let mut o = Vec::new();
        self.session.feed(data, &mut QuitOnly, &mut o);
        out.extend(o.into_iter().map(|o| match o {
            Output::Send(v) => QmpOutput::Reply(v),
            Output::Quit(v) => QmpOutput::Quit(v),
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        assert_eq!(s.session.buffered(), 0);
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
        assert_eq!(s.session.buffered(), 0, "dropped after a syntax error");
        // An endless string: dropped once it passes the limit.
        let mut out = Vec::new();
        s.feed(b"{\"execute\": \"", &mut out);
        let chunk = vec![b'a'; 16 << 10];
        for _ in 0..5 {
            s.feed(&chunk, &mut out);
        }
        assert!(!out.is_empty());
        assert!(out.iter().all(|o| class(o) == Some("GenericError")));
        assert!(s.session.buffered() <= MAX_QMP_INPUT);
        // After the garbage, a valid request is served again.
        let out = feed(&mut s, "{\"execute\": \"qmp_capabilities\"}");
        assert_eq!(out.last(), Some(&QmpOutput::Reply(json!({"return": {}}))));
        // Deep nesting is refused by the parser's recursion limit.
        let deep = "[".repeat(10_000);
        let out = feed(&mut QmpSession::new(), &deep);
        assert!(out.len() <= 1);
    }
}
