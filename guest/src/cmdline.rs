//! The guest's kernel command line (`-append` on QEMU, the runner's cmdline).
//!
//! Whitespace-separated `key=value` words. Recognised keys:
//!
//! | key | value | meaning |
//! |---|---|---|
//! | `suite` | `conformance` (default) or `readonly` | which test suite to run |
//! | `bench` | a name | reserved for benchmarks (not implemented yet) |
//! | `vmdma.mmio_scratch` | `0xBASE,0xLEN` | a RAM-like MMIO region (vmdma only) |
//! | `crash` | `exception` or `panic` | crash on purpose after boot (tests of crash reporting) |
//!
//! Other words (a loader may add its own, e.g. `console=`) are ignored.
//! A recognised key with a bad value, or given twice, is an error.

use core::fmt;

use vmdma_core::protocol::CMDLINE_MMIO_SCRATCH;

/// Which suite the guest runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suite {
    /// The full read/write conformance suite.
    Conformance,
    /// The read-only disk suite: reads succeed, every write is refused.
    ReadOnly,
}

impl Suite {
    /// The command-line spelling.
    pub const fn name(self) -> &'static str {
        match self {
            Suite::Conformance => "conformance",
            Suite::ReadOnly => "readonly",
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
pub struct Options<'a> {
    /// The suite to run.
    pub suite: Suite,
    /// `bench=NAME`, if given.
    pub bench: Option<&'a str>,
    /// The MMIO scratch region, if announced (only vmdma does).
    pub mmio_scratch: Option<MmioScratch>,
    /// `crash=KIND`, if given.
    pub crash: Option<Crash>,
}

/// Why the command line was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmdlineError {
    /// `suite=` named an unknown suite.
    UnknownSuite,
    /// `bench=` had an empty name.
    EmptyBench,
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
}

impl fmt::Display for CmdlineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CmdlineError::UnknownSuite => {
                f.write_str("unknown suite (expected conformance or readonly)")
            }
            CmdlineError::EmptyBench => f.write_str("bench= needs a name"),
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
        }
    }
}

/// Parses the command line; see the module documentation.
pub fn parse(cmdline: &str) -> Result<Options<'_>, CmdlineError> {
    let mut suite = None;
    let mut bench = None;
    let mut scratch = None;
    let mut crash = None;
    for word in cmdline.split_ascii_whitespace() {
        let Some((key, value)) = word.split_once('=') else {
            continue;
        };
        match key {
            "suite" => {
                let s = match value {
                    "conformance" => Suite::Conformance,
                    "readonly" => Suite::ReadOnly,
                    _ => return Err(CmdlineError::UnknownSuite),
                };
                set_once(&mut suite, s, "suite")?;
            }
            "bench" => {
                if value.is_empty() {
                    return Err(CmdlineError::EmptyBench);
                }
                set_once(&mut bench, value, "bench")?;
            }
            "crash" => {
                let c = match value {
                    "exception" => Crash::Exception,
                    "panic" => Crash::Panic,
                    _ => return Err(CmdlineError::UnknownCrash),
                };
                set_once(&mut crash, c, "crash")?;
            }
            CMDLINE_MMIO_SCRATCH => {
                let (b, l) = value.split_once(',').ok_or(CmdlineError::ScratchSyntax)?;
                let region = MmioScratch::new(parse_hex(b)?, parse_hex(l)?)?;
                set_once(&mut scratch, region, CMDLINE_MMIO_SCRATCH)?;
            }
            _ => {}
        }
    }
    Ok(Options {
        suite: suite.unwrap_or(Suite::Conformance),
        bench,
        mmio_scratch: scratch,
        crash,
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
        let o = parse("  console=ttyS0 quiet  ").unwrap();
        assert_eq!(o.suite, Suite::Conformance);
    }

    #[test]
    fn all_keys() {
        let o = parse("suite=readonly bench=seq vmdma.mmio_scratch=0xd0000000,0x10000").unwrap();
        assert_eq!(o.suite, Suite::ReadOnly);
        assert_eq!(o.bench, Some("seq"));
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
        assert_eq!(parse("bench="), Err(CmdlineError::EmptyBench));
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
}
