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
//!      ├─ qtest/ ──────── QEMU's qtest protocol on the same chipset and
//!      │                  disks, no KVM (for QEMU's ide-test)
//!      ├─ input_file ──── open kernel/disk files: regular files only
//!      ├─ io_thread ───── disk completions → chipset service, IRQ 14
//!      ├─ sandbox/ ────── seccomp allow-lists of the vCPU and I/O threads
//!      ├─ supervisor ──── vCPU thread, timeout, signals, halt detection
//!      └─ stats ───────── --stats counters
//! ```
//!
//! Unsafe code lives in five modules only: `vmm::memory` (mmap and the
//! KVM memory slot), `vmm::vcpu` (I/O exit data views), `disk::sys`
//! (`preadv`/`pwritev`/`fallocate`/`statx`), `disk::uring` (io_uring
//! submissions pointing at guest memory) and `sandbox::sigsys` (the SIGSYS
//! handler).
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
pub mod io_thread;
pub mod machine;
pub mod marks;
pub mod proc_memory;
pub mod qtest;
pub mod sandbox;
pub mod stats;
pub mod stats_json;
pub mod supervisor;
pub mod vmm;

#[cfg(test)]
#[path = "../../tests/common/elf_builder.rs"]
pub(crate) mod test_elf;
