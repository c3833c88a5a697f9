//! A bounded, versioned, little-endian byte format for device state
//! (feature `snapshot`), with no heap: a [`Writer`] into a caller-provided
//! buffer and a [`Reader`] over untrusted bytes.
//!
//! Device models use it to save the state the guest can observe and to
//! restore it; see [`IdeController::save_state`](crate::ide::IdeController::save_state).
//! Every read is bounds-checked ([`SnapshotError::Truncated`]), every write
//! too ([`SnapshotError::TooSmall`]); nothing here panics.

/// Why a state could not be saved or restored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The input ended before the state did.
    Truncated,
    /// The output buffer is too small for the state.
    TooSmall,
    /// The section does not start with the expected magic bytes.
    BadMagic,
    /// The section has another format version.
    Version {
        /// The version in the input.
        found: u16,
        /// The version this build reads.
        expected: u16,
    },
    /// A field holds a value, or the fields a combination, that the device
    /// could never reach; names the field or state.
    Invalid(&'static str),
    /// The saved device differs from the restoring one (a capacity, a
    /// disk's size, a drive's presence or kind).
    Mismatch {
        /// What differs.
        what: &'static str,
        /// The saved value.
        saved: u64,
        /// The restoring device's value.
        here: u64,
    },
    /// The restoring device has a request in flight (restore into a device
    /// with nothing outstanding).
    Busy,
}

impl core::fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SnapshotError::Truncated => f.write_str("device state truncated"),
            SnapshotError::TooSmall => f.write_str("buffer too small for the device state"),
            SnapshotError::BadMagic => f.write_str("not a device state (bad magic)"),
            SnapshotError::Version { found, expected } => {
                write!(f, "device state version {found}, expected {expected}")
            }
            SnapshotError::Invalid(what) => write!(f, "invalid device state: {what}"),
            SnapshotError::Mismatch { what, saved, here } => {
                write!(
                    f,
                    "device state mismatch: {what} is {saved} in the state, {here} here"
                )
            }
            SnapshotError::Busy => f.write_str("the restoring device has a request in flight"),
        }
    }
}

impl core::error::Error for SnapshotError {}

/// A little-endian writer into a caller-provided buffer.
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    /// A writer at the start of `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Writer { buf, pos: 0 }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.pos
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.pos == 0
    }

    /// The bytes written so far.
    pub fn written(&self) -> &[u8] {
        self.buf.get(..self.pos).unwrap_or_default()
    }

    /// Appends `bytes`; [`SnapshotError::TooSmall`] (nothing written) if
    /// they do not fit.
    pub fn bytes(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        let end = self
            .pos
            .checked_add(bytes.len())
            .ok_or(SnapshotError::TooSmall)?;
        let dst = self
            .buf
            .get_mut(self.pos..end)
            .ok_or(SnapshotError::TooSmall)?;
        dst.copy_from_slice(bytes);
        self.pos = end;
        Ok(())
    }

    /// Appends a byte.
    pub fn u8(&mut self, v: u8) -> Result<(), SnapshotError> {
        self.bytes(&[v])
    }

    /// Appends a bool as 0 or 1.
    pub fn bool(&mut self, v: bool) -> Result<(), SnapshotError> {
        self.u8(u8::from(v))
    }

    /// Appends a little-endian `u16`.
    pub fn u16(&mut self, v: u16) -> Result<(), SnapshotError> {
        self.bytes(&v.to_le_bytes())
    }

    /// Appends a little-endian `u32`.
    pub fn u32(&mut self, v: u32) -> Result<(), SnapshotError> {
        self.bytes(&v.to_le_bytes())
    }

    /// Appends a little-endian `u64`.
    pub fn u64(&mut self, v: u64) -> Result<(), SnapshotError> {
        self.bytes(&v.to_le_bytes())
    }

    /// Appends a `usize` as a little-endian `u64`.
    pub fn usize(&mut self, v: usize) -> Result<(), SnapshotError> {
        self.u64(u64::try_from(v).unwrap_or(u64::MAX))
    }

    /// Appends a section header: 4 magic bytes and a version.
    pub fn header(&mut self, magic: &[u8; 4], version: u16) -> Result<(), SnapshotError> {
        self.bytes(magic)?;
        self.u16(version)
    }
}

/// A little-endian reader over untrusted bytes.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], SnapshotError> {
        let end = self.pos.checked_add(n).ok_or(SnapshotError::Truncated)?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or(SnapshotError::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    /// The next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], SnapshotError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.bytes(N)?);
        Ok(a)
    }

    /// A byte.
    pub fn u8(&mut self) -> Result<u8, SnapshotError> {
        let [b] = self.array()?;
        Ok(b)
    }

    /// A bool (0 or 1; anything else is [`SnapshotError::Invalid`] naming
    /// `what`).
    pub fn bool(&mut self, what: &'static str) -> Result<bool, SnapshotError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(SnapshotError::Invalid(what)),
        }
    }

    /// A little-endian `u16`.
    pub fn u16(&mut self) -> Result<u16, SnapshotError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    /// A little-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, SnapshotError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// A little-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, SnapshotError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A `usize` written by [`Writer::usize`]; one that does not fit this
    /// host is [`SnapshotError::Invalid`] naming `what`.
    pub fn usize(&mut self, what: &'static str) -> Result<usize, SnapshotError> {
        usize::try_from(self.u64()?).map_err(|_| SnapshotError::Invalid(what))
    }

    /// Checks a section header written by [`Writer::header`].
    pub fn header(&mut self, magic: &[u8; 4], version: u16) -> Result<(), SnapshotError> {
        if self.array::<4>()? != *magic {
            return Err(SnapshotError::BadMagic);
        }
        let found = self.u16()?;
        if found != version {
            return Err(SnapshotError::Version {
                found,
                expected: version,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bounds() {
        let mut buf = [0u8; 16];
        let mut w = Writer::new(&mut buf);
        w.header(b"TEST", 3).unwrap();
        w.u32(0xDEAD_BEEF).unwrap();
        w.bool(true).unwrap();
        assert_eq!(w.len(), 11);
        assert_eq!(w.u64(1), Err(SnapshotError::TooSmall));
        assert_eq!(w.len(), 11, "a failed write writes nothing");
        let n = w.len();
        let mut r = Reader::new(&buf[..n]);
        r.header(b"TEST", 3).unwrap();
        assert_eq!(r.u32(), Ok(0xDEAD_BEEF));
        assert_eq!(r.bool("b"), Ok(true));
        assert_eq!(r.u8(), Err(SnapshotError::Truncated));
        assert_eq!(
            Reader::new(b"TEST\x04\x00").header(b"TEST", 3),
            Err(SnapshotError::Version {
                found: 4,
                expected: 3
            })
        );
        assert_eq!(
            Reader::new(b"XEST\x03\x00").header(b"TEST", 3),
            Err(SnapshotError::BadMagic)
        );
        assert_eq!(
            Reader::new(&[2]).bool("flag"),
            Err(SnapshotError::Invalid("flag"))
        );
        assert_eq!(
            Reader::new(&[1, 2]).bytes(usize::MAX),
            Err(SnapshotError::Truncated)
        );
    }
}
