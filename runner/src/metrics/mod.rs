//! What a run measures and reports: `--stats` exit counters ([`exits`]),
//! the `--stats-json` document ([`json`]), the counters at each POST-code
//! mark ([`marks`]), the process's memory use ([`proc_memory`]), KVM's own
//! vCPU statistics ([`kvm`]) and the report that gathers them at the end of
//! a run ([`report`]). `vmdma bench` reads these through the JSON; its own
//! summaries stay in the `vmdma-bench` crate.

pub mod exits;
pub mod json;
pub mod kvm;
pub mod marks;
pub mod proc_memory;
pub mod report;
