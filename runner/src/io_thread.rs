//! The I/O thread: takes disk completions as they arrive and moves the
//! devices on (IDE state machine, bounce retries, IRQ 14), also while the
//! guest sits in `hlt` waiting for them.
//!
//! It sleeps in `epoll_wait` on two eventfds: the disk backend's completion
//! eventfd (io_uring signals it) and a stop eventfd. On a completion it
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

use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::eventfd::{EFD_NONBLOCK, EventFd};

use crate::devices::chipset::Chipset;
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

/// A running I/O thread; [`IoThread::stop`] ends it.
#[derive(Debug)]
pub struct IoThread<'scope> {
    stop: EventFd,
    handle: ScopedJoinHandle<'scope, Result<u64, IoThreadError>>,
}

impl<'scope> IoThread<'scope> {
    /// Starts the thread in `scope`, woken by `completions` (an eventfd
    /// the disk backend signals) to service `chipset` while `pending` (the
    /// backend's count of requests in the kernel) is not zero.
    pub fn spawn<'env, 'm: 'scope>(
        scope: &'scope Scope<'scope, 'env>,
        completions: EventFd,
        pending: Arc<AtomicUsize>,
        chipset: &'scope Mutex<Chipset<'m>>,
        sandbox: Sandbox,
    ) -> Result<Self, IoThreadError> {
        let stop = EventFd::new(EFD_NONBLOCK).map_err(IoThreadError::EventFd)?;
        let stop_rx = stop.try_clone().map_err(IoThreadError::EventFd)?;
        let epoll = Epoll::new().map_err(IoThreadError::Epoll)?;
        for (fd, tag) in [
            (completions.as_raw_fd(), COMPLETION),
            (stop_rx.as_raw_fd(), STOP),
        ] {
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
                run(&epoll, &completions, &pending, chipset)
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
    chipset: &Mutex<Chipset<'_>>,
) -> Result<u64, IoThreadError> {
    let mut events = [EpollEvent::default(); 2];
    let mut wakeups = 0u64;
    loop {
        let n = match epoll.wait(-1, &mut events) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(IoThreadError::Wait(e)),
        };
        let mut service = false;
        for ev in events.iter().take(n) {
            match ev.data() {
                STOP => return Ok(wakeups),
                COMPLETION => service = true,
                _ => {}
            }
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
