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
pub const VERSION: u32 = 2;
/// Header bytes.
pub const HEADER_LEN: usize = 16;

/// A section tag.
pub type Tag = [u8; 4];

/// The sections of this version, in the order they are written.
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

    /// Where the next section's payload will start in the file.
    pub fn next_payload_at(&self) -> u64 {
        self.written + 12
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

/// Where a snapshot is read from: a file (by `pread`) or bytes in memory
/// (tests, fuzzing).
pub trait Source {
    /// Its length in bytes.
    fn size(&self) -> io::Result<u64>;
    /// Fills `buf` from byte `at`; the source ending first is an error.
    fn read_at(&self, at: u64, buf: &mut [u8]) -> io::Result<()>;
}

impl Source for [u8] {
    fn size(&self) -> io::Result<u64> {
        Ok(self.len() as u64)
    }

    fn read_at(&self, at: u64, buf: &mut [u8]) -> io::Result<()> {
        let start = usize::try_from(at).map_err(|_| io::ErrorKind::UnexpectedEof)?;
        let part = self
            .get(start..)
            .and_then(|b| b.get(..buf.len()))
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(part);
        Ok(())
    }
}

impl Source for std::fs::File {
    fn size(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }

    fn read_at(&self, at: u64, buf: &mut [u8]) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, at)
    }
}

/// The largest section read into memory: every section but the RAM's is
/// a few KiB (the MMIO scratch region, 64 KiB, is the largest).
pub const MAX_IN_MEMORY: u64 = 1 << 20;

/// Bytes read at a time while checking a section left in the file.
const CHUNK: usize = 64 << 10;

/// Where a section's payload is.
#[derive(Debug)]
enum Payload {
    /// Read into memory.
    Bytes(Vec<u8>),
    /// Left in the source: offset and length (the RAM pages, mapped or
    /// read from the file later).
    InSource { at: u64, len: u64 },
}

/// A parsed file: the payload of each section of this version.
#[derive(Debug)]
pub struct Sections {
    found: Vec<(Tag, Payload)>,
}

impl Sections {
    /// Parses and checks `src` (see the module docs). Every section of
    /// [`tags::ALL`] is required. The payloads of `left_in_source` are
    /// checked (their CRC read through in chunks) but not kept; every
    /// other payload is read into memory, at most [`MAX_IN_MEMORY`]
    /// bytes each.
    pub fn parse<S: Source + ?Sized>(src: &S, left_in_source: &[Tag]) -> Result<Self, FormatError> {
        let io = |at: u64| move |_: io::Error| FormatError::Truncated(at);
        let total = src.size().map_err(io(0))?;
        let mut header = [0u8; HEADER_LEN];
        if total < HEADER_LEN as u64 {
            return Err(FormatError::Truncated(0));
        }
        src.read_at(0, &mut header).map_err(io(0))?;
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
        let mut found: Vec<(Tag, Payload)> = Vec::new();
        let mut at = HEADER_LEN as u64;
        loop {
            let mut head = [0u8; 12];
            if total - at < 12 {
                return Err(FormatError::Truncated(at));
            }
            src.read_at(at, &mut head).map_err(io(at))?;
            let mut tag = [0u8; 4];
            tag.copy_from_slice(head.get(..4).unwrap_or(&[0; 4]));
            let mut l = [0u8; 8];
            l.copy_from_slice(head.get(4..12).unwrap_or(&[0; 8]));
            let len = u64::from_le_bytes(l);
            let left = total - at - 12;
            if left < 4 {
                return Err(FormatError::Truncated(at + 12));
            }
            let in_memory = !left_in_source.contains(&tag);
            if len > left - 4 || (in_memory && len > MAX_IN_MEMORY) {
                return Err(FormatError::Length {
                    tag: tag_name(&tag),
                    at,
                    len,
                });
            }
            let mut crc = crc32fast::Hasher::new();
            crc.update(&head);
            let payload = if in_memory {
                // Bounded by MAX_IN_MEMORY above.
                let mut body = vec![0u8; len as usize];
                src.read_at(at + 12, &mut body).map_err(io(at + 12))?;
                crc.update(&body);
                Payload::Bytes(body)
            } else {
                let mut buf = vec![0u8; CHUNK.min(len as usize)];
                let mut done = 0u64;
                while done < len {
                    let n = (len - done).min(CHUNK as u64) as usize;
                    let part = buf.get_mut(..n).unwrap_or(&mut []);
                    src.read_at(at + 12 + done, part)
                        .map_err(io(at + 12 + done))?;
                    crc.update(part);
                    done += n as u64;
                }
                Payload::InSource { at: at + 12, len }
            };
            let mut c = [0u8; 4];
            src.read_at(at + 12 + len, &mut c)
                .map_err(io(at + 12 + len))?;
            if crc.finalize() != u32::from_le_bytes(c) {
                return Err(FormatError::Crc(tag_name(&tag)));
            }
            if !tags::ALL.contains(&tag) {
                return Err(FormatError::Unknown(tag_name(&tag)));
            }
            if found.iter().any(|(t, _)| *t == tag) {
                return Err(FormatError::Twice(tag_name(&tag)));
            }
            found.push((tag, payload));
            at += 16 + len;
            if tag == tags::END {
                break;
            }
        }
        if at != total {
            return Err(FormatError::Trailing(total - at));
        }
        for t in tags::ALL {
            if !found.iter().any(|(f, _)| *f == t) {
                return Err(FormatError::Missing(tag_name(&t)));
            }
        }
        Ok(Sections { found })
    }

