//! `vmdma`: a KVM microVM runner for the vmdma zero-copy DMA core.
//!
//! The library holds the whole runner; `main.rs` is the command-line entry.
//!
//! ```text
//! main ── cli ─────────── parse and validate arguments
//!      ├─ machine ─────── validate inputs, build the VM, run vCPU 0
//!      │   ├─ boot/ ───── ELF parsing, PVH start info, fixed layout
//!      │   ├─ vmm/ ────── KVM VM, RAM, vCPU, exit decoding and dispatch
//!      │   ├─ devices/ ── port-I/O bus, MMIO path, serial, debug exit,
//!      │   │              MMIO scratch, chipset (PCI config, PIIX3 IDE)
//!      │   └─ disk/ ───── raw image files as block devices
//!      ├─ input_file ──── open kernel/disk files: regular files only
//!      ├─ supervisor ──── vCPU thread, timeout, halt detection
//!      └─ stats ───────── --stats counters
//! ```
//!
//! Unsafe code lives in three modules only: `vmm::memory` (mmap and the
//! KVM memory slot), `vmm::vcpu` (I/O exit data views) and `disk::sys`
//! (`preadv`/`pwritev`/`fallocate` on guest memory).
#![deny(unsafe_code)]
#![deny(missing_docs)]

pub mod bench;
pub mod boot;
pub mod cli;
pub mod devices;
pub mod disk;
pub mod error;
pub mod guest_image;
pub mod input_file;
pub mod machine;
pub mod marks;
pub mod proc_memory;
pub mod stats;
pub mod stats_json;
pub mod supervisor;
pub mod vmm;

#[cfg(test)]
#[path = "../../tests/common/elf_builder.rs"]
pub(crate) mod test_elf;
