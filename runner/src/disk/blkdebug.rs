//! Fault injection with QEMU's `blkdebug` rules: `--disk
//! blkdebug:CONFIG:IMAGE` (and `-drive file=blkdebug:CONFIG:IMAGE` in
//! `vmdma qtest`), plus the breakpoints of `qemu-io`'s `break`, `resume`
//! and `remove_break` (through the monitor's `human-monitor-command`).
//!
//! This module is the rule engine only: which events a request fires, what
//! the rules do when they fire, and whether the request then fails or
//! stops at a breakpoint. It does no I/O; [`super::backend::Disk`] asks it
//! about every request and keeps held requests with their tokens.
//!
//! The model follows QEMU 7.2's `block/blkdebug.c` (behaviour, not code):
//! - the state starts at 1; a rule with `state = N` (N > 0) acts only in
//!   state N, `state = 0` or none in every state;
//! - when an event fires, its rules act in the reverse of the order they
//!   were added: an `inject-error` rule becomes *active* (the first one of
//!   an event first empties the active list), a `set-state` rule sets the
//!   state that applies once all rules of the event have acted, and a
//!   breakpoint stops the request there (and is removed: it fires once);
//! - after its events, a request fails with the errno of the first active
//!   rule whose `iotype` and `sector` match it; a `once` rule is removed
//!   when it fails a request, the others stay active.
//!
//! A raw image fires these events (QEMU's names): a read `read_aio`, a
//! write `write_aio`, a flush `flush_to_os` then `flush_to_disk`; a
//! discard fires none (a rule activated by another event can still fail
//! it, `iotype = "discard"`). Other blkdebug events never fire on a raw
//! image, and other sections or options are errors naming them. QEMU's
//! `immediately` only changes when its coroutine returns the error, so it
//! is accepted and has no effect here.

use std::fmt;
use std::path::Path;

use thiserror::Error;

/// An event a request fires (QEMU's `BlkdebugEvent` names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A read.
    ReadAio,
    /// A write.
    WriteAio,
    /// A flush, first event.
    FlushToOs,
    /// A flush, second event.
    FlushToDisk,
}

impl Event {
    const ALL: [Event; 4] = [
        Event::ReadAio,
        Event::WriteAio,
        Event::FlushToOs,
        Event::FlushToDisk,
    ];

    /// QEMU's name.
    pub const fn name(self) -> &'static str {
        match self {
            Event::ReadAio => "read_aio",
            Event::WriteAio => "write_aio",
            Event::FlushToOs => "flush_to_os",
            Event::FlushToDisk => "flush_to_disk",
        }
    }

    fn parse(s: &str) -> Result<Event, BlkdebugError> {
        Event::ALL
            .into_iter()
            .find(|e| e.name() == s)
            .ok_or_else(|| BlkdebugError::Event(s.to_string()))
    }
}

/// The kind of a request (QEMU's `BlkdebugIOType`, those a raw image has).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoType {
    /// Disk to memory.
    Read,
    /// Memory to disk.
    Write,
    /// Discard (TRIM).
    Discard,
    /// Flush.
    Flush,
}

impl IoType {
    /// The events a request of this kind fires, in order.
    pub const fn events(self) -> &'static [Event] {
        match self {
            IoType::Read => &[Event::ReadAio],
            IoType::Write => &[Event::WriteAio],
            IoType::Flush => &[Event::FlushToOs, Event::FlushToDisk],
            IoType::Discard => &[],
        }
    }

    const fn bit(self) -> u8 {
        match self {
            IoType::Read => 1,
            IoType::Write => 2,
            IoType::Discard => 4,
            IoType::Flush => 8,
        }
    }

    /// The name, as in the event `BLOCK_IO_ERROR` and blkdebug's `iotype`.
    pub const fn name(self) -> &'static str {
        match self {
            IoType::Read => "read",
            IoType::Write => "write",
            IoType::Discard => "discard",
            IoType::Flush => "flush",
        }
    }
}

