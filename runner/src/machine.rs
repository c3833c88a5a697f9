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
use crate::cdrom;
use crate::cli::RunArgs;
use crate::control::{LastCommand, RunControl, SnapshotJob, describe};
use crate::devices::bus::Widths;
use crate::devices::chipset::{COALESCED_ZONES, IDE_IRQ, SHUTDOWN_BOUND, ShutdownError, StuckDisk};
use crate::devices::debug_console::{DEBUG_CONSOLE_LEN, DebugConsole};
use crate::devices::debug_exit::{DEBUG_EXIT_LEN, DebugExit};
use crate::devices::irq::IrqLine;
use crate::devices::mmio_scratch;
use crate::devices::post_code::{POST_CODE_LEN, PostCode};
use crate::devices::serial::{COM1_BASE, COM1_IRQ, COM1_LEN, COM1_THR, ConsoleOut, SerialPort};
use crate::disk::events::DiskEvents;
use crate::disk::{self, accounting::DataPathCounters};
use crate::error::{EXIT_DISK_STUCK, Error};
use crate::guest_image::BUNDLED_GUEST;
use crate::input_file::{InputFileError, open_regular};
use crate::io_thread::IoThread;
use crate::kick::Kicker;
use crate::kvm::coalesced::{self, SwitchedZone};
use crate::kvm::vm::Vm;
use crate::metrics::exits::ExitStats;
use crate::metrics::kvm::KvmStats;
use crate::metrics::marks::{MarkLatch, Recorder};
use crate::metrics::proc_memory::MemoryUse;
use crate::metrics::report::{DiskReport, RestoreTimes, RunReport};
use crate::monitor::{self, BlockInfo, Monitor, MonitoredDisk};
use crate::sandbox::{Role, Sandbox};
use crate::snapshot::{self, Devices, Incoming, config::Config as SnapshotConfig};
use crate::supervisor;
use crate::vcpu_loop::{self, Hooks, dispatch::ExitContext};
use vmdma_core::ide::AtaCommand;

/// Everything a run needs, validated.
#[derive(Debug)]
pub struct Prepared {
    /// The ELF: the bundled guest where it is (not copied), or the file's
    /// bytes; dropped once loaded into guest RAM.
    kernel: Cow<'static, [u8]>,
    cmdline: String,
    memory: usize,
    disk: disk::Image,
    cdrom: Option<disk::Image>,
    manifest: Option<(String, File)>,
    coalesced_pio: bool,
    trace: bool,
    sandbox: Sandbox,
    shutdown_bound: Duration,
    monitor: Option<(UnixListener, BlockInfo)>,
    /// `--incoming`: the snapshot to restore, checked, and how long that
    /// took.
    incoming: Option<(Incoming, Duration)>,
    /// `--paused`.
    paused: bool,
    /// What a snapshot of this run records (and a restore must match).
    config: SnapshotConfig,
}

/// The snapshot configuration of a run with `memory` bytes of RAM, `disk`
/// and `cdrom` (no fingerprint samples).
fn snapshot_config(memory: u64, disk: &disk::Image, cdrom: Option<&disk::Image>) -> SnapshotConfig {
    let unit = |kind: u8, sectors: u64| snapshot::config::Unit {
        kind,
        sectors,
        samples: Vec::new(),
    };
    SnapshotConfig {
        ram: memory,
        scratch: MMIO_SCRATCH_LEN,
        units: [
            unit(1, disk.sectors()),
            match cdrom {
                Some(c) => unit(2, c.sectors()),
                None => unit(0, 0),
            },
        ],
    }
}

