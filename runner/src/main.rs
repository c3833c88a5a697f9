//! The `vmdma` binary (filled in by the runner issue).
#![forbid(unsafe_code)]

fn main() {}
