//! Builds the bundled test guest (`guest/`, its own workspace, target
//! x86_64-unknown-none) with a nested `cargo build --release` and leaves the
//! ELF at `$OUT_DIR/vmdma-guest.elf` for `include_bytes!`.
//!
//! The nested build gets a clean environment: every variable through which
//! the outer cargo configures *this* build (RUSTFLAGS, CARGO_ENCODED_RUSTFLAGS,
//! RUSTC_WRAPPER, CARGO_BUILD_TARGET, CARGO_PROFILE_*, CARGO_TARGET_DIR, the
//! jobserver in CARGO_MAKEFLAGS, build-script variables like TARGET or
//! OUT_DIR, ...) is removed; user-level cargo settings (CARGO_HOME, network,
//! registries, terminal) are kept.

use std::env;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const GUEST_TARGET: &str = "x86_64-unknown-none";
const GUEST_BIN: &str = "vmdma-guest";

#[path = "probes.rs"]
mod probes;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(vmdma_bundled_guest)");
    println!("cargo::rerun-if-changed=probes.rs");
    // disk::uring's unit tests with cache=none.
    probes::test_preconditions(&["vmdma_odirect"]);
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest
        .parent()
        .expect("runner/ is inside the workspace")
        .to_path_buf();
    let guest = root.join("guest");
    for p in [
        "guest/Cargo.toml",
        "guest/Cargo.lock",
        "guest/build.rs",
        "guest/src",
        "guest/.cargo",
        "linker",
        "core/protocol/src",
        "core/protocol/Cargo.toml",
    ] {
        println!("cargo::rerun-if-changed={}", root.join(p).display());
    }
    if !guest.join("Cargo.toml").exists() {
        println!(
            "cargo::warning=guest/Cargo.toml not found: vmdma is built without the bundled guest (it then needs --kernel)"
        );
        return;
    }

    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let have_target = target_installed(&rustc) || (install_target() && target_installed(&rustc));
    if !have_target {
        fail_missing_target();
    }

    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    let target_dir = out_dir.join("guest-target");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&guest)
        .args(["build", "--release", "--target", GUEST_TARGET])
        .env("CARGO_TARGET_DIR", &target_dir)
        .stdin(Stdio::null());
    for (key, _) in env::vars_os() {
        if leaks_into_nested_build(&key) {
            cmd.env_remove(&key);
        }
    }
    cmd.env("CARGO_TARGET_DIR", &target_dir);
    let output = match cmd.output() {
        Ok(o) => o,
        Err(e) => fail(&format!("cannot run cargo to build the bundled guest: {e}")),
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("target may not be installed")
            || stderr.contains("can't find crate for `core`")
        {
            fail_missing_target();
        }
        // Show the nested build's diagnostics, then fail with one line.
        eprintln!("{stderr}");
        println!("cargo::warning=the nested guest build failed:");
        for line in stderr.lines().filter(|l| l.starts_with("error")).take(20) {
            println!("cargo::warning=  {line}");
        }
        fail("building the bundled guest (guest/) failed");
    }
    let elf = target_dir
        .join(GUEST_TARGET)
        .join("release")
        .join(GUEST_BIN);
    let dest = out_dir.join("vmdma-guest.elf");
    if let Err(e) = fs::copy(&elf, &dest) {
        fail(&format!(
            "the guest build produced no {} ({e})",
            elf.display()
        ));
    }
    println!("cargo::rustc-cfg=vmdma_bundled_guest");
}

fn target_installed(rustc: &OsStr) -> bool {
    Command::new(rustc)
        .args(["--print", "target-libdir", "--target", GUEST_TARGET])
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .is_some_and(|dir| !dir.is_empty() && Path::new(&dir).is_dir())
}

/// On a fresh machine the toolchain file names the target but rustup does
/// not add targets to an already-installed toolchain by itself: try
/// `rustup target add` once (set `VMDMA_NO_TARGET_INSTALL=1` to forbid it).
fn install_target() -> bool {
    println!("cargo::rerun-if-env-changed=VMDMA_NO_TARGET_INSTALL");
    if env::var_os("VMDMA_NO_TARGET_INSTALL").is_some() {
        return false;
    }
    println!(
        "cargo::warning=installing the {GUEST_TARGET} target with rustup (needed by the bundled guest)"
    );
    Command::new("rustup")
        .args(["target", "add", GUEST_TARGET])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn fail_missing_target() -> ! {
    fail(
        "the bundled guest needs the x86_64-unknown-none target: run 'rustup target add x86_64-unknown-none'",
    )
}

/// Fails the build with one `error:` line. `cargo::error` fails the build by
/// itself; exiting with status 0 keeps cargo from adding a dump of the build
/// script's output.
fn fail(msg: &str) -> ! {
    println!("cargo::error={msg}");
    std::process::exit(0);
}

/// True for variables the outer cargo sets for this package's build that
/// would change or break the nested guest build.
fn leaks_into_nested_build(key: &OsStr) -> bool {
    let Some(k) = key.to_str() else {
        return false;
    };
    const KEEP: [&str; 6] = [
        "CARGO_HOME",
        "CARGO_NET_",
        "CARGO_HTTP_",
        "CARGO_REGISTRIES_",
        "CARGO_REGISTRY_",
        "CARGO_TERM_",
    ];
    if k.starts_with("CARGO") {
        return !KEEP.iter().any(|p| k.starts_with(p));
    }
    k.starts_with("__CARGO")
        || k.starts_with("RUSTC")
        || k.starts_with("RUSTDOC")
        || matches!(
            k,
            "RUSTFLAGS"
                | "TARGET"
                | "HOST"
                | "OUT_DIR"
                | "OPT_LEVEL"
                | "DEBUG"
                | "PROFILE"
                | "NUM_JOBS"
        )
}
