//! The seccomp sandbox: a forbidden system call from a sandboxed thread
//! ends the run with status 159 and a line naming the thread and the call;
//! `--no-seccomp` lifts it; and an io_uring the kernel refuses (here: a
//! seccomp filter around the whole process, as a container runtime might
//! install) falls back to `aio=sync` with one warning. (The conformance
//! suite itself runs under the filters: `tests/conformance.rs` checks the
//! `--stats` line that says so.)

mod common;

use std::os::unix::process::CommandExt;
use std::process::{Command, Output};

use common::elf_builder::{ElfBuilder, code};
use common::{kvm_available, sparse_image, status, stderr, write_file};

/// Runs a guest that prints and exits with 5, with `extra` options.
fn run_hello(extra: &[&str], aio: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let img = sparse_image(dir.path(), "disk.img", 1 << 20);
    let kernel = write_file(
        dir.path(),
        "hello.elf",
        &ElfBuilder::new(code::hello(b"hello\n", 5)).build(),
    );
    let disk = format!("{},aio={aio}", img.display());
    let mut args = vec![
        "run",
        "--kernel",
        kernel.to_str().unwrap(),
        "--disk",
        &disk,
        "--timeout",
        "60",
        "--stats",
    ];
    args.extend_from_slice(extra);
    common::vmdma(&args)
}

/// socket(2) on x86_64.
const SYS_SOCKET: &str = "number 41";

#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn forbidden_call_on_the_vcpu_thread_ends_the_run() {
    if !kvm_available() {
        return;
    }
    let out = run_hello(&["--seccomp-selftest", "vcpu"], "sync");
    let err = stderr(&out);
    assert_eq!(status(&out), 159, "{err}");
    assert!(
        err.contains("the vcpu thread made a forbidden system call") && err.contains(SYS_SOCKET),
        "{err}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("hello"));
}

#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn forbidden_call_on_the_io_thread_ends_the_run() {
    if !kvm_available() {
        return;
    }
    let out = run_hello(&["--seccomp-selftest", "io"], "io_uring");
    let err = stderr(&out);
    assert_eq!(status(&out), 159, "{err}");
    assert!(
        err.contains("the I/O thread made a forbidden system call") && err.contains(SYS_SOCKET),
        "{err}"
    );
}

#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn no_seccomp_lifts_the_filter() {
    if !kvm_available() {
        return;
    }
    let out = run_hello(&["--no-seccomp", "--seccomp-selftest", "vcpu"], "io_uring");
    let err = stderr(&out);
    assert_eq!(status(&out), 5, "{err}");
    assert!(err.contains("seccomp: off"), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("hello"));
}

#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn the_filters_are_on_by_default() {
    if !kvm_available() {
        return;
    }
    let out = run_hello(&[], "io_uring");
    let err = stderr(&out);
    assert_eq!(status(&out), 5, "{err}");
    assert!(
        err.contains("vmdma stats: seccomp: on; vcpu thread"),
        "{err}"
    );
}

/// io_uring_setup fails with ENOSYS for the whole process: the disk falls
/// back to `aio=sync` with one warning and the guest runs.
#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn a_refused_io_uring_falls_back_to_sync() {
    if !kvm_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = sparse_image(dir.path(), "disk.img", 1 << 20);
    let kernel = write_file(
        dir.path(),
        "hello.elf",
        &ElfBuilder::new(code::hello(b"hello\n", 5)).build(),
    );
    let disk = format!("{},aio=io_uring", img.display());
    let filter = seccompiler::SeccompFilter::new(
        [(libc::SYS_io_uring_setup, vec![])].into_iter().collect(),
        seccompiler::SeccompAction::Allow,
        seccompiler::SeccompAction::Errno(libc::ENOSYS as u32),
        seccompiler::TargetArch::x86_64,
    )
    .unwrap();
    let prog: seccompiler::BpfProgram = filter.try_into().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vmdma"));
    cmd.args([
        "run",
        "--kernel",
        kernel.to_str().unwrap(),
        "--disk",
        &disk,
        "--timeout",
        "60",
        "--stats",
    ]);
    // SAFETY: between fork and exec the closure only installs a prepared
    // BPF program (prctl and seccomp system calls; no allocation).
    unsafe {
        cmd.pre_exec(move || seccompiler::apply_filter(&prog).map_err(std::io::Error::other));
    }
    let out = cmd.output().unwrap();
    let err = stderr(&out);
    assert_eq!(status(&out), 5, "{err}");
    assert_eq!(
        err.matches("warning").count(),
        1,
        "one warning about io_uring: {err}"
    );
    assert!(err.contains("io_uring"), "{err}");
    assert!(err.contains("disk: aio=sync"), "{err}");
}
