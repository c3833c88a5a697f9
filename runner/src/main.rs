//! The `vmdma` command: parses the command line, runs the VM and maps the
//! outcome to an exit status. See the library crate for the architecture.
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use clap::error::ErrorKind;
use vmdma_core::protocol::{EXIT_GUEST_SHUTDOWN, EXIT_TIMEOUT, runner_exit_status};

use vmdma::cli::{Cli, Command, RunArgs};
use vmdma::error::Error;
use vmdma::vmm::control::StopReason;

fn main() -> ExitCode {
    let start = Instant::now();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    let result = match cli.command {
        Some(Command::GuestElf(args)) => write_guest_elf(&args.out).map(|()| 0),
        Some(Command::Run(args)) => run(&args, start),
        None => run(&cli.run, start),
    };
    match result {
        Ok(status) => ExitCode::from(status),
        Err(e) => {
            eprintln!("vmdma: error: {e}");
            ExitCode::from(e.exit_status())
        }
    }
}

/// Prints a clap error: help and version in full (status 0), real errors as
/// one line (status `EXIT_USAGE`).
fn usage_error(e: &clap::Error) -> ExitCode {
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let rendered = e.render().to_string();
    let first = rendered
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid arguments");
    let msg = first.strip_prefix("error: ").unwrap_or(first);
    let err = Error::Usage(format!("{msg} (see 'vmdma --help')"));
    eprintln!("vmdma: error: {err}");
    ExitCode::from(err.exit_status())
}

/// `vmdma run`: returns the exit status for the guest's outcome.
fn run(args: &RunArgs, start: Instant) -> Result<u8, Error> {
    let prepared = vmdma::machine::prepare(args)?;
    let report = vmdma::supervisor::run(prepared, args.timeout)?;
    if args.stats {
        eprint!("{}", report.stats.report(start.elapsed()));
        eprint!("{}", vmdma::stats::dma_report(&report.stats, &report.ide));
    }
    Ok(match report.reason {
        StopReason::GuestExit(v) => runner_exit_status(v),
        StopReason::Shutdown(why) => {
            eprintln!("vmdma: guest shutdown: {why}");
            EXIT_GUEST_SHUTDOWN
        }
        StopReason::GuestFault(what) => {
            eprintln!("vmdma: guest fault: {what}");
            EXIT_GUEST_SHUTDOWN
        }
        StopReason::Timeout => {
            eprintln!("vmdma: timeout: the guest did not finish in time");
            EXIT_TIMEOUT
        }
    })
}

/// `vmdma guest-elf OUT_PATH`.
fn write_guest_elf(out: &std::path::Path) -> Result<(), Error> {
    let elf = vmdma::guest_image::BUNDLED_GUEST.ok_or(Error::NoBundledGuest)?;
    std::fs::write(out, elf).map_err(|source| Error::WriteGuestElf {
        path: out.display().to_string(),
        source,
    })
}
