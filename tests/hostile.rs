//! The hostile-guest suite (`suite=hostile` of the bundled guest) on vmdma
//! and, the same ELF, on QEMU 7.2 (`-accel kvm -M pc`):
//!
//! - on vmdma every case ends in a verdict with the VMM alive, none is FAIL
//!   or WEDGED, and the image holds exactly what the guest announced;
//! - on QEMU the verdicts are recorded; where QEMU dies or hangs in a case
//!   (it runs under `timeout -k`), that is recorded and the suite resumes
//!   at the next case (`hostile_from=`);
//! - the ATAPI cases (`atapi_*`) skip without a CD-ROM, so both platforms
//!   run the suite a second time from the first of them with the CD-ROM
//!   test image on device 1 (vmdma `--cdrom`, QEMU `media=cdrom`), and
//!   their verdicts come from that run;
//! - the differential table (case, vmdma verdict, QEMU verdict, note) must
//!   equal the one in docs/hostile.md between the `hostile-table` markers.
//!   A stale table fails with a diff; `VMDMA_UPDATE_DOCS=1` rewrites it
//!   (refused under `CI`, where tests must not modify tracked files).

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::suite::{Change, check_image};
use common::{cd_image, kvm_available, qemu_available, sparse_image, stderr, vmdma};

/// How long one vmdma run of the whole suite may take before the test
/// gives up on it (it takes well under a minute here).
const VMDMA_GUARD: Duration = Duration::from_secs(900);
/// `timeout` for one QEMU session.
const QEMU_TIMEOUT_SECS: u64 = 300;
/// The disk: a sparse 64 GiB image, below the 2^28 sectors LBA28 reaches,
/// so the LBA28 end-of-disk cases run.
const IMAGE_BYTES: u64 = 64 << 30;
/// `qemu-system-x86_64 --version` of the QEMU the table is for.
const QEMU_VERSION_PREFIX: &str = "QEMU emulator version 7.2.";
/// The first ATAPI case: the CD-ROM runs start here.
const CD_FROM: &str = "atapi_limit_zero";
/// The ATAPI cases' name prefix.
const CD_PREFIX: &str = "atapi_";
const BEGIN: &str = "<!-- hostile-table:begin -->";
const END: &str = "<!-- hostile-table:end -->";

/// One case's verdict line: `case NAME ... WORD: reason`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Verdict {
    word: String,
    reason: String,
}

/// What one run of the guest printed.
#[derive(Debug, Default)]
struct HostileRun {
    /// Verdicts in output order.
    cases: Vec<(String, Verdict)>,
    /// A case that started (`running case NAME`) without a verdict line.
    unfinished: Option<String>,
    /// The `hostile: ...` summary line.
    summary: Option<String>,
    /// Disk changes announced, in order.
    manifest: Vec<Change>,
    /// A guest crash report (`vmdma-guest: CPU EXCEPTION ...`, `PANIC`).
    crash: Option<String>,
}

fn parse(output: &str) -> HostileRun {
    let mut run = HostileRun::default();
    for line in output.lines().map(|l| l.trim_end_matches('\r')) {
        if let Some(name) = line.strip_prefix("running case ") {
            run.unfinished = Some(name.to_string());
        } else if let Some(rest) = line.strip_prefix("case ") {
            let (name, v) = rest.split_once(" ... ").expect("a verdict line");
            let (word, reason) = v.split_once(": ").unwrap_or((v, ""));
            assert!(
                ["PASS", "REJECT", "FAIL", "WEDGED", "SKIP"].contains(&word),
                "bad verdict line {line:?}"
            );
            assert_eq!(run.unfinished.as_deref(), Some(name), "{line:?}");
            run.unfinished = None;
            run.cases.push((
                name.to_string(),
                Verdict {
                    word: word.to_string(),
                    reason: reason.to_string(),
                },
            ));
        } else if line.starts_with("hostile: ") {
            run.summary = Some(line.to_string());
        } else if line.starts_with("vmdma-guest: CPU EXCEPTION")
            || line.starts_with("vmdma-guest: PANIC")
        {
            run.crash
                .get_or_insert(line.trim_start_matches("vmdma-guest: ").to_string());
        }
    }
    // Refuses manifest lines on the console (they go to the debug console).
    common::suite::parse(output);
    run
}

/// The vmdma run, shared by both tests (it takes a while).
struct VmdmaRun {
    run: HostileRun,
    status: ExitStatus,
    stdout: String,
    stderr: String,
    _dir: tempfile::TempDir,
    image: PathBuf,
}

