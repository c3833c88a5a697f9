//! The host limit: the same commands as the guest's, done by this process
//! with `pread`/`pwrite` on the image into one host buffer — what a VMM
//! moving the data with one system call per command can reach at best —
//! through the page cache and, where the file system allows, `O_DIRECT`.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::time::Instant;

use thiserror::Error;

use vmdma_protocol::BenchLbas;

use super::plan::{FIRST_LBA, Mode, RANDOM_SEED, SECTOR};

/// Buffer alignment (`O_DIRECT` needs the logical block size; 4 KiB
/// covers every common device).
const ALIGN: usize = 4096;

/// One host run.
#[derive(Clone, Debug)]
pub struct HostRun {
    /// Seconds of the whole loop.
    pub seconds: f64,
    /// Per-command seconds (random modes only): min, mean, p50, p99, max.
    pub latency: Option<[f64; 5]>,
}

/// An aligned buffer of `len` bytes (a larger vector, used from an
/// aligned offset).
struct Aligned {
    buf: Vec<u8>,
    offset: usize,
    len: usize,
}

impl Aligned {
    fn new(len: usize) -> Self {
        let buf = vec![0x5Au8; len + ALIGN];
        let offset = buf.as_ptr().align_offset(ALIGN).min(ALIGN);
        Aligned { buf, offset, len }
    }

    fn get(&mut self) -> &mut [u8] {
        let (o, l) = (self.offset, self.len);
        self.buf.get_mut(o..o + l).unwrap_or(&mut [])
    }
}

/// Why a host run failed.
#[derive(Debug, Error)]
pub enum HostError {
    /// A `pread` or `pwrite` (`write`) failed.
    #[error("{} at {offset}: {source}", if *write { "pwrite" } else { "pread" })]
    Io {
        /// `pwrite` (else `pread`).
        write: bool,
        /// The file offset.
        offset: u64,
        /// The error.
        source: io::Error,
    },
    /// The command size does not fit in memory.
    #[error("command too large")]
    CommandTooLarge,
    /// The command count does not fit in memory.
    #[error("too many commands")]
    TooManyCommands,
    /// The span cannot hold one random command.
    #[error("no random LBAs")]
    NoRandomLbas,
    /// Boot and calibrate are guest-only modes.
    #[error("not an I/O mode")]
    NotIoMode,
}

/// Opens the image for the host runs; `Ok(None)` when `direct` and the
/// file system refuses `O_DIRECT`.
pub fn open(image: &Path, direct: bool) -> io::Result<Option<File>> {
    let mut o = OpenOptions::new();
    o.read(true).write(true);
    if direct {
        o.custom_flags(libc::O_DIRECT);
    }
    match o.open(image) {
        Ok(f) => Ok(Some(f)),
        Err(e) if direct && e.raw_os_error() == Some(libc::EINVAL) => Ok(None),
        Err(e) => Err(e),
    }
}

fn io(f: &File, write: bool, buf: &mut [u8], offset: u64) -> Result<(), HostError> {
    let r = if write {
        f.write_all_at(buf, offset)
    } else {
        f.read_exact_at(buf, offset)
    };
    r.map_err(|source| HostError::Io {
        write,
        offset,
        source,
    })
}

/// Runs `mode` (an I/O mode) with `commands` commands on `f`; random LBAs
/// spread over `span` sectors.
pub fn run(f: &File, mode: &Mode, commands: u64, span: u64) -> Result<HostRun, HostError> {
    let bytes = mode.command_bytes();
    let mut buf = Aligned::new(usize::try_from(bytes).map_err(|_| HostError::CommandTooLarge)?);
    match *mode {
        Mode::Seq { write, bytes } => {
            let start = Instant::now();
            for k in 0..commands {
                io(f, write, buf.get(), (FIRST_LBA * SECTOR) + k * bytes)?;
            }
            Ok(HostRun {
                seconds: start.elapsed().as_secs_f64(),
                latency: None,
            })
        }
        Mode::Rand { write, .. } => {
            let sectors = bytes / SECTOR;
            let lbas: Vec<u64> = BenchLbas::new(RANDOM_SEED, FIRST_LBA, span, sectors)
                .ok_or(HostError::NoRandomLbas)?
                .take(usize::try_from(commands).map_err(|_| HostError::TooManyCommands)?)
                .collect();
            let mut each = Vec::with_capacity(lbas.len());
            let start = Instant::now();
            let mut prev = start;
            for lba in lbas {
                io(f, write, buf.get(), lba * SECTOR)?;
                let now = Instant::now();
                each.push((now - prev).as_secs_f64());
                prev = now;
            }
            Ok(HostRun {
                seconds: (prev - start).as_secs_f64(),
                latency: latency(&mut each),
            })
        }
        Mode::Boot | Mode::Calibrate | Mode::Snapshot => Err(HostError::NotIoMode),
    }
}

/// min, mean, p50, p99 (nearest rank), max of `v`.
pub fn latency(v: &mut [f64]) -> Option<[f64; 5]> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let rank = |p: usize| (n * p).div_ceil(100).saturating_sub(1);
    let at = |i: usize| v.get(i).copied().unwrap_or(0.0);
    Some([
        at(0),
        v.iter().sum::<f64>() / n as f64,
        at(rank(50)),
        at(rank(99)),
        at(n - 1),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_runs_on_a_small_image() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("img");
        let f = File::create(&p).unwrap();
        f.set_len((FIRST_LBA + 4096) * SECTOR).unwrap();
        let f = open(&p, false).unwrap().unwrap();
        let seq = Mode::Seq {
            write: true,
            bytes: 65536,
        };
        let r = run(&f, &seq, 4, 4096).unwrap();
        assert!(r.seconds >= 0.0 && r.latency.is_none());
        let mut b = [0u8; 4];
        f.read_exact_at(&mut b, FIRST_LBA * SECTOR).unwrap();
        assert_eq!(b, [0x5A; 4], "the host writes its buffer");
        let rand = Mode::Rand {
            write: false,
            irq: false,
            minimal: false,
        };
        let r = run(&f, &rand, 16, 4096).unwrap();
        let l = r.latency.unwrap();
        assert!(l[0] <= l[2] && l[2] <= l[3] && l[3] <= l[4]);
        assert!(matches!(
            run(&f, &Mode::Boot, 1, 4096),
            Err(HostError::NotIoMode)
        ));
        // Past the end of the file: a short read.
        let far = Mode::Seq {
            write: false,
            bytes: 4096,
        };
        let e = run(&f, &far, 4096 + 1, 4096).unwrap_err();
        assert!(matches!(e, HostError::Io { write: false, .. }), "{e}");
        assert!(e.to_string().starts_with("pread at "), "{e}");
    }

    #[test]
    fn latency_ranks() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(latency(&mut v), Some([1.0, 50.5, 50.0, 99.0, 100.0]));
        assert_eq!(latency(&mut []), None);
    }
}
