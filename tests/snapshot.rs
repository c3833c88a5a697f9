//! Snapshots without draining (`docs/snapshot.md`), on real KVM with the
//! bundled guest's conformance suite: QMP `migrate` to a file at many
//! moments of the suite (many with a request in flight, some with a request
//! held at a blkdebug breakpoint, some during the suite's BMDMA-stop and
//! SRST tests), each restored into a new process on a copy of the image
//! taken at that moment; every restored guest finishes its suite with no
//! failure and leaves exactly what its write manifest says on the image.
//! Also: one snapshot restored twice finishes identically, and hostile
//! snapshot files are one-line errors.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use common::qmp::{Client, Vm};
use common::suite::{check_image, parse_manifest, parse_run};
use common::{SUITE_IMAGE_BYTES, kvm_available, sparse_image, status, stderr, vmdma};

/// A copy of a sparse image that stays sparse.
fn copy_sparse(from: &Path, to: &Path) {
    let ok = Command::new("cp")
        .arg("--sparse=always")
        .arg(from)
        .arg(to)
        .status()
        .unwrap()
        .success();
    assert!(ok, "cp {} {}", from.display(), to.display());
}

/// Starts the bundled guest's suite on `disk` with a QMP monitor (and
/// `extra` options), connected and past the capabilities handshake.
fn suite_vm(disk: &str, extra: &[&str]) -> (Vm, Client) {
    let vm = Vm::start_with_disk(tempfile::tempdir().unwrap(), disk, extra);
    let (mut c, _) = Client::connect(&vm.socket);
    c.ok("qmp_capabilities");
    (vm, c)
}

/// One snapshot taken of the source run.
struct Moment {
    snapshot: PathBuf,
    image: PathBuf,
    /// The source's manifest up to the snapshot.
    manifest: String,
    held: bool,
}

/// Restores `m` (with `--manifest`), returns (status, stdout, stderr,
/// the manifest of the restored run).
fn restore(m: &Moment, dir: &Path, tag: &str) -> (i32, String, String, String) {
    let manifest = dir.join(format!("restored-{tag}.txt"));
    let out = vmdma(&[
        "run",
        "--disk",
        m.image.to_str().unwrap(),
        "--incoming",
        &format!("file:{}", m.snapshot.display()),
        "--manifest",
        manifest.to_str().unwrap(),
        "--timeout",
        "300",
    ]);
    (
        status(&out),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr(&out),
        std::fs::read_to_string(&manifest).unwrap_or_default(),
    )
}

#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn snapshots_at_many_moments_restore_and_finish_the_suite() {
    if !kvm_available() {
        return;
    }
    const MOMENTS: usize = 50;
    let data = tempfile::tempdir().unwrap();
    let img = sparse_image(data.path(), "disk.img", SUITE_IMAGE_BYTES);
    let manifest = data.path().join("manifest.txt");
    // blkdebug with no rules: breakpoints set through the monitor hold a
    // request at some of the moments.
    let disk = format!("blkdebug::{}", img.display());
    let (vm, mut c) = suite_vm(&disk, &["--manifest", manifest.to_str().unwrap()]);
    let mut moments = Vec::new();
    let mut longest = Duration::ZERO;
    for i in 0..MOMENTS {
        // The guest runs only between `cont` and the next `migrate`: 2 to
        // 14 ms a moment, so 50 moments take well under a second of the
        // suite's guest time (more than 3 s here, every ring-0 instruction
        // being emulated). Longer pauses let the suite end first.
        std::thread::sleep(Duration::from_millis(2 + (i as u64 * 7) % 13));
        // Every fifth moment: a read held at a breakpoint.
        let held = i % 5 == 4
            && c.hmp("qemu-io ide0-hd0 \"break read_aio H\"").is_empty()
            && c.hmp("qemu-io ide0-hd0 \"wait_break H\"").is_empty();
        let snapshot = data.path().join(format!("snap-{i}.vmdma"));
        let t = Instant::now();
        let Some((_, reply)) = c.try_call(json!({
            "execute": "migrate",
            "arguments": {"uri": format!("file:{}", snapshot.display())},
        })) else {
            // The run ended (the suite finished) before this moment.
            break;
        };
        if reply.get("error").is_some() {
            // The suite ended before this moment.
            break;
        }
        longest = longest.max(t.elapsed());
        assert_eq!(c.status()["status"], "postmigrate");
        let (_, q) = c.call(json!({"execute": "query-migrate"}));
        assert_eq!(q["return"]["status"], "completed", "{q}");
        let image = data.path().join(format!("img-{i}.img"));
        copy_sparse(&img, &image);
        moments.push(Moment {
            snapshot,
            image,
            manifest: std::fs::read_to_string(&manifest).unwrap(),
            held,
        });
        let events = c.ok("cont");
        assert_eq!(events[0]["event"], "RESUME");
        if held {
            assert_eq!(c.hmp("qemu-io ide0-hd0 \"resume H\""), "");
        }
    }
    drop(c);
    let out = vm.wait();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(status(&out), 0, "the source: {text}\n{}", stderr(&out));
    eprintln!(
        "{} snapshots ({} with a held read), the longest migrate took {longest:?}",
        moments.len(),
        moments.iter().filter(|m| m.held).count()
    );
    assert!(
        moments.len() >= MOMENTS,
        "only {} moments: the suite ended first",
        moments.len()
    );
    for (i, m) in moments.iter().enumerate() {
        let (st, stdout, err, restored) = restore(m, data.path(), &i.to_string());
        assert_eq!(st, 0, "moment {i}: {stdout}\n{err}");
        let run = parse_run(&stdout, "");
        assert!(
            run.failures().is_empty(),
            "moment {i}: {:#?}",
            run.failures()
        );
        let (_, failed, _) = run.summary.expect("summary line");
        assert_eq!(failed, 0, "moment {i}");
        // The manifest is a byte stream the restored guest goes on with:
        // a line the snapshot cut ends in the restored run's file.
        check_image(&m.image, &parse_manifest(&(m.manifest.clone() + &restored)));
    }
}

