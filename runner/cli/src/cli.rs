//! The command line: `vmdma [run] [OPTIONS]`, `vmdma guest-elf OUT_PATH`,
//! `vmdma bench [OPTIONS]` and `vmdma qtest QEMU_OPTIONS...`.
//!
//! The options of each subcommand are where the subcommand lives:
//! [`RunArgs`] in the `vmdma` library, [`BenchArgs`] in `vmdma-bench`;
//! `vmdma qtest` takes QEMU's command line verbatim (`vmdma_qtest::args`
//! parses it).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use vmdma::cli::RunArgs;
use vmdma_bench::BenchArgs;

/// vmdma: a KVM microVM runner with an IDE controller doing zero-copy DMA.
///
/// Boots a PVH ELF kernel (by default the bundled test guest) with a COM1
/// serial console on stdout, a debug-exit port at 0xF4 and a raw disk image.
/// The exit status is the guest's debug-exit value (0..=63), or 64 usage
/// error, 65 bad kernel/disk file, 70 VMM error, 71 guest shutdown or triple
/// fault, 124 timeout, 130/143 SIGINT/SIGTERM, 159 a sandboxed thread made a
/// forbidden system call.
#[derive(Debug, Parser)]
#[command(name = "vmdma", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// What to do; `run` when absent.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options of `run`, accepted without the subcommand too.
    #[command(flatten)]
    pub run: RunArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Boot a guest (the default when no subcommand is given).
    Run(RunArgs),
    /// Write the bundled guest ELF to a file (to boot it elsewhere, e.g. with
    /// `qemu-system-x86_64 -kernel`).
    GuestElf(GuestElfArgs),
    /// Serve QEMU's qtest protocol on the IDE controller, without KVM, for
    /// QEMU's own ide-test. Takes QEMU's options, as libqtest passes them
    /// (`-qtest unix:PATH -machine pc -accel qtest -drive ...`).
    #[command(disable_help_flag = true)]
    Qtest(QtestArgs),
    /// Benchmark vmdma against QEMU and the host's pread/pwrite on one
    /// image with the bundled guest; print a markdown table, write JSON.
    Bench(BenchArgs),
}

/// Arguments of `vmdma qtest`: a QEMU command line, parsed by
/// `vmdma_qtest::args`.
#[derive(Debug, Args)]
pub struct QtestArgs {
    /// QEMU options (see runner/README.md for the supported subset).
    #[arg(
        value_name = "QEMU_OPTIONS",
        num_args = 0..,
        allow_hyphen_values = true,
        trailing_var_arg = true
    )]
    pub args: Vec<String>,
}

/// Options of `vmdma guest-elf`.
#[derive(Debug, Args)]
pub struct GuestElfArgs {
    /// Where to write the ELF.
    #[arg(value_name = "OUT_PATH")]
    pub out: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_option_errors_name_the_option() {
        let e = Cli::try_parse_from(["vmdma", "--disk", "x.img,unknown=1"]).unwrap_err();
        assert!(e.to_string().contains("unknown=1"), "{e}");
    }

    #[test]
    fn no_subcommand_means_run() {
        let cli = Cli::try_parse_from(["vmdma", "--memory", "128M"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.run.memory, 128 << 20);
        let cli = Cli::try_parse_from(["vmdma", "run", "--stats"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Run(ref r)) if r.stats));
        let cli = Cli::try_parse_from(["vmdma", "guest-elf", "x.elf"]).unwrap();
        assert!(matches!(cli.command, Some(Command::GuestElf(_))));
        assert!(Cli::try_parse_from(["vmdma", "--bogus"]).is_err());
    }

    #[test]
    fn qtest_takes_qemu_options_verbatim() {
        let cli = Cli::try_parse_from([
            "vmdma", "qtest", "-qtest", "unix:/s", "-m", "128", "-h", "--memory", "x",
        ])
        .unwrap();
        let Some(Command::Qtest(q)) = cli.command else {
            panic!("not qtest")
        };
        assert_eq!(
            q.args,
            ["-qtest", "unix:/s", "-m", "128", "-h", "--memory", "x"]
        );
    }
}
