//! Reading the bundled guest's serial output (test lines, summary) and its
//! write manifest (the debug console: `--manifest FILE` on vmdma,
//! `-debugcon file:FILE` on QEMU), and checking a disk image against the
//! manifest.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::io::AsRawFd;
use std::path::Path;

use vmdma_protocol::{BenchLbas, MANIFEST_PREFIX, STAMP_SECTOR, stamp_sector};

/// One test's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Failed(String),
    Skipped(String),
}

/// What a suite run printed.
#[derive(Debug, Default)]
pub struct SuiteRun {
    /// Test name → outcome, in output order.
    pub tests: Vec<(String, Outcome)>,
    /// `(passed, failed, skipped)` from the summary line.
    pub summary: Option<(u32, u32, u32)>,
    /// Disk changes announced by the guest, in order.
    pub manifest: Vec<Change>,
}

/// A disk change from the manifest (see `vmdma_protocol::MANIFEST_PREFIX`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Write {
        lba: u64,
        count: u64,
        pattern: u32,
    },
    Repeat {
        lba: u64,
        count: u64,
        pattern: u32,
        from: u64,
        period: u64,
    },
    Random {
        base: u64,
        span: u64,
        sectors: u64,
        count: u64,
        seed: u64,
        pattern: u32,
        from: u64,
    },
    Trim {
        lba: u64,
        count: u64,
    },
}

impl SuiteRun {
    pub fn outcome(&self, name: &str) -> Option<&Outcome> {
        self.tests.iter().find(|(n, _)| n == name).map(|(_, o)| o)
    }

    pub fn failures(&self) -> Vec<String> {
        self.tests
            .iter()
            .filter_map(|(n, o)| match o {
                Outcome::Failed(r) => Some(format!("{n}: {r}")),
                _ => None,
            })
            .collect()
    }
}

/// Parses the guest's serial output and its manifest (the text recorded
/// from the debug console; empty if none).
pub fn parse_run(output: &str, manifest: &str) -> SuiteRun {
    let mut run = parse(output);
    run.manifest = parse_manifest(manifest);
    run
}

/// Parses the guest's serial output (the manifest is not on it).
pub fn parse(output: &str) -> SuiteRun {
    let mut run = SuiteRun::default();
    for line in output.lines() {
        let line = line.trim_end_matches('\r');
        assert!(
            !line.starts_with(MANIFEST_PREFIX),
            "manifest line on the console: {line:?}"
        );
        if let Some(rest) = line.strip_prefix("test ") {
            if let Some((name, result)) = rest.split_once(" ... ") {
                let o = if result == "ok" {
                    Outcome::Ok
                } else if let Some(r) = result.strip_prefix("FAILED: ") {
                    Outcome::Failed(r.to_string())
                } else if let Some(r) = result.strip_prefix("skipped: ") {
                    Outcome::Skipped(r.to_string())
                } else {
                    Outcome::Failed(format!("unparsable result {result:?}"))
                };
                run.tests.push((name.to_string(), o));
            }
        } else if let Some(s) = parse_summary(line) {
            run.summary = Some(s);
        }
    }
    run
}

/// Parses manifest lines (every line must be one).
pub fn parse_manifest(text: &str) -> Vec<Change> {
    let mut out = Vec::new();
    for line in text.lines() {
        let rest = line
            .strip_prefix(MANIFEST_PREFIX)
            .unwrap_or_else(|| panic!("not a manifest line: {line:?}"));
        let w: Vec<&str> = rest.split_whitespace().collect();
        let n: Vec<u64> = w
            .iter()
            .skip(1)
            .map(|s| {
                s.parse()
                    .unwrap_or_else(|_| panic!("bad number in {line:?}"))
            })
            .collect();
        let pattern = |v: u64| u32::try_from(v).expect("pattern fits u32");
        out.push(match (w.first().copied(), n.as_slice()) {
            (Some("write"), &[lba, count, p]) => Change::Write {
                lba,
                count,
                pattern: pattern(p),
            },
            (Some("repeat"), &[lba, count, p, from, period]) => Change::Repeat {
                lba,
                count,
                pattern: pattern(p),
                from,
                period,
            },
            (Some("random"), &[base, span, sectors, count, seed, p, from]) => Change::Random {
                base,
                span,
                sectors,
                count,
                seed,
                pattern: pattern(p),
                from,
            },
            (Some("trim"), &[lba, count]) => Change::Trim { lba, count },
            _ => panic!("bad manifest line {line:?}"),
        });
    }
    out
}

