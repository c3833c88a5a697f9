//! Assembling and running one microVM.
//!
//! [`prepare`] validates every user input (kernel ELF, command line, disk
//! image) before any KVM object exists, so bad input never starts a VM.
//! [`run`] then builds, starts and waits: on a vCPU thread it creates the
//! VM (RAM, irqchip), builds the board ([`crate::board`], shared with
//! `vmdma qtest`) and adds the KVM runner's port devices, loads the kernel
//! and runs vCPU 0 ([`crate::vcpu_loop`]) with the I/O thread beside it;
//! the calling thread supervises ([`crate::supervisor`]) until the guest
//! stops or the [`RunControl`] says so.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufWriter, Read};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use vmdma_core::ide::DriveInfo;
use vmdma_protocol::{DEBUG_EXIT_PORT, MANIFEST_PORT, POST_CODE_PORT};
use vmdma_protocol::{MMIO_SCRATCH_BASE, MMIO_SCRATCH_LEN};

use crate::board::{self, Board, BoardSpec};
use crate::boot;
use crate::cli::RunArgs;
use crate::control::{RunControl, describe};
use crate::devices::bus::Widths;
use crate::devices::chipset::{COALESCED_ZONES, IDE_IRQ, SHUTDOWN_BOUND, ShutdownError, StuckDisk};
use crate::devices::debug_console::{DEBUG_CONSOLE_LEN, DebugConsole};
use crate::devices::debug_exit::{DEBUG_EXIT_LEN, DebugExit};
use crate::devices::irq::IrqLine;
use crate::devices::mmio_scratch;
use crate::devices::post_code::{POST_CODE_LEN, PostCode};
use crate::devices::serial::{COM1_BASE, COM1_IRQ, COM1_LEN, ConsoleOut, SerialPort};
use crate::disk::{self, accounting::DataPathCounters};
use crate::error::{EXIT_DISK_STUCK, Error};
use crate::guest_image::BUNDLED_GUEST;
use crate::input_file::{InputFileError, open_regular};
use crate::io_thread::IoThread;
use crate::kick::Kicker;
use crate::kvm::coalesced;
use crate::kvm::vm::Vm;
use crate::metrics::exits::ExitStats;
use crate::metrics::kvm::KvmStats;
use crate::metrics::marks::{MarkLatch, Recorder};
use crate::metrics::proc_memory::MemoryUse;
use crate::metrics::report::{DiskReport, RunReport};
use crate::monitor::{self, BlockInfo, Monitor};
use crate::sandbox::{Role, Sandbox};
use crate::supervisor;
use crate::vcpu_loop::{self, dispatch::ExitContext};

/// Everything a run needs, validated.
#[derive(Debug)]
pub struct Prepared {
    /// The ELF: the bundled guest where it is (not copied), or the file's
    /// bytes; dropped once loaded into guest RAM.
    kernel: Cow<'static, [u8]>,
    cmdline: String,
    memory: usize,
    disk: disk::Image,
    manifest: Option<(String, File)>,
    coalesced_pio: bool,
    trace: bool,
    sandbox: Sandbox,
    shutdown_bound: Duration,
    monitor: Option<(UnixListener, BlockInfo)>,
}

/// Reads the kernel file: a regular file of at most `memory` bytes. The size
/// is checked before reading, and the read itself stops one byte past the
/// limit (the file may grow meanwhile), so it is bounded either way.
fn read_kernel(path: &Path, memory: u64) -> Result<Vec<u8>, Error> {
    let shown = path.display().to_string();
    let read_err = |source| Error::KernelRead {
        path: shown.clone(),
        source,
    };
    let too_large = || Error::KernelTooLarge {
        path: shown.clone(),
        limit: memory,
    };
    let file = open_regular(path, false).map_err(|e| match e {
        InputFileError::Io(source) => read_err(source),
        InputFileError::NotRegularFile(what) => Error::KernelNotRegular {
            path: shown.clone(),
            what,
        },
    })?;
    let len = file.metadata().map_err(read_err)?.len();
    if len > memory {
        return Err(too_large());
    }
    // Reserve the expected size (nothing if it does not fit `usize`).
    let mut kernel = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(memory.saturating_add(1))
        .read_to_end(&mut kernel)
        .map_err(read_err)?;
    if u64::try_from(kernel.len()).map_or(true, |n| n > memory) {
        return Err(too_large());
    }
    Ok(kernel)
}

