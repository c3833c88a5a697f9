//! KVM primitives: the VM and its RAM slot, vCPUs (`KVM_RUN` and exit
//! decoding into [`exit::VcpuExit`]), and coalesced-PIO registration.
//! Nothing here knows about devices or the exit loop; `boot/` and
//! `devices/` build on these, and `vcpu_loop` drives them.

pub mod coalesced;
pub mod exit;
pub mod memory;
pub mod state;
pub mod vcpu;
pub mod vm;
