//! The map-client retry queue: devices waiting for bounce space.
//!
//! A fixed-capacity FIFO of device ids (no closures, no heap), kept by the
//! bounce arena under the same lock as its allocation table, so a failed
//! allocation and the registration that follows can never miss a release
//! in between (see [`RetryStatus::RetryNow`]).
//!
//! # Fairness
//! The queue is strict FIFO with no overtaking: while any client waits,
//! only the client at the head may allocate bounce space; everybody else
//! (including clients that never waited) is told the arena is busy and
//! queues behind. So a large waiter cannot be starved by a stream of small
//! ones: once it is at the head, every byte that is released stays free
//! until the head's request fits. The guarantee holds as long as mappings
//! are eventually released (every in-flight request completes) and every
//! client handed out by [`RetryQueue::hand_out`] either tries again or
//! cancels. The price is head-of-line blocking: small requests wait behind
//! a large one even when they would fit.
//!
//! Life of an entry: `register` (waiting) → a release marks waiting
//! entries notified → the host collects the head with `poll_retry`
//! (handed out) → the client retries: success removes it (and notifies
//! the next head, since space may be left), failure re-registers it in
//! place (waiting again).

use heapless::Deque;

use crate::memory::DeviceId;

/// Result of a registration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryStatus {
    /// Queued; the client will be handed out by `poll_retry` after space
    /// is freed.
    Queued,
    /// Space was freed since the failed attempt: retry now (not queued).
    RetryNow,
}

/// Retry-queue errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryError {
    /// Every slot of the queue is taken.
    QueueFull,
}

impl core::fmt::Display for RetryError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("retry queue is full")
    }
}

impl core::error::Error for RetryError {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Waiting for a release.
    Waiting,
    /// Space was released since it registered; not yet handed out.
    Notified,
    /// Handed to the host by `hand_out`; expected to retry or cancel.
    HandedOut,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    client: DeviceId,
    state: State,
}

/// Up to `N` clients waiting for bounce space, in registration order.
#[derive(Debug)]
pub struct RetryQueue<const N: usize> {
    entries: Deque<Entry, N>,
}

impl<const N: usize> Default for RetryQueue<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> RetryQueue<N> {
    const CAPACITY_OK: () = assert!(N > 0, "a retry queue needs at least one slot");

    /// An empty queue (usable in a `static`).
    pub const fn new() -> Self {
        let () = Self::CAPACITY_OK;
        RetryQueue {
            entries: Deque::new(),
        }
    }

    /// Adds `client` at the tail, waiting. A client already queued keeps
    /// its place; if it had been handed out it waits again (it retried and
    /// failed), if it was notified it stays notified (the release came
    /// after its attempt, so it should try again).
    pub fn register(&mut self, client: DeviceId) -> Result<(), RetryError> {
        if let Some(e) = self.entries.iter_mut().find(|e| e.client == client) {
            if e.state == State::HandedOut {
                e.state = State::Waiting;
            }
            return Ok(());
        }
        self.entries
            .push_back(Entry {
                client,
                state: State::Waiting,
            })
            .map_err(|_| RetryError::QueueFull)
    }

    /// True when `client` may allocate now: nobody waits, or it is the
    /// head of the queue.
    pub fn admits(&self, client: DeviceId) -> bool {
        self.entries.front().is_none_or(|e| e.client == client)
    }

    /// Space was released: every waiting client is notified.
    pub fn notify_all(&mut self) {
        for e in self.entries.iter_mut() {
            if e.state == State::Waiting {
                e.state = State::Notified;
            }
        }
    }

    /// The head, if it was notified and not yet handed out (only the head
    /// may allocate, so nobody else is worth waking).
    pub fn hand_out(&mut self) -> Option<DeviceId> {
        let head = self.entries.front_mut()?;
        if head.state != State::Notified {
            return None;
        }
        head.state = State::HandedOut;
        Some(head.client)
    }

    /// `client` got its space: it leaves the queue, and the new head is
    /// notified (the release that served it may have left room).
    pub fn served(&mut self, client: DeviceId) {
        self.remove(client);
    }

    /// Removes `client` wherever it is; returns whether it was queued.
    pub fn cancel(&mut self, client: DeviceId) -> bool {
        self.remove(client)
    }

    fn remove(&mut self, client: DeviceId) -> bool {
        let was_head = self.entries.front().is_some_and(|e| e.client == client);
        let n = self.entries.len();
        let mut found = false;
        for _ in 0..n {
            if let Some(e) = self.entries.pop_front() {
                if e.client == client && !found {
                    found = true;
                } else {
                    // Cannot fail: one slot was just freed.
                    let _ = self.entries.push_back(e);
                }
            }
        }
        if was_head
            && let Some(h) = self.entries.front_mut()
            && h.state == State::Waiting
        {
            h.state = State::Notified;
        }
        found
    }

