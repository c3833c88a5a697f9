//! # vmdma-core
//!
//! Zero-copy device DMA for microVMs, in `#![no_std]` Rust without a heap:
//! every capacity is a const generic or a constant.
//!
//! ## Layers (bottom up)
//! - [`memory`]: the guest-physical address space as a fixed-capacity,
//!   sorted [`RegionMap`](memory::RegionMap) of RAM and MMIO regions, and the
//!   [`VolatileSlice`](memory::VolatileSlice) views through which host code
//!   touches guest RAM (no Rust reference into guest memory is ever formed).
//! - [`dma`]: `map`/`unmap` for DMA — direct views of RAM, zero-filled bounce
//!   space for MMIO written back with exactly the accessed length — the
//!   byte-granular bounce arena, the FIFO retry queue, SG lists and the
//!   resumable SG → block transfer, which owns a request's mappings until
//!   its completion.
//! - [`iovec`]: fixed-capacity I/O vectors (scatter/gather lists of host
//!   buffers).
//! - [`block`]: the vectored, asynchronous block-device interface, plus an
//!   in-memory disk and a deferred one (data moves at completion time).
//! - [`iommu`]: an optional translation stage implementing the same
//!   [`DmaMemory`](dma::DmaMemory) interface, so stages chain.
//! - `snapshot` (feature `snapshot`): a bounded byte format for device
//!   state; the IDE controller and the PCI functions save into it and
//!   restore from it, requests in flight recorded as what re-issues them
//!   (`IdeController::restart`). Layout and guarantees: core/README.md,
//!   "Device state".
//!
//! The contract between the bundled guest, the runner and the tests (ports,
//! exit values, the manifest, the sector stamp) is not device code: it is
//! the `vmdma-protocol` crate beside this one (`core/protocol`).
//!
//! ## Data path of a disk read
//! ```text
//! guest PRD table ─▶ IDE/BMDMA ─▶ SG list ─▶ map (RAM: direct │ MMIO: bounce)
//!   ─▶ I/O vector ─▶ block backend (io_uring, preadv) ─▶ … completion
//!   ─▶ unmap(access_len) ─▶ IRQ
//! ```
//!
//! ## Embedding with no heap
//! Every state type — [`RegionMap`](memory::RegionMap),
//! [`BounceArena`](dma::BounceArena), [`AddressSpace`](dma::AddressSpace),
//! [`IdeController`](ide::IdeController) with its PCI function,
//! [`PioBuffer`](ide::PioBuffer) and [`StaticBytes`](memory::StaticBytes)
//! for RAM or a RAM disk — has a `const` constructor, so each can be a
//! `static` (behind `spin::Mutex` where it is mutated), and every capacity
//! is a const generic. `core/README.md` shows the smallest embedding: what
//! the host implements, what it calls in which order and from which
//! contexts, and the measured size; `core/embed` is that embedding as a
//! `no_std`, `no_main` program, linked in CI with a panic handler that does
//! not exist (the no-panic proof).
//!
//! ## Memory of requests in flight
//! A request's memory stays mapped and reserved until its completion has
//! been delivered, whatever the guest does (BMDMA stop, SRST, a new
//! command): see [`dma`] (the transfer's lease) and [`ide`] (stop and reset
//! wait or defer).
//!
//! ## No-panic contract
//! Everything a guest controls (addresses, lengths, SG lists, sector
//! numbers) is validated with checked arithmetic and turned into a typed
//! error. The crate denies `unwrap`, `expect`, `panic!`, slice indexing and
//! lossy casts outside tests, so the compiler checks the contract.
//!
//! ## Unsafe
//! The crate denies `unsafe_code`; only `memory::volatile` (the views of
//! host memory) allows it, with a `SAFETY` comment on every block.
#![no_std]
#![deny(missing_docs)]
#![deny(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_possible_wrap
    )
)]

#[cfg(any(test, feature = "test-util"))]
extern crate std;

pub mod block;
pub mod dma;
pub mod ide;
pub mod iommu;
pub mod iovec;
pub mod memory;
pub mod pci;
#[cfg(feature = "snapshot")]
pub mod snapshot;
mod vec_util;

#[cfg(any(test, feature = "test-util"))]
pub mod testutil;
