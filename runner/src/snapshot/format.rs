//! The snapshot file's container: a header, then sections, each with a
//! tag, a length and a CRC-32 (see `docs/snapshot.md`).
//!
//! ```text
//! header   "VMDMASNP" (8 bytes), version u32 LE, flags u32 LE (0)
//! section  tag (4 ASCII bytes), length u64 LE, payload, CRC-32 u32 LE
//!          (the CRC covers tag, length and payload)
//! ...      the last section is "END " with an empty payload
//! ```
//!
//! Reading is for untrusted bytes: every length is checked against what is
//! left, every CRC is checked, a tag appears at most once, unknown tags and
//! anything after `END ` are errors, and a missing required section is
//! named. Nothing is allocated from a length before it has been checked.

use std::io::{self, Write};

use thiserror::Error;

/// The file's first bytes.
pub const MAGIC: [u8; 8] = *b"VMDMASNP";
/// The format version this runner writes and reads.
pub const VERSION: u32 = 1;
/// Header bytes.
pub const HEADER_LEN: usize = 16;

/// A section tag.
pub type Tag = [u8; 4];

/// The sections of version 1, in the order they are written.
pub mod tags {
    use super::Tag;
    /// The machine's configuration (RAM size, disks), checked first.
    pub const CONFIG: Tag = *b"CONF";
    /// Guest RAM, zero pages left out.
    pub const RAM: Tag = *b"RAM ";
    /// vCPU 0's registers.
    pub const VCPU: Tag = *b"CPU0";
    /// The in-kernel PIC, IOAPIC, PIT and clock.
    pub const KVM: Tag = *b"KVM ";
    /// PCI configuration, the bridges and the IDE controller.
    pub const CHIPSET: Tag = *b"CHIP";
    /// The other port devices (COM1, debug console, POST code).
    pub const PORTS: Tag = *b"PORT";
    /// The MMIO scratch region's bytes.
    pub const SCRATCH: Tag = *b"SCRT";
    /// The end.
    pub const END: Tag = *b"END ";
    /// Every tag of this version.
    pub const ALL: [Tag; 8] = [CONFIG, RAM, VCPU, KVM, CHIPSET, PORTS, SCRATCH, END];
}

/// What is wrong with a snapshot file (one line each).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FormatError {
    /// Not a vmdma snapshot.
    #[error("not a vmdma snapshot (no VMDMASNP header)")]
    Magic,
    /// Another format version.
    #[error("snapshot format version {0}; this vmdma reads version {VERSION}")]
    Version(u32),
    /// Header flags this version does not define.
    #[error("snapshot header flags {0:#x} are not defined in version {VERSION}")]
    Flags(u32),
    /// The file ends inside the header or a section.
    #[error("snapshot truncated at byte {0}")]
    Truncated(u64),
    /// A section longer than what is left of the file.
    #[error("section '{tag}' at byte {at} is {len} bytes long, past the end of the file")]
    Length {
        /// The tag.
        tag: String,
        /// Its offset.
        at: u64,
        /// Its length.
        len: u64,
    },
    /// A section whose CRC does not match.
    #[error("section '{0}' is corrupt (CRC mismatch)")]
    Crc(String),
    /// An unknown section.
    #[error("unknown section '{0}'")]
    Unknown(String),
    /// A section twice.
    #[error("section '{0}' appears twice")]
    Twice(String),
    /// A required section is missing.
    #[error("section '{0}' is missing")]
    Missing(String),
    /// Bytes after `END `.
    #[error("{0} bytes after the END section")]
    Trailing(u64),
}

/// Prints a tag (its ASCII, escaped where it is not).
pub fn tag_name(t: &[u8]) -> String {
    t.iter()
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect()
}

/// Writes sections to `W`, computing their CRCs.
#[derive(Debug)]
pub struct SnapshotWriter<W: Write> {
    out: W,
    written: u64,
}

impl<W: Write> SnapshotWriter<W> {
    /// Writes the header.
    pub fn new(mut out: W) -> io::Result<Self> {
        out.write_all(&MAGIC)?;
        out.write_all(&VERSION.to_le_bytes())?;
        out.write_all(&0u32.to_le_bytes())?;
        Ok(SnapshotWriter {
            out,
            written: HEADER_LEN as u64,
        })
    }

    /// A section whose payload is in memory.
    pub fn section(&mut self, tag: Tag, payload: &[u8]) -> io::Result<()> {
        self.streamed(tag, payload.len() as u64, |w| w.write_all(payload))
    }

    /// A section of `len` bytes written by `f` (which must write exactly
    /// `len`: checked).
    pub fn streamed(
        &mut self,
        tag: Tag,
        len: u64,
        f: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut head = [0u8; 12];
        head[..4].copy_from_slice(&tag);
        head[4..].copy_from_slice(&len.to_le_bytes());
        let mut w = CrcWriter {
            out: &mut self.out,
            crc: crc32fast::Hasher::new(),
            n: 0,
        };
        w.write_all(&head)?;
        f(&mut w)?;
        if w.n != len + 12 {
            return Err(io::Error::other(format!(
                "section '{}' wrote {} bytes, announced {len}",
                tag_name(&tag),
                w.n - 12
            )));
        }
        let crc = w.crc.finalize();
        self.out.write_all(&crc.to_le_bytes())?;
        self.written += len + 16;
        Ok(())
    }

    /// Writes `END ` and gives the writer back, with the bytes written.
    pub fn finish(mut self) -> io::Result<(W, u64)> {
        self.section(tags::END, &[])?;
        self.out.flush()?;
        Ok((self.out, self.written))
    }
}

struct CrcWriter<'a, W: Write> {
    out: &'a mut W,
    crc: crc32fast::Hasher,
    n: u64,
}

