//! Helpers shared by the integration tests: running the real `vmdma`
//! binary, deciding whether KVM tests can run, and writing test kernels.

// Each test crate uses a different subset of the helpers.
#![allow(dead_code)]

pub mod elf_builder;
pub mod facts;
pub mod fuse;
pub mod qmp;
pub mod suite;

use std::fs::OpenOptions;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// True when /dev/kvm can be used. The KVM tests run only where the build
/// found it (`vmdma_kvm`, set by `runner/probes.rs`; otherwise they are
/// ignored with the reason), or under `CI=true`: so here, a missing
/// /dev/kvm is a failure, never a silent pass.
pub fn kvm_available() -> bool {
    let ok = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    assert!(
        ok,
        "/dev/kvm is not available, but the build found it or CI=true requires the KVM tests"
    );
    ok
}

/// Runs `vmdma` with `args` and returns its output.
pub fn vmdma(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vmdma"))
        .args(args)
        .output()
        .expect("vmdma starts")
}

/// How long [`vmdma_guarded`] lets `vmdma` run before killing it.
pub const HANG_GUARD: Duration = Duration::from_secs(20);

/// Runs `vmdma` with `args` like [`vmdma`], for inputs that could make it
/// hang (FIFOs, devices): if it has not exited after [`HANG_GUARD`], it is
/// killed and the test fails. The guard only catches hangs; the assertions
/// are on the output.
pub fn vmdma_guarded(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vmdma"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("vmdma starts");
    // Drain the pipes on threads so a chatty child cannot block on them.
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for vmdma") {
            break status;
        }
        if start.elapsed() > HANG_GUARD {
            let _ = child.kill();
            let _ = child.wait();
            panic!("vmdma {args:?} hung: killed after {HANG_GUARD:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

/// Reads `r` to its end on a new thread.
fn drain<R: Read + Send + 'static>(r: Option<R>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut r) = r {
            let _ = r.read_to_end(&mut buf);
        }
        buf
    })
}

/// Makes a FIFO (named pipe) at `path` with `mkfifo(1)`.
pub fn make_fifo(path: &Path) {
    let made = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(made.success(), "mkfifo {} failed", path.display());
}

/// The exit status (panics on death by signal).
pub fn status(o: &Output) -> i32 {
    o.status.code().expect("vmdma exited normally")
}

/// Stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts the runner's error convention: exactly one line on stderr,
/// `vmdma: error: ...` containing `needle`, and status `code`.
pub fn assert_one_line_error(o: &Output, code: i32, needle: &str) {
    let err = stderr(o);
    assert_eq!(status(o), code, "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line expected: {err:?}");
    assert!(err.starts_with("vmdma: error: "), "{err:?}");
    assert!(err.contains(needle), "{err:?} should mention {needle:?}");
}

/// Writes `bytes` to `name` in `dir`.
pub fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write test file");
    p
}

/// A fresh sparse raw image of `bytes` bytes in `dir`.
pub fn sparse_image(dir: &Path, name: &str, bytes: u64) -> PathBuf {
    let p = dir.join(name);
    let f = std::fs::File::create(&p).expect("create image");
    f.set_len(bytes).expect("size image");
    p
}

/// Image size for the conformance suite: big enough for its LBA48 tests
/// above 2^28 sectors (a sparse file: no space is used).
pub const SUITE_IMAGE_BYTES: u64 = 130 << 30;

/// The tests the conformance suite must report as skipped everywhere.
pub const ALWAYS_SKIPPED: &[&str] = &["readonly_refuses_writes"];

/// Tests whose outcome depends on host timing: `ok` or `skipped`, never
/// `FAILED` (a page-cache copy on a loaded host can finish before the guest
/// looks; see the guest's `suite/async_io.rs`).
pub const TIMING_DEPENDENT: &[&str] = &["async_read_active_before_completion"];

/// Tests a device that completes inside the START write (vmdma with
/// `aio=sync`) skips.
pub const SYNC_SKIPPED: &[&str] = &["async_read_active_before_completion"];

/// Tests that only vmdma can run (QEMU has no MMIO scratch region).
pub const VMDMA_ONLY: &[&str] = &["dma_mmio_bounce", "dma_mmio_retry"];

/// True when `qemu-system-x86_64` runs. The QEMU tests are ignored
/// when the build found no QEMU (`vmdma_qemu`, `runner/build.rs`); one that
/// runs anyway (the build found it, or `CI=true`) fails without it.
pub fn qemu_available() -> bool {
    let ok = std::process::Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "qemu-system-x86_64 does not run, but the build found it or CI=true requires it \
         (rebuild after removing QEMU: runner/build.rs probes it)"
    );
    ok
}

/// `qemu-system-x86_64 -accel kvm -M pc -m MEMORY` with no display, no
/// default devices, no reboot, COM1 on stdout and the debug-exit device at
/// 0xF4, under `timeout -k 5 SECS` (QEMU hangs on some emulation
/// failures). The caller adds the drive, the kernel and its command line.
pub fn qemu_pc(timeout_secs: u64, memory: &str) -> Command {
    let mut cmd = Command::new("timeout");
    cmd.args(["-k", "5", &timeout_secs.to_string(), "qemu-system-x86_64"])
        .args(["-accel", "kvm", "-M", "pc", "-m", memory])
        .args(["-display", "none", "-nodefaults", "-no-reboot"])
        .args(["-serial", "stdio"])
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]);
    cmd
}

/// The `-drive` value of a raw image as the primary master IDE disk.
pub fn qemu_ide_drive(image: &Path) -> String {
    format!(
        "file={},format=raw,if=ide,index=0,cache=writeback",
        image.display()
    )
}

/// A tmpfs of `bytes` at a fresh directory (root only, as CI runs; the
/// ENOSPC test is ignored when the build saw no CAP_SYS_ADMIN,
/// `vmdma_tmpfs` in `runner/build.rs`). Unmounted on drop.
pub struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    /// Mounts it; a failure fails the test (the build said it could).
    pub fn mount(bytes: u64) -> SmallFs {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir.path())
            .status();
        assert!(
            status.as_ref().is_ok_and(|s| s.success()),
            "cannot mount a tmpfs ({status:?}), but the build saw CAP_SYS_ADMIN or CI=true requires it"
        );
        SmallFs { dir }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// Grows (or shrinks) it to `bytes` (`mount -o remount,size=`).
    pub fn resize(&self, bytes: u64) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={bytes}")])
            .arg(self.dir.path())
            .status();
        assert!(
            status.as_ref().is_ok_and(|s| s.success()),
            "cannot remount the tmpfs: {status:?}"
        );
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// The CD-ROM test image the guest's `suite=atapi` and the hostile ATAPI
/// cases expect, written to `dir/cd.img`: `CD_TEST_BLOCKS` 2048-byte
/// blocks, 512-byte sector `s` stamped with `CD_PATTERN`.
pub fn cd_image(dir: &Path) -> PathBuf {
    use vmdma_protocol::{CD_PATTERN, CD_TEST_BLOCKS, STAMP_SECTOR, stamp_sector};
    let mut bytes = Vec::new();
    let mut sector = [0u8; STAMP_SECTOR];
    for s in 0..CD_TEST_BLOCKS * 4 {
        stamp_sector(s, CD_PATTERN, &mut sector);
        bytes.extend_from_slice(&sector);
    }
    write_file(dir, "cd.img", &bytes)
}
