//! Bytes → the `vmdma qtest` front end: the qtest line reader, the request
//! parser and the machine behind it (64 KiB of RAM, fw_cfg, the PCI host
//! and ISA bridges, the PIIX3 IDE function with no disks), then the QMP
//! session. Nothing may panic, and:
//!
//! - the line reader yields exactly one line per newline, none holding a
//!   newline or longer than the protocol's limit;
//! - every request line gets exactly one reply (`OK`, `OK VALUE` or
//!   `FAIL REASON`) after zero or more `IRQ raise|lower 14` lines, with no
//!   newline inside any of them;
//! - guest RAM follows a model: a write that fails writes nothing, one that
//!   succeeds writes exactly its bytes (`writeX`, `write`, `b64write`,
//!   `memset`), and every read that succeeds (`readX`, `read`, `b64read`)
//!   returns what the model holds, in the protocol's encoding;
//! - the QMP session answers with JSON objects only, and `quit` is last.
//!
//! Input: the first byte picks the chunk size the stream is fed in (as a
//! socket may split it); the rest up to the first NUL byte is the qtest
//! stream, what follows it the QMP stream.
//!
//! Plain stable Rust: the libFuzzer wrapper (`../fuzz_targets/qtest_lines.rs`)
//! and the corpus replay test (`tests/fuzz_corpus.rs`) both include this
//! file and call [`run`].

use vmdma_core::ide::DriveInfo;
use vmdma_qtest::codec::{base64_decode, hex_decode};
use vmdma_qtest::machine::{MachineDisks, with_machine};
use vmdma_qtest::protocol::{Line, LineReader, MAX_LINE, Request, parse};
use vmdma_qtest::qmp::{QmpOutput, QmpSession};
use vmdma_qtest::server::respond;

/// Guest RAM of the machine (at guest-physical 0).
const RAM: usize = 64 << 10;

/// Feeds `data`; panics if a promise is broken.
pub fn run(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(first % 64) + 1;
    let (qtest, qmp) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &rest[rest.len()..]),
    };
    run_qtest(qtest, chunk);
    run_qmp(qmp, chunk);
}

fn run_qtest(stream: &[u8], chunk: usize) {
    let mut reader = LineReader::new();
    let mut lines = Vec::new();
    for piece in stream.chunks(chunk) {
        reader.push(piece, &mut lines);
    }
    let newlines = stream.iter().filter(|&&b| b == b'\n').count();
    assert_eq!(lines.len(), newlines, "one line per newline");
    let disks = MachineDisks {
        units: [None, None],
        cdrom: [false; 2],
        info: [DriveInfo::MASTER, DriveInfo::SLAVE],
    };
    with_machine(RAM as u64, disks, |m| {
        let mut model = vec![0u8; RAM];
        for line in lines {
            if let Line::Text(t) = &line {
                assert!(!t.contains('\n') && t.len() <= MAX_LINE);
            }
            let request = match &line {
                Line::Text(t) => parse(t).ok(),
                Line::Invalid(_) => None,
            };
            let out = respond(m, line);
            let (reply, irqs) = out.split_last().expect("a reply for every line");
            for l in &out {
                assert!(!l.contains('\n'), "newline inside {l:?}");
            }
            for irq in irqs {
                assert!(irq == "IRQ raise 14" || irq == "IRQ lower 14", "{irq:?}");
            }
            let ok = reply == "OK" || reply.starts_with("OK ");
            assert!(ok || reply.starts_with("FAIL "), "reply {reply:?}");
            if let Some(req) = request {
                check(&req, reply, ok, &mut model);
            } else {
                assert!(!ok, "a line that does not parse failed: {reply:?}");
            }
        }
    })
    .expect("build the qtest machine");
}

/// The model's bytes at `[addr, addr + len)`, if all inside RAM.
fn range(addr: u64, len: usize) -> Option<std::ops::Range<usize>> {
    let start = usize::try_from(addr).ok()?;
    let end = start.checked_add(len)?;
    (end <= RAM).then_some(start..end)
}