impl<W: Write> Write for CrcWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.crc.update(buf.get(..n).unwrap_or(&[]));
        self.n += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// A parsed file: the payload of each section of this version.
#[derive(Debug)]
pub struct Sections<'a> {
    found: Vec<(Tag, &'a [u8])>,
}

impl<'a> Sections<'a> {
    /// Parses and checks `bytes` (see the module docs). Every section of
    /// [`tags::ALL`] is required.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, FormatError> {
        let header = bytes.get(..HEADER_LEN).ok_or(FormatError::Truncated(0))?;
        if header.get(..8) != Some(&MAGIC[..]) {
            return Err(FormatError::Magic);
        }
        let word = |at: usize| {
            let mut w = [0u8; 4];
            w.copy_from_slice(header.get(at..at + 4).unwrap_or(&[0; 4]));
            u32::from_le_bytes(w)
        };
        if word(8) != VERSION {
            return Err(FormatError::Version(word(8)));
        }
        if word(12) != 0 {
            return Err(FormatError::Flags(word(12)));
        }
        let mut found: Vec<(Tag, &[u8])> = Vec::new();
        let mut at = HEADER_LEN;
        loop {
            let head = bytes
                .get(at..at + 12)
                .ok_or(FormatError::Truncated(at as u64))?;
            let mut tag = [0u8; 4];
            tag.copy_from_slice(head.get(..4).unwrap_or(&[0; 4]));
            let mut l = [0u8; 8];
            l.copy_from_slice(head.get(4..12).unwrap_or(&[0; 8]));
            let len = u64::from_le_bytes(l);
            let left = (bytes.len() - at - 12) as u64;
            if left < 4 {
                return Err(FormatError::Truncated((at + 12) as u64));
            }
            if len > left - 4 {
                return Err(FormatError::Length {
                    tag: tag_name(&tag),
                    at: at as u64,
                    len,
                });
            }
            let len = len as usize;
            let body = bytes.get(at..at + 12 + len).unwrap_or(&[]);
            let mut c = [0u8; 4];
            c.copy_from_slice(bytes.get(at + 12 + len..at + 16 + len).unwrap_or(&[0; 4]));
            if crc32fast::hash(body) != u32::from_le_bytes(c) {
                return Err(FormatError::Crc(tag_name(&tag)));
            }
            if !tags::ALL.contains(&tag) {
                return Err(FormatError::Unknown(tag_name(&tag)));
            }
            if found.iter().any(|(t, _)| *t == tag) {
                return Err(FormatError::Twice(tag_name(&tag)));
            }
            found.push((tag, body.get(12..).unwrap_or(&[])));
            at += 16 + len;
            if tag == tags::END {
                break;
            }
        }
        if at != bytes.len() {
            return Err(FormatError::Trailing((bytes.len() - at) as u64));
        }
        for t in tags::ALL {
            if !found.iter().any(|(f, _)| *f == t) {
                return Err(FormatError::Missing(tag_name(&t)));
            }
        }
        Ok(Sections { found })
    }

    /// The payload of `tag` (present: `parse` checked).
    pub fn get(&self, tag: Tag) -> &'a [u8] {
        self.found
            .iter()
            .find(|(t, _)| *t == tag)
            .map_or(&[][..], |(_, b)| *b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> Vec<u8> {
        let mut w = SnapshotWriter::new(Vec::new()).unwrap();
        for t in tags::ALL.iter().take(tags::ALL.len() - 1) {
            w.section(*t, t).unwrap();
        }
        w.finish().unwrap().0
    }

    #[test]
    fn round_trip() {
        let f = file();
        let s = Sections::parse(&f).unwrap();
        assert_eq!(s.get(tags::RAM), b"RAM ");
        assert_eq!(s.get(tags::END), b"");
    }

    #[test]
    fn every_corruption_is_a_one_line_error() {
        let good = file();
        // Every truncation.
        for cut in 0..good.len() {
            let e = Sections::parse(&good[..cut]).unwrap_err();
            assert!(
                matches!(
                    e,
                    FormatError::Truncated(_) | FormatError::Length { .. } | FormatError::Magic
                ),
                "{cut}: {e}"
            );
        }
        // Every single bit flipped: never accepted (the CRC or a check
        // catches it), never a panic.
        for byte in 0..good.len() {
            for bit in 0..8 {
                let mut f = good.clone();
                f[byte] ^= 1 << bit;
                let e = Sections::parse(&f).unwrap_err().to_string();
                assert!(!e.contains('\n'));
            }
        }
        let mut f = good.clone();
        f[8] = 2;
        assert_eq!(Sections::parse(&f).unwrap_err(), FormatError::Version(2));
        let mut f = good.clone();
        f.push(0);
        assert_eq!(Sections::parse(&f).unwrap_err(), FormatError::Trailing(1));
        // A huge length is refused before anything is read or allocated.
        let mut f = good.clone();
        f[HEADER_LEN + 4..HEADER_LEN + 12].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            Sections::parse(&f),
            Err(FormatError::Length { .. })
        ));
        // A missing section is named.
        let mut w = SnapshotWriter::new(Vec::new()).unwrap();
        w.section(tags::CONFIG, b"x").unwrap();
        let f = w.finish().unwrap().0;
        assert_eq!(
            Sections::parse(&f).unwrap_err(),
            FormatError::Missing("RAM ".into())
        );
    }

    #[test]
    fn a_streamed_section_must_write_its_length() {
        let mut w = SnapshotWriter::new(Vec::new()).unwrap();
        assert!(w.streamed(tags::RAM, 3, |o| o.write_all(b"ab")).is_err());
    }
}
