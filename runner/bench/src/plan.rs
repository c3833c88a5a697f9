//! What the benchmark measures: the modes, their guest command lines and
//! their size, and the columns (targets) that measure them.

use std::fmt;

use thiserror::Error;

/// First LBA of every guest benchmark (`vmdma_guest::bench_args::FIRST_LBA`).
pub const FIRST_LBA: u64 = 2048;
/// How big the measurements are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sizes {
    /// Bytes each sequential measurement moves.
    pub total: u64,
    /// Commands of each random measurement.
    pub random_count: u32,
    /// Sectors the random LBAs spread over (from [`FIRST_LBA`]).
    pub random_span: u64,
}
/// Sector size.
pub const SECTOR: u64 = 512;
/// Bytes per random command.
pub const RANDOM_BYTES: u64 = 4096;
/// Seed of the random LBAs.
pub const RANDOM_SEED: u64 = 1;
/// Largest command the guest issues (65536 sectors).
pub const MAX_COMMAND: u64 = 65536 * SECTOR;

/// One measurement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// READ/WRITE DMA EXT of `bytes` per command on consecutive LBAs.
    Seq {
        /// Writes instead of reads.
        write: bool,
        /// Bytes per command.
        bytes: u64,
    },
    /// 4 KiB READ/WRITE DMA EXT at random LBAs, queue depth 1.
    Rand {
        /// Writes instead of reads.
        write: bool,
        /// Completion by IRQ 14 (`sti; hlt`) instead of polling.
        irq: bool,
        /// The guest's `minimal` command shape instead of libata's.
        minimal: bool,
    },
    /// The quiet boot: process start, first serial byte, exit, RSS.
    Boot,
    /// The cost model: exit and instruction costs.
    Calibrate,
    /// A snapshot of the conformance suite and its restore
    /// (`snapshot.rs`).
    Snapshot,
}

/// The mode families `--modes` selects.
pub const FAMILIES: [&str; 7] = [
    "seq-read",
    "seq-write",
    "rand-read",
    "rand-write",
    "boot",
    "calibrate",
    "snapshot",
];

impl Mode {
    /// The family name (`seq-read`, ...).
    pub fn family(&self) -> &'static str {
        match self {
            Mode::Seq { write: false, .. } => "seq-read",
            Mode::Seq { write: true, .. } => "seq-write",
            Mode::Rand { write: false, .. } => "rand-read",
            Mode::Rand { write: true, .. } => "rand-write",
            Mode::Boot => "boot",
            Mode::Calibrate => "calibrate",
            Mode::Snapshot => "snapshot",
        }
    }

    /// Whether the host limit applies (I/O modes only).
    pub fn is_io(&self) -> bool {
        matches!(self, Mode::Seq { .. } | Mode::Rand { .. })
    }

    /// Commands of one run.
    pub fn commands(&self, sizes: &Sizes) -> u64 {
        match self {
            Mode::Seq { bytes, .. } => (sizes.total / bytes).max(1),
            Mode::Rand { .. } => u64::from(sizes.random_count),
            Mode::Boot | Mode::Calibrate | Mode::Snapshot => 0,
        }
    }

    /// Bytes per command.
    pub fn command_bytes(&self) -> u64 {
        match self {
            Mode::Seq { bytes, .. } => *bytes,
            Mode::Rand { .. } => RANDOM_BYTES,
            Mode::Boot | Mode::Calibrate | Mode::Snapshot => 0,
        }
    }

    /// The guest's command line for this mode.
    pub fn guest_cmdline(&self, sizes: &Sizes) -> String {
        let count = self.commands(sizes);
        let span = sizes.random_span;
        match self {
            Mode::Seq { write, bytes } => format!(
                "bench={} bench_count={count} bench_sectors={} quiet",
                if *write { "seq-write" } else { "seq-read" },
                bytes / SECTOR
            ),
            Mode::Rand {
                write,
                irq,
                minimal,
            } => format!(
                "bench={} bench_count={count} bench_sectors={} bench_span={span} \
                 bench_seed={RANDOM_SEED} bench_wait={} bench_shape={} quiet",
                if *write { "rand-write" } else { "rand-read" },
                RANDOM_BYTES / SECTOR,
                if *irq { "irq" } else { "poll" },
                if *minimal { "minimal" } else { "libata" },
            ),
            Mode::Boot => "bench=boot quiet".into(),
            Mode::Calibrate => "bench=calibrate quiet".into(),
            // The conformance suite: the guest's default.
            Mode::Snapshot => String::new(),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mode::Seq { bytes, .. } => write!(f, "{} {}", self.family(), size_name(*bytes)),
            Mode::Rand { irq, minimal, .. } => write!(
                f,
                "{} 4K {} {}",
                self.family(),
                if *irq { "irq" } else { "poll" },
                if *minimal { "minimal" } else { "libata" }
            ),
            Mode::Boot | Mode::Calibrate | Mode::Snapshot => f.write_str(self.family()),
        }
    }
}

/// `4K`, `64K`, `1M`, `16M`, or bytes.
pub fn size_name(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{}M", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes.is_multiple_of(1 << 10) {
        format!("{}K", bytes >> 10)
    } else {
        format!("{bytes}B")
    }
}

/// What is wrong with the options that make the plan (a usage error).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PlanError {
    /// `--modes` names something not in [`FAMILIES`].
    #[error("unknown mode {0:?} (expected {families})", families = FAMILIES.join(", "))]
    UnknownMode(String),
    /// A `--sizes` entry is not a whole number of sectors up to
    /// [`MAX_COMMAND`].
    #[error("command size {0} is not a multiple of 512 from 512 to 32M")]
    CommandSize(u64),
    /// `--random-span` is not a positive multiple of 4 KiB.
    #[error("--random-span {0} is not a multiple of 4K")]
    RandomSpan(u64),
}

