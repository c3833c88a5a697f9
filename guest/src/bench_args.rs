//! The benchmark options of the command line (`bench=NAME` and its
//! `bench_*` parameters) and the plan they describe.
//!
//! | key | values | meaning |
//! |---|---|---|
//! | `bench` | see [`BenchKind`] | run a benchmark instead of a suite |
//! | `bench_count` | 1..=1048576 (default 256) | commands in the timed loop |
//! | `bench_sectors` | 1..=256 (`dma-*`), 1..=65536 (`seq-*`, `rand-*`) | sectors per command (default 128, `rand-*` 8) |
//! | `bench_wait` | `poll` (default), `irq` | completion by BM status polling, or by IRQ 14 (`sti; hlt`) |
//! | `bench_shape` | `libata` (default), `minimal` | how each command is driven, see [`BenchShape`] |
//! | `bench_seed` | decimal `u64` (default 1) | `rand-*`: seed of the LBA sequence |
//! | `bench_span` | 1..=2^40 sectors (default 2^19, 256 MiB) | `rand-*`: the LBAs lie in `FIRST_LBA .. FIRST_LBA + span` |
//!
//! A parameter the chosen benchmark does not use is an error, and so is a
//! parameter without `bench=`.

use crate::cmdline::CmdlineError;

/// First LBA every DMA benchmark uses.
pub const FIRST_LBA: u64 = 2048;
/// Commands unless `bench_count=` says otherwise.
pub const DEFAULT_COUNT: u32 = 256;
/// Largest `bench_count`.
pub const MAX_COUNT: u32 = 1 << 20;
/// Sectors per command unless `bench_sectors=` says otherwise (64 KiB).
pub const DEFAULT_SECTORS: u32 = 128;
/// Sectors per random command unless `bench_sectors=` says otherwise (4 KiB).
pub const DEFAULT_RANDOM_SECTORS: u32 = 8;
/// Most sectors one LBA28 command moves.
pub const MAX_LBA28_SECTORS: u32 = 256;
/// Most sectors one LBA48 (EXT) command moves.
pub const MAX_LBA48_SECTORS: u32 = 65536;
/// Random span unless `bench_span=` says otherwise (256 MiB).
pub const DEFAULT_SPAN: u64 = 1 << 19;
/// Largest `bench_span` (512 TiB of sectors: far beyond any disk; the
/// guest checks the real capacity).
pub const MAX_SPAN: u64 = 1 << 40;
/// Seed unless `bench_seed=` says otherwise.
pub const DEFAULT_SEED: u64 = 1;

/// Which benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BenchKind {
    /// READ DMA (LBA28) on consecutive LBAs.
    DmaRead,
    /// WRITE DMA (LBA28) on consecutive LBAs.
    DmaWrite,
    /// READ DMA EXT (LBA48) on consecutive LBAs.
    SeqRead,
    /// WRITE DMA EXT (LBA48) on consecutive LBAs.
    SeqWrite,
    /// READ DMA EXT on random aligned LBAs, one command at a time.
    RandRead,
    /// WRITE DMA EXT on random aligned LBAs, one command at a time.
    RandWrite,
    /// No commands: boot, set up the device, report (the boot measurement).
    Boot,
    /// Measurements for the cost model: TSC frequency, exit and
    /// instruction costs, one profiled DMA command.
    Calibrate,
}

/// Every benchmark, in the order of [`BenchKind::name`]'s list.
pub const ALL_KINDS: [BenchKind; 8] = [
    BenchKind::DmaRead,
    BenchKind::DmaWrite,
    BenchKind::SeqRead,
    BenchKind::SeqWrite,
    BenchKind::RandRead,
    BenchKind::RandWrite,
    BenchKind::Boot,
    BenchKind::Calibrate,
];

