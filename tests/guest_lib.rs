//! The bundled guest's pure logic (command line, start info, IDENTIFY
//! decoding, task files, PRD planning, stamps) is a library with host unit
//! tests. The guest is its own workspace (it builds for bare metal), so this
//! test runs those unit tests on the host, making them part of
//! `cargo test --workspace`.

use std::path::Path;
use std::process::Command;

#[test]
fn guest_library_unit_tests_pass_on_the_host() {
    let guest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../guest");
    let host =
        std::env::var("VMDMA_HOST_TARGET").unwrap_or_else(|_| "x86_64-unknown-linux-gnu".into());
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("guest-lib-tests");
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(&guest)
        .args(["test", "--lib", "--target", &host])
        .env("CARGO_TARGET_DIR", &target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    let out = cmd.output().expect("run cargo test for the guest library");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "guest library tests failed:\n{text}");
    assert!(text.contains("test result: ok"), "{text}");
    let passed: u32 = text
        .lines()
        .filter_map(|l| l.strip_prefix("test result: ok. "))
        .filter_map(|l| l.split(' ').next()?.parse::<u32>().ok())
        .sum();
    assert!(passed >= 10, "only {passed} guest unit tests ran:\n{text}");
}
