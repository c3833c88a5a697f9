//! `vmdma run --qmp`: the QMP monitor over its Unix socket, with raw lines
//! (our own client, and `socat`), with QEMU's own Python client
//! (`qemu.qmp`, tests/qmp_client.py), and a stop/cont in the middle of the
//! conformance suite (requests in flight complete while paused, their
//! interrupts arrive after `cont`, the suite passes). Also the option's
//! usage errors and the monitor thread's seccomp filter.

mod common;

use std::io::{BufRead, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use common::elf_builder::{ElfBuilder, code};
use common::qmp::{Client, Vm};
use common::{SUITE_IMAGE_BYTES, kvm_available, status, stderr};

/// A guest that spins in `jmp $` forever: it never exits to the runner,
/// so `stop` has to kick it out of KVM_RUN.
fn spinner() -> Vec<u8> {
    ElfBuilder::new(code::spin(b"spinning\n")).build()
}

/// The spinner under a monitor, paused with `stop`.
fn paused_spinner() -> (Vm, Client) {
    let vm = Vm::start(Some(&spinner()), 1 << 20, &[]);
    let (mut c, _) = Client::connect(&vm.socket);
    c.ok("qmp_capabilities");
    c.ok("stop");
    (vm, c)
}

#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn raw_lines_negotiation_errors_clients_and_pause() {
    if !kvm_available() {
        return;
    }
    let vm = Vm::start(Some(&spinner()), 1 << 20, &[]);
    let (mut c, greeting) = Client::connect(&vm.socket);
    assert_eq!(greeting["QMP"]["version"]["qemu"]["major"], 7);
    assert_eq!(greeting["QMP"]["capabilities"], json!([]));

    // Before negotiation every command but qmp_capabilities is refused.
    let (_, r) = c.call(json!({"execute": "query-status", "id": 1}));
    assert_eq!(r["error"]["class"], "CommandNotFound");
    assert_eq!(r["id"], 1);
    let (_, r) = c.call(json!({"execute": "qmp_capabilities", "id": "neg"}));
    assert_eq!(r, json!({"return": {}, "id": "neg"}));

    // Unknown command: CommandNotFound, the id echoed as it came.
    let (_, r) = c.call(json!({"execute": "no-such-command", "id": {"n": [1, 2]}}));
    assert_eq!(r["error"]["class"], "CommandNotFound", "{r}");
    assert_eq!(r["id"], json!({"n": [1, 2]}));

    // What is served, and which QEMU it follows.
    let (_, r) = c.call(json!({"execute": "query-version"}));
    assert_eq!(
        r["return"]["qemu"],
        json!({"major": 7, "minor": 2, "micro": 0})
    );
    let (_, r) = c.call(json!({"execute": "query-commands"}));
    let names: Vec<&str> = r["return"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for n in [
        "qmp_capabilities",
        "stop",
        "cont",
        "quit",
        "human-monitor-command",
    ] {
        assert!(names.contains(&n), "{n}: {names:?}");
    }
    assert!(!names.contains(&"system_reset"), "{names:?}");
    // A human-monitor command other than qemu-io answers with text.
    let (_, r) = c.call(json!({
        "execute": "human-monitor-command",
        "arguments": {"command-line": "info status"},
    }));
    assert!(
        r["return"]
            .as_str()
            .unwrap()
            .starts_with("unknown command: 'info'"),
        "{r}"
    );

    // Garbage: a GenericError, and the session goes on.
    c.send_raw(b"}{ not json\n");
    let r = c.read();
    assert_eq!(r["error"]["class"], "GenericError", "{r}");
    let (_, r) = c.call(json!([1, 2, 3]));
    assert_eq!(r["error"]["class"], "GenericError", "{r}");
    assert_eq!(
        c.status(),
        json!({"running": true, "singlestep": false, "status": "running"})
    );

    // stop: STOP before the reply, then paused; the spinning vCPU had to
    // be kicked out of the guest.
    let t = Instant::now();
    let events = c.ok("stop");
    let took = t.elapsed();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["event"], "STOP");
    assert!(events[0]["timestamp"]["seconds"].as_u64().unwrap() > 0);
    assert!(took < Duration::from_secs(5), "stop took {took:?}");
    eprintln!("stop answered after {took:?}");
    assert_eq!(c.status()["status"], "paused");
    assert!(c.ok("stop").is_empty(), "stop while paused: no second STOP");

    // A client that leaves in the middle of a request harms nothing.
    c.send_raw(br#"{"execute": "cont", "#);
    drop(c);

    // A second client; the VM is still paused.
    let (mut c, _) = Client::connect(&vm.socket);
    c.ok("qmp_capabilities");
    assert_eq!(c.status()["status"], "paused");
    let events = c.ok("cont");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["event"], "RESUME");
    assert_eq!(c.status()["running"], true);

    // quit: the reply, then SHUTDOWN, then the connection closes.
    let (_, r) = c.call(json!({"execute": "quit", "id": 9}));
    assert_eq!(r, json!({"return": {}, "id": 9}));
    let ev = c.read();
    assert_eq!(ev["event"], "SHUTDOWN");
    assert_eq!(
        ev["data"],
        json!({"guest": false, "reason": "host-qmp-quit"})
    );
    let mut rest = String::new();
    assert_eq!(c.reader.read_line(&mut rest).unwrap(), 0, "{rest:?}");
    let socket = vm.socket.clone();
    let (out, _dir) = vm.wait_keeping_dir();
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("quit (QMP)"), "{}", stderr(&out));
    assert!(!socket.exists(), "the socket file goes with the run");
}

