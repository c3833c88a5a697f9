//! I/O vectors: fixed-capacity scatter/gather lists of host buffers (the
//! `QEMUIOVector` of vmdma).
//!
//! Elements are [`VolatileSlice`] views (guest RAM or bounce space), so an
//! I/O vector never holds a Rust reference into guest memory. Every
//! operation is bounded by the element count and total size; offsets past
//! the end copy nothing rather than panic.

use heapless::Vec;

use crate::memory::VolatileSlice;

/// Errors of I/O-vector operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IoVecError {
    /// No room for another element.
    Full,
    /// The byte range is not inside the vector.
    OutOfRange,
}

impl core::fmt::Display for IoVecError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            IoVecError::Full => "I/O vector is full",
            IoVecError::OutOfRange => "byte range outside the I/O vector",
        })
    }
}

impl core::error::Error for IoVecError {}

/// Up to `N` buffers, in order, with their total size.
#[derive(Clone, Debug)]
pub struct IoVec<'a, const N: usize> {
    elems: Vec<VolatileSlice<'a>, N>,
    size: usize,
}

impl<const N: usize> Default for IoVec<'_, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a, const N: usize> IoVec<'a, N> {
    const CAPACITY_OK: () = assert!(N > 0, "an I/O vector needs room for one element");

    /// An empty vector.
    pub const fn new() -> Self {
        let () = Self::CAPACITY_OK;
        IoVec {
            elems: Vec::new(),
            size: 0,
        }
    }

    /// Appends a buffer (adjacent buffers are not merged). Empty buffers
    /// are accepted and ignored.
    pub fn push(&mut self, s: VolatileSlice<'a>) -> Result<(), IoVecError> {
        if s.is_empty() {
            return Ok(());
        }
        let size = self.size.checked_add(s.len()).ok_or(IoVecError::Full)?;
        self.elems.push(s).map_err(|_| IoVecError::Full)?;
        self.size = size;
        Ok(())
    }

    /// Total bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.elems.len()
    }

    /// True without elements.
    pub fn is_empty(&self) -> bool {
        self.elems.is_empty()
    }

    /// True when no further element fits.
    pub fn is_full(&self) -> bool {
        self.elems.is_full()
    }

    /// The elements, for handing to a block backend.
    pub fn as_slices(&self) -> &[VolatileSlice<'a>] {
        &self.elems
    }

    /// Removes every element.
    pub fn clear(&mut self) {
        self.elems.clear();
        self.size = 0;
    }

    /// Appends views of `src[offset .. offset + len]` (clamped to `src`'s
    /// end, like `qemu_iovec_concat`); returns the bytes added. Fails
    /// without change if the pieces do not fit.
    pub fn concat<const M: usize>(
        &mut self,
        src: &IoVec<'a, M>,
        offset: usize,
        len: usize,
    ) -> Result<usize, IoVecError> {
        let before = (self.elems.len(), self.size);
        let mut added = 0usize;
        for piece in src.pieces(offset, len) {
            if let Err(e) = self.push(piece) {
                self.elems.truncate(before.0);
                self.size = before.1;
                return Err(e);
            }
            added += piece.len();
        }
        Ok(added)
    }

    /// A new vector over `self[offset .. offset + len]`; the range must be
    /// inside the vector.
    pub fn slice(&self, offset: usize, len: usize) -> Result<IoVec<'a, N>, IoVecError> {
        let end = offset.checked_add(len).ok_or(IoVecError::OutOfRange)?;
        if end > self.size {
            return Err(IoVecError::OutOfRange);
        }
        let mut out = IoVec::new();
        out.concat(self, offset, len)?;
        Ok(out)
    }

    /// Gathers bytes from `offset` into `buf` (flatten); returns the count,
    /// `min(buf.len(), size - offset)`.
    pub fn copy_to_buf(&self, offset: usize, buf: &mut [u8]) -> usize {
        let mut done = 0usize;
        for piece in self.pieces(offset, buf.len()) {
            let Some(dst) = buf.get_mut(done..) else {
                break;
            };
            done += piece.copy_to(0, dst);
        }
        done
    }

    /// Scatters `buf` into the vector from `offset` (unflatten); returns the
    /// count.
    pub fn copy_from_buf(&mut self, offset: usize, buf: &[u8]) -> usize {
        let mut done = 0usize;
        for piece in self.pieces(offset, buf.len()) {
            let Some(src) = buf.get(done..) else { break };
            done += piece.copy_from(0, src);
        }
        done
    }

    /// Sets `len` bytes from `offset` to `byte`; returns the count.
    pub fn memset(&mut self, offset: usize, byte: u8, len: usize) -> usize {
        self.pieces(offset, len)
            .map(|p| p.fill(0, p.len(), byte))
            .sum()
    }

    /// Drops `bytes` from the front (shrinking the first kept element);
    /// returns the bytes really discarded.
    pub fn discard_front(&mut self, bytes: usize) -> usize {
        let n = bytes.min(self.size);
        let mut kept: Vec<VolatileSlice<'a>, N> = Vec::new();
        for piece in self.pieces(n, self.size - n) {
            // Cannot overflow: never more pieces than elements.
            let _ = kept.push(piece);
        }
        self.elems = kept;
        self.size -= n;
        n
    }

    /// Drops `bytes` from the back; returns the bytes really discarded.
    pub fn discard_back(&mut self, bytes: usize) -> usize {
        let n = bytes.min(self.size);
        let mut left = n;
        while left > 0 {
            let Some(last) = self.elems.last_mut() else {
                break;
            };
            if last.len() > left {
                if let Some(s) = last.subslice(0, last.len() - left) {
                    *last = s;
                }
                left = 0;
            } else {
                left -= last.len();
                self.elems.pop();
            }
        }
        self.size -= n;
        n
    }

    /// Offset of the first byte where `self` and `other` differ, comparing
    /// up to the shorter size; `None` if that common prefix is equal and the
    /// sizes match.
    pub fn compare<const M: usize>(&self, other: &IoVec<'_, M>) -> Option<usize> {
        const CHUNK: usize = 64;
        let common = self.size.min(other.size);
        let (mut a, mut b) = ([0u8; CHUNK], [0u8; CHUNK]);
        let mut off = 0usize;
        while off < common {
            let k = (common - off).min(CHUNK);
            let (ca, cb) = (a.get_mut(..k)?, b.get_mut(..k)?);
            self.copy_to_buf(off, ca);
            other.copy_to_buf(off, cb);
            if let Some(i) = ca.iter().zip(cb.iter()).position(|(x, y)| x != y) {
                return Some(off + i);
            }
            off += k;
        }
        (self.size != other.size).then_some(common)
    }

    /// The element pieces covering `offset .. offset + len` (clamped).
    fn pieces(&self, offset: usize, len: usize) -> impl Iterator<Item = VolatileSlice<'a>> + '_ {
        let mut skip = offset;
        let mut left = len;
        self.elems.iter().filter_map(move |e| {
            if left == 0 {
                return None;
            }
            if skip >= e.len() {
                skip -= e.len();
                return None;
            }
            let n = (e.len() - skip).min(left);
            let piece = e.subslice(skip, n);
            skip = 0;
            left -= n;
            piece
        })
    }
}

#[cfg(test)]
mod tests;
