//! The `CONF` section: what the restoring VM must match (RAM size, the
//! disks and their sizes, the MMIO scratch region), and a fingerprint of
//! the disk image so that a snapshot is not restored over another image
//! by mistake.
//!
//! ```text
//! ram bytes            u64
//! scratch bytes        u64 (0: no MMIO scratch region)
//! unit 0, unit 1       kind u8 (0 none, 1 disk, 2 CD-ROM with a medium,
//!                      3 empty CD-ROM), sectors u64,
//!                      samples u32, then (sector u64, CRC-32 u32) × samples
//! ```
//!
//! The fingerprint is the CRC-32 of 64 sectors spread evenly over the
//! image (fewer on a small one), read when the snapshot is taken. The
//! sectors the command in flight writes (its LBA range) are left out, since
//! such a write may land after the snapshot and the restore issues it
//! again; with a TRIM in flight (whose ranges are in guest memory) there is
//! no fingerprint.

use std::fs::File;
use std::os::unix::fs::FileExt;

use thiserror::Error;

/// Sectors sampled for the fingerprint.
pub const SAMPLES: u64 = 64;

/// A unit of the IDE channel as the snapshot saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unit {
    /// 0 none, 1 disk, 2 CD-ROM with a medium, 3 empty CD-ROM.
    pub kind: u8,
    /// Size in 512-byte sectors (0 for none or an empty CD-ROM).
    pub sectors: u64,
    /// `(sector, CRC-32 of its 512 bytes)`.
    pub samples: Vec<(u64, u32)>,
}

/// The section's contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Guest RAM bytes.
    pub ram: u64,
    /// MMIO scratch bytes.
    pub scratch: u64,
    /// Units 0 and 1.
    pub units: [Unit; 2],
}

/// A mismatch between a snapshot and the VM restoring it, or a malformed
/// section.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    /// The section is cut short or has bytes left over.
    #[error("CONF section malformed ({0})")]
    Malformed(&'static str),
    /// Different RAM.
    #[error("the snapshot's VM has {saved} bytes of RAM, this one {this} (use the same --memory)")]
    Ram {
        /// In the snapshot.
        saved: u64,
        /// Here.
        this: u64,
    },
    /// Different devices.
    #[error(
        "IDE unit {unit}: the snapshot has {saved}, this VM {this} (use the same --disk/--cdrom)"
    )]
    Device {
        /// 0 or 1.
        unit: usize,
        /// In the snapshot.
        saved: String,
        /// Here.
        this: String,
    },
    /// Another image (its sampled sectors differ).
    #[error(
        "IDE unit {unit}: {differ} of {of} sampled sectors differ from the image the snapshot was \
         taken with (another image? --incoming-any-disk restores anyway)"
    )]
    Fingerprint {
        /// 0 or 1.
        unit: usize,
        /// Sectors that differ.
        differ: usize,
        /// Sectors compared.
        of: usize,
    },
    /// A sector of the image could not be read.
    #[error("reading the image for its fingerprint: {0}")]
    Read(String),
}

fn describe(kind: u8, sectors: u64) -> String {
    match kind {
        0 => "no drive".into(),
        1 => format!("a disk of {sectors} sectors"),
        2 => format!("a CD-ROM of {sectors} sectors"),
        3 => "an empty CD-ROM".into(),
        _ => format!("an unknown kind {kind}"),
    }
}

/// The sectors sampled on an image of `sectors`, minus those in `exclude`
/// (`None`: all of them may have changed, none is sampled).
pub fn sample_sectors(sectors: u64, exclude: Option<(u64, u64)>) -> Vec<u64> {
    let Some((from, count)) = exclude.or(Some((0, 0))) else {
        return Vec::new();
    };
    let n = SAMPLES.min(sectors);
    (0..n)
        .map(|i| i * (sectors / n.max(1)))
        .filter(|s| !(*s >= from && *s - from < count))
        .collect()
}

/// Reads the CRC-32 of each of `sectors` of `file`.
pub fn fingerprint(file: &File, sectors: &[u64]) -> Result<Vec<(u64, u32)>, ConfigError> {
    let mut buf = [0u8; 512];
    sectors
        .iter()
        .map(|&s| {
            file.read_exact_at(&mut buf, s * 512)
                .map_err(|e| ConfigError::Read(e.to_string()))?;
            Ok((s, crc32fast::hash(&buf)))
        })
        .collect()
}

