//! QEMU's disk error policies and blkdebug fault injection on `vmdma run`,
//! driven by the bundled guest's conformance suite on real KVM: a request
//! whose error stops the VM (`werror=stop`, `rerror=stop`, the default
//! `enospc` on a full filesystem) is kept, `BLOCK_IO_ERROR` and `STOP` are
//! sent, `cont` submits it again, and the guest sees every command succeed
//! (the suite passes and the image matches its write manifest). Also a
//! request held at a breakpoint does not keep `stop` from pausing the VM.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use common::qmp::{Client, Vm};
use common::suite::{check_image, parse_run};
use common::{SUITE_IMAGE_BYTES, SmallFs, kvm_available, sparse_image, status, stderr, write_file};

/// One request of each kind fails once, in turn (QEMU's blkdebug rules):
/// the first write with ENOSPC, then the first read, the first flush and
/// the first discard after a write with EIO.
const ONE_OF_EACH: &str = r#"
# 1: the first write
[inject-error]
event = "write_aio"
state = "1"
errno = "28"
once = "on"

[set-state]
event = "write_aio"
state = "1"
new_state = "2"

# 2: then the first read
[inject-error]
event = "read_aio"
state = "2"
once = "on"

[set-state]
event = "read_aio"
state = "2"
new_state = "3"

# 3: then the first flush
[inject-error]
event = "flush_to_disk"
state = "3"
once = "on"

[set-state]
event = "flush_to_disk"
state = "3"
new_state = "4"

# 4: then the first discard after a write
[inject-error]
event = "write_aio"
state = "4"
iotype = "discard"
once = "on"
"#;

/// What the monitor saw over a run.
#[derive(Debug, Default)]
struct Seen {
    /// `BLOCK_IO_ERROR`s' data, in order.
    errors: Vec<Value>,
    /// `STOP`s caused by an error: (`query-status`, `query-block`'s
    /// `io-status`) while stopped.
    stops: Vec<(String, String)>,
}

/// Serves the monitor until the run ends: every `STOP` after a
/// `BLOCK_IO_ERROR` is checked and answered with `cont`, after
/// `on_stop(the error's data)` ran.
fn serve_until_shutdown(c: &mut Client, mut on_stop: impl FnMut(&Value)) -> Seen {
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut seen = Seen::default();
    let mut pending: Vec<Value> = Vec::new();
    loop {
        let v = match pending.pop() {
            Some(v) => v,
            None => match c.next_until(deadline) {
                Some(v) => v,
                None => return seen,
            },
        };
        match v["event"].as_str() {
            Some("BLOCK_IO_ERROR") => seen.errors.push(v["data"].clone()),
            Some("STOP") => {
                let last = seen
                    .errors
                    .last()
                    .cloned()
                    .expect("STOP after BLOCK_IO_ERROR");
                assert_eq!(last["action"], "stop", "{last}");
                let status = c.status()["status"].as_str().unwrap().to_string();
                let (_, block) = c.call(json!({"execute": "query-block"}));
                let io = block["return"][0]["io-status"]
                    .as_str()
                    .unwrap()
                    .to_string();
                seen.stops.push((status, io));
                on_stop(&last);
                let (events, reply) = c.call(json!({"execute": "cont"}));
                assert_eq!(reply, json!({"return": {}}));
                assert_eq!(events[0]["event"], "RESUME", "{events:?}");
                pending.extend(events.into_iter().skip(1).rev());
            }
            Some("SHUTDOWN") => return seen,
            _ => {}
        }
    }
}

/// Checks a finished suite run: exit 0, no test failed, and the image
/// holds exactly what the guest's manifest says it wrote.
fn check_suite(out: &std::process::Output, image: &Path, manifest: &Path, what: &str) {
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(status(out), 0, "{what}: {text}\n{}", stderr(out));
    let run = parse_run(&text, &std::fs::read_to_string(manifest).unwrap());
    assert!(run.failures().is_empty(), "{what}: {:#?}", run.failures());
    let (passed, failed, _) = run.summary.expect("summary line");
    assert_eq!(failed, 0);
    assert!(passed >= 35, "{what}: only {passed} passed");
    let checked = check_image(image, &run.manifest);
    assert!(checked > 100, "{what}: only {checked} sectors checked");
}

