//! Assembling and running one microVM.
//!
//! [`prepare`] validates every user input (kernel ELF, command line, disk
//! image) before any KVM object exists, so bad input never starts a VM.
//! [`run`] then builds the VM on the calling (vCPU) thread — RAM, irqchip,
//! devices, buses — loads the kernel and runs vCPU 0 until the guest stops
//! or the [`RunControl`] says so.

use std::fs::File;
use std::io::{BufWriter, Read};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use vmdma_core::dma::AddressSpace;
use vmdma_core::memory::RegionMap;
use vmdma_core::protocol::{MMIO_SCRATCH_BASE, MMIO_SCRATCH_LEN};

use crate::boot;
use crate::cli::RunArgs;
use crate::devices::bus::{PioBus, Widths};
use crate::devices::chipset::{Chipset, IDE_IRQ, SHUTDOWN_BOUND, ShutdownError, StuckDisk};
use crate::devices::debug_console::{DEBUG_CONSOLE_LEN, DebugConsole};
use crate::devices::debug_exit::{DEBUG_EXIT_LEN, DebugExit};
use crate::devices::irq::IrqLine;
use crate::devices::mmio::{GuestBounceArena, GuestSpace};
use crate::devices::mmio_scratch::{self, MmioScratch};
use crate::devices::post_code::{MarkLatch, POST_CODE_LEN, PostCode};
use crate::devices::serial::{COM1_BASE, COM1_IRQ, COM1_LEN, ConsoleOut, SerialPort};
use crate::disk::accounting::{DataPath, DataPathCounters, HostRanges};
use crate::disk::{self, DiskMode};
use crate::error::{EXIT_DISK_STUCK, Error};
use crate::guest_image::BUNDLED_GUEST;
use crate::input_file::{InputFileError, open_regular};
use crate::io_thread::IoThread;
use crate::marks::{Mark, Recorder};
use crate::proc_memory::{self, MemoryUse};
use crate::sandbox::{self, Role};
use crate::stats::ExitStats;
use crate::vmm::coalesced;
use crate::vmm::control::{RunControl, StopReason};
use crate::vmm::exit::{Action, ExitContext, VcpuExit, handle_exit};
use crate::vmm::kvm_stats::{KvmCounters, KvmStats};
use crate::vmm::vcpu::Vcpu;
use crate::vmm::vm::Vm;
use vmdma_core::ide::{IdeStats, PioBuffer};
use vmdma_core::protocol::{DEBUG_EXIT_PORT, MANIFEST_PORT, POST_CODE_PORT};

/// Everything a run needs, validated.
#[derive(Debug)]
pub struct Prepared {
    kernel: Vec<u8>,
    cmdline: String,
    memory: usize,
    disk: disk::Image,
    manifest: Option<(String, File)>,
    coalesced_pio: bool,
    trace: bool,
    sandbox: Sandbox,
    shutdown_bound: Duration,
}

/// Which threads enter their seccomp filter, and the debug hook.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sandbox {
    /// Filters on (the default; `--no-seccomp` turns them off).
    pub enabled: bool,
    /// Debug builds: the thread that makes one forbidden call once inside.
    pub selftest: Option<Role>,
}

impl Sandbox {
    /// Puts the calling thread in its sandbox (if enabled), then runs the
    /// self-test if it is this thread's.
    pub fn enter(&self, role: Role) -> Result<(), String> {
        if !self.enabled {
            return Ok(());
        }
        sandbox::enter(role)?;
        #[cfg(debug_assertions)]
        if self.selftest == Some(role) {
            sandbox::make_forbidden_call();
        }
        Ok(())
    }
}

