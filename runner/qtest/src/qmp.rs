//! The QMP monitor of `vmdma qtest`: the greeting, `qmp_capabilities`,
//! `query-commands`, `query-version`, `query-status`, `stop`, `cont`,
//! `quit`, and `human-monitor-command` with `qemu-io`'s blkdebug
//! breakpoints; `CommandNotFound` for every other command. Events:
//! `BLOCK_IO_ERROR`, `STOP` (also when a disk's error policy stops a
//! request) and `RESUME`. Enough for libqtest (which negotiates
//! capabilities at start and ends the process with SIGTERM) and for
//! ide-test's `flush` and `flush/retry_pci`.
//!
//! There is no vCPU: "paused" changes what `query-status` says and keeps
//! requests an error stopped until `cont`, which submits them again at
//! once (and moves the device on) before it replies.
//!
//! The protocol itself (framing with a bounded buffer, negotiation, the
//! reply and error shapes) is the library's [`vmdma::qmp`], shared with
//! `vmdma run --qmp`; this module only says which commands exist here.

use std::sync::PoisonError;

use serde_json::{Value, json};
use vmdma::disk::policy::Decision;
use vmdma::disk::stage::Release;
use vmdma::hmp;
use vmdma::qmp::{self, Commands, Outcome, Output, Session};
use vmdma_core::ide::Unit;

use super::machine::{Machine, RunState};

/// Most bytes of one unfinished QMP request kept.
pub const MAX_QMP_INPUT: usize = qmp::MAX_INPUT;

/// The commands `query-commands` lists (besides the two every session has).
const COMMANDS: [&str; 6] = [
    "query-version",
    "query-status",
    "stop",
    "cont",
    "quit",
    "human-monitor-command",
];

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

/// QEMU's name for the disk at `unit` of the primary channel.
fn device_name(unit: Unit) -> &'static str {
    match unit {
        Unit::Master => "ide0-hd0",
        Unit::Slave => "ide0-hd1",
    }
}

/// The commands, on a machine (or on none: before the machine exists and
/// in the unit tests, only `quit` and the queries without state work).
struct QtestCommands<'a, 'm> {
    machine: Option<&'a mut Machine<'m>>,
}

impl Commands for QtestCommands<'_, '_> {
    fn execute(
        &mut self,
        name: &str,
        arguments: Option<&Value>,
        events: &mut Vec<Value>,
    ) -> Outcome {
        match (name, self.machine.as_deref_mut()) {
            ("quit", _) => Outcome::Quit,
            ("query-version", _) => Outcome::Return(qmp::version()),
            ("query-commands", _) => Outcome::Return(qmp::commands(&COMMANDS)),
            ("query-status", Some(m)) => Outcome::Return(status(m)),
            ("stop", Some(m)) => {
                if !m.run.paused {
                    m.run.paused = true;
                    events.push(qmp::event("STOP", None));
                }
                Outcome::Return(json!({}))
            }
            ("cont", Some(m)) => {
                release(m, Unit::Master, Release::Stopped);
                release(m, Unit::Slave, Release::Stopped);
                m.service();
                let was = std::mem::take(&mut m.run);
                if was.paused {
                    events.push(qmp::event("RESUME", None));
                }
                Outcome::Return(json!({}))
            }
            ("human-monitor-command", Some(m)) => human_monitor_command(m, arguments),
            (other, _) => qmp::not_found(
                other,
                "vmdma qtest serves qmp_capabilities, query-commands, query-version, \
                 query-status, stop, cont, quit and human-monitor-command",
            ),
        }
    }
}

fn status(m: &Machine<'_>) -> Value {
    let status = match m.run {
        RunState { paused: false, .. } => "running",
        RunState {
            io_error: Some(_), ..
        } => "io-error",
        _ => "paused",
    };
    json!({"running": !m.run.paused, "singlestep": false, "status": status})
}

fn release(m: &mut Machine<'_>, unit: Unit, which: Release<'_>) -> usize {
    m.chipset
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .disk_mut(unit)
        .map_or(0, |d| d.release(which))
}

/// The qtest machine's drives: no vCPU, so a `wait_break` that finds
/// nothing held answers at once, and released requests are submitted
/// before the reply.
impl hmp::Drives for Machine<'_> {
    fn unit(&self, device: &str) -> Option<Unit> {
        [Unit::Master, Unit::Slave]
            .into_iter()
            .find(|u| device_name(*u) == device)
    }

    fn execute(
        &mut self,
        unit: Unit,
        command: &hmp::QemuIo,
    ) -> Result<Option<Result<hmp::Effect, String>>, Outcome> {
        let mut c = self.chipset.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(c.disk_mut(unit).map(|d| hmp::execute(d, command)))
    }

    fn released(&mut self) {
        self.service();
    }
}

fn human_monitor_command(m: &mut Machine<'_>, arguments: Option<&Value>) -> Outcome {
    hmp::serve(m, arguments, std::time::Duration::ZERO)
}

/// The disks' queued errors as events (`BLOCK_IO_ERROR`, then `STOP` if
/// one stopped its request and the machine was running).
pub fn disk_events(m: &mut Machine<'_>) -> Vec<Value> {
    let mut out = Vec::new();
    let mut stopped = None;
    for e in m.events.drain() {
        out.push(qmp::block_io_error(&e));
        if e.decision == Decision::Stop {
            stopped = Some(if e.nospace { "nospace" } else { "failed" });
        }
    }
    if let Some(io) = stopped {
        if !m.run.paused {
            out.push(qmp::event("STOP", None));
        }
        m.run = RunState {
            paused: true,
            io_error: Some(io),
        };
    }
    out
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

    /// True once capabilities are negotiated (events may be sent).
    pub fn negotiated(&self) -> bool {
        self.session.negotiated()
    }

    /// Feeds bytes from the socket; replies are appended to `out`. Commands
    /// act on `machine` (`None`: only those without state).
    pub fn feed(
        &mut self,
        data: &[u8],
        machine: Option<&mut Machine<'_>>,
        out: &mut Vec<QmpOutput>,
    ) {
        let mut o = Vec::new();
        self.session
            .feed(data, &mut QtestCommands { machine }, &mut o);
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
        s.feed(data.as_bytes(), None, &mut out);
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
        s.feed(b"{\"execute\": \"", None, &mut out);
        let chunk = vec![b'a'; 16 << 10];
        for _ in 0..5 {
            s.feed(&chunk, None, &mut out);
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
