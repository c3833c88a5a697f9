//! Decides, for the integration tests (`tests/`, run by this package), what
//! this host can do: `vmdma_fuse` when a FUSE file system can be mounted;
//! `vmdma_qemu_qmp` when Python has QEMU's `qemu.qmp` client and
//! `vmdma_socat` when `socat` runs (tests/qmp.rs). Under `CI=true` the
//! last two are on whatever the probe says (.ci/run installs them), so a
//! missing tool fails the test instead of skipping it.

use std::fs;
use std::process::{Command, Stdio};

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rustc-check-cfg=cfg(vmdma_fuse)");
    if fuse_mountable() {
        // tests/shutdown.rs: the test with a FUSE disk that never answers
        // runs; without this cfg it is `#[ignore]`d, which libtest shows.
        println!("cargo::rustc-cfg=vmdma_fuse");
    }
    println!("cargo::rerun-if-env-changed=CI");
    println!("cargo::rerun-if-env-changed=PATH");
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    println!("cargo::rustc-check-cfg=cfg(vmdma_qemu_qmp)");
    if ci || runs("python3", &["-c", "import qemu.qmp"]) {
        println!("cargo::rustc-cfg=vmdma_qemu_qmp");
    }
    println!("cargo::rustc-check-cfg=cfg(vmdma_socat)");
    if ci || runs("socat", &["-V"]) {
        println!("cargo::rustc-cfg=vmdma_socat");
    }
}

/// True when `program args` runs and exits with status 0.
fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// True when this build can mount a FUSE file system for the tests:
/// `/dev/fuse` opens read-write and the process has CAP_SYS_ADMIN (bit 21
/// of `CapEff`), as root has. (Decided here, at build time, so that a host
/// without it shows the test as ignored instead of passing it silently.)
fn fuse_mountable() -> bool {
    let cap_sys_admin = fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1 << 21) != 0);
    cap_sys_admin
        && fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/fuse")
            .is_ok()
}