    /// Number of queued clients.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nobody is queued.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// True when `client` is queued.
    pub fn contains(&self, client: DeviceId) -> bool {
        self.entries.iter().any(|e| e.client == client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;
    use std::vec::Vec;

    fn id(n: u16) -> DeviceId {
        DeviceId::test(n)
    }

    #[test]
    fn fifo_admission_and_hand_out() {
        let mut q = RetryQueue::<3>::new();
        assert!(q.admits(id(9)), "empty queue admits everyone");
        q.register(id(1)).unwrap();
        q.register(id(2)).unwrap();
        q.register(id(1)).unwrap(); // keeps its place
        q.register(id(3)).unwrap();
        assert_eq!(q.register(id(4)), Err(RetryError::QueueFull));
        assert!(q.admits(id(1)));
        assert!(!q.admits(id(2)) && !q.admits(id(9)), "no overtaking");
        assert_eq!(q.hand_out(), None, "nobody notified yet");
        q.notify_all();
        assert_eq!(q.hand_out(), Some(id(1)));
        assert_eq!(q.hand_out(), None, "only the head is handed out");
        // 1 retried and failed: it waits again at the head.
        q.register(id(1)).unwrap();
        assert!(q.admits(id(1)));
        q.notify_all();
        assert_eq!(q.hand_out(), Some(id(1)));
        q.served(id(1));
        // 2 is the new head and was notified by the earlier release.
        assert!(q.admits(id(2)));
        assert_eq!(q.hand_out(), Some(id(2)));
        assert!(q.cancel(id(2)));
        assert!(!q.cancel(id(2)));
        assert_eq!(
            q.hand_out(),
            Some(id(3)),
            "cancel of the head notifies the next"
        );
        assert_eq!(q.len(), 1);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Register(u16),
        Cancel(u16),
        Served(u16),
        Notify,
        HandOut,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u16..6).prop_map(Op::Register),
            (0u16..6).prop_map(Op::Cancel),
            (0u16..6).prop_map(Op::Served),
            Just(Op::Notify),
            Just(Op::HandOut),
        ]
    }

    proptest! {
        /// The queue behaves like a VecDeque of (id, state) with dedup,
        /// capacity 4, head-only admission and head-only hand-out.
        #[test]
        fn model(ops in proptest::collection::vec(op(), 0..64)) {
            let mut q = RetryQueue::<4>::new();
            let mut m: VecDeque<(u16, State)> = VecDeque::new();
            let remove = |m: &mut VecDeque<(u16, State)>, who: u16| {
                let pos = m.iter().position(|e| e.0 == who);
                if let Some(p) = pos {
                    m.remove(p);
                    if p == 0 && let Some(h) = m.front_mut() && h.1 == State::Waiting {
                        h.1 = State::Notified;
                    }
                }
                pos.is_some()
            };
            for op in ops {
                match op {
                    Op::Register(who) => {
                        let r = q.register(id(who));
                        if let Some(e) = m.iter_mut().find(|e| e.0 == who) {
                            prop_assert_eq!(r, Ok(()));
                            if e.1 == State::HandedOut { e.1 = State::Waiting; }
                        } else if m.len() == 4 {
                            prop_assert_eq!(r, Err(RetryError::QueueFull));
                        } else {
                            prop_assert_eq!(r, Ok(()));
                            m.push_back((who, State::Waiting));
                        }
                    }
                    Op::Cancel(who) => {
                        let want = remove(&mut m, who);
                        prop_assert_eq!(q.cancel(id(who)), want);
                    }
                    Op::Served(who) => {
                        remove(&mut m, who);
                        q.served(id(who));
                    }
                    Op::Notify => {
                        q.notify_all();
                        for e in m.iter_mut() {
                            if e.1 == State::Waiting { e.1 = State::Notified; }
                        }
                    }
                    Op::HandOut => {
                        let want = match m.front_mut() {
                            Some(h) if h.1 == State::Notified => { h.1 = State::HandedOut; Some(id(h.0)) }
                            _ => None,
                        };
                        prop_assert_eq!(q.hand_out(), want);
                    }
                }
                prop_assert_eq!(q.len(), m.len());
                for who in 0..6u16 {
                    let admits = m.front().is_none_or(|e| e.0 == who);
                    prop_assert_eq!(q.admits(id(who)), admits);
                }
                let got: Vec<(u16, State)> = q.entries.iter().map(|e| (e.client.raw(), e.state)).collect();
                let want: Vec<(u16, State)> = m.iter().copied().collect();
                prop_assert_eq!(got, want);
            }
        }
    }
}
