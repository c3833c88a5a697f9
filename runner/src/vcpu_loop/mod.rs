//! The vCPU loop: enter the guest, apply the port writes KVM coalesced,
//! dispatch the exit to the buses ([`dispatch::handle_exit`], a free
//! function tested without KVM), record the counters, and stop when the
//! [`RunControl`] says so (or park between two entries while it says
//! the VM is paused).

pub mod coalesced;
pub mod dispatch;

use thiserror::Error;

use crate::control::{Parked, RunControl, SnapshotJob, StopReason};
use crate::kvm::vcpu::{Vcpu, VcpuError};
use crate::metrics::exits::ExitStats;
use crate::metrics::marks::Recorder;

use dispatch::{Action, ExitContext, handle_exit};

/// Why the vCPU loop failed.
#[derive(Debug, Error)]
pub enum LoopError {
    /// A vCPU operation failed.
    #[error("vCPU: {0}")]
    Vcpu(#[from] VcpuError),
    /// The VM stopped in a way the VMM cannot handle (the exit, named).
    #[error("{0}")]
    Exit(String),
}

/// What the monitor can have the vCPU thread do besides running the guest.
pub struct Hooks<'a> {
    /// Move the devices on ([`RunControl::request_service`]).
    pub service: &'a dyn Fn(),
    /// Write a snapshot of the paused VM with this vCPU.
    pub snapshot: &'a dyn Fn(&Vcpu, SnapshotJob),
}

/// Runs `vcpu` until a stop is requested or the VMM fails.
pub fn run(
    vcpu: &mut Vcpu,
    ctx: &ExitContext<'_, '_>,
    control: &RunControl,
    hooks: &Hooks<'_>,
    stats: &mut ExitStats,
    recorder: &mut Recorder,
) -> Result<(), LoopError> {
    let mut coalesced = Vec::new();
    loop {
        // The monitor's `stop`: first finish the access the last exit
        // handled (KVM's state is consistent only then: what a snapshot
        // reads), then park here, out of the guest, until `cont`. The
        // completion follows the request the park is for: a pause asked
        // for after `pause_seen` does not park here (parking without the
        // completion let a snapshot cut a `rep insd` in two, and the
        // restored guest read the device again).
        if let Some(seen) = control.pause_seen() {
            if !control.is_stopping()
                && let Some(reason) =
                    complete_pending_access(vcpu, ctx, control, stats, &mut coalesced)?
            {
                control.request_stop(reason);
            }
            let v: &Vcpu = vcpu;
            control.park(seen, &mut |work| match work {
                Parked::Service => (hooks.service)(),
                Parked::Snapshot(job) => (hooks.snapshot)(v, job),
            });
        }
        if control.is_stopping() {
            break;
        }
        if control.take_service() {
            (hooks.service)();
        }
        let exit = vcpu.run(&mut coalesced)?;
        // Writes KVM coalesced come before the exit that ended the run.
        coalesced::apply(&mut coalesced, ctx, stats);
        let interrupted = matches!(exit, crate::kvm::exit::VcpuExit::Interrupted);
        if !interrupted {
            control.count_exit();
        }
        match handle_exit(exit, ctx, stats) {
            Action::Continue => {}
            Action::Stop(reason) => {
                control.request_stop(reason);
            }
            Action::Fail(msg) => return Err(LoopError::Exit(msg)),
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

/// Runs `vcpu` with `immediate_exit` until KVM returns without entering
/// the guest: the access the last exit handled is completed (a `rep outsw`
/// may need more exits to finish, which are handled as usual). Returns a
/// stop reason if one of those exits asks to stop.
fn complete_pending_access(
    vcpu: &mut Vcpu,
    ctx: &ExitContext<'_, '_>,
    control: &RunControl,
    stats: &mut ExitStats,
    coalesced: &mut Vec<crate::kvm::coalesced::CoalescedWrite>,
) -> Result<Option<StopReason>, LoopError> {
    vcpu.set_immediate_exit(true);
    let mut stop = None;
    // Bounded: a string access needs at most one exit per element.
    for _ in 0..MAX_COMPLETION_EXITS {
        let exit = match vcpu.run(coalesced) {
            Ok(e) => e,
            Err(e) => {
                vcpu.set_immediate_exit(false);
                return Err(e.into());
            }
        };
        coalesced::apply(coalesced, ctx, stats);
        if matches!(exit, crate::kvm::exit::VcpuExit::Interrupted) {
            break;
        }
        control.count_exit();
        match handle_exit(exit, ctx, stats) {
            Action::Continue => {}
            Action::Stop(reason) => stop = Some(reason),
            Action::Fail(msg) => {
                vcpu.set_immediate_exit(false);
                return Err(LoopError::Exit(msg));
            }
        }
    }
    vcpu.set_immediate_exit(false);
    Ok(stop)
}

/// Exits [`complete_pending_access`] handles at most (a `rep` string
/// access of a 4 KiB page one byte at a time, and then some).
const MAX_COMPLETION_EXITS: usize = 8192;
