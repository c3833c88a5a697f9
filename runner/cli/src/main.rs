//! The `vmdma` command: parses the command line, runs the VM (or the bench,
//! or the qtest front end) and maps the outcome to an exit status. See the
//! `vmdma` library crate for the architecture.
#![forbid(unsafe_code)]

mod cli;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use clap::error::ErrorKind;
use vmdma_protocol::{EXIT_GUEST_SHUTDOWN, EXIT_TIMEOUT, runner_exit_status};

use vmdma::cli::RunArgs;
use vmdma::control::StopReason;
use vmdma::error::Error;

use cli::{Cli, Command};

fn main() -> ExitCode {
    let start = Instant::now();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    let result = match cli.command {
        Some(Command::GuestElf(args)) => write_guest_elf(&args.out).map(|()| 0),
        Some(Command::Qtest(args)) => return qtest(&args.args),
        Some(Command::Bench(args)) => return bench(&args),
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
    let stats_json = args
        .stats_json
        .as_deref()
        .map(|p| Ok::<_, Error>((p, vmdma::machine::create_output("--stats-json", p)?)))
        .transpose()?;
    let prepared = vmdma::machine::prepare(args)?;
    let mut report = vmdma::machine::run(prepared, args.timeout)?;
    let elapsed = start.elapsed();
    report.read_memory_use();
    if args.stats {
        eprint!("{}", report.stats.report(elapsed));
        eprint!(
            "{}",
            vmdma::metrics::exits::dma_report(&report.stats, &report.ide)
        );
        if let Some(d) = &report.disk {
            eprint!("{}", vmdma::metrics::report::disk_report(d));
        }
        eprint!("{}", vmdma::sandbox::report(!args.no_seccomp));
        if let Some(line) = vmdma::metrics::report::restore_report(&report, start) {
            eprint!("{line}");
        }
    }
    if let Some((path, file)) = stats_json {
        let output_err = |source| Error::Output {
            option: "--stats-json",
            path: path.display().to_string(),
            source,
        };
        let mut w = std::io::BufWriter::new(file);
        serde_json::to_writer_pretty(
            &mut w,
            &vmdma::metrics::json::report(&report, start, elapsed),
        )
        .map_err(|e| output_err(e.into()))?;
        w.write_all(b"\n").map_err(output_err)?;
        w.flush().map_err(output_err)?;
    }
    if let StopReason::GuestExit(v) = report.reason
        && std::io::stderr().is_terminal()
    {
        // On a terminal (not in scripts or tests): the one line that says
        // how it went and how long it took.
        eprintln!(
            "vmdma: guest exit value {v} after {:.3} s",
            elapsed.as_secs_f64()
        );
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
        StopReason::Signal(sig) => {
            // `machine::run` got here only after draining and flushing the
            // disk (a disk that did not answer ends the process there).
            eprintln!("vmdma: stopped by signal {sig}; the disk was flushed");
            signal_exit_status(sig)
        }
        StopReason::Quit => {
            // As QEMU's `quit`: status 0, after the same drain and flush.
            eprintln!("vmdma: quit (QMP); the disk was flushed");
            0
        }
    })
}

/// `vmdma bench`: its status, or its error as one line, as for `run`.
fn bench(args: &vmdma_bench::BenchArgs) -> ExitCode {
    match vmdma_bench::run(args) {
        Ok(status) => ExitCode::from(status),
        Err(e) => {
            eprintln!("vmdma: error: {e}");
            ExitCode::from(e.exit_status())
        }
    }
}

/// `vmdma qtest QEMU_OPTIONS...`: errors are one line, as for `run`.
fn qtest(args: &[String]) -> ExitCode {
    match vmdma_qtest::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vmdma: error: {e}");
            ExitCode::from(e.exit_status())
        }
    }
}

/// The conventional status of a process ended by signal `sig`: 128 + sig.
fn signal_exit_status(sig: i32) -> u8 {
    u8::try_from(128 + sig.clamp(1, 127)).unwrap_or(u8::MAX)
}

/// `vmdma guest-elf OUT_PATH`.
fn write_guest_elf(out: &std::path::Path) -> Result<(), Error> {
    let elf = vmdma::guest_image::BUNDLED_GUEST.ok_or(Error::NoBundledGuest)?;
    std::fs::write(out, elf).map_err(|source| Error::WriteGuestElf {
        path: out.display().to_string(),
        source,
    })
}