    /// The payload of `tag`, if it was read into memory (every present
    /// section not left in the source: `parse` checked).
    pub fn get(&self, tag: Tag) -> &[u8] {
        match self.found.iter().find(|(t, _)| *t == tag) {
            Some((_, Payload::Bytes(b))) => b,
            _ => &[],
        }
    }

    /// Where the payload of a section left in the source is: offset and
    /// length.
    pub fn in_source(&self, tag: Tag) -> Option<(u64, u64)> {
        match self.found.iter().find(|(t, _)| *t == tag) {
            Some((_, Payload::InSource { at, len })) => Some((*at, *len)),
            _ => None,
        }
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
        let s = Sections::parse(&f[..], &[]).unwrap();
        assert_eq!(s.get(tags::RAM), b"RAM ");
        assert_eq!(s.get(tags::END), b"");
    }

    #[test]
    fn every_corruption_is_a_one_line_error() {
        let good = file();
        // Every truncation.
        for cut in 0..good.len() {
            let e = Sections::parse(&good[..cut], &[]).unwrap_err();
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
                let e = Sections::parse(&f[..], &[]).unwrap_err().to_string();
                assert!(!e.contains('\n'));
            }
        }
        let mut f = good.clone();
        f[8] = 1;
        assert_eq!(
            Sections::parse(&f[..], &[]).unwrap_err(),
            FormatError::Version(1)
        );
        let mut f = good.clone();
        f.push(0);
        assert_eq!(
            Sections::parse(&f[..], &[]).unwrap_err(),
            FormatError::Trailing(1)
        );
        // A huge length is refused before anything is read or allocated.
        let mut f = good.clone();
        f[HEADER_LEN + 4..HEADER_LEN + 12].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            Sections::parse(&f[..], &[]),
            Err(FormatError::Length { .. })
        ));
        // A missing section is named.
        let mut w = SnapshotWriter::new(Vec::new()).unwrap();
        w.section(tags::CONFIG, b"x").unwrap();
        let f = w.finish().unwrap().0;
        assert_eq!(
            Sections::parse(&f[..], &[]).unwrap_err(),
            FormatError::Missing("RAM ".into())
        );
    }

    #[test]
    fn a_section_left_in_the_source_is_checked_but_not_read_in() {
        let mut w = SnapshotWriter::new(Vec::new()).unwrap();
        let big = vec![7u8; MAX_IN_MEMORY as usize + 5];
        for t in tags::ALL.iter().take(tags::ALL.len() - 1) {
            if *t == tags::RAM {
                assert_eq!(w.next_payload_at(), 16 + 16 + 4 + 12);
                w.section(*t, &big).unwrap();
            } else {
                w.section(*t, t).unwrap();
            }
        }
        let f = w.finish().unwrap().0;
        let s = Sections::parse(&f[..], &[tags::RAM]).unwrap();
        assert_eq!(s.get(tags::RAM), b"");
        let (at, len) = s.in_source(tags::RAM).unwrap();
        assert_eq!(&f[at as usize..(at + len) as usize], &big[..]);
        // A flipped byte in its last chunk is still caught.
        let mut bad = f.clone();
        bad[(at + len - 1) as usize] ^= 1;
        assert_eq!(
            Sections::parse(&bad[..], &[tags::RAM]).unwrap_err(),
            FormatError::Crc("RAM ".into())
        );
        // Read into memory, it is too long.
        assert!(matches!(
            Sections::parse(&f[..], &[]),
            Err(FormatError::Length { .. })
        ));
    }

    #[test]
    fn a_streamed_section_must_write_its_length() {
        let mut w = SnapshotWriter::new(Vec::new()).unwrap();
        assert!(w.streamed(tags::RAM, 3, |o| o.write_all(b"ab")).is_err());
    }
}
