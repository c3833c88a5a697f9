use super::*;
use proptest::prelude::*;
use std::collections::VecDeque;
use std::vec;
use std::vec::Vec;

const K: Key = Key(());
const A: DeviceId = DeviceId::test(1);
const B: DeviceId = DeviceId::test(2);
const C: DeviceId = DeviceId::test(3);

fn offset_of(arena: &impl BounceBuffers, v: &VolatileSlice<'_>, base: usize) -> usize {
    let _ = arena;
    v.as_ptr() as usize - base
}

#[test]
fn granules_first_fit_and_largest_gap() {
    let arena = BounceArena::<1024, 8, 2>::new();
    let (a1, v1) = arena.alloc(K, A, 8, 8).unwrap();
    let base = v1.as_ptr() as usize;
    assert_eq!((v1.len(), a1.len), (8, 64), "8 bytes cost one granule");
    let (a2, v2) = arena.alloc(K, A, 100, 100).unwrap();
    assert_eq!((offset_of(&arena, &v2, base), a2.len), (64, 128));
    let (_a3, v3) = arena.alloc(K, A, 512, 512).unwrap();
    assert_eq!(offset_of(&arena, &v3, base), 192);
    assert_eq!(arena.in_use(), 704);
    // 320 bytes left at the end; a request for up to 400 (at least 100)
    // gets the largest gap, rounded down to granules.
    let (a4, v4) = arena.alloc(K, A, 100, 400).unwrap();
    assert_eq!((v4.len(), a4.len), (320, 320));
    assert_eq!(arena.alloc(K, A, 1, 1).err(), Some(MemError::BounceBusy));
    arena.free(K, a2);
    // The 128-byte hole is reused first-fit.
    let (_a5, v5) = arena.alloc(K, A, 64, 64).unwrap();
    assert_eq!(offset_of(&arena, &v5, base), 64);
    arena.free(K, a1);
    assert_eq!(
        arena.alloc(K, A, 200, 200).err(),
        Some(MemError::BounceBusy),
        "64 + 64 free, but not contiguous"
    );
    assert_eq!(arena.alloc(K, A, 0, 8).err(), Some(MemError::ZeroLength));
    assert_eq!(arena.alloc(K, A, 9, 8).err(), Some(MemError::ZeroLength));
}

#[test]
fn space_is_zeroed_and_freed_space_poisoned() {
    let arena = BounceArena::<512, 2, 1>::new();
    let (a, v) = arena.alloc(K, A, 512, 512).unwrap();
    v.fill(0, 512, 0xAA);
    arena.free(K, a);
    let mut b = [0u8; 512];
    v.copy_to(0, &mut b);
    assert!(b.iter().all(|&x| x == POISON), "tests poison freed space");
    let (_, v) = arena.alloc(K, A, 512, 512).unwrap();
    v.copy_to(0, &mut b);
    assert!(b.iter().all(|&x| x == 0), "reused space is zero-filled");
}

#[test]
fn live_table_bounds_allocations() {
    let arena = BounceArena::<4096, 2, 1>::new();
    let (a, _) = arena.alloc(K, A, 1, 1).unwrap();
    arena.alloc(K, A, 1, 1).unwrap();
    assert_eq!(arena.live(), 2);
    assert_eq!(arena.alloc(K, A, 1, 1).err(), Some(MemError::BounceBusy));
    arena.free(K, a);
    assert!(arena.alloc(K, A, 1, 1).is_ok());
}

