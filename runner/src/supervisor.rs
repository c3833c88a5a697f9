//! The supervisor: runs the VM on a vCPU thread and watches it from the
//! main thread.
//!
//! It enforces `--timeout`, turns SIGINT and SIGTERM into an orderly stop
//! (the vCPU leaves `KVM_RUN`, then the disk's requests in flight complete
//! and the disk is flushed before memory is unmapped, as after any other
//! end of the run), and it spots a guest that halted with interrupts
//! disabled (the in-kernel irqchip handles `hlt` without exiting to user
//! space): when a probe interval passes without any VM exit, it asks the
//! vCPU to check its state and kicks it out of `KVM_RUN` with a signal.
//!
//! Stopping has two bounds. Kicks repeat until the vCPU thread has left
//! the guest, at most [`MAX_STOP_KICKS`] times (5 s); a vCPU that never
//! leaves is blocked in the kernel (status 74: nothing was flushed). Once
//! it has left, it shuts the devices down under the shutdown bound (30 s) and, if the disk
//! still has requests then, ends the process itself (status 74, see
//! `machine::run`); the supervisor only waits, with a margin, in case that
//! thread is stuck elsewhere.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use vmm_sys_util::signal::{Killable, register_signal_handler};

use crate::control::{HostTask, Opener, RunControl, StopReason, describe};
use crate::error::{EXIT_DISK_STUCK, Error};
use crate::kick::kick_signal;
use crate::metrics::report::RunReport;

/// How long the guest may run without VM exits before the halt probe (also
/// how often a termination signal is looked at, at the latest).
const PROBE_INTERVAL: Duration = Duration::from_millis(100);
/// Pause between kicks while waiting for a stopping vCPU.
const KICK_INTERVAL: Duration = Duration::from_millis(10);
/// Kicks sent to a stopping vCPU before giving up on it (5 s).
const MAX_STOP_KICKS: u32 = 500;
/// How much longer than the shutdown bound the supervisor waits for the
/// vCPU thread once it has left the guest: the drain and the flush may
/// each overrun the bound by one backend wait (2 s).
const SHUTDOWN_MARGIN: Duration = Duration::from_secs(10);

extern "C" fn on_kick(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // Nothing to do: the signal only makes KVM_RUN return EINTR.
}

/// The termination signal received, 0 if none (set by the handler; read by
/// the supervisor loop).
static STOP_SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_stop_signal(num: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // Async-signal-safe: one atomic store.
    STOP_SIGNAL.store(num, Ordering::SeqCst);
}