fn parse_summary(line: &str) -> Option<(u32, u32, u32)> {
    let parts: Vec<&str> = line.split(", ").collect();
    let [p, f, s] = parts.as_slice() else {
        return None;
    };
    Some((
        p.strip_suffix(" passed")?.parse().ok()?,
        f.strip_suffix(" failed")?.parse().ok()?,
        s.strip_suffix(" skipped")?.parse().ok()?,
    ))
}

/// What a sector must hold after the run.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// The stamp of (LBA, pattern).
    Stamp(u64, u32),
    /// Trimmed: zeros (discard honoured) or the content before the trim.
    ZeroOr(Option<(u64, u32)>),
}

/// Checks `image` against the manifest: every announced sector holds
/// exactly its stamp (trimmed sectors hold zeros or their previous
/// content), and every other byte of the image is zero. Only the image's
/// data extents are read (`SEEK_DATA`/`SEEK_HOLE`), so a 130 GiB sparse
/// image is checked in milliseconds. Returns the number of sectors checked.
pub fn check_image(image: &Path, manifest: &[Change]) -> usize {
    let mut expect: BTreeMap<u64, Expect> = BTreeMap::new();
    for c in manifest {
        match *c {
            Change::Write {
                lba,
                count,
                pattern,
            } => {
                for s in lba..lba + count {
                    expect.insert(s, Expect::Stamp(s, pattern));
                }
            }
            Change::Repeat {
                lba,
                count,
                pattern,
                from,
                period,
            } => {
                assert!(period > 0, "repeat with period 0");
                for i in 0..count {
                    expect.insert(lba + i, Expect::Stamp(from + i % period, pattern));
                }
            }
            Change::Random {
                base,
                span,
                sectors,
                count,
                seed,
                pattern,
                from,
            } => {
                let lbas = BenchLbas::new(seed, base, span, sectors).expect("a valid random line");
                for l in lbas.take(count as usize) {
                    for j in 0..sectors {
                        expect.insert(l + j, Expect::Stamp(from + j, pattern));
                    }
                }
            }
            Change::Trim { lba, count } => {
                for s in lba..lba + count {
                    let before = match expect.get(&s) {
                        Some(Expect::Stamp(l, p)) => Some((*l, *p)),
                        Some(Expect::ZeroOr(p)) => *p,
                        None => None,
                    };
                    expect.insert(s, Expect::ZeroOr(before));
                }
            }
        }
    }
    let mut f = File::open(image).expect("open image");
    let mut buf = [0u8; STAMP_SECTOR];
    let mut want = [0u8; STAMP_SECTOR];
    let zero = [0u8; STAMP_SECTOR];
    for (&lba, e) in &expect {
        f.seek(SeekFrom::Start(lba * STAMP_SECTOR as u64)).unwrap();
        f.read_exact(&mut buf).unwrap();
        match *e {
            Expect::Stamp(l, p) => {
                stamp_sector(l, p, &mut want);
                assert!(
                    buf == want,
                    "sector {lba}: expected the stamp of LBA {l} pattern {p}, found {:02x?}",
                    &buf[..32]
                );
            }
            Expect::ZeroOr(prev) => {
                let ok_prev = prev.is_some_and(|(l, p)| {
                    stamp_sector(l, p, &mut want);
                    buf == want
                });
                assert!(
                    buf == zero || ok_prev,
                    "trimmed sector {lba} holds unexpected data"
                );
            }
        }
    }
    // Every data extent: sectors not announced must be zero.
    let len = f.metadata().unwrap().len();
    let fd = f.as_raw_fd();
    let mut pos: i64 = 0;
    let mut data_sectors = 0usize;
    while (pos as u64) < len {
        // SAFETY: lseek on an open descriptor we own; no memory is touched.
        let data = unsafe { libc::lseek(fd, pos, libc::SEEK_DATA) };
        if data < 0 {
            break; // ENXIO: no more data.
        }
        // SAFETY: as above.
        let hole = unsafe { libc::lseek(fd, data, libc::SEEK_HOLE) };
        assert!(hole > data, "SEEK_HOLE failed");
        let first = data as u64 / STAMP_SECTOR as u64;
        let end = (hole as u64).div_ceil(STAMP_SECTOR as u64);
        assert!(end - first < (1 << 22), "implausibly large data extent");
        f.seek(SeekFrom::Start(first * STAMP_SECTOR as u64))
            .unwrap();
        for s in first..end {
            if f.read_exact(&mut buf).is_err() {
                break;
            }
            data_sectors += 1;
            if !expect.contains_key(&s) {
                assert!(
                    buf == zero,
                    "sector {s} was written but not announced: {:02x?}",
                    &buf[..32]
                );
            }
        }
        pos = hole;
    }
    expect.len().max(data_sectors)
}
