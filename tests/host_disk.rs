//! The image under the runner: another process shrinks or grows it while
//! the guest runs, the filesystem fills up, the runner is killed right after
//! the guest was told its write is on the disk. Each failure reaches the
//! guest as an ATA error for that command and the runner says so once on
//! stderr; nothing panics, hangs or hands the guest garbage.

mod common;

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::elf_builder::{ElfBuilder, code};
use common::{SmallFs, kvm_available, sparse_image, write_file};

/// Starts vmdma with stdout piped.
fn spawn(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_vmdma"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("vmdma starts")
}

/// Reads `child`'s stdout until a line contains `needle`, runs `then`, and
/// collects the rest of the run (bounded: the run has `--timeout`).
fn on_line(mut child: Child, needle: &str, then: impl FnOnce(&mut Child)) -> (Output, String) {
    let stdout = child.stdout.take().unwrap();
    let mut reader = BufReader::new(stdout);
    let mut seen = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap() == 0 {
            break;
        }
        seen.push_str(&line);
        if line.contains(needle) {
            then(&mut child);
            break;
        }
    }
    let mut rest = String::new();
    let _ = reader.read_to_string(&mut rest);
    seen.push_str(&rest);
    (child.wait_with_output().unwrap(), seen)
}

/// A guest benchmark (`bench=MODE`) of `count` commands of 128 sectors on
/// `disk` (options appended), which calls `then` once the guest starts it.
fn bench_run(
    disk: &str,
    mode: &str,
    count: u32,
    then: impl FnOnce(&mut Child),
) -> (i32, String, String) {
    let cmdline = format!("bench={mode} bench_count={count} bench_sectors=128");
    let child = spawn(&[
        "run",
        "--disk",
        disk,
        "--cmdline",
        &cmdline,
        "--timeout",
        "300",
        "--stats",
    ]);
    let (out, stdout) = on_line(child, "running bench=", then);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), stdout, err)
}

fn set_len(path: &Path, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

/// The guest's benchmark fails (it saw an ATA error), the runner ends the
/// run as a guest result (not a VMM error) and warns once.
fn assert_guest_saw_an_error(what: &str, status: i32, stdout: &str, err: &str, errno_text: &str) {
    assert!(
        stdout.contains("FAILED"),
        "{what}: the guest saw no error:\n{stdout}\n{err}"
    );
    assert!(
        (1..=63).contains(&status),
        "{what}: status {status} is not a guest result:\n{err}"
    );
    assert_eq!(
        err.matches("vmdma: warning: disk I/O error").count(),
        1,
        "{what}: one warning:\n{err}"
    );
    assert!(err.contains(errno_text), "{what}:\n{err}");
    assert!(!err.contains("panicked"), "{what}:\n{err}");
    let errors = err
        .split([';', '\n'])
        .find_map(|p| p.trim().strip_suffix(" host I/O errors"))
        .and_then(|n| n.trim().parse::<u64>().ok())
        .unwrap_or_else(|| panic!("{what}: no I/O error count:\n{err}"));
    assert!(errors >= 1, "{what}: {errors} host I/O errors");
}

#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn image_truncated_while_the_guest_reads() {
    if !kvm_available() {
        return;
    }
    for aio in ["sync", "io_uring"] {
        let dir = tempfile::tempdir().unwrap();
        let img = sparse_image(dir.path(), "disk.img", 512 << 20);
        let disk = format!("{},aio={aio}", img.display());
        // 4096 commands of 64 KiB from LBA 2048: the image shrinks to 1 MiB
        // as soon as the guest starts, so the reads soon pass its end.
        let (status, stdout, err) = bench_run(&disk, "dma-read", 4096, |_| set_len(&img, 1 << 20));
        assert_guest_saw_an_error(aio, status, &stdout, &err, "Input/output error");
    }
}

#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn image_grown_while_the_guest_reads() {
    if !kvm_available() {
        return;
    }
    for aio in ["sync", "io_uring"] {
        let dir = tempfile::tempdir().unwrap();
        let img = sparse_image(dir.path(), "disk.img", 64 << 20);
        let disk = format!("{},aio={aio}", img.display());
        // The guest keeps the size it was given; growing the file changes
        // nothing it can see.
        let (status, stdout, err) = bench_run(&disk, "dma-read", 256, |_| set_len(&img, 1 << 30));
        assert_eq!(status, 0, "{aio}:\n{stdout}\n{err}");
        assert!(!err.contains("warning"), "{aio}:\n{err}");
        assert!(err.contains("; 0 host I/O errors"), "{aio}:\n{err}");
    }
}

#[test]
#[cfg_attr(
    all(vmdma_kvm, not(vmdma_tmpfs)),
    ignore = "needs root (CAP_SYS_ADMIN) to mount a small tmpfs (probed at build time)"
)]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn full_filesystem_fails_the_write_not_the_vmm() {
    if !kvm_available() {
        return;
    }
    let fs = SmallFs::mount(4 << 20);
    for aio in ["sync", "io_uring"] {
        let img = sparse_image(&fs.path(), &format!("{aio}.img"), 64 << 20);
        let disk = format!("{},aio={aio}", img.display());
        // 32 MiB of writes into a 4 MiB filesystem.
        let (status, stdout, err) = bench_run(&disk, "dma-write", 512, |_| {});
        assert_guest_saw_an_error(aio, status, &stdout, &err, "No space left on device");
        std::fs::remove_file(&img).unwrap();
    }
}

/// The guest writes one sector by PIO (write cache on and FLUSH CACHE, or
/// write cache off and no flush), prints "done", and the runner is killed
/// with SIGKILL the moment that line appears: the sector is in the file.
#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn sigkill_after_a_completed_durable_write_keeps_it() {
    if !kvm_available() {
        return;
    }
    for aio in ["sync", "io_uring"] {
        for (cache_off, flush) in [(false, true), (true, false)] {
            let dir = tempfile::tempdir().unwrap();
            let img = sparse_image(dir.path(), "disk.img", 1 << 20);
            let fill = if cache_off { 0x5A } else { 0xA5 };
            let kernel = write_file(
                dir.path(),
                "write.elf",
                &ElfBuilder::new(code::pio_write_sector(9, fill, cache_off, flush)).build(),
            );
            let disk = format!("{},aio={aio}", img.display());
            let child = spawn(&[
                "run",
                "--kernel",
                kernel.to_str().unwrap(),
                "--disk",
                &disk,
                "--timeout",
                "60",
            ]);
            let start = Instant::now();
            let (out, stdout) = on_line(child, "done", |c| c.kill().unwrap());
            assert!(start.elapsed() < Duration::from_secs(60));
            let what = format!("aio={aio} cache_off={cache_off} flush={flush}");
            assert!(stdout.contains("done"), "{what}: {stdout}");
            assert!(!out.status.success(), "{what}: killed");
            let mut f = std::fs::File::open(&img).unwrap();
            f.seek(SeekFrom::Start(9 * 512)).unwrap();
            let mut sector = [0u8; 512];
            f.read_exact(&mut sector).unwrap();
            assert!(
                sector.iter().all(|&b| b == fill),
                "{what}: sector 9 is not on disk"
            );
        }
    }
}