/// How a run ended, with its statistics.
#[derive(Debug)]
pub struct RunReport {
    /// Why it ended.
    pub reason: StopReason,
    /// When the vCPU was about to run the guest for the first time (the
    /// VM fully built); `None` if unknown.
    pub started_at: Option<Instant>,
    /// When the stop was requested (for a guest exit: when the guest
    /// wrote the debug-exit port); `None` if unknown.
    pub stopped_at: Option<Instant>,
    /// Exit counters of vCPU 0.
    pub stats: ExitStats,
    /// The IDE controller's counters.
    pub ide: IdeStats,
    /// The disk engine that ran, and its counters.
    pub disk: Option<DiskReport>,
    /// KVM's counters of vCPU 0 at the end (`None` where the kernel has no
    /// statistics file).
    pub kvm: Option<KvmCounters>,
    /// Where the disk's data went.
    pub data_path: DataPath,
    /// The guest's progress marks, with the counters at each.
    pub marks: Vec<Mark>,
    /// Marks beyond [`crate::marks::MAX_MARKS`], not recorded.
    pub marks_dropped: u64,
    /// The process's peak resident set (filled in by
    /// [`RunReport::read_memory_use`]) and the guest RAM's share of it.
    pub memory: MemoryUse,
    /// Whether KVM coalesced the side-effect-free port writes.
    pub coalesced_pio: bool,
}

/// What the disk backend did.
#[derive(Debug, Clone, Copy)]
pub struct DiskReport {
    /// Engine and cache policy.
    pub mode: DiskMode,
    /// io_uring counters (io_uring engine only).
    pub uring: Option<disk::uring::UringStats>,
    /// Bytes copied through an aligned buffer for direct I/O.
    pub bounced_bytes: u64,
    /// Times the I/O thread woke up to deliver completions.
    pub io_thread_wakeups: u64,
    /// Host I/O errors (each failed its ATA command).
    pub io_errors: u64,
}

impl RunReport {
    /// A report with no counters (when the vCPU never answered).
    pub fn without_counters(reason: StopReason) -> Self {
        RunReport {
            reason,
            started_at: None,
            stopped_at: None,
            stats: ExitStats::default(),
            ide: IdeStats::default(),
            disk: None,
            kvm: None,
            data_path: DataPath::default(),
            marks: Vec::new(),
            marks_dropped: 0,
            memory: MemoryUse::default(),
            coalesced_pio: false,
        }
    }