/// What is wrong with a blkdebug configuration or command (one line each,
/// naming the part).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum BlkdebugError {
    /// The configuration file could not be read.
    #[error("blkdebug config {path}: {error}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        error: String,
    },
    /// A line that is neither a section, an option nor a comment.
    #[error("blkdebug config line {0}: expected [section] or key = \"value\"")]
    Syntax(usize),
    /// A section other than `inject-error` and `set-state`.
    #[error("blkdebug config line {0}: section [{1}] is not supported (inject-error, set-state)")]
    Section(usize, String),
    /// An option the section does not have.
    #[error("blkdebug config line {0}: option '{1}' is not supported in [{2}]")]
    Option(usize, String, &'static str),
    /// An option before any section.
    #[error("blkdebug config line {0}: option outside a section")]
    Orphan(usize),
    /// A value that is not what the option takes.
    #[error("blkdebug config: {0} = \"{1}\" is not valid")]
    Value(&'static str, String),
    /// A rule without `event`.
    #[error("blkdebug config: a [{0}] rule needs an event")]
    NoEvent(&'static str),
    /// An event a raw image never fires (or no blkdebug event at all).
    #[error(
        "blkdebug event '{0}' is not supported (a raw image fires read_aio, write_aio, flush_to_os, flush_to_disk)"
    )]
    Event(String),
}

/// A rule's action.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Action {
    Inject {
        errno: i32,
        /// `IoType::bit`s.
        iotypes: u8,
        sector: Option<u64>,
        once: bool,
    },
    SetState(u64),
    Break(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Rule {
    /// Unique, to find an active rule again.
    id: u64,
    event: Event,
    /// 0: every state.
    state: u64,
    action: Action,
}

/// What the rules say about a request after an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Go on (to the next event, or to the disk).
    Pass,
    /// Stop at a breakpoint with this tag until `resume`.
    Hold(String),
    /// Fail with this errno, without touching the disk.
    Fail(i32),
}

/// The rules and their state for one disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blkdebug {
    state: u64,
    /// In the order added; they act newest first.
    rules: Vec<Rule>,
    /// Ids of the active inject-error rules, newest first.
    active: Vec<u64>,
    next_id: u64,
}

impl Default for Blkdebug {
    fn default() -> Self {
        Blkdebug {
            state: 1,
            rules: Vec::new(),
            active: Vec::new(),
            next_id: 1,
        }
    }
}

/// The most rules a configuration (and the breakpoints set later) may hold.
pub const MAX_RULES: usize = 256;
/// The largest configuration file read.
pub const MAX_CONFIG_BYTES: u64 = 64 << 10;

impl Blkdebug {
    /// No rules (`blkdebug::IMAGE`, for breakpoints set later).
    pub fn new() -> Self {
        Blkdebug::default()
    }

    /// Reads the configuration file at `path`: a regular file (a FIFO or
    /// device is refused, never waited on) of at most [`MAX_CONFIG_BYTES`].
    pub fn from_file(path: &Path) -> Result<Self, BlkdebugError> {
        use std::io::Read;
        let err = |error: String| BlkdebugError::Read {
            path: path.display().to_string(),
            error,
        };
        let file = crate::input_file::open_regular(path, false).map_err(|e| err(e.to_string()))?;
        let mut text = String::new();
        file.take(MAX_CONFIG_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| err(e.to_string()))?;
        if text.len() as u64 > MAX_CONFIG_BYTES {
            return Err(err(format!("larger than {MAX_CONFIG_BYTES} bytes")));
        }
        Self::parse(&text)
    }

