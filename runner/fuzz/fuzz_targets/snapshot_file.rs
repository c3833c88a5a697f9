//! libFuzzer entry of the snapshot-file target; the body is `../targets/snapshot_file.rs`.
#![no_main]

#[path = "../targets/snapshot_file.rs"]
mod snapshot_file;

libfuzzer_sys::fuzz_target!(|data: &[u8]| snapshot_file::run(data));