#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn one_snapshot_restored_twice_finishes_identically() {
    if !kvm_available() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let img = sparse_image(data.path(), "disk.img", SUITE_IMAGE_BYTES);
    let manifest = data.path().join("manifest.txt");
    let (vm, mut c) = suite_vm(
        &img.display().to_string(),
        &["--manifest", manifest.to_str().unwrap()],
    );
    std::thread::sleep(Duration::from_millis(300));
    let snapshot = data.path().join("snap.vmdma");
    let (_, reply) = c.call(json!({
        "execute": "migrate",
        "arguments": {"uri": format!("file:{}", snapshot.display())},
    }));
    assert_eq!(reply, json!({"return": {}}));
    let before = std::fs::read_to_string(&manifest).unwrap();
    let a = data.path().join("a.img");
    let b = data.path().join("b.img");
    copy_sparse(&img, &a);
    copy_sparse(&img, &b);
    c.ok("quit");
    drop(c);
    vm.wait();
    let m = |image: PathBuf| Moment {
        snapshot: snapshot.clone(),
        image,
        manifest: before.clone(),
        held: false,
    };
    let (sa, oa, ea, ma) = restore(&m(a.clone()), data.path(), "a");
    let (sb, ob, eb, mb) = restore(&m(b.clone()), data.path(), "b");
    assert_eq!((sa, sb), (0, 0), "{oa}\n{ea}\n{ob}\n{eb}");
    // The same test results, the same writes, and each image holds them.
    let lines = |o: &str| -> Vec<String> {
        o.lines()
            .filter(|l| l.starts_with("test ") || l.contains(" passed, "))
            .map(String::from)
            .collect()
    };
    assert_eq!(lines(&oa), lines(&ob));
    assert_eq!(ma, mb, "the same writes");
    for (image, restored) in [(&a, &ma), (&b, &mb)] {
        check_image(image, &parse_manifest(&(before.clone() + restored)));
    }
}

