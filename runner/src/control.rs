//! Run control shared by the vCPU thread(s), the devices and the
//! supervisor: why the run stops, and a counter of VM exits that the
//! supervisor watches to spot a vCPU that went quiet; and the guest's last
//! ATA command (shadowed by `devices::last_command`), named when the disk
//! does not answer at shutdown; and the pause of the QMP monitor's `stop`
//! (the vCPU parks between two guest entries until `cont`).

use std::fmt;
use std::fs::File;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use vmdma_core::ide::AtaCommand;

/// Why a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// The guest wrote this value to the debug-exit port.
    GuestExit(u32),
    /// The guest shut down: triple fault, or halted with interrupts off.
    Shutdown(&'static str),
    /// The guest did something KVM cannot carry out (an instruction it
    /// cannot emulate, a fault while an event is delivered): the message
    /// names the exit and the guest's RIP.
    GuestFault(String),
    /// `--timeout` expired.
    Timeout,
    /// SIGINT or SIGTERM (the signal number) asked the runner to stop.
    Signal(i32),
    /// The QMP monitor's `quit`.
    Quit,
}

/// Shared run state.
#[derive(Debug, Default)]
pub struct RunControl {
    reason: Mutex<Option<(StopReason, Instant)>>,
    stopping: AtomicBool,
    left_guest: AtomicBool,
    last_command: Mutex<Option<LastCommand>>,
    probe: AtomicBool,
    service: AtomicBool,
    exits: AtomicU64,
    pause: Mutex<Pause>,
    pause_changed: Condvar,
    snapshot: Mutex<Option<SnapshotJob>>,
    opener: Mutex<Option<Opener>>,
}

/// Passes a [`HostTask`] to the supervising thread; false if it is gone.
pub struct Opener(pub Box<dyn Fn(HostTask) -> bool + Send>);

impl fmt::Debug for Opener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Opener")
    }
}

/// A snapshot the monitor asked for: the file, opened for it by the
/// supervising thread, and where the vCPU thread reports the result.
#[derive(Debug)]
pub struct SnapshotJob {
    /// The file to write (empty, regular).
    pub file: File,
    /// The result: what was written, or the one-line error.
    pub reply: mpsc::Sender<Result<SnapshotDone, String>>,
}

/// What a snapshot wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SnapshotDone {
    /// Bytes of the file.
    pub file_bytes: u64,
    /// Guest RAM in it (pages that are not zero).
    pub ram_bytes: u64,
    /// Pages left out because they are zero.
    pub zero_pages: u64,
    /// From the vCPU thread taking the job to the file being durable.
    pub took: Duration,
}

/// Work for a parked vCPU thread.
#[derive(Debug)]
pub enum Parked {
    /// Service the devices (`RunControl::request_service`).
    Service,
    /// Write a snapshot.
    Snapshot(SnapshotJob),
}

/// Work for the supervising thread, the one thread without a seccomp
/// filter (opening a snapshot file, a new CD-ROM medium): the monitor may
/// not open files.
pub struct HostTask(pub Box<dyn FnOnce() + Send>);

impl fmt::Debug for HostTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HostTask")
    }
}

/// A pause request the vCPU thread saw ([`RunControl::pause_seen`]); it
/// is what [`RunControl::park`] takes, so a thread parks only for a
/// request it saw before it made its state consistent.
#[derive(Debug)]
#[must_use = "park with it, once the state a snapshot reads is consistent"]
pub struct PauseSeen {
    _private: (),
}

/// The pause handshake between the monitor and the vCPU.
#[derive(Debug, Default)]
struct Pause {
    /// The monitor asked the vCPU to stay out of the guest.
    requested: bool,
    /// The vCPU is parked (out of the guest, waiting for `cont`).
    parked: bool,
}

impl RunControl {
    /// A running state.
    pub fn new() -> Self {
        RunControl::default()
    }

    /// Asks every vCPU to stop for `reason`. The first request wins; later
    /// ones return `false`.
    pub fn request_stop(&self, reason: StopReason) -> bool {
        let mut r = self.reason.lock().unwrap_or_else(PoisonError::into_inner);
        if r.is_some() {
            return false;
        }
        *r = Some((reason, Instant::now()));
        self.stopping.store(true, Ordering::SeqCst);
        drop(r);
        // A parked vCPU leaves its park to end the run.
        let _p = self.pause.lock().unwrap_or_else(PoisonError::into_inner);
        self.pause_changed.notify_all();
        true
    }

    /// Asks the vCPU to park before it next enters the guest (the
    /// monitor's `stop`; the caller kicks it out of `KVM_RUN`).
    pub fn request_pause(&self) {
        self.pause
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .requested = true;
    }

    /// Withdraws a pause request and wakes a parked vCPU (`cont`, or a
    /// `stop` that gave up).
    pub fn resume(&self) {
        let mut p = self.pause.lock().unwrap_or_else(PoisonError::into_inner);
        p.requested = false;
        self.pause_changed.notify_all();
    }

