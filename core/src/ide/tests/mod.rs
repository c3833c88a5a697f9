//! Register-level tests of the IDE controller, split by topic. Every test
//! drives the controller through port accesses, as a guest would.

mod harness;

mod bmdma_regs;
mod dma;
mod dma_errors;
mod identify;
mod non_data;
mod pci;
mod pio;
mod prd_outcomes;
mod prop;
mod registers;
mod srst;
mod stop;
mod trim;