/// Runs `cmd`, killing it after `guard`; returns (status, stdout, stderr,
/// killed).
fn run_guarded(mut cmd: Command, guard: Duration) -> (ExitStatus, String, String, bool) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the VMM");
    let read = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut s);
            }
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = read(
        child
            .stdout
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let err = read(
        child
            .stderr
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let start = Instant::now();
    let mut killed = false;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for the VMM") {
            break s;
        }
        if start.elapsed() > guard {
            let _ = child.kill();
            killed = true;
            break child.wait().expect("wait for the killed VMM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (status, out.join().unwrap(), err.join().unwrap(), killed)
}

fn vmdma_run() -> &'static VmdmaRun {
    static RUN: OnceLock<VmdmaRun> = OnceLock::new();
    RUN.get_or_init(|| run_on_vmdma(false))
}

/// The run from the first ATAPI case with the CD-ROM image on device 1.
fn vmdma_cd_run() -> &'static VmdmaRun {
    static RUN: OnceLock<VmdmaRun> = OnceLock::new();
    RUN.get_or_init(|| run_on_vmdma(true))
}

fn run_on_vmdma(cd: bool) -> VmdmaRun {
    {
        let dir = tempfile::tempdir().unwrap();
        let image = sparse_image(dir.path(), "hostile.img", IMAGE_BYTES);
        let manifest = dir.path().join("manifest.txt");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vmdma"));
        cmd.args(["run", "--disk"])
            .arg(&image)
            .arg("--manifest")
            .arg(&manifest);
        if cd {
            cmd.arg("--cdrom").arg(cd_image(dir.path())).args([
                "--cmdline",
                &format!("suite=hostile hostile_from={CD_FROM}"),
            ]);
        } else {
            cmd.args(["--cmdline", "suite=hostile"]);
        }
        cmd.args(["--timeout", "600"]);
        let (status, stdout, stderr, killed) = run_guarded(cmd, VMDMA_GUARD);
        assert!(
            !killed,
            "vmdma hung: killed after {VMDMA_GUARD:?}\n{stdout}"
        );
        let mut run = parse(&stdout);
        run.manifest =
            common::suite::parse_manifest(&std::fs::read_to_string(&manifest).unwrap_or_default());
        VmdmaRun {
            run,
            status,
            stdout,
            stderr,
            _dir: dir,
            image,
        }
    }
}

/// The verdicts of the run without CD-ROM, the ATAPI cases' taken from
/// the run with it.
fn merged(main: &[(String, Verdict)], cd: &[(String, Verdict)]) -> Vec<(String, Verdict)> {
    main.iter()
        .map(|(n, v)| {
            let from_cd = n
                .starts_with(CD_PREFIX)
                .then(|| cd.iter().find(|(c, _)| c == n).map(|(_, v)| v.clone()))
                .flatten();
            (n.clone(), from_cd.unwrap_or_else(|| v.clone()))
        })
        .collect()
}

#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn hostile_suite_on_vmdma_has_no_fail_or_wedged_and_the_vmm_survives() {
    if !kvm_available() {
        return;
    }
    for cd in [false, true] {
        check_vmdma_run(if cd { vmdma_cd_run() } else { vmdma_run() });
    }
    let cd = &vmdma_cd_run().run;
    let atapi: Vec<&(String, Verdict)> = cd
        .cases
        .iter()
        .filter(|(n, _)| n.starts_with(CD_PREFIX))
        .collect();
    assert!(atapi.len() >= 9, "ATAPI cases with the CD-ROM: {atapi:?}");
    assert!(
        atapi.iter().all(|(_, v)| v.word != "SKIP"),
        "no ATAPI case skips with the CD-ROM: {atapi:?}"
    );
}

fn check_vmdma_run(v: &VmdmaRun) {
    let r = &v.run;
    let all = format!("stdout:\n{}\nstderr:\n{}", v.stdout, v.stderr);
    assert_eq!(
        v.status.code(),
        Some(0),
        "vmdma must survive every case and the guest report no FAIL/WEDGED\n{all}"
    );
    assert_eq!(r.unfinished, None, "a case never finished\n{all}");
    assert_eq!(r.crash, None, "the guest crashed\n{all}");
    let summary = r.summary.as_deref().expect("the hostile summary line");
    assert!(summary.contains(" 0 fail, 0 wedged"), "{summary}");
    let bad: Vec<String> = r
        .cases
        .iter()
        .filter(|(_, v)| v.word == "FAIL" || v.word == "WEDGED")
        .map(|(n, v)| format!("{n}: {} {}", v.word, v.reason))
        .collect();
    assert!(bad.is_empty(), "{bad:#?}");
    assert!(r.cases.len() >= 10, "only {} cases ran", r.cases.len());
    let mut names: Vec<&str> = r.cases.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), r.cases.len(), "case names are unique");
    // Every announced write landed, nothing else changed the image.
    assert!(!r.manifest.is_empty());
    check_image(&v.image, &r.manifest);
}

