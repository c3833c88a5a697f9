//! The KVM side: VM and RAM setup, vCPUs, exit decoding and dispatch, and
//! the run control shared with devices and the supervisor.

pub mod coalesced;
pub mod control;
pub mod exit;
pub mod kvm_stats;
pub mod memory;
pub mod vcpu;
pub mod vm;