impl BenchKind {
    /// The command-line spelling.
    pub const fn name(self) -> &'static str {
        match self {
            BenchKind::DmaRead => "dma-read",
            BenchKind::DmaWrite => "dma-write",
            BenchKind::SeqRead => "seq-read",
            BenchKind::SeqWrite => "seq-write",
            BenchKind::RandRead => "rand-read",
            BenchKind::RandWrite => "rand-write",
            BenchKind::Boot => "boot",
            BenchKind::Calibrate => "calibrate",
        }
    }

    /// The kind spelled `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        ALL_KINDS.into_iter().find(|k| k.name() == name)
    }

    /// Whether it issues DMA commands (and takes the DMA parameters).
    pub const fn is_dma(self) -> bool {
        !matches!(self, BenchKind::Boot | BenchKind::Calibrate)
    }

    /// Whether its commands write.
    pub const fn is_write(self) -> bool {
        matches!(
            self,
            BenchKind::DmaWrite | BenchKind::SeqWrite | BenchKind::RandWrite
        )
    }

    /// Whether its LBAs are random.
    pub const fn is_random(self) -> bool {
        matches!(self, BenchKind::RandRead | BenchKind::RandWrite)
    }

    /// Whether it uses the LBA48 (EXT) commands.
    pub const fn lba48(self) -> bool {
        !matches!(self, BenchKind::DmaRead | BenchKind::DmaWrite)
    }

    /// Most sectors per command.
    pub const fn max_sectors(self) -> u32 {
        if self.lba48() {
            MAX_LBA48_SECTORS
        } else {
            MAX_LBA28_SECTORS
        }
    }
}

/// How a DMA benchmark waits for each command's completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BenchWait {
    /// Poll BM status (what libata does in polling mode).
    Poll,
    /// Wait for IRQ 14 with `sti; hlt` (what an interrupt-driven driver does).
    Irq,
}

impl BenchWait {
    /// The command-line spelling.
    pub const fn name(self) -> &'static str {
        match self {
            BenchWait::Poll => "poll",
            BenchWait::Irq => "irq",
        }
    }
}

/// How each DMA command is driven.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BenchShape {
    /// Linux's libata sequence for a PIIX: drive select handshake, the whole
    /// task file, PRD pointer, BM command read and direction write, command,
    /// START, completion, stop with a pause read, Status, BM status W1C.
    Libata,
    /// The fewest accesses a single-command driver needs: task file without
    /// Features (ignored by READ/WRITE DMA) and without the select
    /// handshake (the previous command's Status showed the drive idle), PRD
    /// pointer and direction set once before the loop, command, START with
    /// the direction, completion, stop, Status, BM status W1C.
    Minimal,
}

impl BenchShape {
    /// The command-line spelling.
    pub const fn name(self) -> &'static str {
        match self {
            BenchShape::Libata => "libata",
            BenchShape::Minimal => "minimal",
        }
    }
}

/// A benchmark and its parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bench {
    /// Which benchmark.
    pub kind: BenchKind,
    /// Commands in the timed loop (1..=[`MAX_COUNT`]).
    pub count: u32,
    /// Sectors per command (1..=`kind.max_sectors()`).
    pub sectors: u32,
    /// Completion detection.
    pub wait: BenchWait,
    /// How each command is driven.
    pub shape: BenchShape,
    /// Seed of the random LBAs.
    pub seed: u64,
    /// Sectors the random LBAs spread over, from [`FIRST_LBA`].
    pub span: u64,
}

impl Bench {
    /// Bytes per command.
    pub const fn bytes(&self) -> u64 {
        self.sectors as u64 * 512
    }
}

/// The `bench*` words of a command line, collected before validation.
#[derive(Clone, Copy, Debug, Default)]
pub struct BenchArgs {
    kind: Option<BenchKind>,
    count: Option<u32>,
    sectors: Option<u32>,
    wait: Option<BenchWait>,
    shape: Option<BenchShape>,
    seed: Option<u64>,
    span: Option<u64>,
}

fn once<T>(slot: &mut Option<T>, v: T, key: &'static str) -> Result<(), CmdlineError> {
    if slot.is_some() {
        return Err(CmdlineError::DuplicateKey(key));
    }
    *slot = Some(v);
    Ok(())
}

