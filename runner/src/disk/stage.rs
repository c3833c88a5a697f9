//! The stage between the IDE controller and the I/O engine that can keep a
//! request back: held at a fault-injection breakpoint ([`super::blkdebug`])
//! or stopped by an error policy ([`super::policy`]) until the VM's `cont`.
//!
//! A kept request keeps its [`RequestToken`] here, with a copy of its
//! [`Leased`] buffers: to the controller it is simply still in flight, so
//! its memory stays leased (nothing the guest does ends it early; see the
//! core's lease module) until this stage hands the token back in a
//! completion. Submitting it again is therefore safe whenever it happens.
//! Nothing here does I/O except through the engine given to each call.
//!
//! Costs: a request is copied (its buffer list, reusing a small pool) only
//! where it may have to be submitted again: when fault injection is on,
//! or when the policy of its kind can stop (the default `werror=enospc`
//! makes that every write, flush and discard when a monitor exists).

use std::collections::VecDeque;
use std::sync::Arc;

use vmdma_core::block::{
    BlockDevice, BlockError, BlockRequest, Completion, Leased, Refused, RequestId, RequestToken,
};

use super::blkdebug::{Blkdebug, IoType, Verdict};
use super::events::{DiskEvents, IoErrorEvent};
use super::policy::{Decision, ErrorPolicy};

/// Requests this stage tracks at most (the controller has one in flight
/// per channel; anything beyond this is refused with `QueueFull`).
pub const MAX_TRACKED: usize = 256;
/// Buffer lists kept for reuse.
const POOL: usize = 8;

/// A request's parameters, owned (buffers copied).
#[derive(Debug)]
enum Owned<'m> {
    Read { sector: u64, iov: Vec<Leased<'m>> },
    Write { sector: u64, iov: Vec<Leased<'m>> },
    Flush,
    Discard { sector: u64, count: u64 },
}

impl<'m> Owned<'m> {
    fn kind(&self) -> IoType {
        match self {
            Owned::Read { .. } => IoType::Read,
            Owned::Write { .. } => IoType::Write,
            Owned::Flush => IoType::Flush,
            Owned::Discard { .. } => IoType::Discard,
        }
    }

    fn sectors(&self) -> Option<(u64, u64)> {
        match self {
            Owned::Read { sector, iov } | Owned::Write { sector, iov } => {
                Some((*sector, vmdma_core::block::iov_len(iov) / 512))
            }
            Owned::Discard { sector, count } => Some((*sector, *count)),
            Owned::Flush => None,
        }
    }

    fn request(&self) -> BlockRequest<'_, 'm> {
        match self {
            Owned::Read { sector, iov } => BlockRequest::Read {
                sector: *sector,
                iov,
            },
            Owned::Write { sector, iov } => BlockRequest::Write {
                sector: *sector,
                iov,
            },
            Owned::Flush => BlockRequest::Flush,
            Owned::Discard { sector, count } => BlockRequest::Discard {
                sector: *sector,
                count: *count,
            },
        }
    }

    fn into_buffers(self) -> Option<Vec<Leased<'m>>> {
        match self {
            Owned::Read { iov, .. } | Owned::Write { iov, .. } => Some(iov),
            _ => None,
        }
    }
}

/// The C library's text for `errno` (without Rust's " (os error N)").
pub fn strerror(errno: i32) -> String {
    let text = std::io::Error::from_raw_os_error(errno).to_string();
    match text.rfind(" (os error ") {
        Some(i) => text.get(..i).unwrap_or(&text).to_string(),
        None => text,
    }
}

fn kind_of(req: &BlockRequest<'_, '_>) -> IoType {
    match req {
        BlockRequest::Read { .. } => IoType::Read,
        BlockRequest::Write { .. } => IoType::Write,
        BlockRequest::Flush => IoType::Flush,
        BlockRequest::Discard { .. } => IoType::Discard,
    }
}

/// A request in the engine (or failed by injection, waiting in `ready`).
#[derive(Debug)]
struct Tracked<'m> {
    id: RequestId,
    kind: IoType,
    /// The copy to submit again, where one was made.
    copy: Option<Owned<'m>>,
}

