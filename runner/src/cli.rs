//! The options of `vmdma run` and the value parsers every front end uses
//! (sizes, guest RAM, timeouts, disk specs). The whole command line (the
//! subcommands) is the `vmdma-cli` package's.
//!
//! Parsing only; every value is validated here so that the rest of the
//! runner deals with checked values. Errors from this module map to the
//! `EXIT_USAGE` status.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use thiserror::Error;

pub use crate::disk::DiskSpec;

/// Smallest guest RAM size accepted (the guest is loaded at 1 MiB and needs
/// room above it).
pub const MIN_MEMORY: u64 = 4 << 20;
/// Largest guest RAM size accepted: RAM is one slot from address 0 and must
/// stay below the MMIO scratch region at 0xD000_0000 (no PCI-hole split).
pub const MAX_MEMORY: u64 = 3 << 30;
/// Default guest RAM size.
pub const DEFAULT_MEMORY: u64 = 64 << 20;
/// Longest `--timeout` accepted: one year (365 days). Longer values are
/// almost certainly mistakes, and bounding them keeps deadline arithmetic
/// far from `Instant` overflow.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// Options of `vmdma run`.
#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// PVH ELF kernel to boot [default: the bundled test guest].
    #[arg(long, value_name = "ELF")]
    pub kernel: Option<PathBuf>,
    /// Raw disk image (size a multiple of 512). Options after the path:
    /// `readonly` opens it read-only with a shared lock; `aio=io_uring`
    /// (default) or `aio=sync` picks the I/O engine; `cache=none` opens it
    /// with O_DIRECT (default `cache=writeback`). A comma in the path is
    /// written `,,`. Without `--disk` a temporary 130 GiB sparse image is
    /// used and deleted at exit.
    #[arg(long, value_name = "PATH[,readonly][,aio=io_uring|sync][,cache=writeback|none]", value_parser = parse_disk)]
    pub disk: Option<DiskSpec>,
    /// ISO or raw CD image (size a multiple of 2048), attached read-only as
    /// an ATAPI CD-ROM drive on device 1 of the primary channel.
    #[arg(long, value_name = "PATH")]
    pub cdrom: Option<PathBuf>,
    /// Guest RAM size, e.g. 64M or 1G (suffixes K, M, G are powers of 1024;
    /// 4M..=3G).
    #[arg(long, value_name = "SIZE", default_value = "64M", value_parser = parse_memory)]
    pub memory: u64,
    /// Extra kernel command line (the runner prepends the MMIO scratch key).
    #[arg(long, value_name = "STR", default_value = "")]
    pub cmdline: String,
    /// Stop the guest after SECS seconds (fractions allowed, at least 1 ns,
    /// at most one year) with status 124.
    #[arg(long, value_name = "SECS", value_parser = parse_timeout)]
    pub timeout: Option<Duration>,
    /// Print VM exit counts by kind and port, and the run time, to stderr at
    /// the end.
    #[arg(long)]
    pub stats: bool,
    /// Write the counters of `--stats` (and more: KVM's own exit counters,
    /// the IDE counters, the DMA data path) as JSON to FILE at the end.
    #[arg(long, value_name = "FILE")]
    pub stats_json: Option<PathBuf>,
    /// Record the guest's write manifest (the debug console, port 0xE9) in
    /// FILE. Without it the port tells the guest that nobody listens.
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// Let every port write exit to the runner, also the IDE task-file and
    /// bus-master writes that KVM otherwise coalesces (to compare).
    #[arg(long)]
    pub no_coalesced_pio: bool,
    /// A QMP monitor on a Unix socket (QEMU's syntax; see docs/monitor.md):
    /// query-status, stop, cont, quit, query-block, query-blockstats and
    /// the STOP, RESUME and SHUTDOWN events.
    #[arg(long, value_name = "unix:PATH,server=on,wait=off", value_parser = crate::monitor::parse_spec)]
    pub qmp: Option<crate::monitor::QmpSpec>,
    /// Restore the snapshot QMP `migrate` wrote to PATH instead of booting
    /// (QEMU's -incoming; the other options must match the saved VM's).
    #[arg(long, value_name = "file:PATH", value_parser = parse_incoming)]
    pub incoming: Option<PathBuf>,
    /// With --incoming: restore over a disk image whose sampled sectors
    /// differ from the one the snapshot was taken with.
    #[arg(long, requires = "incoming")]
    pub incoming_any_disk: bool,
    /// Start paused (QEMU's -S): the vCPU waits for QMP `cont`. Needs --qmp.
    #[arg(long, requires = "qmp")]
    pub paused: bool,
    /// Log every access to an unclaimed I/O port or MMIO address to stderr.
    #[arg(long)]
    pub trace_io: bool,
    /// Run without the seccomp filters (for debugging: by default the vCPU
    /// and I/O threads may make only the system calls on their allow-lists;
    /// any other ends the run with status 159).
    #[arg(long)]
    pub no_seccomp: bool,
    /// Test hook (debug builds only): once sandboxed, THREAD (`vcpu`, `io`
    /// or `monitor`) makes one forbidden system call.
    #[cfg(debug_assertions)]
    #[arg(long, value_name = "THREAD", hide = true, value_parser = ["vcpu", "io", "monitor"])]
    pub seccomp_selftest: Option<String>,
    /// Test hook (debug builds only): how long shutting down waits for the
    /// disk, instead of 30 s (a test of a disk that never answers need not
    /// wait that long).
    #[cfg(debug_assertions)]
    #[arg(long, value_name = "SECS", hide = true, value_parser = parse_timeout)]
    pub shutdown_bound: Option<Duration>,
}