/// Parses 1..=20 decimal digits (no sign) as a `u64` in `min..=max`.
fn decimal(s: &str, min: u64, max: u64) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u64>().ok().filter(|n| (min..=max).contains(n))
}

impl BenchArgs {
    /// Takes `key=value` if it is a benchmark key; `Ok(false)` otherwise.
    pub fn take(&mut self, key: &str, value: &str) -> Result<bool, CmdlineError> {
        match key {
            "bench" => {
                let k = BenchKind::from_name(value).ok_or(CmdlineError::UnknownBench)?;
                once(&mut self.kind, k, "bench")?;
            }
            "bench_count" => {
                let n = decimal(value, 1, u64::from(MAX_COUNT))
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or(CmdlineError::BenchCount)?;
                once(&mut self.count, n, "bench_count")?;
            }
            "bench_sectors" => {
                let n = decimal(value, 1, u64::from(MAX_LBA48_SECTORS))
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or(CmdlineError::BenchSectors)?;
                once(&mut self.sectors, n, "bench_sectors")?;
            }
            "bench_wait" => {
                let w = match value {
                    "poll" => BenchWait::Poll,
                    "irq" => BenchWait::Irq,
                    _ => return Err(CmdlineError::BenchWait),
                };
                once(&mut self.wait, w, "bench_wait")?;
            }
            "bench_shape" => {
                let v = match value {
                    "libata" => BenchShape::Libata,
                    "minimal" => BenchShape::Minimal,
                    _ => return Err(CmdlineError::BenchShape),
                };
                once(&mut self.shape, v, "bench_shape")?;
            }
            "bench_seed" => {
                let s = decimal(value, 0, u64::MAX).ok_or(CmdlineError::BenchSeed)?;
                once(&mut self.seed, s, "bench_seed")?;
            }
            "bench_span" => {
                let s = decimal(value, 1, MAX_SPAN).ok_or(CmdlineError::BenchSpan)?;
                once(&mut self.span, s, "bench_span")?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The first parameter given, if any (for "needs bench=" errors).
    fn first_parameter(&self) -> Option<&'static str> {
        [
            (self.count.is_some(), "bench_count"),
            (self.sectors.is_some(), "bench_sectors"),
            (self.wait.is_some(), "bench_wait"),
            (self.shape.is_some(), "bench_shape"),
            (self.seed.is_some(), "bench_seed"),
            (self.span.is_some(), "bench_span"),
        ]
        .into_iter()
        .find_map(|(given, k)| given.then_some(k))
    }

    /// Validates the collection: `None` without `bench=`.
    pub fn finish(self) -> Result<Option<Bench>, CmdlineError> {
        let Some(kind) = self.kind else {
            return match self.first_parameter() {
                Some(k) => Err(CmdlineError::BenchParameterWithoutBench(k)),
                None => Ok(None),
            };
        };
        let not_for = |key| CmdlineError::BenchParameterNotFor(key, kind.name());
        if !kind.is_dma()
            && let Some(k) = self.first_parameter()
        {
            return Err(not_for(k));
        }
        if !kind.is_random() {
            if self.seed.is_some() {
                return Err(not_for("bench_seed"));
            }
            if self.span.is_some() {
                return Err(not_for("bench_span"));
            }
        }
        let default_sectors = if kind.is_random() {
            DEFAULT_RANDOM_SECTORS
        } else {
            DEFAULT_SECTORS
        };
        let sectors = self.sectors.unwrap_or(default_sectors);
        if sectors > kind.max_sectors() {
            return Err(CmdlineError::BenchSectors);
        }
        let span = self.span.unwrap_or(DEFAULT_SPAN);
        if kind.is_random() && span < u64::from(sectors) {
            return Err(CmdlineError::BenchSpan);
        }
        Ok(Some(Bench {
            kind,
            count: self.count.unwrap_or(DEFAULT_COUNT),
            sectors,
            wait: self.wait.unwrap_or(BenchWait::Poll),
            shape: self.shape.unwrap_or(BenchShape::Libata),
            seed: self.seed.unwrap_or(DEFAULT_SEED),
            span,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(words: &str) -> Result<Option<Bench>, CmdlineError> {
        let mut a = BenchArgs::default();
        for w in words.split_whitespace() {
            let (k, v) = w.split_once('=').unwrap();
            assert!(a.take(k, v)?, "{k} is a bench key");
        }
        a.finish()
    }

    #[test]
    fn names_round_trip() {
        for k in ALL_KINDS {
            assert_eq!(BenchKind::from_name(k.name()), Some(k));
        }
        assert_eq!(BenchKind::from_name("seq"), None);
        assert!(BenchKind::SeqWrite.is_write() && !BenchKind::SeqRead.is_write());
        assert!(BenchKind::RandRead.is_random() && BenchKind::RandRead.lba48());
        assert!(!BenchKind::DmaRead.lba48());
        assert!(!BenchKind::Boot.is_dma());
    }

    #[test]
    fn defaults_depend_on_the_kind() {
        let b = parse("bench=seq-read").unwrap().unwrap();
        assert_eq!((b.count, b.sectors, b.wait), (256, 128, BenchWait::Poll));
        let b = parse("bench=rand-write").unwrap().unwrap();
        assert_eq!((b.sectors, b.seed, b.span), (8, 1, 1 << 19));
        assert_eq!(b.bytes(), 4096);
        let b = parse("bench=rand-read bench_seed=0 bench_span=8 bench_wait=irq")
            .unwrap()
            .unwrap();
        assert_eq!((b.seed, b.span, b.wait), (0, 8, BenchWait::Irq));
        assert_eq!(b.shape, BenchShape::Libata);
        let b = parse("bench=dma-read bench_shape=minimal")
            .unwrap()
            .unwrap();
        assert_eq!(b.shape.name(), "minimal");
        let b = parse("bench=seq-write bench_sectors=65536 bench_count=1048576")
            .unwrap()
            .unwrap();
        assert_eq!((b.sectors, b.count), (65536, 1 << 20));
        assert_eq!(parse("bench=boot").unwrap().unwrap().kind, BenchKind::Boot);
        assert_eq!(parse("").unwrap(), None);
    }

    #[test]
    fn rejects_what_does_not_fit() {
        assert_eq!(
            parse("bench=dma-read bench_sectors=257"),
            Err(CmdlineError::BenchSectors)
        );
        assert_eq!(
            parse("bench=seq-read bench_sectors=65537"),
            Err(CmdlineError::BenchSectors)
        );
        assert_eq!(
            parse("bench=seq-read bench_count=1048577"),
            Err(CmdlineError::BenchCount)
        );
        assert_eq!(
            parse("bench=seq-read bench_seed=3"),
            Err(CmdlineError::BenchParameterNotFor("bench_seed", "seq-read"))
        );
        assert_eq!(
            parse("bench=boot bench_count=3"),
            Err(CmdlineError::BenchParameterNotFor("bench_count", "boot"))
        );
        assert_eq!(
            parse("bench=rand-read bench_span=7"),
            Err(CmdlineError::BenchSpan)
        );
        assert_eq!(
            parse("bench=rand-read bench_span=0"),
            Err(CmdlineError::BenchSpan)
        );
        assert_eq!(
            parse("bench=rand-read bench_wait=spin"),
            Err(CmdlineError::BenchWait)
        );
        assert_eq!(
            parse("bench=rand-read bench_shape=linux"),
            Err(CmdlineError::BenchShape)
        );
        assert_eq!(
            parse("bench=calibrate bench_shape=minimal"),
            Err(CmdlineError::BenchParameterNotFor(
                "bench_shape",
                "calibrate"
            ))
        );
        assert_eq!(
            parse("bench=rand-read bench_seed=18446744073709551616"),
            Err(CmdlineError::BenchSeed)
        );
        assert_eq!(
            parse("bench_wait=irq"),
            Err(CmdlineError::BenchParameterWithoutBench("bench_wait"))
        );
        let mut a = BenchArgs::default();
        assert_eq!(a.take("suite", "x"), Ok(false));
    }
}