/// The sectors a command may still be writing when a snapshot is taken:
/// `None` if it writes nothing, `Some(None)` if it may write anywhere (a
/// TRIM, whose ranges are in guest memory).
fn written_by(c: Option<LastCommand>) -> Option<Option<(u64, u64)>> {
    let c = c?;
    match AtaCommand::decode(c.opcode) {
        AtaCommand::WriteSectors { .. }
        | AtaCommand::WriteMultiple { .. }
        | AtaCommand::WriteDma { .. } => Some(c.range.map(|(lba, n)| (lba, u64::from(n)))),
        AtaCommand::DataSetManagement => Some(None),
        _ => None,
    }
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

    if let Some(spec) = &args.disk
        && spec.policy.stops_explicitly()
        && args.qmp.is_none()
    {
        return Err(Error::Usage(
            "--disk werror=stop / rerror=stop needs --qmp: the VM pauses on an error and \
             QMP cont resumes it"
                .into(),
        ));
    }
    let disk = match &args.disk {
        Some(spec) => disk::open(spec).map_err(|source| Error::Disk {
            path: spec.path.display().to_string(),
            source,
        })?,
        None => {
            disk::temporary(disk::TEMP_IMAGE_SIZE, disk::Aio::default()).map_err(Error::TempDisk)?
        }
    };
    let cdrom = args
        .cdrom
        .as_deref()
        .map(|p| {
            cdrom::open(p).map_err(|reason| Error::Cdrom {
                path: p.display().to_string(),
                reason,
            })
        })
        .transpose()?;
    let config = snapshot_config(args.memory, &disk, cdrom.as_ref());
    let check_start = std::time::Instant::now();
    let incoming = match &args.incoming {
        Some(path) => Some(
            Incoming::read(
                path,
                // RAM plus room for the other sections.
                args.memory.saturating_add(64 << 20),
                &config,
                [Some(disk.file()), cdrom.as_ref().map(disk::Image::file)],
                args.incoming_any_disk,
            )
            .map_err(|source| Error::Incoming {
                path: path.display().to_string(),
                source,
            })?,
        ),
        None => None,
    };
    let incoming = incoming.map(|i| (i, check_start.elapsed()));
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
                cdrom: args.cdrom.as_ref().map(|p| p.display().to_string()),
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
        incoming,
        paused: args.paused,
        config,
        monitor,
        kernel,
        cmdline,
        memory,
        disk,
        cdrom,
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
    // The monitor's socket file goes when the run ends, as QEMU's does
    // (here, on the supervising thread: the others are sandboxed).
    let socket = p
        .monitor
        .as_ref()
        .and_then(|(l, _)| l.local_addr().ok())
        .and_then(|a| a.as_pathname().map(Path::to_path_buf));
    let result = supervisor::run(bound, timeout, move |control| run_vm(p, control));
    if let Some(path) = socket {
        let _ = std::fs::remove_file(path);
    }
    result
}

