//! The bundled guest's conformance suite under vmdma (real KVM, real image
//! file): every named test passes, and afterwards the image holds exactly
//! what the guest announced it wrote — every other byte untouched.

mod common;

use common::suite::{Change, Outcome, check_image, parse_run};
use common::{
    ALWAYS_SKIPPED, SUITE_IMAGE_BYTES, SYNC_SKIPPED, TIMING_DEPENDENT, kvm_available, sparse_image,
    status, stderr, vmdma,
};
use vmdma_protocol::{STAMP_SECTOR, stamp_sector};

/// What a conformance run must show besides passing.
#[derive(Clone, Copy)]
enum Expect {
    /// Every test passes (timing-dependent ones may skip).
    AllPass,
    /// A device that completes inside the START write: the async-only
    /// test skips.
    Synchronous,
}

/// Runs the suite with `--disk IMAGE,<options>` and checks the results and
/// the image against the manifest. Returns stderr (the `--stats` report).
fn run_suite(options: &str, expect: Expect) -> String {
    let dir = tempfile::tempdir().unwrap();
    let img = sparse_image(dir.path(), "disk.img", SUITE_IMAGE_BYTES);
    let spec = format!("{}{options}", img.display());
    let manifest = dir.path().join("manifest.txt");
    let out = vmdma(&[
        "run",
        "--disk",
        &spec,
        "--manifest",
        manifest.to_str().unwrap(),
        "--timeout",
        "900",
        "--stats",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    let err = stderr(&out);
    // (Ignored when the build found no direct I/O in the temporary
    // directory: `vmdma_odirect`, `runner/build.rs`.)
    assert!(
        !(status(&out) == 65 && err.contains("direct I/O")),
        "{options}: refused, though the build found direct I/O in the temporary directory \
         (or CI=true requires it): {err}"
    );
    let run = parse_run(
        &text,
        &std::fs::read_to_string(&manifest).unwrap_or_default(),
    );
    assert!(
        run.failures().is_empty(),
        "{options}: failed tests: {:#?}\n{text}",
        run.failures()
    );
    assert_eq!(
        status(&out),
        0,
        "{options}: stdout:\n{text}\nstderr:\n{err}"
    );
    assert!(
        err.contains("vmdma stats: seccomp: on"),
        "{options}: the suite runs under the seccomp filters: {err}"
    );
    // write_cache_off wrote with the cache off: the device flushed after
    // the write (the guest cannot see which path ran; the counter can).
    let through = err
        .split([';', '\n'])
        .find_map(|p| p.trim().strip_suffix(" write-through flushes"))
        .and_then(|n| n.trim().parse::<u64>().ok())
        .unwrap_or_else(|| panic!("{options}: no write-through flush count: {err}"));
    assert!(through >= 1, "{options}: {through} write-through flushes");
    let (passed, failed, skipped) = run.summary.expect("summary line");
    assert_eq!(failed, 0);
    assert!(passed >= 35, "only {passed} tests passed");
    assert_eq!(passed + failed + skipped, run.tests.len() as u32);
    for (name, o) in &run.tests {
        let name = name.as_str();
        let allowed_skip = ALWAYS_SKIPPED.contains(&name)
            || match expect {
                Expect::AllPass => TIMING_DEPENDENT.contains(&name),
                Expect::Synchronous => SYNC_SKIPPED.contains(&name),
            };
        match o {
            Outcome::Ok => assert!(
                !matches!(expect, Expect::Synchronous) || !SYNC_SKIPPED.contains(&name),
                "{options}: {name} passed on a synchronous device"
            ),
            Outcome::Skipped(r) => {
                assert!(allowed_skip, "{options}: {name} skipped on vmdma: {r}")
            }
            Outcome::Failed(r) => panic!("{options}: {name} failed: {r}"),
        }
    }
    assert!(!run.manifest.is_empty(), "the suite writes to the disk");
    let checked = check_image(&img, &run.manifest);
    assert!(checked > 100, "only {checked} sectors checked");
    assert!(err.contains("DMA commands"), "--stats reports DMA: {err}");
    err
}

#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn conformance_suite_on_io_uring_image_matches_manifest() {
    if !kvm_available() {
        return;
    }
    let err = run_suite(",aio=io_uring", Expect::AllPass);
    assert!(err.contains("disk: aio=io_uring cache=writeback"), "{err}");
}

#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn conformance_suite_on_sync_image_matches_manifest() {
    if !kvm_available() {
        return;
    }
    let err = run_suite(",aio=sync", Expect::Synchronous);
    assert!(err.contains("disk: aio=sync cache=writeback"), "{err}");
}

