//! libFuzzer entry of the requests-in-flight target; the body is
//! `../targets/inflight.rs`.
#![no_main]

#[path = "../targets/inflight.rs"]
mod inflight;

libfuzzer_sys::fuzz_target!(|data: &[u8]| inflight::run(data));