    /// Parses a configuration: `[inject-error]` and `[set-state]` sections
    /// of `key = "value"` lines, `#` comments, as QEMU reads them.
    pub fn parse(text: &str) -> Result<Self, BlkdebugError> {
        let mut b = Blkdebug::new();
        let mut section: Option<Section> = None;
        for (i, raw) in text.lines().enumerate() {
            let line_no = i + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                if let Some(s) = section.take() {
                    b.add(s.finish()?)?;
                }
                section = Some(Section::new(line_no, name.trim())?);
                continue;
            }
            let (key, value) = parse_option(line).ok_or(BlkdebugError::Syntax(line_no))?;
            let s = section.as_mut().ok_or(BlkdebugError::Orphan(line_no))?;
            s.set(line_no, key, value)?;
        }
        if let Some(s) = section.take() {
            b.add(s.finish()?)?;
        }
        Ok(b)
    }

    fn add(&mut self, (event, state, action): (Event, u64, Action)) -> Result<(), BlkdebugError> {
        if self.rules.len() >= MAX_RULES {
            return Err(BlkdebugError::Value(
                "rules",
                format!("more than {MAX_RULES}"),
            ));
        }
        let id = self.next_id;
        self.next_id += 1;
        self.rules.push(Rule {
            id,
            event,
            state,
            action,
        });
        Ok(())
    }

    /// The current state.
    pub fn state(&self) -> u64 {
        self.state
    }

    /// `qemu-io`'s `break EVENT TAG`: the next request that fires `event`
    /// stops there until `resume TAG`.
    pub fn add_break(&mut self, event: &str, tag: &str) -> Result<(), BlkdebugError> {
        let event = Event::parse(event)?;
        self.add((event, 0, Action::Break(tag.to_string())))
    }

    /// `qemu-io`'s `remove_break TAG`: removes the breakpoints with `tag`
    /// that have not fired; true if there were any. (Requests held at a
    /// breakpoint of that tag are the caller's to release.)
    pub fn remove_break(&mut self, tag: &str) -> bool {
        let before = self.rules.len();
        self.rules
            .retain(|r| !matches!(&r.action, Action::Break(t) if t == tag));
        self.rules.len() != before
    }

    /// Fires `event` for a request: the rules of that event act (see the
    /// module docs). Returns the breakpoint's tag if one stops the request.
    pub fn fire(&mut self, event: Event) -> Option<String> {
        let mut new_state = self.state;
        let mut injected = false;
        let mut hold = None;
        let mut fired_breaks = Vec::new();
        for r in self.rules.iter().rev() {
            if r.event != event || (r.state != 0 && r.state != self.state) {
                continue;
            }
            match &r.action {
                Action::Inject { .. } => {
                    if !injected {
                        injected = true;
                        self.active.clear();
                    }
                    // Newest first: the rules act newest first, and each
                    // goes to the front of the list in QEMU; so the last
                    // to act (the oldest) comes first.
                    self.active.insert(0, r.id);
                }
                Action::SetState(s) => new_state = *s,
                Action::Break(tag) => {
                    fired_breaks.push(r.id);
                    if hold.is_none() {
                        hold = Some(tag.clone());
                    }
                }
            }
        }
        self.rules.retain(|r| !fired_breaks.contains(&r.id));
        self.state = new_state;
        hold
    }

    /// After its events: does a request of `kind` over `sectors` (first
    /// sector and count; none for a flush) fail? A `once` rule that fails
    /// it is removed.
    pub fn check(&mut self, kind: IoType, sectors: Option<(u64, u64)>) -> Option<i32> {
        let rule = self.active.iter().find_map(|id| {
            let r = self.rules.iter().find(|r| r.id == *id)?;
            let Action::Inject {
                errno,
                iotypes,
                sector,
                once,
            } = &r.action
            else {
                return None;
            };
            let touches = match (sector, sectors) {
                (None, _) => true,
                (Some(s), Some((first, n))) => *s >= first && *s - first < n,
                (Some(_), None) => false,
            };
            (touches && iotypes & kind.bit() != 0).then_some((r.id, *errno, *once))
        });
        let (id, errno, once) = rule?;
        if once {
            self.rules.retain(|r| r.id != id);
            self.active.retain(|a| *a != id);
        }
        // QEMU injects nothing for errno 0.
        (errno != 0).then_some(errno)
    }

    /// Runs a request of `kind` through the rules from its event number
    /// `from` on (0 for a new request, the one after the breakpoint for a
    /// resumed one). Returns the verdict and, for `Hold`, the number of the
    /// next event to fire when it is resumed.
    pub fn run(
        &mut self,
        kind: IoType,
        sectors: Option<(u64, u64)>,
        from: usize,
    ) -> (Verdict, usize) {
        let events = kind.events();
        for (i, e) in events.iter().enumerate().skip(from) {
            if let Some(tag) = self.fire(*e) {
                return (Verdict::Hold(tag), i + 1);
            }
        }
        match self.check(kind, sectors) {
            Some(errno) => (Verdict::Fail(errno), events.len()),
            None => (Verdict::Pass, events.len()),
        }
    }
}

impl fmt::Display for Blkdebug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "blkdebug: state {}, {} rule(s)",
            self.state,
            self.rules.len()
        )
    }
}

/// `key = "value"` (QEMU's config syntax: the value in double quotes).
fn parse_option(line: &str) -> Option<(&str, &str)> {
    let (key, value) = line.split_once('=')?;
    let key = key.trim();
    let value = value.trim().strip_prefix('"')?.strip_suffix('"')?;
    (!key.is_empty() && !key.contains(char::is_whitespace) && !value.contains('"'))
        .then_some((key, value))
}

/// A section being read.
struct Section {
    kind: &'static str,
    event: Option<Event>,
    state: u64,
    errno: i32,
    iotypes: u8,
    sector: Option<u64>,
    once: bool,
    new_state: u64,
}

