//! The guest's kernel command line (`-append` on QEMU, the runner's cmdline).
//!
//! Whitespace-separated `key=value` words. Recognised keys:
//!
//! | key | value | meaning |
//! |---|---|---|
//! | `suite` | `conformance` (default), `readonly` or `hostile` | which test suite to run |
//! | `hostile_from` | a case name | `suite=hostile`: start at this case (skip the ones before) |
//! | `hostile_only` | a case name | `suite=hostile`: run only this case |
//! | `bench`, `bench_*` | see [`crate::bench_args`] | run a benchmark instead of a suite |
//! | `quiet` | (no value) | print no boot banner, only the results |
//! | `vmdma.mmio_scratch` | `0xBASE,0xLEN` | a RAM-like MMIO region (vmdma only) |
//! | `crash` | `exception` or `panic` | crash on purpose after boot (tests of crash reporting) |
//!
//! Other words (a loader may add its own, e.g. `console=`) are ignored.
//! A recognised key with a bad value, or given twice, is an error; so are
//! `bench_*` parameters without `bench`, `bench` with `suite`, and
//! `hostile_from`/`hostile_only` without `suite=hostile` or together.

use core::fmt;

use vmdma_protocol::CMDLINE_MMIO_SCRATCH;

/// Which suite the guest runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suite {
    /// The full read/write conformance suite.
    Conformance,
    /// The read-only disk suite: reads succeed, every write is refused.
    ReadOnly,
    /// The hostile-guest suite: attacks on the controller, each ending in a
    /// verdict (PASS, REJECT, FAIL, WEDGED, SKIP).
    Hostile,
    /// The ATAPI CD-ROM suite: a CD-ROM with the test image on device 1.
    Atapi,
    /// Reads a NoCloud seed ISO (volume `cidata`) on the CD-ROM on
    /// device 1 and prints its first file.
    Iso,
    /// Follows the host opening and closing the CD-ROM's tray (QMP).
    AtapiTray,
}

impl Suite {
    /// The command-line spelling.
    pub const fn name(self) -> &'static str {
        match self {
            Suite::Conformance => "conformance",
            Suite::ReadOnly => "readonly",
            Suite::Hostile => "hostile",
            Suite::Atapi => "atapi",
            Suite::Iso => "iso",
            Suite::AtapiTray => "atapi_tray",
        }
    }
}

/// A deliberate crash requested with `crash=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Crash {
    /// Execute `ud2` (invalid opcode exception).
    Exception,
    /// Call the panic handler.
    Panic,
}

impl Crash {
    /// The command-line spelling.
    pub const fn name(self) -> &'static str {
        match self {
            Crash::Exception => "exception",
            Crash::Panic => "panic",
        }
    }
}

pub use crate::bench_args::{Bench, BenchKind};
use crate::bench_args::{BenchArgs, MAX_COUNT, MAX_LBA48_SECTORS};

/// Longest hostile case name accepted on the command line.
pub const CASE_NAME_MAX: usize = 48;

/// A hostile case name from the command line: 1 to [`CASE_NAME_MAX`]
/// characters `a-z`, `0-9`, `_` (whether such a case exists is checked by
/// the suite).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CaseName {
    bytes: [u8; CASE_NAME_MAX],
    len: usize,
}

impl CaseName {
    /// Validates `s`.
    pub fn new(s: &str) -> Option<Self> {
        let ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_';
        if s.is_empty() || s.len() > CASE_NAME_MAX || !s.bytes().all(ok) {
            return None;
        }
        let mut bytes = [0u8; CASE_NAME_MAX];
        bytes.get_mut(..s.len())?.copy_from_slice(s.as_bytes());
        Some(CaseName {
            bytes,
            len: s.len(),
        })
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(self.bytes.get(..self.len).unwrap_or(&[])).unwrap_or("")
    }
}

/// Which hostile cases run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaseSelection {
    /// Every case.
    All,
    /// From this case to the end (to resume after a VMM died in a case).
    From(CaseName),
    /// Only this case.
    Only(CaseName),
}

/// End of the guest's identity map: the scratch region must lie below it.
pub const IDENTITY_MAP_END: u64 = 1 << 32;

/// A RAM-like MMIO region announced by `vmdma.mmio_scratch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmioScratch {
    /// Guest-physical base (8-byte aligned).
    pub base: u64,
    /// Length in bytes (non-zero, multiple of 8, `base + len <= 4 GiB`).
    pub len: u64,
}