/// The name of signal `sig`.
fn signal_name(sig: i32) -> String {
    match sig {
        4 => "SIGILL".into(),
        6 => "SIGABRT".into(),
        7 => "SIGBUS".into(),
        8 => "SIGFPE".into(),
        9 => "SIGKILL".into(),
        11 => "SIGSEGV".into(),
        n => format!("signal {n}"),
    }
}

/// How a QEMU session (under `timeout`) ended. `timeout` exits with 124
/// (or 137 after `-k`) when it had to kill QEMU, and re-raises the signal
/// QEMU died of, or reports it as 128 + the signal number.
fn describe_end(status: ExitStatus, killed: bool, err: &str) -> String {
    use std::os::unix::process::ExitStatusExt;
    if killed {
        return "hung (killed by the test)".into();
    }
    if let Some(sig) = status.signal() {
        return format!("died of {}", signal_name(sig));
    }
    match status.code() {
        Some(124) | Some(137) => "hung (killed by timeout)".into(),
        Some(c) if c > 128 => format!("died of {}", signal_name(c - 128)),
        Some(c) => {
            let first = err
                .lines()
                .find(|l| !l.contains("host doesn't support requested feature"))
                .unwrap_or("")
                .trim();
            if first.is_empty() {
                format!("exited with status {c}")
            } else {
                format!("exited with status {c}: {first}")
            }
        }
        None => "ended without a status".into(),
    }
}

/// QEMU's verdicts for every case in `order`, resuming after a case in
/// which QEMU died or hung. The value of a case QEMU did not finish is
/// `("DIED"|"HUNG"|"CRASHED", what happened)`.
fn qemu_verdicts(elf: &Path, order: &[String], cd: bool) -> BTreeMap<String, Verdict> {
    let dir = tempfile::tempdir().unwrap();
    let image = sparse_image(dir.path(), "qemu.img", IMAGE_BYTES);
    let cd_drive = cd.then(|| {
        format!(
            "file={},format=raw,if=ide,index=1,media=cdrom",
            cd_image(dir.path()).display()
        )
    });
    let mut out = BTreeMap::new();
    let mut from: Option<&str> = cd.then_some(CD_FROM);
    for _ in 0..order.len() {
        let mut append = "suite=hostile".to_string();
        if let Some(f) = from {
            append.push_str(&format!(" hostile_from={f}"));
        }
        let mut cmd = common::qemu_pc(QEMU_TIMEOUT_SECS, "128M");
        cmd.arg("-drive").arg(common::qemu_ide_drive(&image));
        if let Some(d) = &cd_drive {
            cmd.arg("-drive").arg(d);
        }
        cmd.arg("-kernel").arg(elf).args(["-append", &append]);
        let guard = Duration::from_secs(QEMU_TIMEOUT_SECS + 30);
        let (status, stdout, stderr, killed) = run_guarded(cmd, guard);
        let run = parse(&stdout);
        for (n, v) in run.cases {
            out.insert(n, v);
        }
        let Some(stuck) = run.unfinished else {
            assert!(
                run.summary.is_some(),
                "QEMU ended without a hostile summary and outside any case: {}\n{stdout}\n{stderr}",
                describe_end(status, killed, &stderr)
            );
            break;
        };
        let end = describe_end(status, killed, &stderr);
        let (word, what) = if let Some(c) = &run.crash {
            ("CRASHED", format!("the guest crashed: {c}"))
        } else if end.starts_with("hung") {
            ("HUNG", format!("QEMU {end}"))
        } else {
            ("DIED", format!("QEMU {end}"))
        };
        out.insert(
            stuck.clone(),
            Verdict {
                word: word.into(),
                reason: what,
            },
        );
        let i = order
            .iter()
            .position(|n| *n == stuck)
            .expect("QEMU stopped in a case vmdma ran");
        match order.get(i + 1) {
            Some(next) => from = Some(next.as_str()),
            None => break,
        }
    }
    out
}

/// The table in docs/hostile.md.
fn table(vmdma: &[(String, Verdict)], qemu: &BTreeMap<String, Verdict>) -> String {
    let mut t = String::new();
    t.push_str(
        "Generated by `tests/hostile.rs` (`VMDMA_UPDATE_DOCS=1 cargo test --test hostile`) \
         with QEMU 7.2 (`-accel kvm -M pc -m 128M`); both disks are sparse 64 GiB images; the \
         `atapi_*` cases come from a second run with the CD-ROM test image on device 1.\n\n",
    );
    t.push_str("| case | vmdma | QEMU 7.2 | note |\n|---|---|---|---|\n");
    for (name, v) in vmdma {
        let (qw, note) = match qemu.get(name) {
            None => ("not run".to_string(), v.reason.clone()),
            Some(q) if q.word == "DIED" || q.word == "HUNG" || q.word == "CRASHED" => (
                format!("**{}**", q.word),
                format!("vmdma: {}; {}", v.reason, q.reason),
            ),
            Some(q) if q.word == v.word && q.reason == v.reason => {
                (q.word.clone(), v.reason.clone())
            }
            Some(q) => (
                q.word.clone(),
                format!("vmdma: {}; QEMU: {}", v.reason, stable_reason(q)),
            ),
        };
        let note = note.replace('|', "\\|");
        t.push_str(&format!("| `{name}` | {} | {qw} | {note} |\n", v.word));
    }
    t
}

