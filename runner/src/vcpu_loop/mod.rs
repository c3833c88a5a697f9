//! The vCPU loop: enter the guest, apply the port writes KVM coalesced,
//! dispatch the exit to the buses ([`dispatch::handle_exit`], a free
//! function tested without KVM), record the counters, and stop when the
//! [`RunControl`] says so (or park between two entries while it says
//! the VM is paused).

pub mod coalesced;
pub mod dispatch;

use thiserror::Error;

use crate::control::{RunControl, StopReason};
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

/// Runs `vcpu` until a stop is requested or the VMM fails. `service`
/// moves the devices on when the monitor asks for it
/// ([`RunControl::request_service`]).
pub fn run(
    vcpu: &mut Vcpu,
    ctx: &ExitContext<'_, '_>,
    control: &RunControl,
    service: &dyn Fn(),
    stats: &mut ExitStats,
    recorder: &mut Recorder,
) -> Result<(), LoopError> {
    let mut coalesced = Vec::new();
    loop {
        // The monitor's `stop`: park here, out of the guest, until `cont`.
        control.park_if_paused(service);
        if control.is_stopping() {
            break;
        }
        if control.take_service() {
            service();
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