#[test]
#[cfg_attr(
    all(vmdma_kvm, not(vmdma_socat)),
    ignore = "needs socat (.ci/run installs it)"
)]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn socat_raw_lines() {
    if !kvm_available() {
        return;
    }
    let vm = Vm::start(Some(&spinner()), 1 << 20, &[]);
    // Wait until the socket answers, then talk through socat.
    drop(Client::connect(&vm.socket));
    let mut socat = Command::new("socat")
        .arg("-t5")
        .arg("-")
        .arg(format!("UNIX-CONNECT:{}", vm.socket.display()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("socat runs");
    let mut input = socat.stdin.take().unwrap();
    input
        .write_all(
            b"{\"execute\": \"qmp_capabilities\"}\n\
              {\"execute\": \"query-status\", \"id\": \"s\"}\n\
              {\"execute\": \"quit\"}\n",
        )
        .unwrap();
    let out = socat.wait_with_output().unwrap();
    drop(input);
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines[0].get("QMP").is_some(), "{lines:?}");
    assert_eq!(lines[1], json!({"return": {}}));
    assert_eq!(lines[2]["id"], "s");
    assert_eq!(lines[2]["return"]["status"], "running");
    assert_eq!(lines[3], json!({"return": {}}));
    assert_eq!(lines[4]["event"], "SHUTDOWN");
    let out = vm.wait();
    assert_eq!(status(&out), 0, "{}", stderr(&out));
}

#[test]
#[cfg_attr(
    all(vmdma_kvm, not(vmdma_qemu_qmp)),
    ignore = "needs Python's qemu.qmp (.ci/run installs it: pip install qemu.qmp)"
)]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn qemu_python_client() {
    if !kvm_available() {
        return;
    }
    let vm = Vm::start(Some(&spinner()), 1 << 20, &[]);
    drop(Client::connect(&vm.socket));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/qmp_client.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(&vm.socket)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("all checks passed"));
    let vm_out = vm.wait();
    assert_eq!(status(&vm_out), 0, "{}", stderr(&vm_out));
}

/// Stops and resumes the bundled conformance suite several times while it
/// does disk I/O: requests in flight complete while paused and their
/// interrupts arrive after `cont`; the suite ends with its verdict line
/// and status 0, and the disk's counters do not move while paused but
/// for requests already in flight.
#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn stop_and_cont_with_io_in_flight() {
    if !kvm_available() {
        return;
    }
    let vm = Vm::start(None, SUITE_IMAGE_BYTES, &[]);
    let (mut c, _) = Client::connect(&vm.socket);
    c.ok("qmp_capabilities");
    let mut pauses = 0;
    let mut longest = Duration::ZERO;
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(50));
        let t = Instant::now();
        let (events, reply) = c.call(json!({"execute": "stop"}));
        if reply.get("error").is_some() {
            // The run ended (the suite finished) before this stop.
            break;
        }
        longest = longest.max(t.elapsed());
        assert_eq!(events[0]["event"], "STOP");
        pauses += 1;
        let before = c.call(json!({"execute": "query-blockstats"})).1;
        std::thread::sleep(Duration::from_millis(100));
        let after = c.call(json!({"execute": "query-blockstats"})).1;
        // At most the requests that were in flight complete meanwhile: no
        // new command starts while the vCPU is parked.
        let ops = |v: &Value| {
            v["return"][0]["stats"]["rd_operations"].as_u64().unwrap()
                + v["return"][0]["stats"]["wr_operations"].as_u64().unwrap()
        };
        assert_eq!(ops(&before), ops(&after), "a command started while paused");
        let events = c.ok("cont");
        assert_eq!(events[0]["event"], "RESUME");
    }
    eprintln!("{pauses} pauses, the longest stop took {longest:?}");
    assert!(pauses >= 3, "the suite ended before the pauses: {pauses}");
    drop(c);
    let out = vm.wait();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(status(&out), 0, "{stdout}\n{}", stderr(&out));
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
}

