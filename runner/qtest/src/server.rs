//! The socket loop: connects to the client's qtest and QMP sockets (the
//! client listens, as with QEMU's `-qtest unix:PATH`), then serves both
//! from one thread with epoll until the client closes the qtest socket,
//! QMP `quit`, or SIGTERM/SIGINT/SIGHUP (libqtest ends QEMU with SIGTERM
//! and expects exit status 0).
//!
//! Before each request the machine is serviced (backend completions,
//! bounce retries), so device-side events land between commands as a
//! guest would see them between instructions.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Instant;

use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::signal::register_signal_handler;

use super::machine::{Machine, Reply};
use super::protocol::{Line, LineReader, parse};
use super::qmp::{QmpOutput, QmpSession, disk_events};
use crate::error::QtestError;

/// The signal that asked us to stop (0: none).
static STOP_SIGNAL: AtomicI32 = AtomicI32::new(0);

/// How long one epoll wait may last: a signal that arrives between the
/// flag check and the wait is seen within this time.
const WAIT_MS: i32 = 100;

const QTEST: u64 = 1;
const QMP: u64 = 2;

extern "C" fn on_stop_signal(num: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    STOP_SIGNAL.store(num, Ordering::SeqCst);
}

/// Installs the handler for SIGTERM, SIGINT and SIGHUP (without
/// `SA_RESTART`, so a blocking call returns `EINTR`).
pub fn install_signal_handlers() -> io::Result<()> {
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        register_signal_handler(sig, on_stop_signal).map_err(io::Error::from)?;
    }
    Ok(())
}

fn stop_requested() -> bool {
    STOP_SIGNAL.load(Ordering::SeqCst) != 0
}

/// Why serving ended without an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// The client closed the qtest socket.
    ClientClosed,
    /// QMP `quit`.
    Quit,
    /// A termination signal.
    Signal(i32),
}

/// Connects to a Unix socket the client listens on (`what`: `qtest` or
/// `QMP`, for the error).
pub fn connect(path: &Path, what: &'static str) -> Result<UnixStream, QtestError> {
    UnixStream::connect(path).map_err(|source| QtestError::Connect {
        what,
        path: path.display().to_string(),
        source,
    })
}

/// The request/reply log (`-qtest-log`), with QEMU's `[R +secs]` and
/// `[S +secs]` prefixes.
struct Log {
    file: Option<File>,
    start: Instant,
}

impl Log {
    fn line(&mut self, dir: char, text: &str) {
        if let Some(f) = self.file.as_mut() {
            let t = self.start.elapsed().as_secs_f64();
            // A log that cannot be written is not worth ending the run.
            let _ = writeln!(f, "[{dir} +{t:.6}] {text}");
        }
    }
}

