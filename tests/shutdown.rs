//! Ending a run from outside: SIGTERM and SIGINT stop the guest in an
//! orderly way (requests in flight complete, the disk is flushed, the image
//! lock goes with the process) and the status says which signal it was.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::elf_builder::{ElfBuilder, code};
use common::{kvm_available, sparse_image, write_file};

/// Starts a guest that runs until stopped (it spins after printing), on a
/// fresh image, sends `sig` once the guest is running, and returns (status,
/// stderr).
fn stop_with(sig: i32) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let img = sparse_image(dir.path(), "disk.img", 1 << 30);
    let kernel = write_file(
        dir.path(),
        "spin.elf",
        &ElfBuilder::new(code::spin(b"spinning\n")).build(),
    );
    let disk = format!("{},aio=io_uring", img.display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_vmdma"))
        .args([
            "run",
            "--kernel",
            kernel.to_str().unwrap(),
            "--disk",
            &disk,
            "--timeout",
            "120",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("vmdma starts");
    // Let the guest start.
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: kill(2) with the child's pid and a valid signal number.
    let r = unsafe { libc::kill(child.id() as libc::pid_t, sig) };
    assert_eq!(r, 0);
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            return (s.code(), String::from_utf8_lossy(&out.stderr).into_owned());
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("vmdma did not stop within 30 s of signal {sig}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_stops_the_run_with_status_143() {
    if !kvm_available() {
        return;
    }
    let (code, err) = stop_with(libc::SIGTERM);
    assert_eq!(code, Some(143), "{err}");
    assert!(err.contains("stopped by signal 15"), "{err}");
}

#[test]
fn sigint_stops_the_run_with_status_130() {
    if !kvm_available() {
        return;
    }
    let (code, err) = stop_with(libc::SIGINT);
    assert_eq!(code, Some(130), "{err}");
    assert!(err.contains("stopped by signal 2"), "{err}");
}