/// The modes of a bench run, in table order.
pub fn modes(families: &[String], sizes: &[u64]) -> Result<Vec<Mode>, PlanError> {
    for f in families {
        if !FAMILIES.contains(&f.as_str()) {
            return Err(PlanError::UnknownMode(f.clone()));
        }
    }
    for &s in sizes {
        if s == 0 || !s.is_multiple_of(SECTOR) || s > MAX_COMMAND {
            return Err(PlanError::CommandSize(s));
        }
    }
    let on = |f: &str| families.iter().any(|x| x == f);
    let mut out = Vec::new();
    for write in [false, true] {
        if on(if write { "seq-write" } else { "seq-read" }) {
            out.extend(sizes.iter().map(|&bytes| Mode::Seq { write, bytes }));
        }
    }
    for write in [false, true] {
        if on(if write { "rand-write" } else { "rand-read" }) {
            for minimal in [false, true] {
                out.extend([false, true].map(|irq| Mode::Rand {
                    write,
                    irq,
                    minimal,
                }));
            }
        }
    }
    if on("boot") {
        out.push(Mode::Boot);
    }
    if on("calibrate") {
        out.push(Mode::Calibrate);
    }
    if on("snapshot") {
        out.push(Mode::Snapshot);
    }
    Ok(out)
}

/// A column of the table: who runs the measurement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// vmdma with these `--disk` options (`None`: the plain image).
    Vmdma(Option<String>),
    /// QEMU with these `-drive` options.
    Qemu(String),
    /// The host's own `pread`/`pwrite` on the image (with `O_DIRECT` or
    /// through the page cache).
    Host {
        /// `O_DIRECT`.
        direct: bool,
    },
}

impl Target {
    /// The column label.
    pub fn label(&self) -> String {
        match self {
            Target::Vmdma(None) => "vmdma".into(),
            Target::Vmdma(Some(o)) => format!("vmdma {o}"),
            Target::Qemu(o) => format!("QEMU {o}"),
            Target::Host { direct: false } => "host pread/pwrite".into(),
            Target::Host { direct: true } => "host O_DIRECT".into(),
        }
    }

    /// Whether it measures `mode`. The host has no command shapes and no
    /// interrupts: it measures the sequential modes and one random mode
    /// each for reads and writes (shown on the polled libata rows).
    pub fn measures(&self, mode: &Mode) -> bool {
        match self {
            Target::Host { .. } => match mode {
                Mode::Seq { .. } => true,
                Mode::Rand { irq, minimal, .. } => !irq && !minimal,
                Mode::Boot | Mode::Calibrate | Mode::Snapshot => false,
            },
            Target::Vmdma(_) | Target::Qemu(_) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_names() {
        let all: Vec<String> = FAMILIES.iter().map(|s| s.to_string()).collect();
        let m = modes(&all, &[4096, 16 << 20]).unwrap();
        let names: Vec<String> = m.iter().map(ToString::to_string).collect();
        assert_eq!(
            names,
            [
                "seq-read 4K",
                "seq-read 16M",
                "seq-write 4K",
                "seq-write 16M",
                "rand-read 4K poll libata",
                "rand-read 4K irq libata",
                "rand-read 4K poll minimal",
                "rand-read 4K irq minimal",
                "rand-write 4K poll libata",
                "rand-write 4K irq libata",
                "rand-write 4K poll minimal",
                "rand-write 4K irq minimal",
                "boot",
                "calibrate",
                "snapshot"
            ]
        );
        let e = modes(&["seq".into()], &[]).unwrap_err();
        assert_eq!(e, PlanError::UnknownMode("seq".into()));
        assert_eq!(
            e.to_string(),
            "unknown mode \"seq\" (expected seq-read, seq-write, rand-read, rand-write, boot, calibrate, snapshot)"
        );
        assert_eq!(modes(&all, &[1000]), Err(PlanError::CommandSize(1000)));
        assert_eq!(
            modes(&all, &[64 << 20]),
            Err(PlanError::CommandSize(64 << 20))
        );
    }

    #[test]
    fn guest_command_lines() {
        let m = Mode::Seq {
            write: true,
            bytes: 1 << 20,
        };
        let sizes = Sizes {
            total: 256 << 20,
            random_count: 64,
            random_span: 1 << 19,
        };
        assert_eq!(m.commands(&sizes), 256);
        assert_eq!(
            m.guest_cmdline(&sizes),
            "bench=seq-write bench_count=256 bench_sectors=2048 quiet"
        );
        let tiny = Sizes {
            total: 1000,
            ..sizes
        };
        assert_eq!(m.commands(&tiny), 1, "at least one command");
        let r = Mode::Rand {
            write: false,
            irq: true,
            minimal: true,
        };
        assert_eq!(
            r.guest_cmdline(&sizes),
            "bench=rand-read bench_count=64 bench_sectors=8 bench_span=524288 bench_seed=1 \
             bench_wait=irq bench_shape=minimal quiet"
        );
        assert_eq!(size_name(4096), "4K");
        assert_eq!(size_name(1536), "1536B");
        assert_eq!(
            Target::Qemu("cache=writeback".into()).label(),
            "QEMU cache=writeback"
        );
        assert!(!Target::Host { direct: true }.measures(&Mode::Boot));
        assert!(!Target::Host { direct: false }.measures(&Mode::Snapshot));
        assert!(Target::Qemu("cache=writeback".into()).measures(&Mode::Snapshot));
        assert_eq!(Mode::Snapshot.guest_cmdline(&sizes), "", "the suite");
    }
}