/// Parses `--disk PATH[,OPTION...]`.
pub fn parse_disk(s: &str) -> Result<DiskSpec, crate::disk::options::DiskOptionError> {
    crate::disk::options::parse(s)
}

/// Why a size (`--memory`, the bench's sizes) was refused. Each variant
/// holds the text as given.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SizeError {
    /// It does not start with digits.
    #[error("'{0}' is not a size (expected e.g. 64M or 1G)")]
    NotASize(String),
    /// The digits do not fit in 64 bits.
    #[error("'{0}' is too large a number")]
    NumberTooLarge(String),
    /// The suffix is not one of K, M, G (KB/KiB etc.) or B.
    #[error("'{0}' has an unknown size suffix (use K, M or G)")]
    UnknownSuffix(String),
    /// The number times the suffix does not fit in 64 bits.
    #[error("'{0}' is too large")]
    TooLarge(String),
}

/// Why a guest RAM size was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MemoryError {
    /// It is not a size at all.
    #[error(transparent)]
    Size(#[from] SizeError),
    /// Below [`MIN_MEMORY`].
    #[error("{0} is below the minimum of 4M")]
    BelowMinimum(String),
    /// Above [`MAX_MEMORY`].
    #[error("{0} is above the maximum of 3G (RAM must stay below the MMIO region at 0xd0000000)")]
    AboveMaximum(String),
    /// Not a whole number of 4 KiB pages.
    #[error("{0} is not a multiple of 4K")]
    NotPageMultiple(String),
}

/// Why a number of seconds (`--timeout`) was refused. Each variant holds
/// the text as given.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TimeoutError {
    /// Not a floating-point number.
    #[error("'{0}' is not a number of seconds")]
    NotANumber(String),
    /// Zero, negative or NaN.
    #[error("'{0}' must be more than 0")]
    NotPositive(String),
    /// Longer than [`MAX_TIMEOUT`].
    #[error("'{0}' is too large (at most 31536000 seconds, one year)")]
    TooLarge(String),
    /// Positive, but rounds to a zero [`Duration`].
    #[error("'{0}' is shorter than 1 ns")]
    BelowOneNs(String),
}

/// Parses a size with an optional binary suffix (`K`, `M`, `G`, also `KiB`
/// etc.) into bytes.
pub fn parse_size(s: &str) -> Result<u64, SizeError> {
    let t = s.trim();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, suffix) = t.split_at(digits_end);
    if num.is_empty() {
        return Err(SizeError::NotASize(s.into()));
    }
    let n: u64 = num
        .parse()
        .map_err(|_| SizeError::NumberTooLarge(s.into()))?;
    let shift = match suffix.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        _ => return Err(SizeError::UnknownSuffix(s.into())),
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| SizeError::TooLarge(s.into()))
}

/// Parses a guest RAM size: [`MIN_MEMORY`]..=[`MAX_MEMORY`], a multiple of 4K.
pub fn parse_memory(s: &str) -> Result<u64, MemoryError> {
    let n = parse_size(s)?;
    if n < MIN_MEMORY {
        return Err(MemoryError::BelowMinimum(s.into()));
    }
    if n > MAX_MEMORY {
        return Err(MemoryError::AboveMaximum(s.into()));
    }
    if n % 4096 != 0 {
        return Err(MemoryError::NotPageMultiple(s.into()));
    }
    Ok(n)
}