    /// True while the VM is paused: a pause is requested and the vCPU has
    /// parked (from a successful `stop` to the next `cont`).
    pub fn is_paused(&self) -> bool {
        let p = self.pause.lock().unwrap_or_else(PoisonError::into_inner);
        p.requested && p.parked
    }

    /// True while a pause is requested (parked or not yet).
    pub fn pause_requested(&self) -> bool {
        self.pause
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .requested
    }

    /// Waits up to `timeout` for the vCPU to park; true if it is parked.
    pub fn wait_parked(&self, timeout: Duration) -> bool {
        let p = self.pause.lock().unwrap_or_else(PoisonError::into_inner);
        let (p, _) = self
            .pause_changed
            .wait_timeout_while(p, timeout, |p| !p.parked)
            .unwrap_or_else(PoisonError::into_inner);
        p.parked
    }

    /// Asks the vCPU thread to service the devices (the monitor released
    /// requests the disk kept back: the vCPU thread submits them, as the
    /// monitor's sandbox has no disk system calls). Wakes a parked vCPU;
    /// the caller kicks a running one.
    pub fn request_service(&self) {
        self.service.store(true, Ordering::SeqCst);
        let _p = self.pause.lock().unwrap_or_else(PoisonError::into_inner);
        self.pause_changed.notify_all();
    }

    /// Takes a pending service request.
    pub fn take_service(&self) -> bool {
        self.service.swap(false, Ordering::SeqCst)
    }

    /// Asks the parked vCPU thread to write a snapshot (the caller paused
    /// the VM first). Replaces a job not yet taken (its reply channel then
    /// closes, which its waiter sees).
    pub fn request_snapshot(&self, job: SnapshotJob) {
        *self.snapshot.lock().unwrap_or_else(PoisonError::into_inner) = Some(job);
        let _p = self.pause.lock().unwrap_or_else(PoisonError::into_inner);
        self.pause_changed.notify_all();
    }

    fn take_snapshot(&self) -> Option<SnapshotJob> {
        self.snapshot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Lets the supervising thread run [`HostTask`]s
    /// ([`RunControl::on_supervisor`]).
    pub fn set_opener(&self, opener: Opener) {
        *self.opener.lock().unwrap_or_else(PoisonError::into_inner) = Some(opener);
    }

    /// Runs `f` on the supervising thread (which may open files) and
    /// returns its result, waiting at most `bound`.
    pub fn on_supervisor<R: Send + 'static>(
        &self,
        bound: Duration,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, &'static str> {
        let (tx, rx) = mpsc::channel();
        let task = HostTask(Box::new(move || {
            let _ = tx.send(f());
        }));
        let sent = self
            .opener
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(|o| (o.0)(task));
        if !sent {
            return Err("no thread opens files in this run");
        }
        rx.recv_timeout(bound)
            .map_err(|_| "the supervising thread did not answer in time")
    }

    /// On the vCPU thread, between two guest entries: `Some` if a pause is
    /// requested. Only this value lets the thread [`park`](Self::park), so
    /// whatever the thread does between seeing the request and parking
    /// (finishing the access the last exit handled, which a snapshot needs)
    /// happened after the request: a pause requested later is not seen
    /// here and the thread enters the guest once more (the monitor's kick
    /// brings it back).
    pub fn pause_seen(&self) -> Option<PauseSeen> {
        self.pause_requested().then_some(PauseSeen { _private: () })
    }

