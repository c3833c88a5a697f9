//! Build-time probes for the tests: shared by the build scripts of the
//! packages that run tests needing something a host may lack (`runner/`
//! for its unit tests, `runner/cli/` for the integration tests in `tests/`).

use std::env;
use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Decides, for each test that needs something this host may lack, whether
/// it runs: a cfg per precondition, set when the probe finds it. Without
/// the cfg the test is `#[ignore = "reason"]`, so `cargo test` prints
/// `ignored, <reason>` instead of a silent `ok` (docs/testing.md). Under
/// `CI=true` every cfg is set, so a missing precondition fails its test
/// instead of skipping it. Each probe names what it looked at with
/// `rerun-if-changed`/`rerun-if-env-changed`, so a later install is seen.
///
/// `wanted` names the cfgs the calling package's tests use; only those are
/// probed and declared.
pub fn test_preconditions(wanted: &[&str]) {
    println!("cargo::rerun-if-env-changed=CI");
    let ci = env::var("CI").is_ok_and(|v| v == "true");
    let want = |cfg: &str| wanted.contains(&cfg);
    let qemu = if want("vmdma_qemu") || want("vmdma_qemu_7_2") {
        qemu_version()
    } else {
        None
    };
    type Probe<'a> = (&'static str, &'a dyn Fn() -> bool);
    let probes: [Probe<'_>; 10] = [
        // tests/*.rs that boot a guest under KVM.
        ("vmdma_kvm", &kvm_usable),
        // tests/shutdown.rs: a FUSE disk that never answers.
        ("vmdma_fuse", &fuse_mountable),
        // tests/qemu_pvh.rs, tests/qemu_conformance.rs, tests/hostile.rs.
        ("vmdma_qemu", &|| qemu.is_some()),
        // tests/hostile.rs: the table is QEMU 7.2's.
        ("vmdma_qemu_7_2", &|| {
            qemu.as_deref()
                .is_some_and(|v| v.starts_with("QEMU emulator version 7.2."))
        }),
        // tests/qemu_ide_test.rs.
        ("vmdma_ide_test", &ide_test_present),
        // tests/host_disk.rs: ENOSPC on a small tmpfs.
        ("vmdma_tmpfs", &cap_sys_admin),
        // tests/conformance.rs and disk::uring's tests: cache=none.
        ("vmdma_odirect", &direct_io_in_temp_dir),
        // tests/qmp.rs: QEMU's Python client, and socat for raw lines.
        ("vmdma_qemu_qmp", &|| {
            runs("python3", &["-c", "import qemu.qmp"])
        }),
        ("vmdma_socat", &|| runs("socat", &["-V"])),
        // tests/seed_iso.rs: a NoCloud seed ISO.
        ("vmdma_genisoimage", &|| runs("genisoimage", &["--version"])),
    ];
    for (cfg, probe) in probes {
        if !want(cfg) {
            continue;
        }
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        if ci || probe() {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
}

/// True when `program args` runs and exits with status 0 (`PATH` is
/// watched by the caller's `rerun-if-env-changed`).
fn runs(program: &str, args: &[&str]) -> bool {
    println!("cargo::rerun-if-env-changed=PATH");
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// True when `/dev/kvm` opens read-write, as the runner needs it.
fn kvm_usable() -> bool {
    println!("cargo::rerun-if-changed=/dev/kvm");
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
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
