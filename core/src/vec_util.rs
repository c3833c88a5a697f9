//! Small helpers over `heapless::Vec` that have no panic path (the
//! library's own `insert` asserts its index, which the optimiser cannot
//! always remove; the embedding example proves at the link that the
//! register entry points cannot panic).

use heapless::Vec;

/// Inserts `item` at `idx` (clamped to the length), shifting the rest
/// right; gives it back if the vector is full.
pub(crate) fn insert_at<T, const N: usize>(
    v: &mut Vec<T, N>,
    idx: usize,
    item: T,
) -> Result<(), T> {
    v.push(item)?;
    if let Some(tail) = v.get_mut(idx..)
        && tail.len() > 1
    {
        tail.rotate_right(1);
    }
    Ok(())
}

/// Takes every element out of `v` in order, leaving it empty, without the
/// by-value iterator (whose drop indexes).
pub(crate) fn drain_in_order<T, const N: usize>(v: &mut Vec<T, N>, mut f: impl FnMut(T)) {
    v.reverse();
    while let Some(x) = v.pop() {
        f(x);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_and_drain_keep_order() {
        let mut v: Vec<u8, 4> = Vec::new();
        insert_at(&mut v, 0, 2).unwrap();
        insert_at(&mut v, 0, 0).unwrap();
        insert_at(&mut v, 1, 1).unwrap();
        insert_at(&mut v, 9, 3).unwrap();
        assert_eq!(insert_at(&mut v, 0, 9), Err(9));
        assert_eq!(&v[..], &[0, 1, 2, 3]);
        let mut out = std::vec::Vec::new();
        drain_in_order(&mut v, |x| out.push(x));
        assert_eq!(out, [0, 1, 2, 3]);
        assert!(v.is_empty());
    }
}