/// Quarantined space is not reused while its request may still reach it,
/// and comes back (to waiting clients too) when that request is over.
#[test]
fn quarantined_space_waits_for_its_request() {
    let arena = BounceArena::<512, 4, 1>::new();
    let (a, v) = arena.alloc(K, A, 256, 256).unwrap();
    let id = a.id;
    let request = crate::block::RequestToken::new().id();
    arena.quarantine(K, a, request);
    assert_eq!((arena.quarantined(), arena.in_use()), (256, 256));
    arena.free(K, a); // a late free of quarantined space does nothing
    assert_eq!(arena.in_use(), 256);
    assert_eq!(arena.alloc_id_at(v.as_ptr()), Some(id));
    assert_eq!(
        arena.alloc(K, A, 512, 512).err(),
        Some(MemError::BounceBusy)
    );
    let (b, w) = arena.alloc(K, A, 256, 256).unwrap();
    assert_ne!(w.as_ptr(), v.as_ptr());
    assert_eq!(
        arena.register_retry(A, arena.bounce_generation()),
        Ok(RetryStatus::Queued)
    );
    arena.reclaim(K, crate::block::RequestToken::new().id());
    assert_eq!(
        arena.quarantined(),
        256,
        "another request's end frees nothing"
    );
    arena.reclaim(K, request);
    assert_eq!((arena.quarantined(), arena.in_use()), (0, 256));
    assert_eq!(arena.poll_retry(), Some(A), "the waiter is told");
    arena.free(K, b);
    assert_eq!(arena.in_use(), 0);
}

/// The fairness guarantee: a large waiter at the head of the queue is not
/// starved by a stream of small requests; everything released while it
/// waits stays free until it fits.
#[test]
fn large_waiter_is_not_starved_by_small_ones() {
    let arena = BounceArena::<2048, 16, 4>::new();
    // Small clients B and C keep the arena busy with 512-byte pieces.
    let mut held: VecDeque<Alloc> = (0..4)
        .map(|_| arena.alloc(K, B, 512, 512).unwrap().0)
        .collect();
    // A needs 1024 contiguous bytes: fails and queues.
    let g = arena.bounce_generation();
    assert_eq!(
        arena.alloc(K, A, 1024, 1024).err(),
        Some(MemError::BounceBusy)
    );
    assert_eq!(arena.register_retry(A, g), Ok(RetryStatus::Queued));
    for round in 0..3 {
        // One small piece is released...
        arena.free(K, held.pop_front().unwrap());
        // ...and the small clients try to take it again: refused, A waits
        // ahead of them.
        assert_eq!(
            arena.alloc(K, C, 512, 512).err(),
            Some(MemError::BounceBusy),
            "round {round}"
        );
        assert_eq!(arena.alloc(K, B, 64, 64).err(), Some(MemError::BounceBusy));
        // A is handed out and tries: not enough yet after the first release.
        if round == 0 {
            assert_eq!(arena.poll_retry(), Some(A));
            assert_eq!(
                arena.alloc(K, A, 1024, 1024).err(),
                Some(MemError::BounceBusy)
            );
            assert_eq!(
                arena.register_retry(A, arena.bounce_generation()),
                Ok(RetryStatus::Queued)
            );
        } else {
            assert_eq!(arena.poll_retry(), Some(A));
            let (a, v) = arena.alloc(K, A, 1024, 1024).unwrap();
            assert_eq!(v.len(), 1024);
            assert_eq!(arena.waiting(), 0);
            // With A served, the small ones may allocate again.
            arena.free(K, a);
            assert!(arena.alloc(K, C, 512, 512).is_ok());
            return;
        }
    }
    unreachable!("A must be served on the second release");
}

#[derive(Debug, Clone)]
enum Op {
    Alloc { who: u16, min: usize, extra: usize },
    Free { i: usize },
    Quarantine { i: usize },
    Register { who: u16 },
    Cancel { who: u16 },
    Poll,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (1u16..4, 1usize..700, 0usize..900).prop_map(|(who, min, extra)| Op::Alloc { who, min, extra }),
        4 => (0usize..8).prop_map(|i| Op::Free { i }),
        1 => (0usize..8).prop_map(|i| Op::Quarantine { i }),
        1 => (1u16..4).prop_map(|who| Op::Register { who }),
        1 => (1u16..4).prop_map(|who| Op::Cancel { who }),
        1 => Just(Op::Poll),
    ]
}

const BYTES: usize = 2048;

/// Free gaps of `live` ranges `(start, len)` in `BYTES`.
fn gaps(live: &[(usize, usize)]) -> Vec<(usize, usize)> {
    let mut sorted = live.to_vec();
    sorted.sort();
    let mut out = Vec::new();
    let mut prev = 0;
    for (s, l) in sorted.iter().copied().chain(std::iter::once((BYTES, 0))) {
        if s > prev {
            out.push((prev, s - prev));
        }
        prev = s + l;
    }
    out
}