/// Writes all of `data`, giving up when a stop signal arrives.
fn write_all(stream: &mut UnixStream, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match stream.write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = data.get(n..).unwrap_or(&[]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                if stop_requested() {
                    return Err(e);
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn send_json(stream: &mut UnixStream, v: &serde_json::Value) -> io::Result<()> {
    let mut s = v.to_string();
    s.push_str("\r\n");
    write_all(stream, s.as_bytes())
}

/// The connections and their parsers.
pub struct Server {
    qtest: UnixStream,
    qmp: Option<UnixStream>,
    lines: LineReader,
    session: QmpSession,
    log: Log,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").finish_non_exhaustive()
    }
}

impl Server {
    /// A server on connected sockets; sends the QMP greeting.
    pub fn new(qtest: UnixStream, qmp: Option<UnixStream>, log: Option<File>) -> io::Result<Self> {
        let mut s = Server {
            qtest,
            qmp,
            lines: LineReader::new(),
            session: QmpSession::new(),
            log: Log {
                file: log,
                start: Instant::now(),
            },
        };
        if let Some(q) = s.qmp.as_mut() {
            send_json(q, &QmpSession::greeting())?;
        }
        Ok(s)
    }

    /// Serves until the client goes away, `quit`, or a stop signal.
    pub fn run(&mut self, machine: &mut Machine<'_>) -> io::Result<Ended> {
        let epoll = Epoll::new()?;
        epoll.ctl(
            ControlOperation::Add,
            self.qtest.as_raw_fd(),
            EpollEvent::new(EventSet::IN, QTEST),
        )?;
        if let Some(q) = &self.qmp {
            epoll.ctl(
                ControlOperation::Add,
                q.as_raw_fd(),
                EpollEvent::new(EventSet::IN, QMP),
            )?;
        }
        let mut events = [EpollEvent::default(); 2];
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let sig = STOP_SIGNAL.load(Ordering::SeqCst);
            if sig != 0 {
                return Ok(Ended::Signal(sig));
            }
            let n = match epoll.wait(WAIT_MS, &mut events) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            for ev in events.iter().take(n) {
                let ended = match ev.data() {
                    QTEST => self.qtest_readable(machine, &mut buf)?,
                    QMP => self.qmp_readable(&epoll, machine, &mut buf)?,
                    _ => None,
                };
                if let Some(end) = ended {
                    return Ok(end);
                }
                // What the disks reported meanwhile (an error that stopped
                // a request: BLOCK_IO_ERROR and STOP) goes to the monitor.
                self.send_disk_events(&epoll, machine)?;
            }
        }
    }

    fn qtest_readable(
        &mut self,
        machine: &mut Machine<'_>,
        buf: &mut [u8],
    ) -> io::Result<Option<Ended>> {
        let n = match self.qtest.read(buf) {
            Ok(0) => return Ok(Some(Ended::ClientClosed)),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                return Ok(Some(Ended::ClientClosed));
            }
            Err(e) => return Err(e),
        };
        let mut lines = Vec::new();
        self.lines.push(buf.get(..n).unwrap_or(&[]), &mut lines);
        for line in lines {
            match &line {
                Line::Text(text) => self.log.line('R', text),
                Line::Invalid(why) => self.log.line('R', &format!("<{why}>")),
            }
            let mut out = String::new();
            for text in respond(machine, line) {
                self.log.line('S', &text);
                out.push_str(&text);
                out.push('\n');
            }
            if let Err(e) = write_all(&mut self.qtest, out.as_bytes()) {
                return if peer_gone(&e) {
                    Ok(Some(Ended::ClientClosed))
                } else {
                    Err(e)
                };
            }
        }
        Ok(None)
    }

    fn send_disk_events(&mut self, epoll: &Epoll, machine: &mut Machine<'_>) -> io::Result<()> {
        let events = disk_events(machine);
        let negotiated = self.session.negotiated();
        let Some(q) = self.qmp.as_mut().filter(|_| negotiated) else {
            return Ok(());
        };
        for v in &events {
            match send_json(q, v) {
                Ok(()) => {}
                Err(e) if peer_gone(&e) => {
                    self.drop_monitor(epoll);
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn qmp_readable(
        &mut self,
        epoll: &Epoll,
        machine: &mut Machine<'_>,
        buf: &mut [u8],
    ) -> io::Result<Option<Ended>> {
        let Some(q) = self.qmp.as_mut() else {
            return Ok(None);
        };
        let n = match q.read(buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(None),
            Err(_) => 0,
        };
        if n == 0 {
            // The monitor went away; the machine keeps serving qtest.
            self.drop_monitor(epoll);
            return Ok(None);
        }
        let mut out = Vec::new();
        self.session
            .feed(buf.get(..n).unwrap_or(&[]), Some(machine), &mut out);
        for o in out {
            let (v, quit) = match o {
                QmpOutput::Reply(v) => (v, false),
                QmpOutput::Quit(v) => (v, true),
            };
            match send_json(q, &v) {
                Ok(()) => {}
                // The monitor went away mid-reply: as for EOF above.
                Err(e) if peer_gone(&e) && !quit => {
                    self.drop_monitor(epoll);
                    return Ok(None);
                }
                Err(e) if !peer_gone(&e) => return Err(e),
                Err(_) => {}
            }
            if quit {
                return Ok(Some(Ended::Quit));
            }
        }
        Ok(None)
    }
}

impl Server {
    /// Forgets the QMP connection (its peer closed); qtest goes on.
    fn drop_monitor(&mut self, epoll: &Epoll) {
        if let Some(q) = self.qmp.take() {
            let _ = epoll.ctl(
                ControlOperation::Delete,
                q.as_raw_fd(),
                EpollEvent::default(),
            );
        }
    }
}

/// What the server sends for one request line: the `IRQ raise|lower N`
/// lines of the level changes it caused (when intercepted), then the reply
/// (`OK`, `OK VALUE` or `FAIL REASON`). None of them contains a newline.
/// Completions due before and after the request are delivered. The
/// `qtest_lines` fuzz target drives this function.
pub fn respond(machine: &mut Machine<'_>, line: Line) -> Vec<String> {
    let reply = match line {
        Line::Text(text) => {
            machine.service();
            let r = match parse(&text) {
                Ok(req) => machine.execute(req),
                Err(e) => Err(e.to_string()),
            };
            machine.service();
            r
        }
        Line::Invalid(why) => Err(why.to_string()),
    };
    let mut out = machine.irq_messages();
    out.push(reply_text(&reply));
    out
}

/// True for the errors of writing to a socket whose peer has closed.
fn peer_gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
    )
}

/// The protocol text of a reply.
fn reply_text(r: &Reply) -> String {
    match r {
        Ok(None) => "OK".into(),
        Ok(Some(v)) => format!("OK {v}"),
        // A reason never spans lines.
        Err(e) => format!("FAIL {}", e.replace('\n', " ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_texts() {
        assert_eq!(reply_text(&Ok(None)), "OK");
        assert_eq!(reply_text(&Ok(Some("0x00ff".into()))), "OK 0x00ff");
        assert_eq!(reply_text(&Err("a\nb".into())), "FAIL a b");
    }
}