/// Validates the inputs of `args`.
pub fn prepare(args: &RunArgs) -> Result<Prepared, Error> {
    let (kernel, name) = match &args.kernel {
        Some(p) => (
            Cow::Owned(read_kernel(p, args.memory)?),
            p.display().to_string(),
        ),
        None => (
            Cow::Borrowed(BUNDLED_GUEST.ok_or(Error::NoBundledGuest)?),
            "(bundled guest)".to_string(),
        ),
    };
    boot::elf::parse(&kernel, args.memory)
        .map_err(|source| Error::Kernel { path: name, source })?;

    let mut cmdline = mmio_scratch::cmdline_key();
    if !args.cmdline.is_empty() {
        cmdline.push(' ');
        cmdline.push_str(&args.cmdline);
    }
    boot::pvh::check_cmdline(&cmdline).map_err(Error::Cmdline)?;

    let disk = match &args.disk {
        Some(spec) => disk::open(spec).map_err(|source| Error::Disk {
            path: spec.path.display().to_string(),
            source,
        })?,
        None => {
            disk::temporary(disk::TEMP_IMAGE_SIZE, disk::Aio::default()).map_err(Error::TempDisk)?
        }
    };
    let memory = usize::try_from(args.memory)
        .map_err(|_| Error::Usage(format!("--memory {} does not fit this host", args.memory)))?;
    #[cfg(debug_assertions)]
    let selftest = match args.seccomp_selftest.as_deref() {
        Some("vcpu") => Some(Role::Vcpu),
        Some("io") => Some(Role::Io),
        Some("monitor") => Some(Role::Monitor),
        _ => None,
    };
    #[cfg(not(debug_assertions))]
    let selftest = None;
    #[cfg(debug_assertions)]
    let shutdown_bound = args.shutdown_bound.unwrap_or(SHUTDOWN_BOUND);
    #[cfg(not(debug_assertions))]
    let shutdown_bound = SHUTDOWN_BOUND;
    let manifest = args
        .manifest
        .as_deref()
        .map(|p| Ok::<_, Error>((p.display().to_string(), create_output("--manifest", p)?)))
        .transpose()?;
    let monitor = match &args.qmp {
        Some(q) => {
            let block = BlockInfo {
                file: args.disk.as_ref().map_or_else(
                    || "(temporary image)".to_string(),
                    |d| d.path.display().to_string(),
                ),
                read_only: args.disk.as_ref().is_some_and(|d| d.read_only),
                size: disk.sectors().saturating_mul(512),
                direct: args
                    .disk
                    .as_ref()
                    .is_some_and(|d| d.cache == disk::Cache::None),
            };
            let listener = monitor::listen(&q.path).map_err(|source| Error::Output {
                option: "--qmp",
                path: q.path.display().to_string(),
                source,
            })?;
            Some((listener, block))
        }
        None => None,
    };
    Ok(Prepared {
        monitor,
        kernel,
        cmdline,
        memory,
        disk,
        manifest,
        coalesced_pio: !args.no_coalesced_pio,
        trace: args.trace_io,
        sandbox: Sandbox {
            enabled: !args.no_seccomp,
            selftest,
        },
        shutdown_bound,
    })
}

/// Creates (or truncates) the output file `path` named by `option`.
pub fn create_output(option: &'static str, path: &Path) -> Result<File, Error> {
    File::create(path).map_err(|source| Error::Output {
        option,
        path: path.display().to_string(),
        source,
    })
}

/// Runs the prepared VM to its end and reports how it went: build the
/// board, start the threads (vCPU 0, the I/O thread), wait. The calling
/// thread supervises (`--timeout`, signals, halt probes); the VM is built
/// and run on the vCPU thread.
pub fn run(p: Prepared, timeout: Option<Duration>) -> Result<RunReport, Error> {
    let bound = p.shutdown_bound;
    supervisor::run(bound, timeout, move |control| run_vm(p, control))
}

/// On the vCPU thread: the VM and its RAM, then the board on it.
fn run_vm(p: Prepared, control: &Arc<RunControl>) -> Result<RunReport, Error> {
    let Prepared {
        kernel,
        cmdline,
        memory,
        disk,
        manifest,
        coalesced_pio,
        trace,
        sandbox,
        shutdown_bound,
        monitor,
    } = p;
    let vm = Vm::new(memory)?;
    let data_path = Arc::new(DataPathCounters::default());
    let spec = BoardSpec {
        ram: vm.ram(),
        mmio_scratch: true,
        disks: [Some(disk), None],
        info: [DriveInfo::MASTER, DriveInfo::SLAVE],
        ide_irq: IrqLine::new(vm.fd().clone(), IDE_IRQ),
        data_path: Some(data_path.clone()),
        completions: true,
    };
    let run = Run {
        vm: &vm,
        kernel,
        cmdline: &cmdline,
        manifest,
        coalesced_pio,
        trace,
        sandbox,
        shutdown_bound,
        data_path,
        control,
        monitor,
    };
    board::with_board(spec, |board| run.on_board(board))?
}