/// Why a request is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Why {
    /// At a breakpoint; `next` is the event to fire when resumed.
    Held { tag: String, next: usize },
    /// Its error stopped the VM.
    Stopped,
}

#[derive(Debug)]
struct Kept<'m> {
    token: RequestToken,
    req: Owned<'m>,
    why: Why,
}

/// Host I/O errors seen, and which have been said on stderr.
#[derive(Debug, Default)]
struct IoErrors {
    count: u64,
    said: Vec<(i32, Decision)>,
}

impl IoErrors {
    /// Counts an error; the first of each errno and decision gets one
    /// line on stderr.
    fn note(&mut self, errno: i32, decision: Decision) {
        self.count = self.count.saturating_add(1);
        if self.said.contains(&(errno, decision)) || self.said.len() >= 64 {
            return;
        }
        self.said.push((errno, decision));
        let e = strerror(errno);
        match decision {
            Decision::Report => eprintln!(
                "vmdma: warning: disk I/O error: {e} (the guest gets an ATA error for that \
                 command; has the image been changed by another process?)"
            ),
            Decision::Ignore => eprintln!(
                "vmdma: warning: disk I/O error: {e} (ignored as werror/rerror=ignore says: \
                 the guest sees success)"
            ),
            Decision::Stop => eprintln!(
                "vmdma: disk I/O error: {e}: the VM pauses (werror/rerror); QMP cont \
                 submits the request again"
            ),
        }
    }
}

/// Which kept requests to release.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Release<'a> {
    /// Those stopped by an error (the VM's `cont`).
    Stopped,
    /// The first held at a breakpoint of this tag (`resume TAG`).
    Tag(&'a str),
    /// Every one held at a breakpoint of this tag (`remove_break TAG`).
    AllTagged(&'a str),
}

/// The stage (see the module docs).
#[derive(Debug, Default)]
pub struct Stage<'m> {
    policy: Option<ErrorPolicy>,
    faults: Option<Blkdebug>,
    events: Option<Arc<DiskEvents>>,
    device: &'static str,
    tracked: Vec<Tracked<'m>>,
    kept: Vec<Kept<'m>>,
    released: VecDeque<Kept<'m>>,
    ready: VecDeque<Completion>,
    ending: bool,
    pool: Vec<Vec<Leased<'m>>>,
    errors: IoErrors,
}

impl<'m> Stage<'m> {
    /// A stage that only reports errors and injects nothing.
    pub fn new() -> Self {
        Stage::default()
    }

    /// Applies `policy`; `Stop` decisions need `events` (the monitor that
    /// pauses the VM and resumes it); without it they report. `device` is
    /// the drive's name in the events.
    pub fn set_policy(
        &mut self,
        policy: ErrorPolicy,
        events: Option<Arc<DiskEvents>>,
        device: &'static str,
    ) {
        self.policy = Some(policy);
        self.events = events;
        self.device = device;
    }

    /// Turns fault injection on with `rules`.
    pub fn set_faults(&mut self, rules: Blkdebug) {
        self.faults = Some(rules);
    }

    /// The fault-injection rules, if on.
    pub fn faults_mut(&mut self) -> Option<&mut Blkdebug> {
        self.faults.as_mut()
    }

    /// Host I/O errors seen (whatever the policy did with them).
    pub fn io_errors(&self) -> u64 {
        self.errors.count
    }

    /// An I/O error refused a request before it started (the guest gets
    /// the error).
    pub fn note_refused(&mut self, errno: i32) {
        self.errors.note(errno, Decision::Report);
    }

    /// Requests kept or released and not yet submitted again.
    pub fn kept(&self) -> usize {
        self.kept.len() + self.released.len()
    }

    /// Requests this stage owes a completion for that are not in the engine
    /// (kept, released, or failed by injection and not yet polled).
    pub fn outside_engine(&self) -> usize {
        self.kept() + self.ready.len()
    }

    /// True while a request is held at a breakpoint of `tag`.
    pub fn is_held(&self, tag: &str) -> bool {
        self.kept
            .iter()
            .any(|k| matches!(&k.why, Why::Held { tag: t, .. } if t == tag))
    }

