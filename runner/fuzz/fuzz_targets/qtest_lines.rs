//! libFuzzer entry of the qtest front-end target; the body is `../targets/qtest_lines.rs`.
#![no_main]

#[path = "../targets/qtest_lines.rs"]
mod qtest_lines;

libfuzzer_sys::fuzz_target!(|data: &[u8]| qtest_lines::run(data));
