//! The only part of the guest that uses `unsafe`: boot code, port and
//! memory-mapped I/O, CPU control, the IDT and its stubs, string-instruction
//! memory helpers, the static DMA memory and the statics handed out once. Everything here exposes safe
//! functions whose preconditions are checked or documented.
//!
//! Port I/O is exposed as safe functions. The only ports whose writes make
//! a device touch memory are the bus-master registers; the IDE driver
//! programs them only with PRD tables and buffers in [`dma_memory`] that it
//! borrows exclusively until the transfer has stopped.
#![allow(unsafe_code)]

pub mod boot;
pub mod bulk;
pub mod cpu;
pub mod dma_memory;
pub mod idt;
pub mod io;
pub mod mem;
pub mod mmio;
pub mod phys;
pub mod take_once;
