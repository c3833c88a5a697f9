//! libFuzzer entry of the device-state restore target; the body is
//! `../targets/snapshot_restore.rs`.
#![no_main]

#[path = "../targets/snapshot_restore.rs"]
mod snapshot_restore;

libfuzzer_sys::fuzz_target!(|data: &[u8]| snapshot_restore::run(data));