const INJECT: &str = "inject-error";
const SET_STATE: &str = "set-state";

impl Section {
    fn new(line: usize, name: &str) -> Result<Self, BlkdebugError> {
        let kind = match name {
            INJECT => INJECT,
            SET_STATE => SET_STATE,
            other => return Err(BlkdebugError::Section(line, other.to_string())),
        };
        Ok(Section {
            kind,
            event: None,
            state: 0,
            errno: libc::EIO,
            iotypes: IoType::Read.bit()
                | IoType::Write.bit()
                | IoType::Discard.bit()
                | IoType::Flush.bit(),
            sector: None,
            once: false,
            new_state: 0,
        })
    }

    fn set(&mut self, line: usize, key: &str, value: &str) -> Result<(), BlkdebugError> {
        let number = |what: &'static str| {
            value
                .parse::<u64>()
                .map_err(|_| BlkdebugError::Value(what, value.to_string()))
        };
        let flag = |what: &'static str| match value {
            "on" | "yes" | "true" => Ok(true),
            "off" | "no" | "false" => Ok(false),
            _ => Err(BlkdebugError::Value(what, value.to_string())),
        };
        match (self.kind, key) {
            (_, "event") => self.event = Some(Event::parse(value)?),
            (_, "state") => self.state = number("state")?,
            (INJECT, "errno") => {
                self.errno = i32::try_from(number("errno")?)
                    .map_err(|_| BlkdebugError::Value("errno", value.to_string()))?
            }
            (INJECT, "sector") => self.sector = Some(number("sector")?),
            (INJECT, "once") => self.once = flag("once")?,
            (INJECT, "immediately") => {
                flag("immediately")?;
            }
            (INJECT, "iotype") => {
                self.iotypes = [IoType::Read, IoType::Write, IoType::Discard, IoType::Flush]
                    .into_iter()
                    .find(|t| t.name() == value)
                    .ok_or_else(|| BlkdebugError::Value("iotype", value.to_string()))?
                    .bit()
            }
            (SET_STATE, "new_state") => self.new_state = number("new_state")?,
            (kind, other) => {
                return Err(BlkdebugError::Option(line, other.to_string(), kind));
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<(Event, u64, Action), BlkdebugError> {
        let event = self.event.ok_or(BlkdebugError::NoEvent(self.kind))?;
        let action = if self.kind == INJECT {
            Action::Inject {
                errno: self.errno,
                iotypes: self.iotypes,
                sector: self.sector,
                once: self.once,
            }
        } else {
            Action::SetState(self.new_state)
        };
        Ok((event, self.state, action))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The script QEMU's ide-test writes for `flush/retry_pci`.
    const RETRY: &str = "[inject-error]\nevent = \"flush_to_disk\"\nerrno = \"5\"\n\
        state = \"1\"\nimmediately = \"off\"\nonce = \"on\"\n\n[set-state]\n\
        event = \"flush_to_disk\"\nnew_state = \"2\"\n";

    #[test]
    fn the_retry_script_fails_the_first_flush_only() {
        let mut b = Blkdebug::parse(RETRY).unwrap();
        assert_eq!(b.run(IoType::Write, Some((1, 1)), 0), (Verdict::Pass, 1));
        assert_eq!(b.run(IoType::Flush, None, 0), (Verdict::Fail(5), 2));
        assert_eq!(b.state(), 2);
        assert_eq!(b.run(IoType::Flush, None, 0), (Verdict::Pass, 2));
        assert_eq!(b.run(IoType::Flush, None, 0), (Verdict::Pass, 2));
    }

    #[test]
    fn an_active_rule_stays_until_once_fires() {
        let mut b = Blkdebug::parse(
            "# comment\n[inject-error]\nevent = \"write_aio\"\nerrno = \"28\"\n\
             iotype = \"discard\"\n",
        )
        .unwrap();
        // A discard fires no event: nothing is active yet.
        assert_eq!(b.run(IoType::Discard, Some((0, 8)), 0).0, Verdict::Pass);
        // The write activates the rule but is not a discard.
        assert_eq!(b.run(IoType::Write, Some((0, 8)), 0).0, Verdict::Pass);
        for _ in 0..3 {
            assert_eq!(b.run(IoType::Discard, Some((0, 8)), 0).0, Verdict::Fail(28));
        }
    }

    #[test]
    fn sector_limits_the_rule() {
        let mut b =
            Blkdebug::parse("[inject-error]\nevent = \"read_aio\"\nsector = \"10\"\n").unwrap();
        assert_eq!(b.run(IoType::Read, Some((0, 10)), 0).0, Verdict::Pass);
        assert_eq!(b.run(IoType::Read, Some((8, 3)), 0).0, Verdict::Fail(5));
        assert_eq!(b.run(IoType::Read, Some((11, 3)), 0).0, Verdict::Pass);
    }

    #[test]
    fn a_breakpoint_holds_one_request_and_resumes_after_its_event() {
        let mut b = Blkdebug::new();
        b.add_break("flush_to_os", "A").unwrap();
        let (v, next) = b.run(IoType::Flush, None, 0);
        assert_eq!((v, next), (Verdict::Hold("A".into()), 1));
        assert_eq!(b.run(IoType::Flush, None, next), (Verdict::Pass, 2));
        // Fired once: the next flush passes.
        assert_eq!(b.run(IoType::Flush, None, 0).0, Verdict::Pass);
        b.add_break("read_aio", "B").unwrap();
        assert!(b.remove_break("B"));
        assert!(!b.remove_break("B"));
        assert_eq!(b.run(IoType::Read, Some((0, 1)), 0).0, Verdict::Pass);
        assert_eq!(
            b.add_break("cluster_alloc", "C"),
            Err(BlkdebugError::Event("cluster_alloc".into()))
        );
    }

    #[test]
    fn a_state_guards_rules_and_changes_after_the_event() {
        let mut b = Blkdebug::parse(
            "[set-state]\nevent = \"read_aio\"\nstate = \"1\"\nnew_state = \"3\"\n\
             [inject-error]\nevent = \"read_aio\"\nstate = \"3\"\n",
        )
        .unwrap();
        // State 1 during the event: the inject rule (state 3) does not act.
        assert_eq!(b.run(IoType::Read, Some((0, 1)), 0).0, Verdict::Pass);
        assert_eq!(b.state(), 3);
        assert_eq!(b.run(IoType::Read, Some((0, 1)), 0).0, Verdict::Fail(5));
    }

    #[test]
    fn files_are_bounded_and_regular() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.conf");
        std::fs::write(&big, "#".repeat(MAX_CONFIG_BYTES as usize + 1)).unwrap();
        let e = Blkdebug::from_file(&big).unwrap_err().to_string();
        assert!(e.contains("larger than"), "{e}");
        let e = Blkdebug::from_file(dir.path()).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        let ok = dir.path().join("ok.conf");
        std::fs::write(
            &ok,
            "[set-state]\nevent = \"read_aio\"\nnew_state = \"2\"\n",
        )
        .unwrap();
        assert!(Blkdebug::from_file(&ok).is_ok());
        let mut many = String::new();
        for _ in 0..=MAX_RULES {
            many.push_str("[set-state]\nevent = \"read_aio\"\n");
        }
        assert!(
            Blkdebug::parse(&many)
                .unwrap_err()
                .to_string()
                .contains("more than")
        );
        let mut b = Blkdebug::new();
        for i in 0..MAX_RULES {
            b.add_break("read_aio", &i.to_string()).unwrap();
        }
        assert!(
            b.add_break("read_aio", "x").is_err(),
            "breakpoints count too"
        );
    }

    #[test]
    fn errors_name_what_is_wrong() {
        for (text, want) in [
            ("[suspend]\nevent = \"read_aio\"\n", "section [suspend]"),
            ("event = \"read_aio\"\n", "outside a section"),
            ("[inject-error]\nevent = read_aio\n", "line 2"),
            (
                "[inject-error]\nevent = \"cluster_alloc\"\n",
                "'cluster_alloc'",
            ),
            ("[inject-error]\nerrno = \"5\"\n", "needs an event"),
            (
                "[inject-error]\nevent = \"read_aio\"\nerrno = \"x\"\n",
                "errno",
            ),
            (
                "[inject-error]\nevent = \"read_aio\"\nnew_state = \"2\"\n",
                "'new_state'",
            ),
            (
                "[set-state]\nevent = \"read_aio\"\nonce = \"on\"\n",
                "'once'",
            ),
            (
                "[inject-error]\nevent = \"read_aio\"\niotype = \"zap\"\n",
                "iotype",
            ),
        ] {
            let e = Blkdebug::parse(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
            assert!(!e.contains('\n'), "one line: {e}");
        }
    }
}