/// A restored VM maps its RAM pages from the snapshot file; its own
/// `migrate` to the same path replaces the file instead of truncating
/// what it maps, and both the VM and the new snapshot go on.
#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn a_restored_vm_snapshots_over_its_own_file() {
    if !kvm_available() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let img = sparse_image(data.path(), "disk.img", SUITE_IMAGE_BYTES);
    let snapshot = data.path().join("snap.vmdma");
    let uri = format!("file:{}", snapshot.display());
    let migrate = |c: &mut Client| {
        let (_, reply) = c.call(json!({"execute": "migrate", "arguments": {"uri": uri}}));
        assert_eq!(reply, json!({"return": {}}));
    };
    let (vm, mut c) = suite_vm(&img.display().to_string(), &[]);
    std::thread::sleep(Duration::from_millis(300));
    migrate(&mut c);
    let first = data.path().join("first.img");
    copy_sparse(&img, &first);
    c.ok("quit");
    drop(c);
    vm.wait();
    let (vm, mut c) = suite_vm(&first.display().to_string(), &["--incoming", &uri]);
    std::thread::sleep(Duration::from_millis(200));
    migrate(&mut c);
    let second = data.path().join("second.img");
    copy_sparse(&first, &second);
    c.ok("cont");
    drop(c);
    let out = vm.wait();
    let finished = |out: &std::process::Output, what: &str| {
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(status(out), 0, "{what}: {text}\n{}", stderr(out));
        let (_, failed, _) = parse_run(&text, "").summary.expect("summary line");
        assert_eq!(failed, 0, "{what}: {text}");
    };
    finished(&out, "the restored VM");
    let out = vmdma(&[
        "run",
        "--disk",
        second.to_str().unwrap(),
        "--incoming",
        &uri,
        "--timeout",
        "300",
    ]);
    finished(&out, "its own snapshot, restored");
}

/// The hostile files: each a one-line error with status 65, never a crash.
#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn hostile_snapshots_are_one_line_errors() {
    if !kvm_available() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let img = sparse_image(data.path(), "disk.img", SUITE_IMAGE_BYTES);
    let (vm, mut c) = suite_vm(&img.display().to_string(), &[]);
    std::thread::sleep(Duration::from_millis(200));
    let good = data.path().join("good.vmdma");
    let (_, reply) = c.call(json!({
        "execute": "migrate",
        "arguments": {"uri": format!("file:{}", good.display())},
    }));
    assert_eq!(reply, json!({"return": {}}));
    c.ok("quit");
    drop(c);
    vm.wait();
    let bytes = std::fs::read(&good).unwrap();
    let run = |b: &[u8], extra: &[&str]| {
        let f = data.path().join("bad.vmdma");
        std::fs::write(&f, b).unwrap();
        let inc = format!("file:{}", f.display());
        let mut args = vec!["run", "--disk", img.to_str().unwrap(), "--incoming", &inc];
        args.extend_from_slice(extra);
        vmdma(&args)
    };
    let one_line = |o: &std::process::Output, needle: &str| {
        common::assert_one_line_error(o, 65, needle);
    };
    one_line(
        &run(&bytes[..bytes.len() / 2], &[]),
        "past the end of the file",
    );
    one_line(&run(&bytes[..10], &[]), "truncated");
    one_line(&run(b"ELF...not a snapshot", &[]), "not a vmdma snapshot");
    let mut v = bytes.clone();
    v[8] = 9;
    one_line(&run(&v, &[]), "format version 9");
    // Bit flips all over the file: a CRC or a check catches each.
    for at in [20, 40, bytes.len() / 3, bytes.len() / 2, bytes.len() - 30] {
        let mut v = bytes.clone();
        v[at] ^= 0x10;
        let o = run(&v, &[]);
        assert_eq!(status(&o), 65, "flip at {at}: {}", stderr(&o));
    }
    // A huge section length.
    let mut v = bytes.clone();
    v[20..28].copy_from_slice(&u64::MAX.to_le_bytes());
    one_line(&run(&v, &[]), "past the end of the file");
    // Larger than any snapshot of this VM (64 MiB of RAM): refused before
    // anything is read (a sparse file).
    let huge = data.path().join("huge.vmdma");
    std::fs::write(&huge, &bytes).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&huge)
        .unwrap()
        .set_len((128 << 20) + 1)
        .unwrap();
    one_line(
        &vmdma(&[
            "run",
            "--disk",
            img.to_str().unwrap(),
            "--incoming",
            &format!("file:{}", huge.display()),
        ]),
        "more than a snapshot of this VM can be",
    );
    // Another VM: more RAM, another disk.
    one_line(&run(&bytes, &["--memory", "128M"]), "bytes of RAM");
    let other = sparse_image(data.path(), "other.img", 1 << 30);
    let f = data.path().join("g.vmdma");
    std::fs::write(&f, &bytes).unwrap();
    let o = vmdma(&[
        "run",
        "--disk",
        other.to_str().unwrap(),
        "--incoming",
        &format!("file:{}", f.display()),
    ]);
    common::assert_one_line_error(&o, 65, "IDE unit 0");
    let o = vmdma(&["run", "--incoming", "tcp:1.2.3.4:5"]);
    common::assert_one_line_error(&o, 64, "only file:PATH");
}