/// A paused VM whose process is stopped and continued (SIGSTOP/SIGCONT:
/// job control, a cgroup freezer, a debugger) keeps running. The parked
/// vCPU sleeps in a timed wait, which the kernel resumes after SIGCONT
/// through `restart_syscall` (as it does a wait interrupted by io_uring
/// task work); the vCPU thread's filter once lacked it, and the run ended
/// with status 159.
#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn a_paused_vm_survives_sigstop_and_sigcont() {
    if !kvm_available() {
        return;
    }
    let (vm, mut c) = paused_spinner();
    let pid = vm.child.as_ref().unwrap().id().to_string();
    for _ in 0..3 {
        // The parked vCPU is inside its timed wait now.
        std::thread::sleep(Duration::from_millis(20));
        for sig in ["-STOP", "-CONT"] {
            let st = Command::new("kill").args([sig, &pid]).status().unwrap();
            assert!(st.success(), "kill {sig}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    assert_eq!(c.status()["status"], "paused");
    c.ok("cont");
    assert_eq!(c.status()["status"], "running");
    c.ok("quit");
    drop(c);
    let out = vm.wait();
    assert_eq!(status(&out), 0, "{}", stderr(&out));
}

#[test]
fn qmp_option_usage_errors() {
    for bad in [
        "tcp:127.0.0.1:4444,server=on,wait=off",
        "unix:/tmp/x.sock",
        "unix:/tmp/x.sock,server=on,wait=on",
        "unix:/tmp/x.sock,server=on,wait=off,bogus",
    ] {
        let out = common::vmdma(&["run", "--qmp", bad]);
        common::assert_one_line_error(&out, 64, "--qmp");
    }
    let out = common::vmdma(&["run", "--qmp", "tcp:127.0.0.1:4444,server=on,wait=off"]);
    assert!(
        stderr(&out).contains("only a Unix socket"),
        "{}",
        stderr(&out)
    );
}

#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn forbidden_call_on_the_monitor_thread_ends_the_run() {
    if !kvm_available() {
        return;
    }
    let vm = Vm::start(
        Some(&spinner()),
        1 << 20,
        &["--seccomp-selftest", "monitor"],
    );
    let out = vm.wait();
    let err = stderr(&out);
    assert_eq!(status(&out), 159, "{err}");
    assert!(
        err.contains("the monitor thread made a forbidden system call")
            && err.contains("number 41"),
        "{err}"
    );
}

/// SIGTERM ends a paused run as a running one: the parked vCPU leaves its
/// park, the disk is drained and flushed (status 143), and the client gets
/// SHUTDOWN (reason host-signal) before the connection closes.
#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn sigterm_while_paused_ends_the_run() {
    if !kvm_available() {
        return;
    }
    let (vm, mut c) = paused_spinner();
    assert_eq!(c.status()["status"], "paused");
    let pid = i32::try_from(vm.child.as_ref().unwrap().id()).unwrap();
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let ev = c.read();
    assert_eq!(ev["event"], "SHUTDOWN", "{ev}");
    assert_eq!(ev["data"]["reason"], "host-signal");
    let out = vm.wait();
    assert_eq!(status(&out), 143, "{}", stderr(&out));
}

