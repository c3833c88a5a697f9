//! Ending a run from outside: SIGTERM and SIGINT stop the guest in an
//! orderly way (requests in flight complete, the disk is flushed, the image
//! lock goes with the process) and the status says which signal it was;
//! with a disk that does not answer, the runner says so and exits with 74
//! within its shutdown bound.

mod common;

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
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
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn sigterm_stops_the_run_with_status_143() {
    if !kvm_available() {
        return;
    }
    let (code, err) = stop_with(libc::SIGTERM);
    assert_eq!(code, Some(143), "{err}");
    assert!(err.contains("stopped by signal 15"), "{err}");
}

#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn sigint_stops_the_run_with_status_130() {
    if !kvm_available() {
        return;
    }
    let (code, err) = stop_with(libc::SIGINT);
    assert_eq!(code, Some(130), "{err}");
    assert!(err.contains("stopped by signal 2"), "{err}");
}

/// Kills the runner if the test ends early (it does not wait: a runner
/// held by the kernel would block the wait).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
    }
}

/// The scheduler state of process `pid` (`R`, `S`, `D`, `Z`...) and its
/// thread count, from /proc.
fn proc_state(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("State:") || l.starts_with("Threads:"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The shutdown bound the tests give the runner (the hidden debug-build
/// option `--shutdown-bound`; the default is 30 s).
const TEST_SHUTDOWN_BOUND_SECS: u64 = 2;

/// How a stop with a disk that does not answer must end.
struct Expected {
    /// The guest's command line (a benchmark whose first read is at LBA
    /// 2048).
    cmdline: &'static str,
    /// Stderr contains all of these.
    says: &'static [&'static str],
    /// The message comes no sooner (the bound was honoured).
    not_before: Duration,
    /// ... and no later.
    within: Duration,
}

/// Starts the bundled guest's one-command READ DMA benchmark on a FUSE disk
/// (mode `mode`) whose reads are never answered, sends SIGTERM once the
/// server holds the read, and checks: the message (`expected`, with which
/// command was in flight and that the disk was NOT flushed, never that it
/// was) within its bound; the runner's own code is then done (it exited,
/// or the kernel holds it in its exit for the request: the main thread is
/// a zombie); after the read is released (the FUSE connection aborted) the
/// process ends, with status 74.
fn stop_with_a_disk_that_does_not_answer(mode: common::fuse::Mode, expected: &Expected) {
    use common::fuse::{self, BlockingFuse, HeldRead};

    if !kvm_available() {
        return;
    }
    // (Ignored when the build saw no root and /dev/fuse: `vmdma_fuse`.)
    assert!(
        fuse::available(),
        "cannot mount FUSE here, but the build found root and /dev/fuse or CI=true requires it"
    );
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let fs = BlockingFuse::mount(&mnt, 64 << 20, mode).expect("mount the FUSE file system");
    let disk = format!("{},aio=io_uring", fs.image().display());
    let bound = TEST_SHUTDOWN_BOUND_SECS.to_string();
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_vmdma"))
            .args(["run", "--disk", &disk, "--timeout", "120"])
            .args(["--cmdline", expected.cmdline])
            .args(["--shutdown-bound", &bound])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("vmdma starts"),
    );
    // Stderr as it comes: the message must be there before the process
    // can be reaped.
    let err = Arc::new(Mutex::new(String::new()));
    {
        let err = err.clone();
        let mut pipe = child.0.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut b = [0u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut b) {
                err.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&b[..n]));
            }
        });
    }
    let stderr = || err.lock().unwrap().clone();

    // The benchmark's first READ DMA, at LBA 2048.
    let held = fs.next_read(Duration::from_secs(30));
    assert!(
        matches!(held, Some(HeldRead { offset, .. }) if offset == 2048 * 512),
        "{held:?} {}",
        stderr()
    );
    // SAFETY: kill(2) with the child's pid and a valid signal number.
    let r = unsafe { libc::kill(child.0.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(r, 0);
    let signalled = Instant::now();
    while !stderr().contains("NOT flushed") {
        assert!(
            signalled.elapsed() < expected.within,
            "no message within {:?} of SIGTERM: {:?}",
            expected.within,
            stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = signalled.elapsed();
    let msg = stderr();
    eprintln!("after {took:?}: {msg}");
    for s in expected.says {
        assert!(msg.contains(s), "{msg:?} should say {s:?}");
    }
    assert!(!msg.contains("the disk was flushed"), "{msg}");
    assert!(took >= expected.not_before, "gave up too early: {took:?}");

    // The runner is done: it has exited, or the kernel holds it in its exit
    // for the request (the main thread is a zombie).
    let pid = child.0.id();
    let mut state = proc_state(pid);
    for _ in 0..100 {
        if child.0.try_wait().unwrap().is_some() || state.starts_with("State: Z") {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        state = proc_state(pid);
    }
    eprintln!("while the read is held: {state:?}");
    assert!(
        child.0.try_wait().unwrap().is_some() || state.starts_with("State: Z"),
        "the runner is still running: {state}"
    );

    // Releasing the read (the FUSE connection is aborted) lets the kernel
    // end the process.
    drop(fs);
    let released = Instant::now();
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            released.elapsed() < Duration::from_secs(10),
            "still running 10 s after the read was released: {}",
            proc_state(pid)
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(74), "{}", stderr());
}

/// A 2 MiB READ DMA EXT goes to an io_uring worker at once
/// (`IOSQE_ASYNC`, `uring::ASYNC_THRESHOLD`), which waits for the server while the vCPU returns to
/// the guest: SIGTERM stops the vCPU,
/// the drain waits the shutdown bound (plus at most one 2 s backend wait),
/// and the runner says what is still in flight and exits with 74 without
/// unmapping guest memory.
///
/// Needs root and /dev/fuse (decided when the runner is built, see
/// `runner/build.rs`); ignored otherwise, visibly.
#[test]
#[cfg_attr(
    not(vmdma_fuse),
    ignore = "needs root and /dev/fuse to mount a FUSE file system (checked at build time)"
)]
fn sigterm_with_a_disk_that_does_not_answer_a_worker_exits_74_not_flushed() {
    stop_with_a_disk_that_does_not_answer(
        common::fuse::Mode::Direct,
        &Expected {
            cmdline: "bench=seq-read bench_count=1 bench_sectors=4096",
            says: &[
                "stopped by signal 15, but the disk did not answer: 1 request(s) still in flight \
                 after 2.0 s (the guest's READ DMA (0x25) on device 0, sector 2048, 4096 \
                 sector(s)); the disk was NOT flushed",
                "exiting with status 74",
            ],
            not_before: Duration::from_secs(TEST_SHUTDOWN_BOUND_SECS),
            within: Duration::from_secs(TEST_SHUTDOWN_BOUND_SECS + 2 + 3),
        },
    );
}

/// A 4 KiB READ DMA is issued inline by io_uring (in `io_uring_enter`, on
/// FUSE whether or not the file uses the page cache), so the vCPU thread
/// itself blocks in the kernel inside the guest's START write and never
/// leaves the guest: after the 5 s of kicks the supervisor says so, names
/// the guest's last command, says the disk was NOT flushed and ends with 74.
#[test]
#[cfg_attr(
    not(vmdma_fuse),
    ignore = "needs root and /dev/fuse to mount a FUSE file system (checked at build time)"
)]
fn sigterm_with_a_disk_that_does_not_answer_the_vcpu_exits_74_not_flushed() {
    stop_with_a_disk_that_does_not_answer(
        common::fuse::Mode::Cached,
        &Expected {
            cmdline: "bench=dma-read bench_count=1 bench_sectors=8",
            says: &[
                "vmdma: error: stopped by signal 15, but the vCPU did not leave the guest within 5 s",
                "READ DMA (0xc8) on device 0, sector 2048, 8 sector(s)",
            ],
            not_before: Duration::from_secs(5),
            within: Duration::from_secs(5 + 3),
        },
    );
}
