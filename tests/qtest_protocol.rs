//! `vmdma qtest` as a process, driven the way libqtest drives QEMU: the
//! test listens on the qtest and QMP sockets, starts the binary, and talks
//! the line protocol and QMP. Covers the handshake, real IDE traffic,
//! hostile lines (each gets one `FAIL`, the process keeps serving),
//! SIGTERM (exit status 0), QMP `quit`, and one-line usage errors. Needs
//! neither KVM nor QEMU.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{assert_one_line_error, sparse_image, vmdma_guarded};

/// How long any single wait in these tests may take before it fails.
const GUARD: Duration = Duration::from_secs(20);

struct Session {
    child: Child,
    qtest: BufReader<UnixStream>,
    qmp: BufReader<UnixStream>,
}

impl Session {
    fn start(dir: &Path, extra: &[&str]) -> Session {
        let qs = dir.join("q.sock");
        let ms = dir.join("m.sock");
        let ql = UnixListener::bind(&qs).unwrap();
        let ml = UnixListener::bind(&ms).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_vmdma"))
            .arg("qtest")
            .arg("-qtest")
            .arg(format!("unix:{}", qs.display()))
            .arg("-chardev")
            .arg(format!("socket,path={},id=char0", ms.display()))
            .args(["-mon", "chardev=char0,mode=control", "-display", "none"])
            .args(["-machine", "pc"])
            .args(extra)
            .args(["-accel", "qtest"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let qtest = accept(&ql);
        let qmp = accept(&ml);
        let mut s = Session {
            child,
            qtest: BufReader::new(qtest),
            qmp: BufReader::new(qmp),
        };
        let greeting = s.qmp_line();
        assert!(greeting.contains("\"QMP\""), "{greeting}");
        s.qmp_send(r#"{"execute": "qmp_capabilities"}"#);
        assert_eq!(s.qmp_line().trim(), r#"{"return":{}}"#);
        s
    }

    fn qmp_send(&mut self, text: &str) {
        self.qmp.get_mut().write_all(text.as_bytes()).unwrap();
    }

    fn qmp_line(&mut self) -> String {
        let mut l = String::new();
        self.qmp.read_line(&mut l).unwrap();
        l
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        self.qtest.get_mut().write_all(bytes).unwrap();
    }

    /// Sends one line; returns the IRQ lines and the reply.
    fn cmd(&mut self, line: &str) -> (Vec<String>, String) {
        self.send_raw(format!("{line}\n").as_bytes());
        self.reply()
    }

    fn reply(&mut self) -> (Vec<String>, String) {
        let mut irqs = Vec::new();
        loop {
            let mut l = String::new();
            let n = self.qtest.read_line(&mut l).unwrap();
            assert!(n > 0, "vmdma closed the qtest socket");
            let l = l.trim_end().to_string();
            if l.starts_with("IRQ ") {
                irqs.push(l);
            } else {
                return (irqs, l);
            }
        }
    }

    fn ok(&mut self, line: &str) -> String {
        let (_, r) = self.cmd(line);
        assert!(r.starts_with("OK"), "{line} -> {r}");
        r
    }

    fn wait(self) -> std::process::ExitStatus {
        wait_child(self.child)
    }

    /// SIGTERM, as libqtest's `qtest_quit` sends it.
    fn sigterm(&self) {
        let st = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
    }
}

fn wait_child(mut child: Child) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if start.elapsed() > GUARD {
            let _ = child.kill();
            panic!("vmdma qtest did not exit");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn accept(l: &UnixListener) -> UnixStream {
    l.set_nonblocking(true).unwrap();
    let start = Instant::now();
    loop {
        match l.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(GUARD)).unwrap();
                return s;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(start.elapsed() < GUARD, "vmdma qtest did not connect");
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

#[test]
fn identify_over_the_protocol_then_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let img = sparse_image(dir.path(), "disk.img", 8 << 20);
    let drive = format!("file={},if=ide,cache=writeback,format=raw", img.display());
    let mut s = Session::start(
        dir.path(),
        &["-drive", &drive, "-global", "ide-hd.serial=abc123"],
    );
    assert_eq!(s.ok("endianness"), "OK little");
    assert_eq!(s.ok("irq_intercept_in ioapic"), "OK");
    // PCI 00:01.1 is the PIIX3 IDE function.
    s.ok("outl 0xcf8 0x80000900");
    assert_eq!(s.ok("inl 0xcfc"), "OK 0x70108086");
    // IDENTIFY DEVICE on the master: IRQ 14 rises with the command.
    s.ok("outb 0x1f6 0xa0");
    let (irqs, r) = s.cmd("outb 0x1f7 0xec");
    assert_eq!((irqs, r.as_str()), (vec!["IRQ raise 14".to_string()], "OK"));
    let (irqs, r) = s.cmd("inb 0x1f7");
    assert_eq!(irqs, vec!["IRQ lower 14".to_string()]);
    assert_eq!(r, "OK 0x0058", "DRDY|DSC|DRQ");
    let words: Vec<u16> = (0..256)
        .map(|_| {
            let r = s.ok("inw 0x1f0");
            u16::from_str_radix(r.trim_start_matches("OK 0x"), 16).unwrap()
        })
        .collect();
    let serial: String = words[10..20]
        .iter()
        .flat_map(|w| w.to_be_bytes())
        .map(char::from)
        .collect();
    assert_eq!(serial.trim_end(), "abc123");
    assert_eq!(s.ok("inb 0x1f7"), "OK 0x0050");
    // Memory round trip.
    s.ok("write 0x100000 0x4 0xdeadbeef");
    assert_eq!(s.ok("read 0x100000 0x4"), "OK 0xdeadbeef");
    assert_eq!(s.ok("readl 0x100000"), "OK 0x00000000efbeadde");
    s.sigterm();
    let status = s.wait();
    assert_eq!(status.code(), Some(0), "SIGTERM ends cleanly: {status:?}");
}

#[test]
fn hostile_lines_each_get_one_fail_and_serving_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Session::start(dir.path(), &["-m", "8"]);
    for line in [
        "",
        "nonsense",
        "outb 0x10000 0x1",
        "outb 0x80 0x100",
        "readb 0x800000",
        "read 0x0 0x0",
        "read 0x0 0xffffffffffffffff",
        "b64read 0x7fffff 0x2",
        "write 0x0 0x2 0xnothex",
        "memset 0x0 0xffffffffffffffff 0x0",
        "b64write 0x0 0x1 !!!!",
        "irq_intercept_in /machine/unknown",
        "clock_step -5",
    ] {
        let (_, r) = s.cmd(line);
        assert!(r.starts_with("FAIL"), "{line:?} -> {r}");
    }
    // A line far beyond the limit: one FAIL, nothing kept.
    let huge = vec![b'x'; 9 << 20];
    s.send_raw(&huge);
    s.send_raw(b"\n");
    let (_, r) = s.reply();
    assert_eq!(r, "FAIL line too long");
    s.send_raw(b"\xff\xfe\n");
    assert_eq!(s.reply().1, "FAIL line is not UTF-8");
    // Pipelined requests are answered in order.
    s.send_raw(b"writeb 0x10 0x7\nreadb 0x10\n");
    assert_eq!(s.reply().1, "OK");
    assert_eq!(s.reply().1, "OK 0x0000000000000007");
    // QMP: unknown commands are errors, quit ends the process.
    s.qmp_send(r#"{"execute": "system_reset", "id": "x"}"#);
    let e = s.qmp_line();
    assert!(
        e.contains("CommandNotFound") && e.contains("\"id\":\"x\""),
        "{e}"
    );
    s.qmp_send(r#"{"execute": "quit"}"#);
    assert_eq!(s.qmp_line().trim(), r#"{"return":{}}"#);
    let status = s.wait();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn client_closing_the_socket_ends_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let Session { child, qtest, qmp } = Session::start(dir.path(), &[]);
    drop(qtest);
    assert_eq!(wait_child(child).code(), Some(0));
    drop(qmp);
}

#[test]
fn unsupported_options_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let sock = format!("unix:{}", dir.path().join("none.sock").display());
    let base = [
        "qtest", "-qtest", &sock, "-machine", "pc", "-accel", "qtest",
    ];
    let with = |extra: &[&str]| {
        let mut a: Vec<&str> = base.to_vec();
        a.extend_from_slice(extra);
        vmdma_guarded(&a)
    };
    assert_one_line_error(&with(&["-S"]), 64, "-S: unsupported option");
    assert_one_line_error(
        &with(&["-device", "ide-cd,bus=ide.1"]),
        64,
        "bus=ide.1 is not supported",
    );
    assert_one_line_error(
        &with(&["-drive", "file=nbd:localhost:10809,if=ide"]),
        64,
        "block protocol 'nbd:'",
    );
    let missing = dir.path().join("missing.img");
    let drive = format!("file={},if=ide", missing.display());
    assert_one_line_error(&with(&["-drive", &drive]), 65, "missing.img");
    // Nobody listens on the socket.
    assert_one_line_error(&with(&[]), 70, "qtest socket");
}
