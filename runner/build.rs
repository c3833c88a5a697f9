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

fn main() {
    println!("cargo::rustc-check-cfg=cfg(vmdma_bundled_guest)");
    test_preconditions();
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
        "core/src",
        "core/Cargo.toml",
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

/// Decides, for each test that needs something this host may lack, whether
/// it runs: a cfg per precondition, set when the probe finds it. Without
/// the cfg the test is `#[ignore = "reason"]`, so `cargo test` prints
/// `ignored, <reason>` instead of a silent `ok` (docs/testing.md). Under
/// `CI=true` every cfg is set, so a missing precondition fails its test
/// instead of skipping it. Each probe names what it looked at with
/// `rerun-if-changed`/`rerun-if-env-changed`, so a later install is seen.
fn test_preconditions() {
    println!("cargo::rerun-if-env-changed=CI");
    let ci = env::var("CI").is_ok_and(|v| v == "true");
    let qemu = qemu_version();
    let probes: [(&str, bool); 6] = [
        // tests/shutdown.rs: a FUSE disk that never answers.
        ("vmdma_fuse", fuse_mountable()),
        // tests/qemu_pvh.rs, tests/qemu_conformance.rs, tests/hostile.rs.
        ("vmdma_qemu", qemu.is_some()),
        // tests/hostile.rs: the table is QEMU 7.2's.
        (
            "vmdma_qemu_7_2",
            qemu.as_deref()
                .is_some_and(|v| v.starts_with("QEMU emulator version 7.2.")),
        ),
        // tests/qemu_ide_test.rs.
        ("vmdma_ide_test", ide_test_present()),
        // tests/host_disk.rs: ENOSPC on a small tmpfs.
        ("vmdma_tmpfs", cap_sys_admin()),
        // tests/conformance.rs and disk::uring's tests: cache=none.
        ("vmdma_odirect", direct_io_in_temp_dir()),
    ];
    for (cfg, found) in probes {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        if found || ci {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
}

/// The first line of `qemu-system-x86_64 --version`, found on `PATH` as the
/// tests run it. Watches the binary if there is one, otherwise every
/// directory on `PATH` (so an install is noticed).
fn qemu_version() -> Option<String> {
    const QEMU: &str = "qemu-system-x86_64";
    println!("cargo::rerun-if-env-changed=PATH");
    let path = env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = env::split_paths(&path)
        .filter(|d| d.is_absolute() && d.is_dir())
        .collect();
    match dirs.iter().map(|d| d.join(QEMU)).find(|b| b.is_file()) {
        Some(bin) => println!("cargo::rerun-if-changed={}", bin.display()),
        None => {
            for d in &dirs {
                println!("cargo::rerun-if-changed={}", d.display());
            }
            return None;
        }
    }
    let out = Command::new(QEMU)
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let text = String::from_utf8_lossy(&out.stdout);
    Some(text.lines().next().unwrap_or("").trim().to_string())
}

/// True when QEMU's ide-test is where `tests/qemu_ide_test.rs` looks:
/// `$VMDMA_IDE_TEST`, or the cache `.ci/qemu-ide-test.sh` fills. The cache
/// directory is created (empty) so that it can be watched for the binary.
fn ide_test_present() -> bool {
    for var in ["VMDMA_IDE_TEST", "XDG_CACHE_HOME", "HOME"] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    let bin = match env::var_os("VMDMA_IDE_TEST") {
        Some(p) => PathBuf::from(p),
        None => {
            let Some(cache) = env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            else {
                return false;
            };
            let dir = cache.join("vmdma/qemu-7.2-ide-test");
            let _ = fs::create_dir_all(&dir);
            dir.join("ide-test")
        }
    };
    if bin.is_file() {
        println!("cargo::rerun-if-changed={}", bin.display());
        return true;
    }
    if let Some(dir) = bin.parent().filter(|d| d.is_dir()) {
        println!("cargo::rerun-if-changed={}", dir.display());
    }
    false
}

/// True when the process has CAP_SYS_ADMIN (bit 21 of `CapEff`), as root
/// has: what mounting a file system takes.
fn cap_sys_admin() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1 << 21) != 0)
}

/// True when a file in the temporary directory (where the tests put their
/// images) opens with `O_DIRECT` and a 512-byte read at a 512-byte offset
/// into a 4 KiB-aligned buffer works, as `cache=none` needs.
fn direct_io_in_temp_dir() -> bool {
    use std::io::Write;
    use std::os::unix::fs::{FileExt, OpenOptionsExt};
    const O_DIRECT: i32 = 0o40000; // x86_64 Linux
    println!("cargo::rerun-if-env-changed=TMPDIR");
    let path = env::temp_dir().join(format!("vmdma-build-odirect-{}", std::process::id()));
    let probe = || -> std::io::Result<()> {
        fs::File::create(&path)?.write_all(&[0x5A; 8192])?;
        let f = fs::OpenOptions::new()
            .read(true)
            .custom_flags(O_DIRECT)
            .open(&path)?;
        let mut buf = vec![0u8; 3 * 4096];
        let skip = buf.as_ptr().align_offset(4096);
        let aligned = &mut buf[skip..skip + 512];
        f.read_exact_at(aligned, 512)?;
        if aligned.iter().all(|&b| b == 0x5A) {
            Ok(())
        } else {
            Err(std::io::Error::other("read back the wrong bytes"))
        }
    };
    let ok = probe().is_ok();
    let _ = fs::remove_file(&path);
    ok
}

/// True when this build can mount a FUSE file system for the tests:
/// `/dev/fuse` opens read-write and the process has CAP_SYS_ADMIN (bit 21
/// of `CapEff`), as root has. (Decided here, at build time, so that a host
/// without it shows the test as ignored instead of passing it silently.)
fn fuse_mountable() -> bool {
    cap_sys_admin()
        && fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/fuse")
            .is_ok()
}
