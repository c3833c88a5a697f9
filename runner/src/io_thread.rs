//! The I/O thread: takes disk completions as they arrive and moves the
//! devices on (IDE state machine, bounce retries, IRQ 14), also while the
//! guest sits in `hlt` waiting for them.
//!
//! It sleeps in `epoll_wait` on up to three eventfds: the disk backend's
//! completion eventfd (io_uring signals it), a stop eventfd, and the
//! backend's submission kick: io_uring requests that run on a kernel worker
//! are handed to the kernel from this thread, so that the task work the
//! kernel leaves for their submitter interrupts this thread's `epoll_wait`
//! and not the vCPU's `KVM_RUN` (see `disk::uring`). On a completion it
//! takes the chipset's lock and calls [`Chipset::service`]; the interrupt is
//! raised from this thread with `KVM_IRQ_LINE`, which KVM allows from any
//! thread of the VM's process and which wakes a vCPU halted in the kernel.
//! The vCPU thread services the chipset too after each port access, so an
//! inline completion (page-cache hit) is delivered there without a thread
//! hop; whoever takes the lock first delivers, the other finds nothing.

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread::{Scope, ScopedJoinHandle};
use std::time::Duration;

use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::eventfd::{EFD_NONBLOCK, EventFd};

use crate::devices::chipset::Chipset;
use crate::disk::uring::Submitter;
use crate::sandbox::{Role, Sandbox, SandboxError};

/// Why the I/O thread could not start, failed, or could not be stopped.
#[derive(Debug, thiserror::Error)]
pub enum IoThreadError {
    /// Its stop eventfd could not be created.
    #[error("I/O thread eventfd: {0}")]
    EventFd(std::io::Error),
    /// Its epoll instance could not be set up.
    #[error("I/O thread epoll: {0}")]
    Epoll(std::io::Error),
    /// The thread could not be started.
    #[error("cannot start the I/O thread: {0}")]
    Spawn(std::io::Error),
    /// The thread could not enter its sandbox.
    #[error(transparent)]
    Sandbox(SandboxError),
    /// The thread ended before it said whether it is sandboxed.
    #[error("the I/O thread ended at its start")]
    EndedAtStart,
    /// `epoll_wait` failed.
    #[error("I/O thread epoll_wait: {0}")]
    Wait(std::io::Error),
    /// The stop eventfd could not be written.
    #[error("stopping the I/O thread: {0}")]
    Stop(std::io::Error),
    /// The thread panicked.
    #[error("the I/O thread panicked")]
    Panicked,
}

const COMPLETION: u64 = 1;
const STOP: u64 = 2;
const SUBMIT: u64 = 3;

/// The first pause before entering the kernel again after a passing failure
/// (doubling up to [`SUBMIT_BACKOFF_MAX`]): the entries stay queued.
const SUBMIT_BACKOFF: Duration = Duration::from_micros(50);
const SUBMIT_BACKOFF_MAX: Duration = Duration::from_millis(10);

/// A running I/O thread; [`IoThread::stop`] ends it.
#[derive(Debug)]
pub struct IoThread<'scope> {
    stop: EventFd,
    handle: ScopedJoinHandle<'scope, Result<u64, IoThreadError>>,
}

impl<'scope> IoThread<'scope> {
    /// Starts the thread in `scope`, woken by `completions` (an eventfd
    /// the disk backend signals) to service `chipset` while `pending` (the
    /// backend's count of requests in the kernel) is not zero, and by
    /// `submitter`'s kick to hand queued requests to the kernel.
    pub fn spawn<'env, 'm: 'scope>(
        scope: &'scope Scope<'scope, 'env>,
        completions: EventFd,
        pending: Arc<AtomicUsize>,
        submitter: Option<Submitter>,
        chipset: &'scope Mutex<Chipset<'m>>,
        sandbox: Sandbox,
    ) -> Result<Self, IoThreadError> {
        let stop = EventFd::new(EFD_NONBLOCK).map_err(IoThreadError::EventFd)?;
        let stop_rx = stop.try_clone().map_err(IoThreadError::EventFd)?;
        let epoll = Epoll::new().map_err(IoThreadError::Epoll)?;
        let kick = submitter.as_ref().map(|s| (s.kick_fd(), SUBMIT));
        for (fd, tag) in [
            (completions.as_raw_fd(), COMPLETION),
            (stop_rx.as_raw_fd(), STOP),
        ]
        .into_iter()
        .chain(kick)
        {
            epoll
                .ctl(
                    ControlOperation::Add,
                    fd,
                    EpollEvent::new(EventSet::IN, tag),
                )
                .map_err(IoThreadError::Epoll)?;
        }
        // The thread reports whether it entered its sandbox before it
        // serves anything.
        let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<(), SandboxError>>(1);
        let handle = std::thread::Builder::new()
            .name("vmdma-io".into())
            .spawn_scoped(scope, move || {
                let entered = sandbox.enter(Role::Io);
                let ok = entered.is_ok();
                let _ = ready_tx.send(entered);
                if !ok {
                    return Ok(0);
                }
                run(&epoll, &completions, &pending, submitter.as_ref(), chipset)
            })
            .map_err(IoThreadError::Spawn)?;
        let thread = IoThread { stop, handle };
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(thread),
            Ok(Err(e)) => {
                let _ = thread.stop();
                Err(IoThreadError::Sandbox(e))
            }
            Err(_) => Err(thread.stop().err().unwrap_or(IoThreadError::EndedAtStart)),
        }
    }

    /// Stops the thread and waits for it; returns how many wake-ups it
    /// serviced.
    pub fn stop(self) -> Result<u64, IoThreadError> {
        self.stop.write(1).map_err(IoThreadError::Stop)?;
        self.handle.join().map_err(|_| IoThreadError::Panicked)?
    }
}

fn run(
    epoll: &Epoll,
    completions: &EventFd,
    pending: &AtomicUsize,
    submitter: Option<&Submitter>,
    chipset: &Mutex<Chipset<'_>>,
) -> Result<u64, IoThreadError> {
    let mut events = [EpollEvent::default(); 3];
    let mut wakeups = 0u64;
    // Entries still queued after a passing failure to enter the kernel:
    // tried again after this pause (epoll's timeout) instead of sleeping
    // forever.
    let mut retry: Option<Duration> = None;
    loop {
        let timeout = retry.map_or(-1, |d| {
            i32::try_from(d.as_millis().max(1)).unwrap_or(i32::MAX)
        });
        let n = match epoll.wait(timeout, &mut events) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(IoThreadError::Wait(e)),
        };
        let mut service = false;
        let mut submit = n == 0 && retry.is_some();
        for ev in events.iter().take(n) {
            match ev.data() {
                STOP => return Ok(wakeups),
                COMPLETION => service = true,
                SUBMIT => submit = true,
                _ => {}
            }
        }
        if let (true, Some(s)) = (submit, submitter) {
            // The entries stay in the ring until the kernel takes them;
            // only the pause grows while it refuses.
            retry = match s.enter() {
                Ok(()) => None,
                Err(_) => Some(
                    retry
                        .map_or(SUBMIT_BACKOFF, |d| d.saturating_mul(2))
                        .min(SUBMIT_BACKOFF_MAX),
                ),
            };
        }
        if service {
            // Clear the eventfd first: a completion that lands after the
            // service below signals it again.
            let _ = completions.read();
            // An inline completion signals too, but the vCPU thread has
            // already taken it (nothing left in the kernel): no lock needed.
            if pending.load(Ordering::Acquire) == 0 {
                continue;
            }
            wakeups += 1;
            chipset
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .service();
        }
    }
}
