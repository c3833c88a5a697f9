//! Snapshots of a running VM to a file, and restoring them (`docs/snapshot.md`).
//!
//! - [`format`]: the container (header, sections with CRCs), read as
//!   untrusted input.
//! - [`ram`]: guest RAM without its zero pages.

pub mod format;
pub mod ram;