    /// True while a request stopped by its error waits for `cont`.
    pub fn has_stopped(&self) -> bool {
        self.kept
            .iter()
            .chain(self.released.iter())
            .any(|k| k.why == Why::Stopped)
    }

    fn may_stop(&self, kind: IoType) -> bool {
        self.policy
            .is_some_and(|p| p.for_request(kind == IoType::Read).may_stop())
    }

    fn copy(&mut self, req: &BlockRequest<'_, 'm>) -> Owned<'m> {
        let mut buffers = |iov: &[Leased<'m>]| {
            let mut v = self.pool.pop().unwrap_or_default();
            v.clear();
            v.extend_from_slice(iov);
            v
        };
        match req {
            BlockRequest::Read { sector, iov } => Owned::Read {
                sector: *sector,
                iov: buffers(iov),
            },
            BlockRequest::Write { sector, iov } => Owned::Write {
                sector: *sector,
                iov: buffers(iov),
            },
            BlockRequest::Flush => Owned::Flush,
            BlockRequest::Discard { sector, count } => Owned::Discard {
                sector: *sector,
                count: *count,
            },
        }
    }

    fn recycle(&mut self, req: Option<Owned<'m>>) {
        if let Some(v) = req.and_then(Owned::into_buffers)
            && self.pool.len() < POOL
        {
            self.pool.push(v);
        }
    }

    /// A new request from the controller.
    pub fn submit(
        &mut self,
        engine: &mut dyn BlockDevice<'m>,
        token: RequestToken,
        req: BlockRequest<'_, 'm>,
    ) -> Result<(), Refused> {
        if self.tracked.len() + self.outside_engine() >= MAX_TRACKED {
            return Err(Refused::new(token, BlockError::QueueFull));
        }
        let kind = kind_of(&req);
        if self.faults.is_none() && !self.may_stop(kind) {
            let id = token.id();
            engine.submit(token, req)?;
            self.tracked.push(Tracked {
                id,
                kind,
                copy: None,
            });
            return Ok(());
        }
        let owned = self.copy(&req);
        match self.start(engine, token, owned, 0) {
            Ok(()) => Ok(()),
            Err((refused, owned)) => {
                self.recycle(Some(owned));
                Err(refused)
            }
        }
    }

    /// Runs `req` through the rules from event `from` on, then into the
    /// engine. A refusal gives the request back.
    fn start(
        &mut self,
        engine: &mut dyn BlockDevice<'m>,
        token: RequestToken,
        req: Owned<'m>,
        from: usize,
    ) -> Result<(), (Refused, Owned<'m>)> {
        let kind = req.kind();
        let id = token.id();
        if let Some(f) = self.faults.as_mut() {
            match f.run(kind, req.sectors(), from) {
                (Verdict::Hold(tag), next) => {
                    self.kept.push(Kept {
                        token,
                        req,
                        why: Why::Held { tag, next },
                    });
                    return Ok(());
                }
                (Verdict::Fail(errno), _) => {
                    self.tracked.push(Tracked {
                        id,
                        kind,
                        copy: Some(req),
                    });
                    self.ready
                        .push_back(Completion::new(token, Err(BlockError::Io(errno))));
                    return Ok(());
                }
                (Verdict::Pass, _) => {}
            }
        }
        match engine.submit(token, req.request()) {
            Ok(()) => {
                self.tracked.push(Tracked {
                    id,
                    kind,
                    copy: Some(req),
                });
                Ok(())
            }
            Err(r) => Err((r, req)),
        }
    }

    /// Moves kept requests to the released list (no I/O: the thread that
    /// may do disk I/O submits them, [`Stage::submit_released`]). Returns
    /// how many.
    pub fn release(&mut self, which: Release<'_>) -> usize {
        let mut n = 0;
        let mut i = 0;
        while i < self.kept.len() {
            let hit = match (&which, &self.kept.get(i).map(|k| &k.why)) {
                (Release::Stopped, Some(Why::Stopped)) => true,
                (Release::Tag(t) | Release::AllTagged(t), Some(Why::Held { tag, .. })) => tag == t,
                _ => false,
            };
            if hit {
                self.released.push_back(self.kept.remove(i));
                n += 1;
                if matches!(which, Release::Tag(_)) {
                    break;
                }
            } else {
                i += 1;
            }
        }
        n
    }

    /// Submits the released requests again: a held one goes on from the
    /// event after its breakpoint, a stopped one starts over (its events
    /// fire again, as a retried request's do in QEMU). A refusal now is a
    /// completion with that error.
    pub fn submit_released(&mut self, engine: &mut dyn BlockDevice<'m>) {
        while let Some(k) = self.released.pop_front() {
            let from = match k.why {
                Why::Held { next, .. } => next,
                Why::Stopped => 0,
            };
            if let Err((r, req)) = self.start(engine, k.token, k.req, from) {
                let kind = req.kind();
                self.tracked.push(Tracked {
                    id: r.token.id(),
                    kind,
                    copy: None,
                });
                self.recycle(Some(req));
                self.ready.push_back(Completion::new(r.token, Err(r.error)));
            }
        }
    }

    /// The run is ending: every kept request completes with `ECANCELED`
    /// (its memory is handed back; the guest, if it still runs, sees the
    /// command fail) and from now on every error is reported.
    pub fn abandon(&mut self) {
        self.ending = true;
        let kept: Vec<_> = self.kept.drain(..).chain(self.released.drain(..)).collect();
        for k in kept {
            self.tracked.push(Tracked {
                id: k.token.id(),
                kind: k.req.kind(),
                copy: None,
            });
            self.recycle(Some(k.req));
            self.ready.push_back(Completion::new(
                k.token,
                Err(BlockError::Io(libc::ECANCELED)),
            ));
        }
    }

    /// The next completion for the controller: from this stage's own queue
    /// or from the engine (`wait`: the engine's bounded wait), after the
    /// error policy. A request the policy stops is kept and the next one is
    /// looked at.
    pub fn next(&mut self, engine: &mut dyn BlockDevice<'m>, wait: bool) -> Option<Completion> {
        loop {
            let c = match self.ready.pop_front() {
                Some(c) => c,
                None if wait => engine.wait()?,
                None => engine.poll()?,
            };
            if let Some(c) = self.after(c) {
                return Some(c);
            }
            if wait && self.ready.is_empty() {
                // Kept: a bounded wait says nothing finished.
                return None;
            }
        }
    }

    /// Applies the policy to a completion; `None` if the request is kept.
    fn after(&mut self, c: Completion) -> Option<Completion> {
        let id = c.id();
        let t = self
            .tracked
            .iter()
            .position(|t| t.id == id)
            .map(|i| self.tracked.swap_remove(i));
        let Err(BlockError::Io(errno)) = c.result else {
            self.recycle(t.and_then(|t| t.copy));
            return Some(c);
        };
        let Some(t) = t else {
            // Not one of ours (cannot happen): as it is.
            return Some(c);
        };
        let policy = self.policy.unwrap_or(ErrorPolicy::REPORT);
        let mut decision = if self.ending {
            Decision::Report
        } else {
            policy
                .for_request(t.kind == IoType::Read)
                .decide(BlockError::Io(errno))
        };
        if decision == Decision::Stop && (self.events.is_none() || t.copy.is_none()) {
            decision = Decision::Report;
        }
        self.errors.note(errno, decision);
        if let Some(ev) = self.events.as_ref().filter(|_| !self.ending) {
            ev.push(IoErrorEvent {
                device: self.device,
                kind: t.kind,
                decision,
                nospace: errno == libc::ENOSPC,
                reason: strerror(errno),
            });
        }
        match (decision, t.copy) {
            (Decision::Stop, Some(req)) => {
                self.kept.push(Kept {
                    token: c.token,
                    req,
                    why: Why::Stopped,
                });
                None
            }
            (Decision::Ignore, copy) => {
                self.recycle(copy);
                Some(Completion::new(c.token, Ok(())))
            }
            (_, copy) => {
                self.recycle(copy);
                Some(c)
            }
        }
    }
}

#[cfg(test)]
mod tests;