/// What the vCPU thread runs the board with.
struct Run<'a> {
    vm: &'a Vm,
    kernel: Cow<'static, [u8]>,
    cmdline: &'a str,
    manifest: Option<(String, File)>,
    coalesced_pio: bool,
    trace: bool,
    sandbox: Sandbox,
    shutdown_bound: Duration,
    data_path: Arc<DataPathCounters>,
    control: &'a Arc<RunControl>,
    monitor: Option<(UnixListener, BlockInfo)>,
}

impl Run<'_> {
    /// Adds the KVM runner's own port devices to the board, loads the
    /// kernel, runs vCPU 0 (and the I/O thread) until the run stops, then
    /// shuts the devices down and gathers the report.
    fn on_board(self, board: Board<'_>) -> Result<RunReport, Error> {
        let Run {
            vm,
            kernel,
            cmdline,
            manifest,
            coalesced_pio,
            trace,
            sandbox,
            shutdown_bound,
            data_path,
            control,
            monitor,
        } = self;
        let Board {
            space,
            mut pio,
            chipset,
            modes,
            completions,
        } = board;
        let serial = Arc::new(Mutex::new(SerialPort::new(
            IrqLine::new(vm.fd().clone(), COM1_IRQ),
            ConsoleOut::new(std::io::stdout()),
        )));
        pio.insert(COM1_BASE, COM1_LEN, Widths::BYTE, serial.clone())?;
        pio.insert(
            DEBUG_EXIT_PORT,
            DEBUG_EXIT_LEN,
            Widths::ANY,
            Arc::new(Mutex::new(DebugExit::new(control.clone()))),
        )?;
        let (manifest_path, manifest_file) = match manifest {
            Some((path, file)) => (path, Some(BufWriter::new(file))),
            None => (String::new(), None),
        };
        let manifest = Arc::new(Mutex::new(DebugConsole::new(manifest_file)));
        pio.insert(
            MANIFEST_PORT,
            DEBUG_CONSOLE_LEN,
            Widths::BYTE,
            manifest.clone(),
        )?;
        chipset
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .publish_commands(control.clone());
        let latch = Arc::new(MarkLatch::default());
        pio.insert(
            POST_CODE_PORT,
            POST_CODE_LEN,
            Widths::BYTE,
            Arc::new(Mutex::new(PostCode::new(latch.clone()))),
        )?;

        let entry = boot::load(
            vm.ram(),
            &kernel,
            cmdline,
            &[(MMIO_SCRATCH_BASE, MMIO_SCRATCH_LEN)],
        )?;
        // In guest RAM now: a kernel read from a file gives its buffer back
        // before the guest runs (and its RAM grows to the run's peak).
        drop(kernel);
        let mut vcpu = vm.create_vcpu(0)?;
        vcpu.set_pvh_entry(entry.entry, entry.start_info)?;
        let coalesced_pio = coalesced_pio
            && coalesced::register(vm.fd(), &COALESCED_ZONES).map_err(Error::CoalescedPio)?;
        if coalesced_pio {
            vcpu.enable_coalesced_ring()?;
        }

        let ctx = ExitContext {
            pio: &pio,
            mmio: space,
            trace,
        };
        let mut stats = ExitStats::default();
        // Without KVM_GET_STATS_FD (Linux < 5.14) the KVM counters are absent.
        let kvm_stats = vcpu.stats_fd().ok().and_then(KvmStats::new);
        let mut recorder = Recorder::new(latch, kvm_stats, data_path);
        // The I/O thread lives in a scope inside everything it borrows (the
        // chipset, and through it guest RAM and the disk): it is stopped and
        // joined before any of that can go.
        let (result, wakeups) = std::thread::scope(|scope| {
            let io = match completions {
                Some((efd, pending)) => {
                    match IoThread::spawn(scope, efd, pending, &chipset, sandbox) {
                        Ok(t) => Some(t),
                        Err(e) => return (Err(Error::IoThread(e)), 0),
                    }
                }
                None => None,
            };
            // The monitor (--qmp): its socket is bound already; it kicks
            // this thread for `stop`.
            let monitor = match monitor {
                Some((listener, block)) => match Monitor::spawn(
                    scope,
                    listener,
                    control.clone(),
                    Kicker::current_thread(),
                    &chipset,
                    block,
                    sandbox,
                ) {
                    Ok(m) => Some(m),
                    Err(e) => {
                        let _ = io.map(IoThread::stop);
                        return (Err(Error::Monitor(e)), 0);
                    }
                },
                None => None,
            };
            // Everything is open and mapped: from here on the vCPU thread
            // may only make the system calls on its list.
            let result = sandbox
                .enter(Role::Vcpu)
                .map_err(Error::Sandbox)
                .and_then(|()| {
                    vcpu_loop::run(&mut vcpu, &ctx, control, &mut stats, &mut recorder)
                        .map_err(Error::from)
                });
            // From here on the vCPU thread shuts the devices down, with its
            // own bound: the supervisor stops kicking it.
            control.mark_left_guest();
            // The monitor's client gets SHUTDOWN and the connection closes.
            let result = match monitor.map(Monitor::stop) {
                Some(Err(e)) => result.and(Err(Error::Monitor(e))),
                _ => result,
            };
            let wakeups = match io.map(IoThread::stop) {
                Some(Ok(n)) => n,
                Some(Err(e)) => return (result.and(Err(Error::IoThread(e))), 0),
                None => 0,
            };
            (result, wakeups)
        });
        // Guest output must be complete before the runner reports anything.
        let _ = serial
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .writer_mut()
            .finish();
        // Whatever ended the run (guest exit, timeout, signal, an error),
        // the disk's requests in flight complete and the disk is flushed
        // before guest memory is unmapped.
        let shutdown = chipset
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .shutdown(shutdown_bound);
        if let Err(ShutdownError::Stuck(stuck)) = &shutdown {
            exit_with_disk_stuck(control, &result, stuck);
        }
        result?;
        shutdown?;
        let manifest_flushed = manifest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .flush();
        if let Err(source) = manifest_flushed {
            return Err(Error::Output {
                option: "--manifest",
                path: manifest_path,
                source,
            });
        }
        let (reason, stopped_at) = control.stop().ok_or(Error::NoStopReason)?;
        let c = chipset.lock().unwrap_or_else(PoisonError::into_inner);
        let ide = c.ide_stats();
        let disk = c.disk().zip(modes[0]).map(|(d, mode)| DiskReport {
            mode,
            uring: d.uring_stats(),
            bounced_bytes: d.bounced_bytes(),
            io_thread_wakeups: wakeups,
            io_errors: d.io_errors(),
        });
        drop(c);
        let end = recorder.snapshot(&stats);
        let started_at = recorder.started();
        let (marks, marks_dropped) = recorder.finish();
        Ok(RunReport {
            reason,
            started_at: Some(started_at),
            stopped_at: Some(stopped_at),
            stats,
            ide,
            disk,
            kvm: end.kvm,
            data_path: end.data_path,
            marks,
            marks_dropped,
            // The peak RSS is read by the supervisor thread (the vCPU
            // thread's sandbox has no `open`).
            memory: MemoryUse {
                max_rss_kib: None,
                guest_ram_rss_kib: vm.ram().resident_bytes().map(|b| b / 1024),
            },
            coalesced_pio,
        })
    }
}

