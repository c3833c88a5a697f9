//! QEMU's own IDE test suite against vmdma: `tests/qtest/ide-test` from
//! QEMU 7.2 (built by `.ci/qemu-ide-test.sh` from Debian's source package)
//! runs unmodified, in TAP mode, with `QTEST_QEMU_BINARY` pointing at
//! `runner/qtest/vmdma-system-x86_64`, i.e. `vmdma qtest`.
//!
//! Every in-scope test must pass; the out-of-scope ones are skipped
//! explicitly with `-s` (docs/ide-test.md lists them with the reasons).
//! Without the binary the test is ignored, with the reason, or fails under
//! `CI=true`. `VMDMA_IDE_TEST` overrides where the binary is looked for.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::facts::{IDE_TEST_REQUIRED as REQUIRED, IDE_TEST_SKIPPED as SKIPPED};

/// Where the binary is: `$VMDMA_IDE_TEST`, or the cache that
/// `.ci/qemu-ide-test.sh` fills. The test is ignored when the build
/// did not find it there (`vmdma_ide_test`, `runner/build.rs`); one that
/// runs anyway (the build found it, or `CI=true`) fails without it.
fn ide_test_binary() -> PathBuf {
    let path = match std::env::var_os("VMDMA_IDE_TEST") {
        Some(p) => PathBuf::from(p),
        None => std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .expect("HOME or XDG_CACHE_HOME is set")
            .join("vmdma/qemu-7.2-ide-test/ide-test"),
    };
    assert!(
        path.is_file(),
        "{} is missing, but the build found it or CI=true requires it \
         (.ci/qemu-ide-test.sh builds it)",
        path.display()
    );
    path
}

/// One TAP result line: `ok N PATH [# SKIP ...]` or `not ok N PATH`.
#[derive(Debug, PartialEq, Eq)]
struct TapResult {
    ok: bool,
    skipped: bool,
    path: String,
}

fn parse_tap(out: &str) -> (Option<usize>, Vec<TapResult>) {
    let mut plan = None;
    let mut results = Vec::new();
    for line in out.lines() {
        if let Some(n) = line.strip_prefix("1..") {
            plan = n.trim().parse().ok();
            continue;
        }
        let (ok, rest) = if let Some(r) = line.strip_prefix("not ok ") {
            (false, r)
        } else if let Some(r) = line.strip_prefix("ok ") {
            (true, r)
        } else {
            continue;
        };
        let mut words = rest.splitn(2, ' ');
        let _number = words.next();
        let tail = words.next().unwrap_or("");
        let (path, directive) = tail.split_once(" # ").unwrap_or((tail, ""));
        results.push(TapResult {
            ok,
            skipped: directive.starts_with("SKIP"),
            path: path.trim().to_string(),
        });
    }
    (plan, results)
}

#[test]
#[cfg_attr(
    not(vmdma_ide_test),
    ignore = "needs QEMU's ide-test in $VMDMA_IDE_TEST or ~/.cache/vmdma (built by .ci/qemu-ide-test.sh; probed at build time)"
)]
fn qemu_ide_test_passes_against_vmdma() {
    let ide_test = ide_test_binary();
    // ide-test and libqtest put images and sockets in TMPDIR.
    let tmp = tempfile::tempdir().unwrap();
    let wrapper = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../qtest/vmdma-system-x86_64");
    let mut cmd = Command::new("timeout");
    cmd.args(["-k", "5", "600"])
        .arg(&ide_test)
        .arg("--tap")
        .env("QTEST_QEMU_BINARY", &wrapper)
        .env("VMDMA", env!("CARGO_BIN_EXE_vmdma"))
        .env("TMPDIR", tmp.path())
        .env_remove("QTEST_LOG");
    for (path, _) in SKIPPED {
        cmd.args(["-s", path]);
    }
    let out = cmd.output().expect("ide-test starts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let context = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    let (plan, results) = parse_tap(&stdout);
    assert_eq!(
        plan,
        Some(REQUIRED.len() + SKIPPED.len()),
        "the 7.2 list has 13 tests\n{context}"
    );
    for path in REQUIRED {
        let r = results.iter().find(|r| r.path == *path);
        assert!(
            matches!(
                r,
                Some(TapResult {
                    ok: true,
                    skipped: false,
                    ..
                })
            ),
            "{path}: {r:?}\n{context}"
        );
    }
    for (path, why) in SKIPPED {
        let r = results.iter().find(|r| r.path == *path);
        assert!(
            matches!(
                r,
                Some(TapResult {
                    ok: true,
                    skipped: true,
                    ..
                })
            ),
            "{path} should be skipped ({why}): {r:?}\n{context}"
        );
    }
    assert_eq!(results.len(), REQUIRED.len() + SKIPPED.len(), "{context}");
    assert_eq!(out.status.code(), Some(0), "{context}");
    // Nothing left behind in TMPDIR but what ide-test removes itself.
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "left in TMPDIR: {left:?}");
}

#[test]
fn tap_parser() {
    let (plan, r) = parse_tap(
        "# seed\n1..3\nok 1 /x86_64/ide/identify\nnot ok 2 /a/b\nok 3 /c # SKIP by request (-s option)\nBail out! x\n",
    );
    assert_eq!(plan, Some(3));
    assert_eq!(
        r,
        vec![
            TapResult {
                ok: true,
                skipped: false,
                path: "/x86_64/ide/identify".into()
            },
            TapResult {
                ok: false,
                skipped: false,
                path: "/a/b".into()
            },
            TapResult {
                ok: true,
                skipped: true,
                path: "/c".into()
            },
        ]
    );
}