impl MmioScratch {
    /// Validates a region: non-empty, 8-byte aligned, inside the identity map.
    pub fn new(base: u64, len: u64) -> Result<Self, CmdlineError> {
        let end = base
            .checked_add(len)
            .ok_or(CmdlineError::ScratchOutOfRange)?;
        if len == 0 || !base.is_multiple_of(8) || !len.is_multiple_of(8) {
            return Err(CmdlineError::ScratchMisaligned);
        }
        if end > IDENTITY_MAP_END {
            return Err(CmdlineError::ScratchOutOfRange);
        }
        Ok(MmioScratch { base, len })
    }

    /// One past the last byte.
    pub const fn end(&self) -> u64 {
        // `new` checked that this does not overflow.
        self.base + self.len
    }
}

/// The parsed command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// The suite to run.
    pub suite: Suite,
    /// `bench=NAME` (with its `bench_*` parameters), if given.
    pub bench: Option<Bench>,
    /// `quiet`: no boot banner.
    pub quiet: bool,
    /// The MMIO scratch region, if announced (only vmdma does).
    pub mmio_scratch: Option<MmioScratch>,
    /// `crash=KIND`, if given.
    pub crash: Option<Crash>,
    /// The hostile cases to run (`hostile_from=`, `hostile_only=`).
    pub hostile: CaseSelection,
}

/// Why the command line was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmdlineError {
    /// `suite=` named an unknown suite.
    UnknownSuite,
    /// `bench=` named an unknown benchmark.
    UnknownBench,
    /// `bench_count=` is not a decimal number in 1..=1048576.
    BenchCount,
    /// `bench_sectors=` is not a decimal number the benchmark accepts
    /// (1..=256 for LBA28, 1..=65536 for LBA48).
    BenchSectors,
    /// `bench_wait=` is neither `poll` nor `irq`.
    BenchWait,
    /// `bench_shape=` is neither `libata` nor `minimal`.
    BenchShape,
    /// `bench_seed=` is not a decimal `u64`.
    BenchSeed,
    /// `bench_span=` is not a decimal number of sectors from the command
    /// size to 2^40.
    BenchSpan,
    /// A benchmark parameter was given without `bench=`.
    BenchParameterWithoutBench(&'static str),
    /// A benchmark parameter the chosen benchmark does not use (key, bench).
    BenchParameterNotFor(&'static str, &'static str),
    /// Both `bench=` and `suite=` were given.
    BenchWithSuite,
    /// `crash=` named an unknown kind.
    UnknownCrash,
    /// A recognised key appeared twice.
    DuplicateKey(&'static str),
    /// The scratch value is not `0xBASE,0xLEN`.
    ScratchSyntax,
    /// The scratch region is empty or not 8-byte aligned.
    ScratchMisaligned,
    /// The scratch region overflows or ends above 4 GiB.
    ScratchOutOfRange,
    /// A hostile case name is empty, too long or not `[a-z0-9_]`.
    CaseName(&'static str),
    /// `hostile_from`/`hostile_only` without `suite=hostile`.
    CaseWithoutHostile(&'static str),
    /// Both `hostile_from` and `hostile_only`.
    CaseFromAndOnly,
}

impl fmt::Display for CmdlineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CmdlineError::UnknownSuite => {
                f.write_str("unknown suite (expected conformance, readonly or hostile)")
            }
            CmdlineError::UnknownBench => f.write_str(
                "unknown bench (expected dma-read, dma-write, seq-read, seq-write, \
                 rand-read, rand-write, boot or calibrate)",
            ),
            CmdlineError::BenchCount => write!(
                f,
                "bench_count must be a decimal number from 1 to {MAX_COUNT}"
            ),
            CmdlineError::BenchSectors => write!(
                f,
                "bench_sectors must be a decimal number from 1 to 256 (dma-read, dma-write) \
                 or {MAX_LBA48_SECTORS} (seq-*, rand-*)"
            ),
            CmdlineError::BenchWait => f.write_str("bench_wait must be poll or irq"),
            CmdlineError::BenchShape => f.write_str("bench_shape must be libata or minimal"),
            CmdlineError::BenchSeed => f.write_str("bench_seed must be a decimal u64"),
            CmdlineError::BenchSpan => f.write_str(
                "bench_span must be a decimal number of sectors, at least bench_sectors, at most 2^40",
            ),
            CmdlineError::BenchParameterWithoutBench(k) => write!(f, "{k}= needs bench="),
            CmdlineError::BenchParameterNotFor(k, b) => write!(f, "{k}= does not apply to bench={b}"),
            CmdlineError::BenchWithSuite => {
                f.write_str("bench= runs instead of a suite: do not give suite= too")
            }
            CmdlineError::UnknownCrash => {
                f.write_str("unknown crash (expected exception or panic)")
            }
            CmdlineError::DuplicateKey(k) => write!(f, "{k}= given twice"),
            CmdlineError::ScratchSyntax => {
                write!(f, "{CMDLINE_MMIO_SCRATCH} must be 0xBASE,0xLEN")
            }
            CmdlineError::ScratchMisaligned => write!(
                f,
                "{CMDLINE_MMIO_SCRATCH} must be non-empty and 8-byte aligned"
            ),
            CmdlineError::ScratchOutOfRange => {
                write!(f, "{CMDLINE_MMIO_SCRATCH} must end at or below 4 GiB")
            }
            CmdlineError::CaseName(k) => write!(
                f,
                "{k}= must be a case name of 1 to {CASE_NAME_MAX} characters a-z, 0-9, _"
            ),
            CmdlineError::CaseWithoutHostile(k) => write!(f, "{k}= needs suite=hostile"),
            CmdlineError::CaseFromAndOnly => {
                f.write_str("hostile_from= and hostile_only= exclude each other")
            }
        }
    }
}

