//! The map-client retry queue: clients waiting for bounce space.
//!
//! A fixed-capacity FIFO of client ids (no closures, no heap). Clients are
//! one-shot: a notified client leaves the queue when the host collects it
//! with [`RetryQueue::pop_notified`]. When space is freed every waiting
//! client is marked notified *in registration order*, so the oldest waiter
//! retries first (fair FIFO, unlike QEMU's LIFO wake-all). Whether a
//! registration must not wait at all (space was freed since the failed map)
//! is decided by the address space, which owns the generation counter.

use heapless::Deque;

/// Names a retry client (a device channel, say). The host maps it back to
/// the device whose map step must run again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientId(pub u16);

/// Result of a registration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryStatus {
    /// Queued; the client will be handed out by `poll_retry` after space
    /// is freed.
    Queued,
    /// Space was freed since the failed map: retry now (not queued).
    RetryNow,
}

/// Retry-queue errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
struct Entry {
    client: ClientId,
    notified: bool,
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

    /// Adds `client` at the tail, waiting. Registering a client that is
    /// already queued keeps its place (and state) and succeeds.
    pub fn register(&mut self, client: ClientId) -> Result<(), RetryError> {
        if self.entries.iter().any(|e| e.client == client) {
            return Ok(());
        }
        self.entries
            .push_back(Entry {
                client,
                notified: false,
            })
            .map_err(|_| RetryError::QueueFull)
    }

    /// Removes `client` wherever it is; returns whether it was queued.
    pub fn unregister(&mut self, client: ClientId) -> bool {
        let n = self.entries.len();
        let mut found = false;
        for _ in 0..n {
            if let Some(e) = self.entries.pop_front() {
                if e.client == client && !found {
                    found = true;
                } else {
                    // Cannot fail: we just freed a slot.
                    let _ = self.entries.push_back(e);
                }
            }
        }
        found
    }

    /// Marks every waiting client notified (space was freed).
    pub fn notify_all(&mut self) {
        for e in self.entries.iter_mut() {
            e.notified = true;
        }
    }

    /// Removes and returns the oldest notified client.
    pub fn pop_notified(&mut self) -> Option<ClientId> {
        let n = self.entries.len();
        let mut out = None;
        for _ in 0..n {
            if let Some(e) = self.entries.pop_front() {
                if out.is_none() && e.notified {
                    out = Some(e.client);
                } else {
                    let _ = self.entries.push_back(e);
                }
            }
        }
        out
    }

    /// Number of queued clients (waiting or notified).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nobody is queued.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// True when `client` is queued and not yet notified.
    pub fn is_waiting(&self, client: ClientId) -> bool {
        self.entries
            .iter()
            .any(|e| e.client == client && !e.notified)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;
    use std::vec::Vec;

    #[test]
    fn fifo_one_shot_and_cancel() {
        let mut q = RetryQueue::<3>::new();
        q.register(ClientId(1)).unwrap();
        q.register(ClientId(2)).unwrap();
        q.register(ClientId(1)).unwrap(); // idempotent
        q.register(ClientId(3)).unwrap();
        assert_eq!(q.register(ClientId(4)), Err(RetryError::QueueFull));
        assert_eq!(q.pop_notified(), None);
        assert!(q.unregister(ClientId(2)));
        assert!(!q.unregister(ClientId(2)));
        q.notify_all();
        q.register(ClientId(5)).unwrap();
        assert_eq!(q.pop_notified(), Some(ClientId(1)));
        assert_eq!(q.pop_notified(), Some(ClientId(3)));
        assert_eq!(q.pop_notified(), None);
        assert!(q.is_waiting(ClientId(5)));
        assert_eq!(q.len(), 1);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Register(u16),
        Unregister(u16),
        Notify,
        Pop,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u16..6).prop_map(Op::Register),
            (0u16..6).prop_map(Op::Unregister),
            Just(Op::Notify),
            Just(Op::Pop),
        ]
    }

    proptest! {
        /// The queue behaves like a VecDeque of (id, notified) with
        /// dedup, capacity 4, FIFO pop of notified entries.
        #[test]
        fn model(ops in proptest::collection::vec(op(), 0..64)) {
            let mut q = RetryQueue::<4>::new();
            let mut m: VecDeque<(u16, bool)> = VecDeque::new();
            for op in ops {
                match op {
                    Op::Register(id) => {
                        let r = q.register(ClientId(id));
                        if m.iter().any(|e| e.0 == id) {
                            prop_assert_eq!(r, Ok(()));
                        } else if m.len() == 4 {
                            prop_assert_eq!(r, Err(RetryError::QueueFull));
                        } else {
                            prop_assert_eq!(r, Ok(()));
                            m.push_back((id, false));
                        }
                    }
                    Op::Unregister(id) => {
                        let pos = m.iter().position(|e| e.0 == id);
                        prop_assert_eq!(q.unregister(ClientId(id)), pos.is_some());
                        if let Some(p) = pos { m.remove(p); }
                    }
                    Op::Notify => { q.notify_all(); for e in m.iter_mut() { e.1 = true; } }
                    Op::Pop => {
                        let pos = m.iter().position(|e| e.1);
                        let want = pos.map(|p| ClientId(m.remove(p).unwrap().0));
                        prop_assert_eq!(q.pop_notified(), want);
                    }
                }
                prop_assert_eq!(q.len(), m.len());
                let ids: Vec<u16> = q.entries.iter().map(|e| e.client.0).collect();
                let mids: Vec<u16> = m.iter().map(|e| e.0).collect();
                prop_assert_eq!(ids, mids);
            }
        }
    }
}