/// Ends the process, here and now, because the disk still has requests in
/// flight after the shutdown bound: says why the run ended, what the disk
/// still holds and that it was not flushed, and exits with
/// [`EXIT_DISK_STUCK`].
///
/// Why exit instead of returning: every way back to `main` drops what the
/// kernel may still be writing: guest RAM (unmapped by `Vm`'s drop), the
/// bounce arena and the PIO buffer (freed), and the disk backend, whose
/// own drop would wait for the requests again and then abort. Unmapping or
/// freeing memory under a running request lets the kernel write into
/// whatever reuses it. `std::process::exit` runs no destructors: the
/// memory stays mapped until the kernel tears the address space down,
/// which it does only after the last request is over (it keeps the
/// process in its exit until then, as it does for any reader of a disk
/// that does not answer). So leaving this way is safe, and it is the only
/// bounded way out. The calls it makes (`write`, `exit_group`) are on the
/// vCPU thread's seccomp list.
fn exit_with_disk_stuck(control: &RunControl, result: &Result<(), Error>, stuck: &StuckDisk) -> ! {
    if let Err(e) = result {
        eprintln!("vmdma: error: {e}");
    }
    let why = describe(control.stop_reason());
    eprintln!(
        "vmdma: {why}, but {stuck}; exiting with status {EXIT_DISK_STUCK} without unmapping \
         guest memory (the kernel ends the process once it lets go of the requests)"
    );
    std::process::exit(i32::from(EXIT_DISK_STUCK))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_size_limit_is_inclusive() {
        let dir = tempfile::tempdir().unwrap();
        let k = dir.path().join("k");
        std::fs::write(&k, [7u8; 16]).unwrap();
        assert_eq!(read_kernel(&k, 16).unwrap(), [7u8; 16]);
        assert!(matches!(
            read_kernel(&k, 15),
            Err(Error::KernelTooLarge { limit: 15, .. })
        ));
    }

    #[test]
    fn kernel_must_be_a_regular_file() {
        assert!(matches!(
            read_kernel(Path::new("/dev/zero"), 1 << 20),
            Err(Error::KernelNotRegular {
                what: "a character device",
                ..
            })
        ));
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            read_kernel(dir.path(), 1 << 20),
            Err(Error::KernelNotRegular {
                what: "a directory",
                ..
            })
        ));
        assert!(matches!(
            read_kernel(&dir.path().join("missing"), 1 << 20),
            Err(Error::KernelRead { .. })
        ));
    }
}