proptest! {
    /// Allocation against a spec: granted ranges are disjoint, inside the
    /// arena and granule-aligned; a request gets all of `max` when any gap
    /// holds it, otherwise the largest gap of at least `min`; it fails only
    /// when no gap holds `min`, the live table is full, or a waiter is
    /// ahead of the requester. Fragmentation is exercised by random frees
    /// and quarantines. Every view is zero-filled when handed out.
    #[test]
    fn allocations_follow_the_spec(ops in proptest::collection::vec(op(), 0..100)) {
        const LIVE: usize = 8;
        let arena = BounceArena::<BYTES, LIVE, 4>::new();
        let base = arena.storage.view().as_ptr() as usize;
        // (alloc, start, len, quarantined)
        let mut live: Vec<(Alloc, usize, usize, bool)> = Vec::new();
        let mut queue: VecDeque<u16> = VecDeque::new();
        for op in ops {
            match op {
                Op::Alloc { who, min, extra } => {
                    let max = min + extra;
                    let r = arena.alloc(K, DeviceId::test(who), min, max);
                    let ranges: Vec<(usize, usize)> = live.iter().map(|l| (l.1, l.2)).collect();
                    let g = gaps(&ranges);
                    let need = min.div_ceil(64) * 64;
                    let want = max.min(BYTES).div_ceil(64) * 64;
                    let admitted = queue.front().is_none_or(|&h| h == who);
                    let fits = g.iter().any(|&(_, l)| l >= need);
                    if !admitted || live.len() == LIVE || !fits {
                        prop_assert_eq!(r.err(), Some(MemError::BounceBusy));
                        continue;
                    }
                    let (a, v) = r.unwrap();
                    let start = v.as_ptr() as usize - base;
                    prop_assert_eq!(start, a.start as usize);
                    prop_assert_eq!(start % 64, 0);
                    let len = a.len as usize;
                    prop_assert!(g.iter().any(|&(s, l)| start >= s && start + len <= s + l), "inside a free gap");
                    if g.iter().any(|&(_, l)| l >= want) {
                        prop_assert_eq!(len, want, "whole request when a gap holds it");
                    } else {
                        let largest = g.iter().map(|&(_, l)| l).max().unwrap();
                        prop_assert_eq!(len, largest, "otherwise the largest gap");
                    }
                    prop_assert_eq!(v.len(), len.min(max));
                    let mut bytes = vec![1u8; v.len()];
                    v.copy_to(0, &mut bytes);
                    prop_assert!(bytes.iter().all(|&b| b == 0));
                    v.fill(0, v.len(), 0x5A);
                    queue.retain(|&q| q != who);
                    live.push((a, start, len, false));
                }
                Op::Free { i } if i < live.len() => {
                    let (a, .., q) = live[i];
                    arena.free(K, a);
                    if !q {
                        live.remove(i);
                    }
                }
                Op::Quarantine { i } if i < live.len() => {
                    arena.quarantine(K, live[i].0, crate::block::RequestToken::new().id());
                    live[i].3 = true;
                }
                Op::Free { .. } | Op::Quarantine { .. } => {}
                Op::Register { who } => {
                    prop_assert_eq!(arena.register_retry(DeviceId::test(who), arena.bounce_generation()), Ok(RetryStatus::Queued));
                    if !queue.contains(&who) {
                        queue.push_back(who);
                    }
                }
                Op::Cancel { who } => {
                    let was = queue.contains(&who);
                    queue.retain(|&q| q != who);
                    prop_assert_eq!(arena.cancel_retry(DeviceId::test(who)), was);
                }
                Op::Poll => {
                    let _ = arena.poll_retry();
                }
            }
            let used: usize = live.iter().map(|l| l.2).sum();
            let quarantined: usize = live.iter().filter(|l| l.3).map(|l| l.2).sum();
            prop_assert_eq!(arena.in_use(), used);
            prop_assert_eq!(arena.quarantined(), quarantined);
            prop_assert_eq!(arena.live(), live.len());
            prop_assert_eq!(arena.waiting(), queue.len());
        }
    }
}
