use super::*;
use proptest::prelude::*;
use std::vec;
use std::vec::Vec;

#[test]
fn basic_operations() {
    let mut a = [1u8, 2, 3];
    let mut b = [4u8, 5];
    let mut c = [0u8; 1];
    let mut v: IoVec<'_, 2> = IoVec::new();
    v.push(VolatileSlice::from_mut_slice(&mut a)).unwrap();
    v.push(VolatileSlice::empty()).unwrap();
    v.push(VolatileSlice::from_mut_slice(&mut b)).unwrap();
    assert_eq!(v.len(), 2);
    assert!(v.is_full());
    assert_eq!(
        v.push(VolatileSlice::from_mut_slice(&mut c)),
        Err(IoVecError::Full)
    );
    assert_eq!(v.size(), 5);
    let mut out = [0u8; 8];
    assert_eq!(v.copy_to_buf(1, &mut out), 4);
    assert_eq!(&out[..4], &[2, 3, 4, 5]);
    assert_eq!(v.copy_to_buf(9, &mut out), 0);
    assert_eq!(v.slice(4, 2).err(), Some(IoVecError::OutOfRange));
    assert_eq!(v.slice(usize::MAX, 2).err(), Some(IoVecError::OutOfRange));
    let s = v.slice(2, 2).unwrap();
    assert_eq!(s.size(), 2);
    assert_eq!(s.compare(&s), None);
    assert_eq!(v.compare(&s), Some(0));
}

#[derive(Debug, Clone)]
enum Op {
    Push(usize),
    CopyFrom(usize, Vec<u8>),
    Memset(usize, u8, usize),
    DiscardFront(usize),
    DiscardBack(usize),
    Concat(usize, usize),
    Slice(usize, usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0usize..40).prop_map(Op::Push),
        (0usize..120, proptest::collection::vec(any::<u8>(), 0..50))
            .prop_map(|(o, d)| Op::CopyFrom(o, d)),
        (0usize..120, any::<u8>(), 0usize..60).prop_map(|(o, b, n)| Op::Memset(o, b, n)),
        (0usize..60).prop_map(Op::DiscardFront),
        (0usize..60).prop_map(Op::DiscardBack),
        (0usize..120, 0usize..120).prop_map(|(o, n)| Op::Concat(o, n)),
        (0usize..120, 0usize..120).prop_map(|(o, n)| Op::Slice(o, n)),
    ]
}

proptest! {
    /// Model: the vector is a `Vec<u8>` of its bytes (the backing arena is
    /// large and pieces never overlap, so writes through the vector are
    /// visible exactly where the model says).
    #[test]
    fn model(ops in proptest::collection::vec(op(), 0..40)) {
        let mut arena = vec![0u8; 4096];
        let base = VolatileSlice::from_mut_slice(&mut arena);
        let mut next = 0usize;
        let mut v: IoVec<'_, 6> = IoVec::new();
        let mut model: Vec<u8> = Vec::new();
        for op in ops {
            match op {
                Op::Push(n) => {
                    if next + n > base.len() { continue; }
                    let s = base.subslice(next, n).unwrap();
                    s.fill(0, n, (next % 251) as u8);
                    let full = v.is_full() && n > 0;
                    let r = v.push(s);
                    if full { prop_assert_eq!(r, Err(IoVecError::Full)); continue; }
                    prop_assert_eq!(r, Ok(()));
                    next += n;
                    model.extend(std::iter::repeat_n(((next - n) % 251) as u8, n));
                }
                Op::CopyFrom(o, d) => {
                    let n = v.copy_from_buf(o, &d);
                    let want = model.len().saturating_sub(o).min(d.len());
                    prop_assert_eq!(n, want);
                    if want > 0 { model[o..o + want].copy_from_slice(&d[..want]); }
                }
                Op::Memset(o, b, len) => {
                    let n = v.memset(o, b, len);
                    let want = model.len().saturating_sub(o).min(len);
                    prop_assert_eq!(n, want);
                    for x in model.iter_mut().skip(o).take(want) { *x = b; }
                }
                Op::DiscardFront(n) => {
                    let want = n.min(model.len());
                    prop_assert_eq!(v.discard_front(n), want);
                    model.drain(..want);
                }
                Op::DiscardBack(n) => {
                    let want = n.min(model.len());
                    prop_assert_eq!(v.discard_back(n), want);
                    model.truncate(model.len() - want);
                }
                Op::Concat(o, n) => {
                    // A fresh two-piece source (no aliasing with `v`).
                    if next + 60 > base.len() { continue; }
                    let mut src: IoVec<'_, 2> = IoVec::new();
                    let (p, q) = base.subslice(next, 60).unwrap().split_at(25).unwrap();
                    p.fill(0, 25, 0xA1);
                    q.fill(0, 35, 0xB2);
                    src.push(p).unwrap();
                    src.push(q).unwrap();
                    next += 60;
                    let src_model: Vec<u8> =
                        std::iter::repeat_n(0xA1u8, 25).chain(std::iter::repeat_n(0xB2u8, 35)).collect();
                    let before = (v.size(), v.len());
                    match v.concat(&src, o, n) {
                        Ok(added) => {
                            let want = 60usize.saturating_sub(o).min(n);
                            prop_assert_eq!(added, want);
                            model.extend_from_slice(&src_model[o.min(60)..][..want]);
                        }
                        Err(e) => {
                            prop_assert_eq!(e, IoVecError::Full);
                            prop_assert_eq!((v.size(), v.len()), before);
                        }
                    }
                }
                Op::Slice(o, n) => {
                    match v.slice(o, n) {
                        Ok(s) => {
                            prop_assert!(o + n <= model.len());
                            let mut out = vec![0u8; n];
                            prop_assert_eq!(s.copy_to_buf(0, &mut out), n);
                            prop_assert_eq!(&out[..], &model[o..o + n]);
                        }
                        Err(e) => prop_assert!(o + n > model.len() || e == IoVecError::Full),
                    }
                }
            }
            prop_assert_eq!(v.size(), model.len());
            let mut flat = vec![0u8; model.len()];
            prop_assert_eq!(v.copy_to_buf(0, &mut flat), model.len());
            prop_assert_eq!(&flat, &model);
            // compare against a rebuilt copy of itself.
            prop_assert_eq!(v.compare(&v.clone()), None);
        }
    }
}