    /// Parks the vCPU thread for the pause it saw (unless it was withdrawn
    /// meanwhile) until it is withdrawn or the run stops, running `work`
    /// for every service request or snapshot meanwhile. Requests in flight
    /// go on completing (the I/O thread delivers them and raises the IRQ
    /// line; the in-kernel irqchip holds it for the vCPU's next entry).
    pub fn park(&self, seen: PauseSeen, work: &mut dyn FnMut(Parked)) {
        let PauseSeen { _private: () } = seen;
        let mut p = self.pause.lock().unwrap_or_else(PoisonError::into_inner);
        if !p.requested {
            return;
        }
        p.parked = true;
        self.pause_changed.notify_all();
        while p.requested && !self.is_stopping() {
            let job = if self.take_service() {
                Some(Parked::Service)
            } else {
                self.take_snapshot().map(Parked::Snapshot)
            };
            if let Some(job) = job {
                drop(p);
                work(job);
                p = self.pause.lock().unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            // Bounded so that a stop is seen even without a notification.
            p = self
                .pause_changed
                .wait_timeout(p, Duration::from_millis(100))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        p.parked = false;
        self.pause_changed.notify_all();
    }

    /// True once a stop was requested.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// The stop reason, once requested.
    pub fn stop_reason(&self) -> Option<StopReason> {
        self.stop().map(|(r, _)| r)
    }

    /// The stop reason and when it was requested.
    pub fn stop(&self) -> Option<(StopReason, Instant)> {
        self.reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The vCPU thread says it has left the guest for good and is shutting
    /// the devices down (draining and flushing the disk, which has its own
    /// bound): kicking it is no use any more.
    pub fn mark_left_guest(&self) {
        self.left_guest.store(true, Ordering::SeqCst);
    }

    /// True once the vCPU thread has left the guest for good.
    pub fn has_left_guest(&self) -> bool {
        self.left_guest.load(Ordering::SeqCst)
    }

    /// Notes the guest's latest ATA command (published by the chipset).
    pub fn note_command(&self, c: LastCommand) {
        *self
            .last_command
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(c);
    }

    /// The guest's latest ATA command, if any.
    pub fn last_command(&self) -> Option<LastCommand> {
        *self
            .last_command
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts one VM exit.
    pub fn count_exit(&self) {
        self.exits.fetch_add(1, Ordering::Relaxed);
    }

    /// VM exits so far.
    pub fn exits(&self) -> u64 {
        self.exits.load(Ordering::Relaxed)
    }

    /// Asks the vCPU to check, at its next interruption, whether it is
    /// halted for good.
    pub fn request_halt_probe(&self) {
        self.probe.store(true, Ordering::SeqCst);
    }

    /// Takes a pending halt-probe request.
    pub fn take_halt_probe(&self) -> bool {
        self.probe.swap(false, Ordering::SeqCst)
    }
}

/// A command the guest issued, with its address and length where it has
/// them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LastCommand {
    /// The opcode written to the Command register.
    pub opcode: u8,
    /// Device 0 or 1.
    pub device: u8,
    /// First sector and sectors (read and write commands in LBA mode);
    /// for DATA SET MANAGEMENT the count is in 512-byte blocks of ranges.
    pub range: Option<(u64, u32)>,
}

impl fmt::Display for LastCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match AtaCommand::decode(self.opcode) {
            AtaCommand::ReadSectors { .. } => "READ SECTORS",
            AtaCommand::ReadMultiple { .. } => "READ MULTIPLE",
            AtaCommand::WriteSectors { .. } => "WRITE SECTORS",
            AtaCommand::WriteMultiple { .. } => "WRITE MULTIPLE",
            AtaCommand::ReadDma { .. } => "READ DMA",
            AtaCommand::WriteDma { .. } => "WRITE DMA",
            AtaCommand::ReadVerify { .. } => "READ VERIFY SECTORS",
            AtaCommand::FlushCache { .. } => "FLUSH CACHE",
            AtaCommand::DataSetManagement => "DATA SET MANAGEMENT",
            _ => "command",
        };
        write!(f, "{name} ({:#04x}) on device {}", self.opcode, self.device)?;
        match self.range {
            Some((_, n)) if self.opcode == vmdma_core::ide::opcode::DATA_SET_MANAGEMENT => {
                write!(f, ", {n} block(s) of ranges")?
            }
            Some((lba, n)) => write!(f, ", sector {lba}, {n} sector(s)")?,
            None => {}
        }
        Ok(())
    }
}

/// How the run was asked to end, for the messages of a stop that could not
/// end cleanly.
pub fn describe(reason: Option<StopReason>) -> String {
    match reason {
        Some(StopReason::GuestExit(v)) => format!("guest exit value {v}"),
        Some(StopReason::Shutdown(why)) => format!("guest shutdown ({why})"),
        Some(StopReason::GuestFault(_)) => "guest fault".to_string(),
        Some(StopReason::Timeout) => "timeout".to_string(),
        Some(StopReason::Signal(sig)) => format!("stopped by signal {sig}"),
        Some(StopReason::Quit) => "quit (QMP)".to_string(),
        None => "the run ended".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_pause_no_park() {
        let c = RunControl::new();
        assert!(c.pause_seen().is_none());
    }

    #[test]
    fn a_pause_withdrawn_after_it_was_seen_does_not_park() {
        let c = RunControl::new();
        c.request_pause();
        let seen = c.pause_seen().expect("requested");
        c.resume();
        c.park(seen, &mut |_| panic!("no work while not parked"));
        assert!(!c.is_paused());
    }

    #[test]
    fn the_thread_parks_for_the_pause_it_saw_until_cont() {
        let c = RunControl::new();
        c.request_pause();
        std::thread::scope(|s| {
            let vcpu = s.spawn(|| {
                let seen = c.pause_seen().expect("requested");
                let mut services = 0;
                c.park(seen, &mut |w| {
                    assert!(matches!(w, Parked::Service));
                    services += 1;
                });
                services
            });
            assert!(c.wait_parked(Duration::from_secs(10)));
            assert!(c.is_paused());
            c.request_service();
            // The service runs while parked; then `cont`.
            while c.service.load(Ordering::SeqCst) {
                std::thread::yield_now();
            }
            c.resume();
            assert_eq!(vcpu.join().unwrap(), 1);
        });
        assert!(!c.is_paused());
    }

    #[test]
    fn a_stop_ends_the_park() {
        let c = RunControl::new();
        c.request_pause();
        std::thread::scope(|s| {
            let vcpu = s.spawn(|| {
                let seen = c.pause_seen().expect("requested");
                c.park(seen, &mut |_| {});
            });
            assert!(c.wait_parked(Duration::from_secs(10)));
            c.request_stop(StopReason::Quit);
            vcpu.join().unwrap();
        });
    }
}