/// Parses `--incoming file:PATH` (QEMU's URI for a snapshot file).
pub fn parse_incoming(s: &str) -> Result<PathBuf, String> {
    match s.strip_prefix("file:") {
        Some(p) if !p.is_empty() => Ok(PathBuf::from(p)),
        Some(_) => Err("file: needs a path".into()),
        None => Err(format!(
            "'{s}': only file:PATH is supported (a snapshot written by QMP migrate)"
        )),
    }
}

/// Parses a number of seconds (fractions allowed): at least 1 ns, at most
/// [`MAX_TIMEOUT`].
pub fn parse_timeout(s: &str) -> Result<Duration, TimeoutError> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| TimeoutError::NotANumber(s.into()))?;
    if secs.is_nan() || secs <= 0.0 {
        return Err(TimeoutError::NotPositive(s.into()));
    }
    let too_large = || TimeoutError::TooLarge(s.into());
    let t = Duration::try_from_secs_f64(secs).map_err(|_| too_large())?;
    if t > MAX_TIMEOUT {
        return Err(too_large());
    }
    if t.is_zero() {
        return Err(TimeoutError::BelowOneNs(s.into()));
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("M"), Err(SizeError::NotASize("M".into())));
        assert_eq!(
            parse_size("12T").unwrap_err().to_string(),
            "'12T' has an unknown size suffix (use K, M or G)"
        );
        assert!(matches!(
            parse_size("99999999999999999999"),
            Err(SizeError::NumberTooLarge(_))
        ));
        assert!(matches!(
            parse_size("18446744073709551615G"),
            Err(SizeError::TooLarge(_))
        ));
    }

    #[test]
    fn memory_bounds() {
        assert_eq!(parse_memory("4M"), Ok(4 << 20));
        assert_eq!(parse_memory("3G"), Ok(3 << 30));
        assert_eq!(
            parse_memory("1M"),
            Err(MemoryError::BelowMinimum("1M".into()))
        );
        assert!(matches!(
            parse_memory("3073M"),
            Err(MemoryError::AboveMaximum(_))
        ));
        assert!(matches!(
            parse_memory("5000000"),
            Err(MemoryError::NotPageMultiple(_))
        ));
        // A size error reads as itself.
        assert_eq!(
            parse_memory("lots").unwrap_err().to_string(),
            "'lots' is not a size (expected e.g. 64M or 1G)"
        );
    }

    #[test]
    fn disks() {
        let d = parse_disk("a.img,readonly").unwrap();
        assert_eq!(d.path, PathBuf::from("a.img"));
        assert!(d.read_only);
        let d = parse_disk("a,,b.img,aio=sync").unwrap();
        assert_eq!(d.path, PathBuf::from("a,b.img"));
        assert!(!d.read_only);
        assert!(parse_disk(",readonly").is_err());
        assert!(parse_disk("").is_err());
    }

    #[test]
    fn timeouts() {
        assert_eq!(parse_timeout("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_timeout("0.5"), Ok(Duration::from_millis(500)));
        assert!(parse_timeout("0").is_err());
        assert!(parse_timeout("-1").is_err());
        assert!(parse_timeout("NaN").is_err());
        assert!(parse_timeout("1e30").is_err());
        assert!(parse_timeout("inf").is_err());
        assert!(parse_timeout("-0").is_err());
    }

    #[test]
    fn timeout_bounds() {
        assert_eq!(parse_timeout("31536000"), Ok(MAX_TIMEOUT));
        assert_eq!(parse_timeout("1e-9"), Ok(Duration::from_nanos(1)));
        assert_eq!(
            parse_timeout("31536000.5"),
            Err(TimeoutError::TooLarge("31536000.5".into()))
        );
        // Representable as a Duration, yet far beyond a year.
        assert!(matches!(
            parse_timeout("1e19"),
            Err(TimeoutError::TooLarge(_))
        ));
        // Positive, but rounds to a zero Duration.
        let e = parse_timeout("1e-300").unwrap_err();
        assert_eq!(e.to_string(), "'1e-300' is shorter than 1 ns");
        assert!(matches!(
            parse_timeout("4e-10"),
            Err(TimeoutError::BelowOneNs(_))
        ));
    }
}
