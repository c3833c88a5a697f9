//! libFuzzer entry of the IDE port target; the body is `../targets/ide_ports.rs`.
#![no_main]

#[path = "../targets/ide_ports.rs"]
mod ide_ports;

libfuzzer_sys::fuzz_target!(|data: &[u8]| ide_ports::run(data));