/// Parses the command line; see the module documentation.
pub fn parse(cmdline: &str) -> Result<Options, CmdlineError> {
    let mut suite = None;
    let mut bench = BenchArgs::default();
    let mut quiet = None;
    let mut scratch = None;
    let mut crash = None;
    let mut from = None;
    let mut only = None;
    for word in cmdline.split_ascii_whitespace() {
        if word == "quiet" {
            set_once(&mut quiet, true, "quiet")?;
            continue;
        }
        let Some((key, value)) = word.split_once('=') else {
            continue;
        };
        if bench.take(key, value)? {
            continue;
        }
        match key {
            "suite" => {
                let s = match value {
                    "conformance" => Suite::Conformance,
                    "readonly" => Suite::ReadOnly,
                    "hostile" => Suite::Hostile,
                    "atapi" => Suite::Atapi,
                    "iso" => Suite::Iso,
                    "atapi_tray" => Suite::AtapiTray,
                    _ => return Err(CmdlineError::UnknownSuite),
                };
                set_once(&mut suite, s, "suite")?;
            }
            "crash" => {
                let c = match value {
                    "exception" => Crash::Exception,
                    "panic" => Crash::Panic,
                    _ => return Err(CmdlineError::UnknownCrash),
                };
                set_once(&mut crash, c, "crash")?;
            }
            "hostile_from" | "hostile_only" => {
                let k = if key == "hostile_from" {
                    "hostile_from"
                } else {
                    "hostile_only"
                };
                let name = CaseName::new(value).ok_or(CmdlineError::CaseName(k))?;
                let slot = if k == "hostile_from" {
                    &mut from
                } else {
                    &mut only
                };
                set_once(slot, name, k)?;
            }
            CMDLINE_MMIO_SCRATCH => {
                let (b, l) = value.split_once(',').ok_or(CmdlineError::ScratchSyntax)?;
                let region = MmioScratch::new(parse_hex(b)?, parse_hex(l)?)?;
                set_once(&mut scratch, region, CMDLINE_MMIO_SCRATCH)?;
            }
            _ => {}
        }
    }
    let bench = bench.finish()?;
    if bench.is_some() && suite.is_some() {
        return Err(CmdlineError::BenchWithSuite);
    }
    let suite = suite.unwrap_or(Suite::Conformance);
    let hostile = match (from, only) {
        (Some(_), Some(_)) => return Err(CmdlineError::CaseFromAndOnly),
        (Some(_), None) if suite != Suite::Hostile => {
            return Err(CmdlineError::CaseWithoutHostile("hostile_from"));
        }
        (None, Some(_)) if suite != Suite::Hostile => {
            return Err(CmdlineError::CaseWithoutHostile("hostile_only"));
        }
        (Some(n), None) => CaseSelection::From(n),
        (None, Some(n)) => CaseSelection::Only(n),
        (None, None) => CaseSelection::All,
    };
    Ok(Options {
        suite,
        bench,
        quiet: quiet.unwrap_or(false),
        mmio_scratch: scratch,
        crash,
        hostile,
    })
}