/// What a verdict says that does not change from run to run: after a
/// WEDGED case the guest's recovery (SRST, a known-good read) meets a
/// broken channel, and on QEMU where it fails varies between runs (and with
/// it how much of the case's message fits the guest's line), so only the
/// case's own verdict is kept.
fn stable_reason(q: &Verdict) -> String {
    const SAID: &str = " (the case said ";
    match q.reason.find(SAID) {
        Some(at) if q.word == "WEDGED" => {
            let said = &q.reason[at + SAID.len()..];
            let word = said.split([':', ')', ' ']).next().unwrap_or("");
            format!("recovery failed (the case said {word})")
        }
        _ => q.reason.clone(),
    }
}

/// A line diff: lines only in `old` with `-`, only in `new` with `+`.
fn diff(old: &str, new: &str) -> String {
    let o: Vec<&str> = old.lines().collect();
    let n: Vec<&str> = new.lines().collect();
    let mut d = String::new();
    for l in &o {
        if !n.contains(l) {
            d.push_str(&format!("- {l}\n"));
        }
    }
    for l in &n {
        if !o.contains(l) {
            d.push_str(&format!("+ {l}\n"));
        }
    }
    d
}

#[test]
#[cfg_attr(
    all(vmdma_kvm, not(vmdma_qemu_7_2)),
    ignore = "needs QEMU 7.2 as qemu-system-x86_64 on PATH, the table's version (probed at build time)"
)]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn differential_table_in_docs_is_current() {
    if !kvm_available() || !qemu_available() {
        return;
    }
    let v = vmdma_run();
    assert!(!v.run.cases.is_empty(), "vmdma ran no case: {}", v.stdout);
    let dir = tempfile::tempdir().unwrap();
    let elf = dir.path().join("guest.elf");
    let w = vmdma(&["guest-elf", elf.to_str().unwrap()]);
    assert_eq!(w.status.code(), Some(0), "{}", stderr(&w));
    let version = Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .expect("qemu --version");
    let version = String::from_utf8_lossy(&version.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    // The table is QEMU 7.2's (Debian 12, what .ci/run installs); point
    // releases do not change it, another minor version may.
    // (Ignored when the build found another version: `vmdma_qemu_7_2`.)
    assert!(
        version.starts_with(QEMU_VERSION_PREFIX),
        "the hostile table is for QEMU 7.2, found {version:?} (the build found 7.2, or CI=true)"
    );
    let order: Vec<String> = v.run.cases.iter().map(|(n, _)| n.clone()).collect();
    let qemu = qemu_verdicts(&elf, &order, false);
    let qemu_cd = qemu_verdicts(&elf, &order, true);
    let qemu: BTreeMap<String, Verdict> = qemu
        .into_iter()
        .map(|(n, v)| {
            let v = match qemu_cd.get(&n) {
                Some(c) if n.starts_with(CD_PREFIX) => c.clone(),
                _ => v,
            };
            (n, v)
        })
        .collect();
    let cases = merged(&v.run.cases, &vmdma_cd_run().run.cases);
    let generated = table(&cases, &qemu);

    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/hostile.md");
    let text = std::fs::read_to_string(&doc).expect("read docs/hostile.md");
    let (Some(b), Some(e)) = (text.find(BEGIN), text.find(END)) else {
        panic!("docs/hostile.md lacks the {BEGIN} / {END} markers");
    };
    let current = &text[b + BEGIN.len()..e];
    let current = current.trim_start_matches('\n');
    if current == generated {
        return;
    }
    if std::env::var("VMDMA_UPDATE_DOCS").is_ok_and(|v| v == "1") {
        assert!(
            std::env::var_os("CI").is_none(),
            "VMDMA_UPDATE_DOCS=1 is refused under CI: tests must not modify tracked files"
        );
        let updated = format!("{}{BEGIN}\n{generated}{}", &text[..b], &text[e..]);
        std::fs::write(&doc, updated).expect("write docs/hostile.md");
        eprintln!("docs/hostile.md: hostile table updated");
        return;
    }
    panic!(
        "the hostile-suite table in docs/hostile.md is stale; regenerate it with\n  \
         VMDMA_UPDATE_DOCS=1 cargo test --test hostile\ndiff (- docs, + now):\n{}",
        diff(current, &generated)
    );
}