/// Runs `vcpu` (which builds the VM and runs vCPU 0 on the thread it is
/// given, under the shared [`RunControl`]) to its end, with `timeout` and
/// `shutdown_bound` (how long shutting down may wait for the disk).
pub fn run<F>(
    shutdown_bound: Duration,
    timeout: Option<Duration>,
    vcpu: F,
) -> Result<RunReport, Error>
where
    F: FnOnce(&Arc<RunControl>) -> Result<RunReport, Error> + Send + 'static,
{
    register_signal_handler(kick_signal(), on_kick).map_err(|source| Error::SignalHandler {
        what: "vCPU kick",
        source,
    })?;
    for sig in [libc::SIGINT, libc::SIGTERM] {
        register_signal_handler(sig, on_stop_signal).map_err(|source| Error::SignalHandler {
            what: if sig == libc::SIGINT {
                "SIGINT"
            } else {
                "SIGTERM"
            },
            source,
        })?;
    }
    let shutdown_limit = shutdown_bound + SHUTDOWN_MARGIN;
    crate::sandbox::allocator::prepare();
    let control = Arc::new(RunControl::new());
    let (done_tx, done_rx) = mpsc::channel::<Wake>();
    // The monitor has this thread open snapshot files (the others are
    // sandboxed without `open`).
    let open_tx = done_tx.clone();
    control.set_opener(Opener(Box::new(move |task| {
        open_tx.send(Wake::Task(task)).is_ok()
    })));
    let vcpu_control = control.clone();
    let handle = thread::Builder::new()
        .name("vcpu0".into())
        .spawn(move || {
            let r = vcpu(&vcpu_control);
            // The receiver only disappears if the supervisor gave up.
            let _ = done_tx.send(Wake::VcpuDone);
            r
        })
        .map_err(Error::VcpuThreadSpawn)?;

    // A timeout too long for `Instant` (the CLI caps it at a year, but this
    // function takes any `Duration`) means no deadline at all.
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    let mut last_exits = control.exits();
    let mut stop_kicks = 0u32;
    let mut left_guest_at: Option<Instant> = None;
    loop {
        let wait = if control.has_left_guest() {
            PROBE_INTERVAL
        } else if control.is_stopping() {
            KICK_INTERVAL
        } else {
            let to_deadline = deadline
                .map(|d| d.saturating_duration_since(Instant::now()))
                .unwrap_or(PROBE_INTERVAL);
            to_deadline.min(PROBE_INTERVAL)
        };
        match done_rx.recv_timeout(wait) {
            Ok(Wake::VcpuDone) | Err(RecvTimeoutError::Disconnected) => break,
            Ok(Wake::Task(task)) => {
                (task.0)();
                continue;
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
        if control.has_left_guest() {
            // The vCPU thread is draining and flushing the disk under its
            // own bound, and ends the process itself if the disk does not
            // answer; this is only the safety net if it is stuck elsewhere.
            let since = *left_guest_at.get_or_insert_with(Instant::now);
            if since.elapsed() > shutdown_limit {
                eprintln!(
                    "vmdma: error: shutting down did not finish within {:.1} s; the disk was \
                     NOT flushed; exiting with status {EXIT_DISK_STUCK} without unmapping \
                     guest memory",
                    shutdown_limit.as_secs_f64()
                );
                // No destructor runs: guest memory stays mapped for as long
                // as the kernel may use it (see `machine::run`).
                std::process::exit(i32::from(EXIT_DISK_STUCK));
            }
            continue;
        }
        if control.is_stopping() {
            stop_kicks += 1;
            if stop_kicks > MAX_STOP_KICKS {
                // The vCPU does not leave the guest: it is blocked in the
                // kernel (a disk request submitted inside a port access
                // that never returns, e.g. a FUSE or NFS file that does not
                // answer), so nothing was drained or flushed. Returning ends
                // the process without unwinding the vCPU thread, so guest
                // memory stays mapped for as long as the kernel may use it.
                let last = control
                    .last_command()
                    .map_or_else(|| "none".to_string(), |c| c.to_string());
                return Err(Error::NotFlushed(format!(
                    "{}, but the vCPU did not leave the guest within {} s (blocked in the \
                     kernel, e.g. by a disk request that does not complete; the guest's last \
                     command: {last}); the disk was NOT flushed",
                    describe(control.stop_reason()),
                    (KICK_INTERVAL * MAX_STOP_KICKS).as_secs(),
                )));
            }
            let _ = handle.kill(kick_signal());
            continue;
        }
        let sig = STOP_SIGNAL.load(Ordering::SeqCst);
        if sig != 0 {
            control.request_stop(StopReason::Signal(sig));
            let _ = handle.kill(kick_signal());
            continue;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            control.request_stop(StopReason::Timeout);
            let _ = handle.kill(kick_signal());
            continue;
        }
        let exits = control.exits();
        // A parked vCPU (the monitor's `stop`) makes no exits: not a halt.
        if exits == last_exits && !control.is_paused() {
            control.request_halt_probe();
            let _ = handle.kill(kick_signal());
        }
        last_exits = exits;
    }
    handle.join().map_err(|_| Error::VcpuThreadPanicked)?
}

/// What wakes the supervising thread besides its timer.
enum Wake {
    /// The vCPU thread ended.
    VcpuDone,
    /// The monitor needs something only this thread may do (open a file).
    Task(HostTask),
}
