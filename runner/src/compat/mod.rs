//! Stand-ins for the parts of `vmdma-core` that have not landed on `main`
//! yet, with the same names and signatures as the planned core API, so that
//! switching to core is a change of `use` paths.
//!
//! Remove each item as soon as core exports it.

pub mod block;
pub mod memory;