#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn a_stopped_request_is_submitted_again_on_cont() {
    if !kvm_available() {
        return;
    }
    for aio in ["sync", "io_uring"] {
        let dir = tempfile::tempdir().unwrap();
        let img = sparse_image(dir.path(), "disk.img", SUITE_IMAGE_BYTES);
        let rules = write_file(dir.path(), "rules.conf", ONE_OF_EACH.as_bytes());
        let manifest = dir.path().join("manifest.txt");
        let disk = format!(
            "blkdebug:{}:{},aio={aio},werror=stop,rerror=stop",
            rules.display(),
            img.display()
        );
        // (The Vm's own directory goes with it; the image stays here.)
        let vm = Vm::start_with_disk(
            tempfile::tempdir().unwrap(),
            &disk,
            &["--manifest", manifest.to_str().unwrap()],
        );
        let (mut c, _) = Client::connect(&vm.socket);
        c.ok("qmp_capabilities");
        let seen = serve_until_shutdown(&mut c, |_| {});
        drop(c);
        let out = vm.wait();
        check_suite(&out, &img, &manifest, aio);
        let ops: Vec<(&str, bool, &str)> = seen
            .errors
            .iter()
            .map(|e| {
                (
                    e["operation"].as_str().unwrap(),
                    e["nospace"].as_bool().unwrap(),
                    e["reason"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            ops,
            [
                ("write", true, "No space left on device"),
                ("read", false, "Input/output error"),
                ("write", false, "Input/output error"),
                ("write", false, "Input/output error"),
            ],
            "{aio}: write, read, flush, discard"
        );
        assert!(seen.errors.iter().all(|e| e["device"] == "ide0-hd0"));
        assert_eq!(
            seen.stops,
            [
                ("io-error".to_string(), "nospace".to_string()),
                ("io-error".to_string(), "failed".to_string()),
                ("io-error".to_string(), "failed".to_string()),
                ("io-error".to_string(), "failed".to_string()),
            ],
            "{aio}"
        );
        assert!(
            stderr(&out).contains("the VM pauses (werror/rerror)"),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn report_and_ignore_do_not_pause() {
    if !kvm_available() {
        return;
    }
    // The first flush fails: with werror=report the guest sees an ATA
    // error for that command; with ignore it sees success. Neither pauses.
    const FIRST_FLUSH: &str = "[inject-error]\nevent = \"flush_to_disk\"\nonce = \"on\"\n";
    for (policy, want_failure) in [("report", true), ("ignore", false)] {
        let dir = tempfile::tempdir().unwrap();
        let img = sparse_image(dir.path(), "disk.img", SUITE_IMAGE_BYTES);
        let rules = write_file(dir.path(), "rules.conf", FIRST_FLUSH.as_bytes());
        let disk = format!(
            "blkdebug:{}:{},werror={policy}",
            rules.display(),
            img.display()
        );
        let vm = Vm::start_with_disk(dir, &disk, &[]);
        let (mut c, _) = Client::connect(&vm.socket);
        c.ok("qmp_capabilities");
        let seen = serve_until_shutdown(&mut c, |e| panic!("{policy}: stopped on {e}"));
        drop(c);
        let out = vm.wait();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(seen.errors.len(), 1, "{policy}: {:?}", seen.errors);
        assert_eq!(seen.errors[0]["action"], policy);
        let run = parse_run(&text, "");
        assert_eq!(
            !run.failures().is_empty(),
            want_failure,
            "{policy}: {:#?}\n{text}",
            run.failures()
        );
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
fn a_full_filesystem_pauses_the_vm_until_it_grows() {
    if !kvm_available() {
        return;
    }
    for aio in ["sync", "io_uring"] {
        // 256 KiB: the suite's first large write does not fit.
        let fs = SmallFs::mount(256 << 10);
        let img = sparse_image(&fs.path(), "disk.img", SUITE_IMAGE_BYTES);
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("manifest.txt");
        // The default policy: werror=enospc.
        let disk = format!("{},aio={aio}", img.display());
        let vm = Vm::start_with_disk(
            tempfile::tempdir().unwrap(),
            &disk,
            &["--manifest", manifest.to_str().unwrap()],
        );
        let (mut c, _) = Client::connect(&vm.socket);
        c.ok("qmp_capabilities");
        let seen = serve_until_shutdown(&mut c, |e| {
            assert_eq!(e["nospace"], true, "{e}");
            // The operator grows the storage, then resumes.
            fs.resize(1 << 30);
        });
        drop(c);
        let out = vm.wait();
        assert!(!seen.stops.is_empty(), "{aio}: the VM never paused");
        assert!(
            seen.stops
                .iter()
                .all(|(s, io)| s == "io-error" && io == "nospace"),
            "{aio}: {:?}",
            seen.stops
        );
        check_suite(&out, &img, &manifest, aio);
        std::fs::remove_file(&img).unwrap();
    }
}

#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn a_held_request_does_not_delay_stop() {
    if !kvm_available() {
        return;
    }
    for aio in ["sync", "io_uring"] {
        let dir = tempfile::tempdir().unwrap();
        let img = sparse_image(dir.path(), "disk.img", SUITE_IMAGE_BYTES);
        let disk = format!("blkdebug::{},aio={aio}", img.display());
        let vm = Vm::start_with_disk(dir, &disk, &[]);
        let (mut c, _) = Client::connect(&vm.socket);
        c.ok("qmp_capabilities");
        assert_eq!(c.hmp("qemu-io ide0-hd0 \"break read_aio A\""), "");
        // Returns once the guest's next read is held there.
        assert_eq!(c.hmp("qemu-io ide0-hd0 \"wait_break A\""), "");
        let t = Instant::now();
        let (events, reply) = c.call(json!({"execute": "stop"}));
        let took = t.elapsed();
        assert_eq!(reply, json!({"return": {}}), "{aio}: stop with a held read");
        assert_eq!(events[0]["event"], "STOP");
        assert_eq!(c.status()["status"], "paused");
        eprintln!("{aio}: stop with a held read took {took:?}");
        let events = c.ok("cont");
        assert_eq!(events[0]["event"], "RESUME");
        assert_eq!(c.hmp("qemu-io ide0-hd0 \"resume A\""), "");
        assert!(
            c.hmp("qemu-io ide0-hd0 \"resume A\"")
                .contains("no request waits"),
            "one request was held"
        );
        drop(c);
        let out = vm.wait();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(status(&out), 0, "{aio}: {text}\n{}", stderr(&out));
        assert!(text.contains(" passed, 0 failed"), "{aio}: {text}");
    }
}

#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn quit_while_a_request_is_stopped_ends_the_run() {
    if !kvm_available() {
        return;
    }
    const FIRST_WRITE: &str = "[inject-error]\nevent = \"write_aio\"\nonce = \"on\"\n";
    let dir = tempfile::tempdir().unwrap();
    let img = sparse_image(dir.path(), "disk.img", SUITE_IMAGE_BYTES);
    let rules = write_file(dir.path(), "rules.conf", FIRST_WRITE.as_bytes());
    let disk = format!("blkdebug:{}:{},werror=stop", rules.display(), img.display());
    let vm = Vm::start_with_disk(tempfile::tempdir().unwrap(), &disk, &[]);
    let (mut c, _) = Client::connect(&vm.socket);
    c.ok("qmp_capabilities");
    let deadline = Instant::now() + Duration::from_secs(120);
    while let Some(v) = c.next_until(deadline) {
        if v["event"] == "STOP" {
            break;
        }
    }
    assert_eq!(c.status()["status"], "io-error");
    // The kept write is given back with an error; the run ends at once
    // (the shutdown does not wait for a request nobody will resume).
    let (_, r) = c.call(json!({"execute": "quit"}));
    assert_eq!(r, json!({"return": {}}));
    drop(c);
    let out = vm.wait();
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("quit (QMP)"), "{}", stderr(&out));
}

/// Sends a human-monitor command line; its text, or `None` once the run
/// has ended (SHUTDOWN, or the connection closed).
fn hmp_or_end(c: &mut Client, line: &str, deadline: Instant) -> Option<String> {
    let request = json!({"execute": "human-monitor-command", "arguments": {"command-line": line}});
    if !c.try_send(format!("{request}\n").as_bytes()) {
        // The run ended and closed the connection.
        return None;
    }
    loop {
        let v = c.next_until(deadline)?;
        if v["event"] == "SHUTDOWN" {
            return None;
        }
        if let Some(r) = v.get("return") {
            return Some(r.as_str().unwrap_or_default().to_string());
        }
    }
}

#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn the_suite_passes_with_its_reads_held_at_a_breakpoint() {
    if !kvm_available() {
        return;
    }
    // Every read the guest makes waits at a breakpoint until the test
    // resumes it: the suite's BMDMA-stop and SRST tests then meet a
    // request that is held (their effect waits for it, see the core's
    // channel/cancel.rs), and the suite still passes.
    for aio in ["sync", "io_uring"] {
        let data = tempfile::tempdir().unwrap();
        let img = sparse_image(data.path(), "disk.img", SUITE_IMAGE_BYTES);
        let manifest = data.path().join("manifest.txt");
        let disk = format!("blkdebug::{},aio={aio}", img.display());
        let vm = Vm::start_with_disk(
            tempfile::tempdir().unwrap(),
            &disk,
            &["--manifest", manifest.to_str().unwrap()],
        );
        let (mut c, _) = Client::connect(&vm.socket);
        c.ok("qmp_capabilities");
        let deadline = Instant::now() + Duration::from_secs(300);
        let mut held = 0;
        while let Some(r) = hmp_or_end(&mut c, "qemu-io ide0-hd0 \"break read_aio A\"", deadline) {
            assert_eq!(r, "");
            match hmp_or_end(&mut c, "qemu-io ide0-hd0 \"wait_break A\"", deadline) {
                None => break,
                // The suite stopped reading (it ends with writes, or is
                // done): take the breakpoint away and let it finish.
                Some(r) if r.contains("no request reached") => {
                    let _ = hmp_or_end(&mut c, "qemu-io ide0-hd0 \"remove_break A\"", deadline);
                    break;
                }
                Some(r) => assert_eq!(r, ""),
            }
            held += 1;
            match hmp_or_end(&mut c, "qemu-io ide0-hd0 \"resume A\"", deadline) {
                None => break,
                Some(r) => assert_eq!(r, ""),
            }
        }
        drop(c);
        let out = vm.wait();
        eprintln!("{aio}: {held} reads held");
        assert!(held >= 20, "{aio}: only {held} reads held");
        check_suite(&out, &img, &manifest, aio);
    }
}

#[test]
fn stop_policies_need_a_monitor() {
    let dir = tempfile::tempdir().unwrap();
    let img = sparse_image(dir.path(), "disk.img", 1 << 20);
    for opt in ["werror=stop", "rerror=stop"] {
        let out = common::vmdma(&["run", "--disk", &format!("{},{opt}", img.display())]);
        common::assert_one_line_error(&out, 64, "needs --qmp");
    }
    let bad = write_file(
        dir.path(),
        "bad.conf",
        b"[inject-error]\nevent = \"cluster_alloc\"\n",
    );
    let out = common::vmdma(&[
        "run",
        "--disk",
        &format!("blkdebug:{}:{}", bad.display(), img.display()),
    ]);
    common::assert_one_line_error(&out, 65, "blkdebug event 'cluster_alloc' is not supported");
}