/// `cache=none` (O_DIRECT) on io_uring. Ignored where the temporary
/// directory's filesystem has no direct I/O (probed at build time). (The
/// large reads hit holes of the sparse image, which the kernel zero-fills on
/// the CPU even for direct I/O, so seeing one in flight is timing-dependent
/// here too.)
#[test]
#[cfg_attr(
    all(vmdma_kvm, not(vmdma_odirect)),
    ignore = "needs O_DIRECT in the temporary directory (probed at build time)"
)]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn conformance_suite_on_io_uring_direct_io() {
    if !kvm_available() {
        return;
    }
    let err = run_suite(",aio=io_uring,cache=none", Expect::AllPass);
    assert!(err.contains("disk: aio=io_uring cache=none"), "{err}");
}

/// Without `--manifest` the debug console tells the guest that nobody
/// listens, and the guest sends no manifest at all: the console shows only
/// the banner, the test lines and the summary.
#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn without_manifest_the_guest_sends_none() {
    if !kvm_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = sparse_image(dir.path(), "disk.img", SUITE_IMAGE_BYTES);
    let stats = dir.path().join("stats.json");
    let out = vmdma(&[
        "run",
        "--disk",
        img.to_str().unwrap(),
        "--stats-json",
        stats.to_str().unwrap(),
        "--timeout",
        "900",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(status(&out), 0, "{text}\n{}", stderr(&out));
    // `parse` refuses manifest lines on the console.
    let run = common::suite::parse(&text);
    let (passed, failed, skipped) = run.summary.expect("summary line");
    assert_eq!(failed, 0);
    let lines = text.lines().filter(|l| !l.is_empty()).count();
    assert!(
        lines as u32 <= passed + skipped + 8,
        "{lines} console lines for {} tests:\n{text}",
        passed + skipped
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    let port = &v["exits"]["ports"]["0x00e9"];
    assert_eq!(port["out"], 0, "no manifest bytes: {port}");
    assert_eq!(port["in"], 1, "one probe of the port: {port}");
}

#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn readonly_suite_refuses_writes_and_leaves_image_identical() {
    if !kvm_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = sparse_image(dir.path(), "ro.img", SUITE_IMAGE_BYTES);
    // Some known content for the reads to see.
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new().write(true).open(&img).unwrap();
        let mut s = [0u8; STAMP_SECTOR];
        f.seek(SeekFrom::Start(0)).unwrap();
        for lba in 0..64 {
            stamp_sector(lba, 77, &mut s);
            f.write_all(&s).unwrap();
        }
    }
    let before = std::fs::metadata(&img).unwrap();
    let spec = format!("{},readonly", img.display());
    let manifest = dir.path().join("manifest.txt");
    let out = vmdma(&[
        "run",
        "--disk",
        &spec,
        "--manifest",
        manifest.to_str().unwrap(),
        "--cmdline",
        "suite=readonly",
        "--timeout",
        "600",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    let run = parse_run(&text, &std::fs::read_to_string(&manifest).unwrap());
    assert!(run.failures().is_empty(), "{:#?}\n{text}", run.failures());
    assert_eq!(
        status(&out),
        0,
        "stdout:\n{text}\nstderr:\n{}",
        stderr(&out)
    );
    assert!(run.tests.len() >= 5, "{text}");
    assert!(run.tests.iter().all(|(_, o)| *o == Outcome::Ok), "{text}");
    assert!(
        run.manifest.is_empty(),
        "a read-only run announces no writes"
    );
    let after = std::fs::metadata(&img).unwrap();
    assert_eq!(before.len(), after.len());
    assert_eq!(
        before.modified().unwrap(),
        after.modified().unwrap(),
        "image not modified"
    );
    check_image(
        &img,
        &[Change::Write {
            lba: 0,
            count: 64,
            pattern: 77,
        }],
    );
}
