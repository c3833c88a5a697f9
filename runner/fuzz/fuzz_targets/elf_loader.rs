//! libFuzzer entry of the ELF/PVH loader target; the body is `../targets/elf_loader.rs`.
#![no_main]

#[path = "../targets/elf_loader.rs"]
mod elf_loader;

libfuzzer_sys::fuzz_target!(|data: &[u8]| elf_loader::run(data));
