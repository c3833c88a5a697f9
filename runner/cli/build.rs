//! Decides, for the integration tests (`tests/`, run by this package), what
//! this host can do: `vmdma_fuse` when a FUSE file system can be mounted.

use std::fs;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rustc-check-cfg=cfg(vmdma_fuse)");
    if fuse_mountable() {
        // tests/shutdown.rs: the test with a FUSE disk that never answers
        // runs; without this cfg it is `#[ignore]`d, which libtest shows.
        println!("cargo::rustc-cfg=vmdma_fuse");
    }
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