/// On the vCPU thread: the VM and its RAM, then the board on it.
fn run_vm(p: Prepared, control: &Arc<RunControl>) -> Result<RunReport, Error> {
    let Prepared {
        kernel,
        cmdline,
        memory,
        disk,
        cdrom,
        manifest,
        coalesced_pio,
        trace,
        sandbox,
        shutdown_bound,
        monitor,
        incoming,
        paused,
        config,
    } = p;
    let vm = Vm::new(memory)?;
    let data_path = Arc::new(DataPathCounters::default());
    // With a monitor, the disk tells it about I/O errors (and its policy
    // may pause the VM); the eventfd is made before any sandbox.
    let disk_events = match &monitor {
        Some(_) => Some(Arc::new(DiskEvents::new().map_err(Error::DiskEvents)?)),
        None => None,
    };
    let spec = BoardSpec {
        ram: vm.ram(),
        mmio_scratch: true,
        cdrom: [false, cdrom.is_some()],
        disks: [Some(disk), cdrom],
        info: [DriveInfo::MASTER, DriveInfo::SLAVE],
        ide_irq: IrqLine::new(vm.fd().clone(), IDE_IRQ),
        data_path: Some(data_path.clone()),
        completions: true,
        disk_events: disk_events.clone(),
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
        monitor: monitor.zip(disk_events),
        incoming: incoming.as_ref().map(|(i, _)| i),
        check_time: incoming.as_ref().map(|(_, t)| *t),
        paused,
        config,
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
    monitor: Option<((UnixListener, BlockInfo), Arc<DiskEvents>)>,
    incoming: Option<&'a Incoming>,
    check_time: Option<Duration>,
    paused: bool,
    config: SnapshotConfig,
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
            incoming,
            check_time,
            paused,
            config,
        } = self;
        let Board {
            space,
            mut pio,
            chipset,
            modes,
            completions,
            scratch,
        } = board;
        let com1_irq = IrqLine::new(vm.fd().clone(), COM1_IRQ);
        let com1_out = ConsoleOut::new(std::io::stdout());
        let serial = Arc::new(Mutex::new(match incoming {
            Some(inc) => SerialPort::from_state_bytes(inc.serial_state(), com1_irq, com1_out)
                .map_err(|e| Error::Restore(snapshot::SnapshotError::Device(e)))?,
            None => SerialPort::new(com1_irq, com1_out),
        }));
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

        let mut vcpu = vm.create_vcpu(0)?;
        // What a snapshot covers besides KVM and RAM (also what a restore
        // puts back).
        let serial_state = || {
            serial
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .state_bytes()
        };
        let flush_manifest = || {
            let _ = manifest
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .flush();
        };
        let devices = Devices {
            chipset: &chipset,
            serial_state: &serial_state,
            scratch,
            flush_manifest: &flush_manifest,
        };
        let apply_start = std::time::Instant::now();
        match incoming {
            Some(inc) => inc.restore(vm, &vcpu, &devices).map_err(Error::Restore)?,
            None => {
                let entry = boot::load(
                    vm.ram(),
                    &kernel,
                    cmdline,
                    &[(MMIO_SCRATCH_BASE, MMIO_SCRATCH_LEN)],
                )?;
                vcpu.set_pvh_entry(entry.entry, entry.start_info)?;
            }
        }
        // In guest RAM now (or restored): a kernel read from a file gives
        // its buffer back before the guest runs (and its RAM grows to the
        // run's peak).
        drop(kernel);
        let restore = check_time.map(|check| RestoreTimes {
            check,
            apply: apply_start.elapsed(),
        });
        // The image, for the fingerprint a snapshot records (its own
        // descriptor: the vCPU thread's sandbox has no `dup`).
        let disk_file = chipset
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .disk()
            .map(|d| d.file().try_clone())
            .transpose()
            .map_err(|e| Error::Restore(snapshot::SnapshotError::Io(e)))?;
        let coalesced_pio = coalesced_pio
            && coalesced::register(vm.fd(), &COALESCED_ZONES).map_err(Error::CoalescedPio)?;
        if coalesced_pio {
            vcpu.enable_coalesced_ring()?;
            serial
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .coalesce_transmit(SwitchedZone::new(vm.fd().clone(), COM1_THR, 1));
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
                Some(((listener, info), events)) => match Monitor::spawn(
                    scope,
                    listener,
                    control.clone(),
                    Kicker::current_thread(),
                    &chipset,
                    MonitoredDisk { info, events },
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
            // A restored VM: the requests the chipset had in flight when
            // the snapshot was taken are issued again (completions can be
            // delivered now). `--paused`: the vCPU waits for `cont`.
            if incoming.is_some() {
                chipset
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .restart();
            }
            if paused {
                control.request_pause();
            }
            // Everything is open and mapped: from here on the vCPU thread
            // may only make the system calls on its list.
            let result = sandbox
                .enter(Role::Vcpu)
                .map_err(Error::Sandbox)
                .and_then(|()| {
                    // Requests the monitor released are submitted here
                    // (this thread's sandbox allows disk I/O).
                    let service = || {
                        chipset
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .service()
                    };
                    // QMP `migrate`: the monitor paused the VM; this thread
                    // writes the file it opened through the supervisor.
                    let snapshot = |vcpu: &crate::kvm::vcpu::Vcpu, job: SnapshotJob| {
                        let SnapshotJob { file, reply } = job;
                        let done = snapshot::save(
                            vm,
                            vcpu,
                            &devices,
                            config.clone(),
                            disk_file.as_ref(),
                            written_by(control.last_command()),
                            file,
                        );
                        let _ = reply.send(done.map_err(|e| e.to_string()));
                    };
                    let hooks = Hooks {
                        service: &service,
                        snapshot: &snapshot,
                    };
                    vcpu_loop::run(&mut vcpu, &ctx, control, &hooks, &mut stats, &mut recorder)
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
            restore,
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