    /// Reads the process's peak resident set into [`RunReport::memory`].
    /// Called on the supervisor thread: it opens /proc, which the
    /// sandboxed vCPU thread may not.
    pub fn read_memory_use(&mut self) {
        self.memory.max_rss_kib = proc_memory::max_rss_kib();
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
        Some(p) => (read_kernel(p, args.memory)?, p.display().to_string()),
        None => (
            BUNDLED_GUEST.ok_or(Error::NoBundledGuest)?.to_vec(),
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
    Ok(Prepared {
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

impl Prepared {
    /// How long shutting down may wait for the disk.
    pub fn shutdown_bound(&self) -> Duration {
        self.shutdown_bound
    }
}

/// Creates (or truncates) the output file `path` named by `option`.
pub fn create_output(option: &'static str, path: &Path) -> Result<File, Error> {
    File::create(path).map_err(|source| Error::Output {
        option,
        path: path.display().to_string(),
        source,
    })
}

/// Builds the VM and runs it on this thread until it stops.
pub fn run(p: Prepared, control: &Arc<RunControl>) -> Result<RunReport, Error> {
    let vm = Vm::new(p.memory)?;

    // The guest-physical address space as devices and MMIO exits see it:
    // RAM (for DMA; vCPUs reach it through the KVM slot) and the scratch
    // region (every access an exit, DMA bounced).
    let scratch = MmioScratch::new(MMIO_SCRATCH_LEN as usize);
    let mut regions = RegionMap::new();
    regions
        .add_ram(0, vm.ram().backing())
        .map_err(|e| Error::Device(format!("guest RAM region: {e}")))?;
    regions
        .add_mmio(MMIO_SCRATCH_BASE, MMIO_SCRATCH_LEN, &scratch, None)
        .map_err(|e| Error::Device(format!("MMIO scratch region: {e}")))?;
    // Bounce space and the IDE channel's PIO buffer, page-aligned so that
    // direct I/O (cache=none) can use them without another copy.
    let bounce = Box::new(PageAligned(GuestBounceArena::new()));
    let space: GuestSpace<'_> = AddressSpace::new(regions, &bounce.0);
    // PIO blocks of the IDE channel: outside the controller, alive as long
    // as guest memory, so a request in flight never points into freed or
    // moved memory.
    let pio_buffer = Box::new(PageAligned(PioBuffer::<{ 16 * 512 }>::new()));

    let serial = Arc::new(Mutex::new(SerialPort::new(
        IrqLine::new(vm.fd().clone(), COM1_IRQ),
        ConsoleOut::new(std::io::stdout()),
    )));
    let mut pio = PioBus::new();
    pio.insert(COM1_BASE, COM1_LEN, Widths::BYTE, serial.clone())
        .map_err(|e| Error::Device(e.to_string()))?;
    pio.insert(
        DEBUG_EXIT_PORT,
        DEBUG_EXIT_LEN,
        Widths::ANY,
        Arc::new(Mutex::new(DebugExit::new(control.clone()))),
    )
    .map_err(|e| Error::Device(e.to_string()))?;
    let (manifest_path, manifest_file) = match p.manifest {
        Some((path, file)) => (path, Some(BufWriter::new(file))),
        None => (String::new(), None),
    };
    let manifest = Arc::new(Mutex::new(DebugConsole::new(manifest_file)));
    pio.insert(
        MANIFEST_PORT,
        DEBUG_CONSOLE_LEN,
        Widths::BYTE,
        manifest.clone(),
    )
    .map_err(|e| Error::Device(e.to_string()))?;
    // PCI configuration, host/ISA bridges and the PIIX3 IDE function with
    // the disk as primary master (IRQ 14, DMA straight into `space`).
    let (backend, mode, warning) = p.disk.into_backend();
    if let Some(w) = warning {
        eprintln!("vmdma: warning: {w}");
    }
    let completions = backend
        .completion_eventfd()
        .transpose()
        .map_err(|e| Error::Device(format!("disk completion eventfd: {e}")))?;
    // Where the disk's bytes go (RAM directly, bounce space, or a VMM
    // buffer), counted by address.
    let data_path = Arc::new(DataPathCounters::default());
    let ram = vm
        .ram()
        .slice(0, vm.ram().len())
        .map_err(|e| Error::Device(format!("guest RAM view: {e}")))?;
    let ranges = HostRanges {
        ram: ram.as_ptr() as usize..ram.as_ptr() as usize + ram.len(),
        bounce: {
            let arena = &bounce.0 as *const GuestBounceArena as usize;
            arena..arena + std::mem::size_of::<GuestBounceArena>()
        },
    };
    let backend = backend.with_accounting(ranges, data_path.clone());
    let chipset = Arc::new(Mutex::new(
        Chipset::new(
            &space,
            &pio_buffer.0,
            backend,
            IrqLine::new(vm.fd().clone(), IDE_IRQ),
        )
        .map_err(Error::Device)?,
    ));
    chipset
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .publish_commands(control.clone());
    pio.add_decoder(chipset.clone());
    let latch = Arc::new(MarkLatch::default());
    pio.insert(
        POST_CODE_PORT,
        POST_CODE_LEN,
        Widths::BYTE,
        Arc::new(Mutex::new(PostCode::new(latch.clone()))),
    )
    .map_err(|e| Error::Device(e.to_string()))?;

    let entry = boot::load(
        vm.ram(),
        &p.kernel,
        &p.cmdline,
        &[(MMIO_SCRATCH_BASE, MMIO_SCRATCH_LEN)],
    )?;
    let mut vcpu = vm.create_vcpu(0)?;
    vcpu.set_pvh_entry(entry)?;
    let coalesced_pio = p.coalesced_pio
        && coalesced::register(vm.fd())
            .map_err(|e| Error::Device(format!("KVM_REGISTER_COALESCED_MMIO: {e}")))?;
    if coalesced_pio {
        vcpu.enable_coalesced_ring()?;
    }

    let ctx = ExitContext {
        pio: &pio,
        mmio: &space,
        trace: p.trace,
    };
    let mut stats = ExitStats::default();
    // Without KVM_GET_STATS_FD (Linux < 5.14) the KVM counters are absent.
    let kvm_stats = vcpu.stats_fd().ok().and_then(KvmStats::new);
    let mut recorder = Recorder::new(latch, kvm_stats, data_path.clone());
    // The I/O thread lives in a scope inside everything it borrows (the
    // chipset, and through it guest RAM and the disk): it is stopped and
    // joined before any of that can go.
    let (result, wakeups) = std::thread::scope(|scope| {
        let io = match completions {
            Some((efd, pending)) => match IoThread::spawn(scope, efd, pending, &chipset, p.sandbox)
            {
                Ok(t) => Some(t),
                Err(e) => return (Err(Error::Thread(e)), 0),
            },
            None => None,
        };
        // Everything is open and mapped: from here on the vCPU thread may
        // only make the system calls on its list.
        let result = p
            .sandbox
            .enter(Role::Vcpu)
            .map_err(Error::Thread)
            .and_then(|()| run_vcpu(&mut vcpu, &ctx, control, &mut stats, &mut recorder));
        // From here on the vCPU thread shuts the devices down, with its own
        // bound: the supervisor stops kicking it.
        control.mark_left_guest();
        let wakeups = match io.map(IoThread::stop) {
            Some(Ok(n)) => n,
            Some(Err(e)) => return (result.and(Err(Error::Thread(e))), 0),
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
    // Whatever ended the run (guest exit, timeout, signal, an error), the
    // disk's requests in flight complete and the disk is flushed before guest
    // memory is unmapped.
    let shutdown = chipset
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .shutdown(p.shutdown_bound);
    if let Err(ShutdownError::Stuck(stuck)) = &shutdown {
        exit_with_disk_stuck(control, &result, stuck);
    }
    result?;
    shutdown.map_err(|e| Error::Fatal(e.to_string()))?;
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
    let (reason, stopped_at) = control
        .stop()
        .ok_or_else(|| Error::Fatal("the vCPU stopped without a reason".into()))?;
    let c = chipset.lock().unwrap_or_else(PoisonError::into_inner);
    let ide = c.ide_stats();
    let disk = c.disk().map(|d| DiskReport {
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
        // The peak RSS is read by the supervisor thread (the vCPU thread's
        // sandbox has no `open`).
        memory: MemoryUse {
            max_rss_kib: None,
            guest_ram_rss_kib: vm.ram().resident_bytes().map(|b| b / 1024),
        },
        coalesced_pio,
    })
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
    let why = crate::supervisor::describe(control.stop_reason());
    eprintln!(
        "vmdma: {why}, but {stuck}; exiting with status {EXIT_DISK_STUCK} without unmapping \
         guest memory (the kernel ends the process once it lets go of the requests)"
    );
    std::process::exit(i32::from(EXIT_DISK_STUCK))
}

/// A value on a page boundary (its first field is its data: see the
/// `repr(C)` of the arena and the PIO buffer).
#[repr(C, align(4096))]
struct PageAligned<T>(T);

/// Runs `vcpu` until a stop is requested or the VMM fails.
fn run_vcpu(
    vcpu: &mut Vcpu,
    ctx: &ExitContext<'_, '_>,
    control: &RunControl,
    stats: &mut ExitStats,
    recorder: &mut Recorder,
) -> Result<(), Error> {
    let mut coalesced = Vec::new();
    while !control.is_stopping() {
        let exit = vcpu.run(&mut coalesced)?;
        // Writes KVM coalesced come before the exit that ended the run.
        coalesced::apply(&mut coalesced, ctx, stats);
        let interrupted = matches!(exit, VcpuExit::Interrupted);
        if !interrupted {
            control.count_exit();
        }
        match handle_exit(exit, ctx, stats) {
            Action::Continue => {}
            Action::Stop(reason) => {
                control.request_stop(reason);
            }
            Action::Fail(msg) => return Err(Error::Fatal(msg)),
        }
        recorder.after_exit(stats);
        if interrupted && control.take_halt_probe() && vcpu.halted_with_interrupts_off()? {
            control.request_stop(StopReason::Shutdown(
                "the guest halted with interrupts disabled",
            ));
        }
    }
    Ok(())
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
