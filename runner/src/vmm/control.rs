//! Run control shared by the vCPU thread(s), the devices and the
//! supervisor: why the run stops, and a counter of VM exits that the
//! supervisor watches to spot a vCPU that went quiet.

use std::sync::Mutex;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use crate::devices::last_command::LastCommand;

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
}

/// Shared run state.
#[derive(Debug, Default)]
pub struct RunControl {
    reason: Mutex<Option<(StopReason, Instant)>>,
    stopping: AtomicBool,
    left_guest: AtomicBool,
    last_command: Mutex<Option<LastCommand>>,
    probe: AtomicBool,
    exits: AtomicU64,
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
        true
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
