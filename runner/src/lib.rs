//! `vmdma`: a KVM microVM runner for the vmdma zero-copy DMA core.
//!
//! The library is the VMM. The `vmdma` command is the `vmdma-cli` package
//! (`runner/cli`); its other front ends are crates of their own on top of
//! this one: `vmdma-bench` (`runner/bench`) and `vmdma-qtest`
//! (`runner/qtest`). The contract with the guest is `vmdma-protocol`.
//!
//! The modules form layers; each imports only from the layers below it
//! (the unit tests in `module_graph.rs` fail on any import cycle, between
//! files or between top-level modules):
//!
//! ```text
//! cli ──────── `vmdma run`'s options, the value parsers the front ends share
//! machine ── supervisor, io_thread, monitor, vcpu_loop/  threads, exit loop
//!   qmp ──────────── QMP framing, negotiation, reply shapes (also `vmdma qtest`'s)
//!   board ──────────── the PC, built once for every front end
//!     devices/ ─────── port bus, MMIO path, chipset (PCI, PIIX3 IDE), serial...
//!     boot/ ────────── ELF parsing, PVH start info, loading
//!     metrics/ ─────── exit counters, marks, KVM stats, memory, report, JSON
//!       disk/ ──────── raw images as block devices (sync, io_uring)
//!       kvm/ ───────── KVM primitives: VM, RAM slot, vCPU, exit decoding
//!         layout, control, kick, sandbox/, input_file, guest_image, error
//! ```
//!
//! Unsafe code lives in five modules only: `kvm::memory` (mmap and the
//! KVM memory slot), `kvm::vcpu` (I/O exit data views), `disk::sys`
//! (`preadv`/`pwritev`/`fallocate`/`statx`), `disk::uring` (io_uring
//! submissions pointing at guest memory) and `sandbox::sigsys` (the SIGSYS
//! handler); and two lines of `kick` (the thread id the QMP monitor's
//! `stop` kicks).
#![deny(unsafe_code)]
#![deny(missing_docs)]

pub mod board;
pub mod boot;
pub mod cdrom;
pub mod cli;
pub mod control;
pub mod devices;
pub mod disk;
pub mod error;
pub mod guest_image;
pub mod hmp;
pub mod input_file;
pub mod io_thread;
pub mod kick;
pub mod kvm;
pub mod layout;
pub mod machine;
pub mod metrics;
pub mod monitor;
pub mod qemu_opts;
pub mod qmp;
pub mod sandbox;
pub mod snapshot;
pub mod supervisor;
pub mod vcpu_loop;

#[cfg(test)]
mod module_graph;

#[cfg(test)]
#[path = "../../tests/common/elf_builder.rs"]
pub(crate) mod test_elf;