fn set_once<T>(slot: &mut Option<T>, v: T, key: &'static str) -> Result<(), CmdlineError> {
    if slot.is_some() {
        return Err(CmdlineError::DuplicateKey(key));
    }
    *slot = Some(v);
    Ok(())
}

/// Parses `0x` + 1..=16 hex digits.
fn parse_hex(s: &str) -> Result<u64, CmdlineError> {
    let digits = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .ok_or(CmdlineError::ScratchSyntax)?;
    if digits.is_empty() || digits.len() > 16 {
        return Err(CmdlineError::ScratchSyntax);
    }
    u64::from_str_radix(digits, 16).map_err(|_| CmdlineError::ScratchSyntax)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let o = parse("").unwrap();
        assert_eq!(o.suite, Suite::Conformance);
        assert_eq!(o.bench, None);
        assert_eq!(o.mmio_scratch, None);
        assert_eq!(o.crash, None);
        assert_eq!(o.hostile, CaseSelection::All);
        let o = parse("  console=ttyS0 quiet  ").unwrap();
        assert_eq!(o.suite, Suite::Conformance);
    }

    #[test]
    fn all_keys() {
        let o = parse("suite=readonly vmdma.mmio_scratch=0xd0000000,0x10000").unwrap();
        assert_eq!(o.suite, Suite::ReadOnly);
        assert_eq!(o.bench, None);
        assert_eq!(
            o.mmio_scratch,
            Some(MmioScratch {
                base: 0xd000_0000,
                len: 0x1_0000
            })
        );
        assert_eq!(o.mmio_scratch.unwrap().end(), 0xd001_0000);
        assert_eq!(
            parse("crash=exception").unwrap().crash,
            Some(Crash::Exception)
        );
        assert_eq!(parse("crash=panic").unwrap().crash, Some(Crash::Panic));
    }

    #[test]
    fn rejects_bad_values() {
        assert_eq!(parse("suite=fast"), Err(CmdlineError::UnknownSuite));
        assert_eq!(parse("bench="), Err(CmdlineError::UnknownBench));
        assert_eq!(parse("bench=seq"), Err(CmdlineError::UnknownBench));
        assert_eq!(parse("bench=DMA-READ"), Err(CmdlineError::UnknownBench));
        assert_eq!(parse("crash=hang"), Err(CmdlineError::UnknownCrash));
        assert_eq!(
            parse("suite=readonly suite=conformance"),
            Err(CmdlineError::DuplicateKey("suite"))
        );
        for bad in [
            "vmdma.mmio_scratch=",
            "vmdma.mmio_scratch=0xd0000000",
            "vmdma.mmio_scratch=d0000000,0x1000",
            "vmdma.mmio_scratch=0x,0x1000",
            "vmdma.mmio_scratch=0xg,0x1000",
            "vmdma.mmio_scratch=0x10000000000000000,0x8",
        ] {
            assert_eq!(parse(bad), Err(CmdlineError::ScratchSyntax), "{bad}");
        }
        assert_eq!(
            parse("vmdma.mmio_scratch=0xd0000004,0x1000"),
            Err(CmdlineError::ScratchMisaligned)
        );
        assert_eq!(
            parse("vmdma.mmio_scratch=0xd0000000,0x0"),
            Err(CmdlineError::ScratchMisaligned)
        );
        assert_eq!(
            parse("vmdma.mmio_scratch=0xfffff000,0x2000"),
            Err(CmdlineError::ScratchOutOfRange)
        );
        assert_eq!(
            parse("vmdma.mmio_scratch=0xfffffffffffffff8,0x10"),
            Err(CmdlineError::ScratchOutOfRange)
        );
        assert!(parse("vmdma.mmio_scratch=0xfffff000,0x1000").is_ok());
    }

    #[test]
    fn hostile_suite_and_case_selection() {
        let o = parse("suite=hostile").unwrap();
        assert_eq!(o.suite, Suite::Hostile);
        assert_eq!(o.hostile, CaseSelection::All);
        assert_eq!(Suite::Hostile.name(), "hostile");
        let o = parse("suite=hostile hostile_from=prd_at_lapic").unwrap();
        assert!(matches!(o.hostile, CaseSelection::From(n) if n.as_str() == "prd_at_lapic"));
        let o = parse("hostile_only=opcodes_00_3f suite=hostile").unwrap();
        assert!(matches!(o.hostile, CaseSelection::Only(n) if n.as_str() == "opcodes_00_3f"));
        let long = "x".repeat(CASE_NAME_MAX);
        assert!(parse(&format!("suite=hostile hostile_only={long}")).is_ok());
        for bad in ["", "Upper", "a-b", "a.b", &format!("{long}y")] {
            assert_eq!(
                parse(&format!("suite=hostile hostile_from={bad}")),
                Err(CmdlineError::CaseName("hostile_from")),
                "{bad:?}"
            );
        }
        assert_eq!(
            parse("hostile_from=a"),
            Err(CmdlineError::CaseWithoutHostile("hostile_from"))
        );
        assert_eq!(
            parse("suite=conformance hostile_only=a"),
            Err(CmdlineError::CaseWithoutHostile("hostile_only"))
        );
        assert_eq!(
            parse("suite=hostile hostile_from=a hostile_only=b"),
            Err(CmdlineError::CaseFromAndOnly)
        );
        assert_eq!(
            parse("suite=hostile hostile_from=a hostile_from=b"),
            Err(CmdlineError::DuplicateKey("hostile_from"))
        );
    }

    #[test]
    fn bench_and_quiet() {
        let o = parse("vmdma.mmio_scratch=0xd0000000,0x10000 bench=dma-read").unwrap();
        let b = o.bench.unwrap();
        assert_eq!((b.kind, b.count, b.sectors), (BenchKind::DmaRead, 256, 128));
        assert_eq!(o.suite, Suite::Conformance);
        assert!(!o.quiet);
        let o = parse("bench_sectors=256 bench=dma-write bench_count=4096 quiet").unwrap();
        let b = o.bench.unwrap();
        assert_eq!(
            (b.kind, b.count, b.sectors),
            (BenchKind::DmaWrite, 4096, 256)
        );
        assert!(o.quiet);
        let o = parse("bench=dma-read bench_count=0072").unwrap();
        assert_eq!(o.bench.map(|b| b.count), Some(72));
        assert!(parse("quiet suite=readonly").unwrap().quiet);
        assert_eq!(
            parse("quiet quiet"),
            Err(CmdlineError::DuplicateKey("quiet"))
        );
    }

    #[test]
    fn bench_rejects_bad_parameters() {
        for bad in [
            "bench_count=",
            "bench_count=0",
            "bench_count=1048577",
            "bench_count=-1",
            "bench_count=+8",
            "bench_count=0x10",
            "bench_count=8k",
            "bench_count=99999999999",
            "bench_count=4294967297",
        ] {
            assert_eq!(
                parse(&format!("bench=dma-read {bad}")),
                Err(CmdlineError::BenchCount),
                "{bad}"
            );
        }
        for bad in ["bench_sectors=0", "bench_sectors=257", "bench_sectors= "] {
            assert_eq!(
                parse(&format!("bench=dma-write {bad}")),
                Err(CmdlineError::BenchSectors),
                "{bad}"
            );
        }
        assert_eq!(
            parse("bench=dma-read bench=dma-write"),
            Err(CmdlineError::DuplicateKey("bench"))
        );
        assert_eq!(
            parse("bench=dma-read bench_count=8 bench_count=8"),
            Err(CmdlineError::DuplicateKey("bench_count"))
        );
        assert_eq!(
            parse("bench_count=8"),
            Err(CmdlineError::BenchParameterWithoutBench("bench_count"))
        );
        assert_eq!(
            parse("bench_sectors=8"),
            Err(CmdlineError::BenchParameterWithoutBench("bench_sectors"))
        );
        assert_eq!(
            parse("suite=conformance bench=dma-read"),
            Err(CmdlineError::BenchWithSuite)
        );
        assert!(
            CmdlineError::UnknownBench
                .to_string()
                .starts_with("unknown bench (expected dma-read, dma-write, seq-read")
        );
        assert_eq!(
            CmdlineError::BenchCount.to_string(),
            "bench_count must be a decimal number from 1 to 1048576"
        );
    }
}