/// `stop` with a disk that does not answer (a FUSE image whose first read
/// is held). With the read on an io_uring worker (`Direct`), the vCPU is
/// free: `stop` pauses at once though the request is still in flight.
/// With the read issued inline in `io_uring_enter` (`Cached`), the vCPU is
/// blocked in the kernel inside the guest's port write: `stop` gives up
/// after its 5 s bound with a GenericError and the VM reports running.
/// Needs root and /dev/fuse (build-time cfg `vmdma_fuse`).
fn stop_with_a_disk_that_does_not_answer(mode: common::fuse::Mode, cmdline: &str) -> Value {
    use common::fuse::BlockingFuse;

    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let fs = BlockingFuse::mount(&mnt, 64 << 20, mode).expect("mount the FUSE file system");
    let socket = dir.path().join("qmp.sock");
    let disk = format!("{},aio=io_uring", fs.image().display());
    let qmp = format!("unix:{},server=on,wait=off", socket.display());
    let mut vm = Vm {
        child: Some(
            Command::new(env!("CARGO_BIN_EXE_vmdma"))
                .args(["run", "--disk", &disk, "--qmp", &qmp, "--timeout", "120"])
                .args(["--cmdline", cmdline, "--shutdown-bound", "1"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        ),
        socket,
        dir: tempfile::tempdir().unwrap(),
    };
    let (mut c, _) = Client::connect(&vm.socket);
    c.ok("qmp_capabilities");
    let held = fs.next_read(Duration::from_secs(30));
    assert!(held.is_some(), "the guest's read reached the disk");
    let t = Instant::now();
    let (events, reply) = c.call(json!({"execute": "stop"}));
    let took = t.elapsed();
    eprintln!("stop with the read held: {reply} after {took:?}");
    assert!(took < Duration::from_secs(7), "{took:?}");
    let status = c.status();
    if reply.get("error").is_none() {
        assert_eq!(events[0]["event"], "STOP");
        assert_eq!(status["status"], "paused");
    } else {
        assert!(took >= Duration::from_secs(5), "{took:?}");
        assert_eq!(status["status"], "running");
    }
    // Release the read (the FUSE connection is aborted), then end the run.
    drop(fs);
    if let Some(child) = vm.child.as_mut() {
        let _ = child.kill();
    }
    reply
}

#[test]
#[cfg_attr(
    all(vmdma_kvm, not(vmdma_fuse)),
    ignore = "needs root and /dev/fuse to mount a FUSE file system (checked at build time)"
)]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn stop_pauses_while_a_worker_waits_on_a_disk_that_does_not_answer() {
    if !kvm_available() {
        return;
    }
    let reply = stop_with_a_disk_that_does_not_answer(
        common::fuse::Mode::Direct,
        // 2 MiB: large enough to go to a kernel worker at once
        // (`uring::ASYNC_THRESHOLD`); a smaller read is issued inline.
        "bench=seq-read bench_count=1 bench_sectors=4096",
    );
    assert_eq!(reply, json!({"return": {}}));
}

#[test]
#[cfg_attr(
    all(vmdma_kvm, not(vmdma_fuse)),
    ignore = "needs root and /dev/fuse to mount a FUSE file system (checked at build time)"
)]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn stop_fails_within_its_bound_when_the_vcpu_is_blocked_in_the_kernel() {
    if !kvm_available() {
        return;
    }
    let reply = stop_with_a_disk_that_does_not_answer(
        common::fuse::Mode::Cached,
        "bench=dma-read bench_count=1 bench_sectors=8",
    );
    assert_eq!(reply["error"]["class"], "GenericError", "{reply}");
    let desc = reply["error"]["desc"].as_str().unwrap();
    assert!(desc.contains("did not pause within 5 s"), "{desc}");
}

/// The CD-ROM drive's entry in `query-block`.
fn cdrom_entry(c: &mut Client) -> Value {
    let (_, r) = c.call(json!({"execute": "query-block"}));
    r["return"]
        .as_array()
        .and_then(|a| a.iter().find(|d| d["device"] == "ide0-cd1").cloned())
        .unwrap_or_else(|| panic!("no ide0-cd1 in {r}"))
}