impl Config {
    /// The section's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&self.ram.to_le_bytes());
        v.extend_from_slice(&self.scratch.to_le_bytes());
        for u in &self.units {
            v.push(u.kind);
            v.extend_from_slice(&u.sectors.to_le_bytes());
            v.extend_from_slice(&(u.samples.len() as u32).to_le_bytes());
            for (s, c) in &u.samples {
                v.extend_from_slice(&s.to_le_bytes());
                v.extend_from_slice(&c.to_le_bytes());
            }
        }
        v
    }

    /// Parses the section (every length checked).
    pub fn from_bytes(b: &[u8]) -> Result<Self, ConfigError> {
        let mut r = Take(b);
        let ram = r.u64()?;
        let scratch = r.u64()?;
        let mut unit = || -> Result<Unit, ConfigError> {
            let kind = r.u8()?;
            if kind > 3 {
                return Err(ConfigError::Malformed("unknown drive kind"));
            }
            let sectors = r.u64()?;
            let n = r.u32()?;
            if u64::from(n) > SAMPLES {
                return Err(ConfigError::Malformed("too many samples"));
            }
            let samples = (0..n)
                .map(|_| Ok((r.u64()?, r.u32()?)))
                .collect::<Result<Vec<_>, ConfigError>>()?;
            Ok(Unit {
                kind,
                sectors,
                samples,
            })
        };
        let units = [unit()?, unit()?];
        if !r.0.is_empty() {
            return Err(ConfigError::Malformed("bytes left over"));
        }
        Ok(Config {
            ram,
            scratch,
            units,
        })
    }

    /// Checks that `this` (the restoring VM's own configuration, without
    /// samples) matches, and, unless `any_disk`, that each disk's image
    /// gives the same sampled sectors (`files`: the images of units 0, 1).
    pub fn check(
        &self,
        this: &Config,
        files: [Option<&File>; 2],
        any_disk: bool,
    ) -> Result<(), ConfigError> {
        if self.ram != this.ram {
            return Err(ConfigError::Ram {
                saved: self.ram,
                this: this.ram,
            });
        }
        for (i, (s, t)) in self.units.iter().zip(&this.units).enumerate() {
            if (s.kind, s.sectors) != (t.kind, t.sectors) {
                return Err(ConfigError::Device {
                    unit: i,
                    saved: describe(s.kind, s.sectors),
                    this: describe(t.kind, t.sectors),
                });
            }
            if any_disk || s.samples.is_empty() {
                continue;
            }
            let Some(file) = files.get(i).copied().flatten() else {
                continue;
            };
            if s.samples.iter().any(|(sec, _)| *sec >= s.sectors) {
                return Err(ConfigError::Malformed("a sampled sector past the end"));
            }
            let sectors: Vec<u64> = s.samples.iter().map(|(sec, _)| *sec).collect();
            let now = fingerprint(file, &sectors)?;
            let differ = now
                .iter()
                .zip(&s.samples)
                .filter(|(a, b)| a.1 != b.1)
                .count();
            if differ > 0 {
                return Err(ConfigError::Fingerprint {
                    unit: i,
                    differ,
                    of: sectors.len(),
                });
            }
        }
        Ok(())
    }
}

struct Take<'a>(&'a [u8]);

impl Take<'_> {
    fn bytes<const N: usize>(&mut self) -> Result<[u8; N], ConfigError> {
        let (a, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or(ConfigError::Malformed("truncated"))?;
        self.0 = rest;
        Ok(*a)
    }
    fn u8(&mut self) -> Result<u8, ConfigError> {
        Ok(self.bytes::<1>()?[0])
    }
    fn u32(&mut self) -> Result<u32, ConfigError> {
        Ok(u32::from_le_bytes(self.bytes()?))
    }
    fn u64(&mut self) -> Result<u64, ConfigError> {
        Ok(u64::from_le_bytes(self.bytes()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn image(fill: u8) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&vec![fill; 1 << 20]).unwrap();
        f
    }

    #[test]
    fn samples_skip_the_range_in_flight() {
        let all = sample_sectors(2048, None);
        assert_eq!(all.len(), 64);
        assert_eq!(all[1], 32);
        let some = sample_sectors(2048, Some((0, 64)));
        assert_eq!(some.len(), 62, "sectors 0 and 32 are written");
        assert_eq!(sample_sectors(10, None).len(), 10);
        assert_eq!(sample_sectors(0, None).len(), 0);
    }

    #[test]
    fn the_same_image_passes_another_is_named() {
        let a = image(1);
        let b = image(2);
        let sectors = sample_sectors(2048, None);
        let unit = |samples| Unit {
            kind: 1,
            sectors: 2048,
            samples,
        };
        let none = Unit {
            kind: 0,
            sectors: 0,
            samples: vec![],
        };
        let saved = Config {
            ram: 64 << 20,
            scratch: 65536,
            units: [
                unit(fingerprint(a.as_file(), &sectors).unwrap()),
                none.clone(),
            ],
        };
        let bytes = saved.to_bytes();
        let parsed = Config::from_bytes(&bytes).unwrap();
        assert_eq!(parsed, saved);
        let this = Config {
            units: [unit(vec![]), none.clone()],
            ..saved.clone()
        };
        parsed
            .check(&this, [Some(a.as_file()), None], false)
            .unwrap();
        let e = parsed
            .check(&this, [Some(b.as_file()), None], false)
            .unwrap_err();
        assert_eq!(
            e,
            ConfigError::Fingerprint {
                unit: 0,
                differ: 64,
                of: 64
            }
        );
        parsed
            .check(&this, [Some(b.as_file()), None], true)
            .unwrap();
        let other_ram = Config {
            ram: 128 << 20,
            ..this.clone()
        };
        assert!(matches!(
            parsed.check(&other_ram, [None, None], false),
            Err(ConfigError::Ram { .. })
        ));
        let other_disk = Config {
            units: [none.clone(), none],
            ..this
        };
        assert!(
            parsed
                .check(&other_disk, [None, None], false)
                .unwrap_err()
                .to_string()
                .contains("a disk of 2048 sectors")
        );
        for cut in 0..bytes.len() {
            assert!(Config::from_bytes(&bytes[..cut]).is_err());
        }
    }
}
