//! # vmdma-guest (library part)
//!
//! The pure logic of the bare-metal test guest: everything that parses input
//! (the PVH start info, the kernel command line, IDENTIFY data), encodes
//! device structures (task files, PRD entries) or checks data (sector
//! stamps). None of it touches hardware, so it is unit-tested on the host:
//!
//! ```text
//! cargo test --lib --target x86_64-unknown-linux-gnu
//! ```
//!
//! The guest binary (`src/main.rs` and its modules) adds the hardware side:
//! boot, port I/O, interrupts, the IDE driver and the conformance suite.
//!
//! No-panic contract: every function here validates its input and returns a
//! typed error; there is no indexing that can go out of bounds and no
//! unchecked arithmetic on input values.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// The no-panic fence (unit tests may index and unwrap).
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod ata;
pub mod bench_args;
pub mod cmdline;
pub mod msg;
pub mod prd;
pub mod ram;
pub mod stamp;
pub mod start_info;