/// Polls `query-block` until the CD-ROM's `locked` is `locked`.
fn wait_locked(c: &mut Client, locked: bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while cdrom_entry(c)["locked"] != json!(locked) {
        assert!(
            Instant::now() < deadline,
            "the guest never set locked={locked}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The guest (`suite=atapi_tray`) locks the tray, sees an eject request,
/// unlocks, sees the tray open, then waits for a new medium; `insert`
/// (given the client and the temporary directory) gives it one.
fn tray_scenario(insert: impl FnOnce(&mut Client, &Path, &Path)) {
    let dir = tempfile::tempdir().unwrap();
    let cd = common::cd_image(dir.path());
    let vm = Vm::start(
        None,
        64 << 20,
        &[
            "--cdrom",
            cd.to_str().unwrap(),
            "--cmdline",
            "suite=atapi_tray",
        ],
    );
    let (mut c, _) = Client::connect(&vm.socket);
    c.ok("qmp_capabilities");
    let e = cdrom_entry(&mut c);
    assert_eq!(
        (e["removable"].clone(), e["tray_open"].clone()),
        (json!(true), json!(false))
    );
    assert_eq!(e["inserted"]["file"], json!(cd.to_str().unwrap()));
    let (_, r) = c.call(json!({"execute": "eject", "arguments": {"id": "ide0-hd0"}}));
    assert_eq!(r["error"]["class"], "DeviceNotFound", "{r}");

    // The guest locks the tray: eject without force is refused (the
    // guest gets an eject request and unlocks).
    wait_locked(&mut c, true);
    let (events, r) = c.call(json!({"execute": "eject", "arguments": {"id": "ide0-cd1"}}));
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(r["error"]["class"], "GenericError", "{r}");
    assert!(
        r["error"]["desc"].as_str().unwrap().contains("is locked"),
        "{r}"
    );
    wait_locked(&mut c, false);

    // Now the tray opens: no medium for the guest.
    let (events, r) = c.call(json!({"execute": "eject", "arguments": {"device": "ide0-cd1"}}));
    assert_eq!(r, json!({"return": {}}));
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["event"], "DEVICE_TRAY_MOVED");
    assert_eq!(events[0]["data"]["tray-open"], true);
    let e = cdrom_entry(&mut c);
    assert_eq!(e["tray_open"], true);
    assert!(e.get("inserted").is_none(), "{e}");

    // The guest sees the tray open (GESN), then a medium arrives.
    std::thread::sleep(Duration::from_millis(500));
    insert(&mut c, dir.path(), &cd);
    drop(c);
    let out = vm.wait();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("test atapi_host_tray ... ok"),
        "{text}\n{}",
        stderr(&out)
    );
    assert_eq!(status(&out), 0, "{text}");
}

#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn eject_and_close_tray_of_the_cdrom() {
    if !kvm_available() {
        return;
    }
    // The tray closes over the same medium: a media change for the guest.
    tray_scenario(|c, _, _| {
        let (events, r) =
            c.call(json!({"execute": "blockdev-close-tray", "arguments": {"id": "ide0-cd1"}}));
        assert_eq!(r, json!({"return": {}}));
        assert_eq!(events[0]["data"]["tray-open"], false, "{events:?}");
    });
}

#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn change_medium_of_the_cdrom() {
    if !kvm_available() {
        return;
    }
    // Another image file (the same test content, which the guest checks)
    // goes in, opened by the supervising thread for the monitor.
    tray_scenario(|c, dir, cd| {
        let change = |c: &mut Client, file: &str, extra: serde_json::Value| {
            let mut args = json!({"id": "ide0-cd1", "filename": file});
            for (k, v) in extra.as_object().unwrap() {
                args[k] = v.clone();
            }
            c.call(json!({"execute": "blockdev-change-medium", "arguments": args}))
        };
        let odd = common::write_file(dir, "odd.iso", &[0u8; 2560]);
        for (file, extra, needle) in [
            (odd.to_str().unwrap(), json!({}), "multiple of 2048"),
            ("/nonexistent/cd.iso", json!({}), "Could not open"),
            (
                cd.to_str().unwrap(),
                json!({"format": "qcow2"}),
                "raw images only",
            ),
            (
                cd.to_str().unwrap(),
                json!({"read-only-mode": "read-write"}),
                "read-only",
            ),
        ] {
            let (_, r) = change(c, file, extra);
            assert_eq!(r["error"]["class"], "GenericError", "{file}: {r}");
            assert!(r["error"]["desc"].as_str().unwrap().contains(needle), "{r}");
        }
        let copy = dir.join("copy.iso");
        std::fs::copy(cd, &copy).unwrap();
        let (events, r) = change(c, copy.to_str().unwrap(), json!({"format": "raw"}));
        assert_eq!(r, json!({"return": {}}));
        let moved: Vec<_> = events
            .iter()
            .map(|e| e["data"]["tray-open"].clone())
            .collect();
        assert_eq!(
            moved,
            [json!(false)],
            "the tray was open already: {events:?}"
        );
        let e = cdrom_entry(c);
        assert_eq!(e["inserted"]["file"], json!(copy.to_str().unwrap()));
    });
}