/// Checks one executed request against the RAM model and updates it.
fn check(req: &Request, reply: &str, ok: bool, model: &mut [u8]) {
    let value = reply.strip_prefix("OK ");
    match req {
        Request::Write { width, addr, value } => {
            let n = width.bytes();
            let r = range(*addr, n);
            assert_eq!(ok, r.is_some(), "write at {addr:#x}: {reply}");
            if let Some(r) = r {
                model[r].copy_from_slice(&value.to_le_bytes()[..n]);
            }
        }
        Request::WriteData { addr, data } => {
            let r = range(*addr, data.len());
            if !data.is_empty() {
                assert_eq!(ok, r.is_some(), "write at {addr:#x}: {reply}");
            }
            if let Some(r) = r {
                model[r].copy_from_slice(data);
            }
        }
        Request::Memset {
            addr,
            len,
            value: v,
        } => {
            let r = usize::try_from(*len).ok().and_then(|l| range(*addr, l));
            assert_eq!(ok, r.is_some() || *len == 0, "memset at {addr:#x}: {reply}");
            if let Some(r) = r {
                model[r].fill(*v);
            }
        }
        Request::Read { width, addr } => {
            let n = width.bytes();
            let r = range(*addr, n);
            assert_eq!(ok, r.is_some(), "read at {addr:#x}: {reply}");
            if let Some(r) = r {
                let mut b = [0u8; 8];
                b[..n].copy_from_slice(&model[r]);
                assert_eq!(
                    value,
                    Some(format!("0x{:016x}", u64::from_le_bytes(b)).as_str())
                );
            }
        }
        Request::ReadHex { addr, len } => {
            let r = range(*addr, *len);
            assert_eq!(ok, r.is_some(), "read at {addr:#x}: {reply}");
            if let Some(r) = r {
                let hex = value.expect("0x data");
                assert_eq!(hex.len(), 2 + 2 * len, "every byte in two digits");
                assert_eq!(hex_decode(hex, *len).as_deref(), Some(&model[r]));
            }
        }
        Request::ReadBase64 { addr, len } => {
            let r = range(*addr, *len);
            if *len != 0 {
                assert_eq!(ok, r.is_some(), "b64read at {addr:#x}: {reply}");
            }
            if let (true, Some(r)) = (ok, r) {
                let got = base64_decode(value.unwrap_or("")).expect("base64 data");
                assert_eq!(got.as_slice(), &model[r]);
            }
        }
        Request::Endianness => assert_eq!(reply, "OK little"),
        Request::In { width, port } => {
            let fits = usize::from(*port) + width.bytes() <= 0x1_0000;
            assert_eq!(ok, fits, "{req:?}: {reply}");
            if ok {
                let v = value
                    .and_then(|v| v.strip_prefix("0x"))
                    .unwrap_or_else(|| panic!("{req:?}: {reply}"));
                assert!(u32::from_str_radix(v, 16).is_ok(), "{reply}");
            }
        }
        Request::Out { width, port, .. } => {
            let fits = usize::from(*port) + width.bytes() <= 0x1_0000;
            assert_eq!(ok, fits, "{req:?}: {reply}");
        }
        _ => {}
    }
}

fn run_qmp(stream: &[u8], chunk: usize) {
    let mut session = QmpSession::new();
    let mut quit = false;
    for piece in stream.chunks(chunk) {
        let mut out = Vec::new();
        session.feed(piece, None, &mut out);
        for o in out {
            assert!(!quit, "a reply after quit");
            let v = match o {
                QmpOutput::Reply(v) => v,
                QmpOutput::Quit(v) => {
                    quit = true;
                    v
                }
            };
            assert!(v.is_object(), "QMP reply {v}");
        }
        if quit {
            // The server ends the process after quit.
            return;
        }
    }
}
