//! The options of `vmdma bench` (see `docs/performance.md`).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use vmdma::cli::{parse_memory, parse_size, parse_timeout};

/// Options of `vmdma bench` (see `docs/performance.md`).
#[derive(Debug, Args, Clone)]
pub struct BenchArgs {
    /// Runs of every measurement; the table shows median, min and max.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub runs: u32,
    /// Bytes each sequential measurement moves (at least one command).
    #[arg(long, value_name = "SIZE", default_value = "256M", value_parser = parse_size)]
    pub total: u64,
    /// Command sizes of the sequential measurements (multiples of 512,
    /// at most 32M).
    #[arg(long, value_name = "SIZE,...", value_delimiter = ',', default_value = "4K,64K,1M,16M", value_parser = parse_size)]
    pub sizes: Vec<u64>,
    /// Commands of each random 4 KiB measurement.
    #[arg(long, value_name = "N", default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..=1_048_576))]
    pub random_count: u32,
    /// Bytes the random LBAs spread over (a multiple of 4K).
    #[arg(long, value_name = "SIZE", default_value = "256M", value_parser = parse_size)]
    pub random_span: u64,
    /// Measurements to run, from seq-read, seq-write, rand-read, rand-write,
    /// boot, calibrate, snapshot (QMP migrate of the conformance suite and
    /// its restore) [default: all].
    #[arg(long, value_name = "NAME,...", value_delimiter = ',')]
    pub modes: Option<Vec<String>>,
    /// The image file, created and filled if missing or too small
    /// [default: a file in the temporary directory, removed afterwards].
    #[arg(long, value_name = "PATH")]
    pub image: Option<PathBuf>,
    /// vmdma columns: `default` (the plain image: `aio=io_uring`, the page
    /// cache) or the options appended to `--disk PATH,` (e.g. `aio=sync`,
    /// `cache=none`). Repeat for more columns; the first is the one the
    /// ratios compare against.
    #[arg(long = "vmdma-disk", value_name = "OPTS", default_values = ["default", "aio=sync"])]
    pub vmdma_disk: Vec<String>,
    /// QEMU columns: options appended to `-drive file=IMG,format=raw,if=ide,`.
    /// Repeat for more columns.
    #[arg(long = "qemu-drive", value_name = "OPTS", default_values = ["cache=writeback", "cache=writeback,aio=io_uring"])]
    pub qemu_drive: Vec<String>,
    /// The QEMU binary; `none` leaves QEMU out.
    #[arg(long, value_name = "PATH", default_value = "qemu-system-x86_64")]
    pub qemu: String,
    /// Also measure the host limit with O_DIRECT (where the file system
    /// supports it).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub host_direct: bool,
    /// Guest RAM of both VMMs.
    #[arg(long, value_name = "SIZE", default_value = "64M", value_parser = parse_memory)]
    pub memory: u64,
    /// Longest run of one measurement, in seconds.
    #[arg(long, value_name = "SECS", default_value = "600", value_parser = parse_timeout)]
    pub timeout: Duration,
    /// Where to write the JSON results.
    #[arg(long, value_name = "FILE", default_value = "bench.json")]
    pub json: PathBuf,
    /// Also write the markdown report (printed to stdout anyway) to FILE.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Where to write the chart (SVG): vmdma against the faster QEMU column
    /// and the host per workload.
    #[arg(long, value_name = "FILE", default_value = "bench.svg")]
    pub svg: PathBuf,
    /// Also print the table of every column and every ratio (the JSON has
    /// it anyway).
    #[arg(long)]
    pub full: bool,
}
