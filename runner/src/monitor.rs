//! `vmdma run --qmp unix:PATH,server=on,wait=off`: a QMP monitor on a Unix
//! socket, served by its own thread (seccomp role [`Role::Monitor`]).
//!
//! One client at a time (others wait in the listen backlog until it
//! leaves), any number over the run. Commands: `qmp_capabilities`,
//! `query-commands`, `query-version`, `query-status`, `stop`, `cont`,
//! `quit`, `query-block`, `query-blockstats`, `human-monitor-command`
//! (`qemu-io` breakpoints on a `blkdebug:` disk, see [`crate::hmp`]);
//! everything else is `CommandNotFound`. Events: `BLOCK_IO_ERROR`, `STOP`,
//! `RESUME`, `SHUTDOWN` (the last one when the run ends, whatever ended
//! it, just before the connection closes).
//!
//! Disk errors: the disk queues a `BLOCK_IO_ERROR` for every host I/O
//! error ([`DiskEvents`]) and wakes this thread, which sends it; when the
//! error policy stopped the request (`werror=stop`, `enospc` on ENOSPC),
//! the monitor pauses the VM as `stop` does, sends `STOP` and reports the
//! status `io-error` until `cont`, which has the vCPU thread submit the
//! kept request again before it re-enters the guest.
//!
//! `stop` asks the vCPU to park ([`RunControl::request_pause`]), kicks it
//! out of `KVM_RUN` every 10 ms with the supervisor's signal and replies
//! once it has parked, within [`PAUSE_BOUND`]. A vCPU blocked in the kernel
//! (a port access waiting on a disk that does not answer) cannot park: the
//! request is withdrawn, the VM stays running and `stop` fails with a
//! `GenericError` that says so. While paused, the disk's requests in flight
//! complete: the I/O thread delivers them and raises IRQ 14, which the
//! in-kernel irqchip holds until `cont` lets the vCPU back in.
//!
//! A client's input is bounded ([`crate::qmp::MAX_INPUT`]); garbage gets a
//! `GenericError` and the session goes on; a client that leaves, even in the
//! middle of a request, only ends its own session. Replies are written on a
//! non-blocking socket: a client that stops reading for [`WRITE_BOUND`] is
//! disconnected, so it cannot hold the monitor (or the end of the run).

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, TryLockError};
use std::thread::{Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use thiserror::Error;
use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::eventfd::{EFD_NONBLOCK, EventFd};

use crate::cdrom::CDROM_DEVICE;
use crate::control::{RunControl, SnapshotDone, SnapshotJob, StopReason};
use crate::devices::chipset::Chipset;
use crate::disk::events::DiskEvents;
use crate::disk::policy::Decision;
use crate::disk::stage::Release;
use crate::hmp::{self, Effect};
use crate::kick::Kicker;
use crate::qmp::{self, Commands, Outcome, Output, Session};
use crate::sandbox::{Role, Sandbox, SandboxError};
use vmdma_core::ide::Unit;

/// How long `stop` waits for the vCPU to park (as long as the supervisor
/// kicks a stopping vCPU).
pub const PAUSE_BOUND: Duration = Duration::from_secs(5);
/// How often `stop` kicks the vCPU while it waits.
const KICK_INTERVAL: Duration = Duration::from_millis(10);
/// How long a client may leave a reply unread before it is disconnected.
pub const WRITE_BOUND: Duration = Duration::from_secs(5);
/// How long `query-blockstats` waits for the controller's lock (held by a
/// port access in progress).
const STATS_BOUND: Duration = Duration::from_secs(1);
/// The name QEMU gives the first IDE disk (`-drive if=ide`).
pub const DEVICE: &str = "ide0-hd0";

/// `--qmp unix:PATH,server=on,wait=off`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QmpSpec {
    /// The socket's path (created; a stale socket there is replaced).
    pub path: PathBuf,
}

/// Parses QEMU's chardev syntax for a listening Unix socket: `unix:PATH`
/// with `server=on` (or `server`) and `wait=off` (or `nowait`); a comma in
/// the path is written `,,`.
pub fn parse_spec(s: &str) -> Result<QmpSpec, String> {
    let Some(rest) = s.strip_prefix("unix:") else {
        if s.starts_with("tcp:") || s.contains(':') {
            return Err(format!(
                "'{s}': only a Unix socket is supported (unix:PATH,server=on,wait=off)"
            ));
        }
        return Err(format!("'{s}' is not unix:PATH,server=on,wait=off"));
    };
    let mut it = crate::qemu_opts::split_qemu_opts(rest).into_iter();
    let path = it.next().unwrap_or_default();
    if path.is_empty() {
        return Err("--qmp unix: needs a path".into());
    }
    let (mut server, mut nowait) = (false, false);
    for opt in it {
        match opt.as_str() {
            "server" | "server=on" => server = true,
            "nowait" | "wait=off" => nowait = true,
            "server=off" => return Err("--qmp: the monitor listens (server=on)".into()),
            "wait=on" => {
                return Err(
                    "--qmp: wait=on is not supported (the VM starts at once: wait=off)".into(),
                );
            }
            other => return Err(format!("--qmp: unknown option '{other}'")),
        }
    }
    if !server || !nowait {
        return Err("--qmp needs unix:PATH,server=on,wait=off".into());
    }
    Ok(QmpSpec {
        path: PathBuf::from(path),
    })
}

/// Binds the monitor's socket (before any thread is sandboxed): a socket
/// file already at `path` is replaced, as QEMU does; anything else there
/// is an error.
pub fn listen(path: &Path) -> io::Result<UnixListener> {
    use std::os::unix::fs::FileTypeExt;
    if let Ok(m) = std::fs::symlink_metadata(path)
        && m.file_type().is_socket()
    {
        std::fs::remove_file(path)?;
    }
    UnixListener::bind(path)
}

/// What `query-block` says about the disk.
#[derive(Clone, Debug)]
pub struct BlockInfo {
    /// The image's path as given (or the temporary image's).
    pub file: String,
    /// Opened read-only.
    pub read_only: bool,
    /// Size in bytes.
    pub size: u64,
    /// `cache=none` (O_DIRECT).
    pub direct: bool,
    /// The CD-ROM's image at start (`--cdrom`), if there is a CD-ROM.
    pub cdrom: Option<String>,
}

/// The disk as the monitor sees it: what `query-block` says, and the
/// queue its errors arrive on.
#[derive(Debug)]
pub struct MonitoredDisk {
    /// For `query-block`.
    pub info: BlockInfo,
    /// I/O errors and the policy's decisions.
    pub events: Arc<DiskEvents>,
}

/// Why the monitor thread could not start or stop.
#[derive(Debug, Error)]
pub enum MonitorError {
    /// Its stop eventfd.
    #[error("monitor eventfd: {0}")]
    EventFd(#[source] io::Error),
    /// Its epoll instance.
    #[error("monitor epoll: {0}")]
    Epoll(#[source] io::Error),
    /// The thread could not be created.
    #[error("monitor thread: {0}")]
    Spawn(#[source] io::Error),
    /// The thread could not enter its sandbox.
    #[error("monitor thread: {0}")]
    Sandbox(#[source] SandboxError),
    /// Telling it to stop failed.
    #[error("stopping the monitor thread: {0}")]
    Stop(#[source] io::Error),
    /// It panicked.
    #[error("the monitor thread panicked")]
    Panicked,
}

/// The running monitor thread.
#[derive(Debug)]
pub struct Monitor<'scope> {
    stop: EventFd,
    handle: ScopedJoinHandle<'scope, ()>,
}

const LISTENER: u64 = 0;
const STOP: u64 = 1;
const CLIENT: u64 = 2;
const DISK: u64 = 3;

/// The commands `query-commands` lists (besides the two every session has).
const COMMANDS: [&str; 14] = [
    "eject",
    "blockdev-change-medium",
    "blockdev-open-tray",
    "blockdev-close-tray",
    "migrate",
    "query-migrate",
    "query-version",
    "query-status",
    "stop",
    "cont",
    "quit",
    "query-block",
    "query-blockstats",
    "human-monitor-command",
];

impl hmp::Drives for Vm<'_, '_> {
    fn unit(&self, device: &str) -> Option<Unit> {
        (device == DEVICE).then_some(Unit::Master)
    }

    fn execute(
        &mut self,
        unit: Unit,
        command: &hmp::QemuIo,
    ) -> Result<Option<Result<Effect, String>>, Outcome> {
        self.with_chipset(|c| c.disk_mut(unit).map(|d| hmp::execute(d, command)))
    }

    fn released(&mut self) {
        self.control.request_service();
        self.kicker.kick();
    }
}

/// What the monitor serves commands with.
struct Vm<'a, 'm> {
    control: &'a RunControl,
    kicker: Kicker,
    chipset: &'a Mutex<Chipset<'m>>,
    block: &'a BlockInfo,
    events: &'a DiskEvents,
    /// The VM is paused because a request's error stopped it: `failed` or
    /// `nospace` (QMP's `io-status`), until `cont`.
    io_error: Option<&'static str>,
    /// The CD-ROM's image (`None`: no CD-ROM drive).
    cdrom: Option<String>,
    /// The last `migrate`, for `query-migrate`.
    migration: Option<Migration>,
    /// Paused after a `migrate` (status `postmigrate`), until `cont`.
    postmigrate: bool,
}

/// How the last `migrate` went.
#[derive(Debug, Clone)]
enum Migration {
    Completed { done: SnapshotDone, total: Duration },
    Failed(String),
}

/// How long `migrate` waits for the snapshot to be written.
pub const MIGRATE_BOUND: Duration = Duration::from_secs(60);

impl<'scope> Monitor<'scope> {
    /// Starts the monitor thread in `scope` on `listener`. `kicker` kicks
    /// the vCPU thread; `chipset` gives the disk's counters.
    pub fn spawn<'env, 'm: 'scope>(
        scope: &'scope Scope<'scope, 'env>,
        listener: UnixListener,
        control: Arc<RunControl>,
        kicker: Kicker,
        chipset: &'scope Mutex<Chipset<'m>>,
        disk: MonitoredDisk,
        sandbox: Sandbox,
    ) -> Result<Self, MonitorError> {
        let MonitoredDisk {
            info: block,
            events,
        } = disk;
        let stop = EventFd::new(EFD_NONBLOCK).map_err(MonitorError::EventFd)?;
        let stop_rx = stop.try_clone().map_err(MonitorError::EventFd)?;
        let epoll = Epoll::new().map_err(MonitorError::Epoll)?;
        for (fd, tag) in [
            (listener.as_raw_fd(), LISTENER),
            (stop_rx.as_raw_fd(), STOP),
            (events.notify_fd().as_raw_fd(), DISK),
        ] {
            epoll
                .ctl(
                    ControlOperation::Add,
                    fd,
                    EpollEvent::new(EventSet::IN, tag),
                )
                .map_err(MonitorError::Epoll)?;
        }
        let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<(), SandboxError>>(1);
        let handle = std::thread::Builder::new()
            .name("vmdma-monitor".into())
            .spawn_scoped(scope, move || {
                let entered = sandbox.enter(Role::Monitor);
                let ok = entered.is_ok();
                let _ = ready_tx.send(entered);
                if ok {
                    let vm = Vm {
                        control: &control,
                        kicker,
                        chipset,
                        block: &block,
                        events: &events,
                        io_error: None,
                        cdrom: block.cdrom.clone(),
                        migration: None,
                        postmigrate: false,
                    };
                    serve(&epoll, &listener, &stop_rx, vm);
                }
            })
            .map_err(MonitorError::Spawn)?;
        let monitor = Monitor { stop, handle };
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(monitor),
            Ok(Err(e)) => {
                let _ = monitor.stop();
                Err(MonitorError::Sandbox(e))
            }
            Err(_) => Err(monitor.stop().err().unwrap_or(MonitorError::Panicked)),
        }
    }

    /// Ends the monitor: its client gets the `SHUTDOWN` event and the
    /// connection closes; waits for the thread.
    pub fn stop(self) -> Result<(), MonitorError> {
        self.stop.write(1).map_err(MonitorError::Stop)?;
        self.handle.join().map_err(|_| MonitorError::Panicked)
    }
}

/// One connected client.
struct Client {
    stream: UnixStream,
    session: Session,
}

/// The thread's loop: accept one client at a time, serve it, until told
/// to stop.
fn serve(epoll: &Epoll, listener: &UnixListener, stop: &EventFd, mut vm: Vm<'_, '_>) {
    let mut client: Option<Client> = None;
    let mut events = [EpollEvent::default(); 4];
    let mut buf = vec![0u8; 4096];
    loop {
        let n = match epoll.wait(-1, &mut events) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        for ev in events.iter().take(n) {
            match ev.data() {
                STOP => {
                    let _ = stop.read();
                    if let Some(mut c) = client.take()
                        && c.session.negotiated()
                    {
                        let _ = send(&mut c.stream, &shutdown_event(vm.control.stop_reason()));
                    }
                    return;
                }
                DISK => {
                    let out = vm.disk_events();
                    if let Some(c) = client.as_mut()
                        && c.session.negotiated()
                    {
                        for v in &out {
                            if send(&mut c.stream, v).is_err() {
                                break;
                            }
                        }
                    }
                }
                LISTENER if client.is_none() => {
                    if let Some(c) = accept(epoll, listener) {
                        client = Some(c);
                    }
                }
                CLIENT => {
                    let keep = match client.as_mut() {
                        Some(c) => serve_input(c, &mut buf, &mut vm),
                        None => true,
                    };
                    if !keep && let Some(c) = client.take() {
                        // Closing the socket takes it out of the epoll set;
                        // a waiting client is accepted on the next wake-up.
                        let _ = epoll.ctl(
                            ControlOperation::Delete,
                            c.stream.as_raw_fd(),
                            EpollEvent::default(),
                        );
                    }
                }
                _ => {}
            }
        }
        // Level-triggered: a waiting connection would wake the loop at once
        // while a client is served, so the listener is watched only when no
        // client is connected.
        let listen_events = if client.is_some() {
            EventSet::empty()
        } else {
            EventSet::IN
        };
        let _ = epoll.ctl(
            ControlOperation::Modify,
            listener.as_raw_fd(),
            EpollEvent::new(listen_events, LISTENER),
        );
    }
}

/// Accepts a client, sends the greeting; `None` if it left already.
fn accept(epoll: &Epoll, listener: &UnixListener) -> Option<Client> {
    let (mut stream, _) = listener.accept().ok()?;
    stream.set_nonblocking(true).ok()?;
    send(&mut stream, &qmp::greeting()).ok()?;
    epoll
        .ctl(
            ControlOperation::Add,
            stream.as_raw_fd(),
            EpollEvent::new(EventSet::IN | EventSet::READ_HANG_UP, CLIENT),
        )
        .ok()?;
    Some(Client {
        stream,
        session: Session::new(),
    })
}

/// Reads what the client sent and answers it; false when the client is
/// gone (EOF, an error, `quit`, or it stopped reading its replies).
fn serve_input(c: &mut Client, buf: &mut [u8], vm: &mut Vm<'_, '_>) -> bool {
    let n = match c.stream.read(buf) {
        Ok(0) => return false,
        Ok(n) => n,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
            ) =>
        {
            return true;
        }
        Err(_) => return false,
    };
    let mut out = Vec::new();
    c.session.feed(buf.get(..n).unwrap_or(&[]), vm, &mut out);
    for o in out {
        let (v, quit) = match o {
            Output::Send(v) => (v, false),
            Output::Quit(v) => (v, true),
        };
        if send(&mut c.stream, &v).is_err() {
            return false;
        }
        if quit {
            // The SHUTDOWN event follows when the run ends (stop above);
            // the connection stays open until then.
            return true;
        }
    }
    true
}

/// Writes one JSON object and a line end, waiting at most [`WRITE_BOUND`]
/// for a client that does not read.
fn send(stream: &mut UnixStream, v: &Value) -> io::Result<()> {
    let mut line = v.to_string().into_bytes();
    line.extend_from_slice(b"\r\n");
    let deadline = Instant::now() + WRITE_BOUND;
    let mut rest = line.as_slice();
    while !rest.is_empty() {
        match stream.write(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => rest = rest.get(n..).unwrap_or(&[]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::ErrorKind::TimedOut.into());
                }
                std::thread::sleep(left.min(Duration::from_millis(1)));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The `SHUTDOWN` event for how the run ended (QEMU's reasons).
fn shutdown_event(reason: Option<StopReason>) -> Value {
    let (guest, why) = match reason {
        Some(StopReason::Quit) => (false, "host-qmp-quit"),
        Some(StopReason::Signal(_)) => (false, "host-signal"),
        Some(StopReason::Timeout) => (false, "host-signal"),
        Some(StopReason::GuestExit(_)) => (true, "guest-shutdown"),
        Some(StopReason::Shutdown(_) | StopReason::GuestFault(_)) => (true, "guest-panic"),
        None => (false, "host-error"),
    };
    qmp::event("SHUTDOWN", Some(json!({"guest": guest, "reason": why})))
}

impl<'m> Vm<'_, 'm> {
    fn status(&self) -> Value {
        let (running, status) = if self.control.is_stopping() {
            (false, "shutdown")
        } else if self.control.is_paused() && self.io_error.is_some() {
            (false, "io-error")
        } else if self.control.is_paused() && self.postmigrate {
            (false, "postmigrate")
        } else if self.control.is_paused() {
            (false, "paused")
        } else {
            (true, "running")
        };
        json!({"running": running, "singlestep": false, "status": status})
    }

    /// Runs `f` on the chipset, waiting at most [`STATS_BOUND`] for its
    /// lock (a port access blocked on the disk holds it).
    fn with_chipset<R>(&self, f: impl FnOnce(&mut Chipset<'m>) -> R) -> Result<R, Outcome> {
        let deadline = Instant::now() + STATS_BOUND;
        loop {
            match self.chipset.try_lock() {
                Ok(mut c) => return Ok(f(&mut c)),
                Err(TryLockError::Poisoned(p)) => return Ok(f(&mut p.into_inner())),
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(Outcome::Error(
                        "GenericError",
                        "the disk controller is busy (a port access is waiting on the disk)".into(),
                    ));
                }
            }
        }
    }

    /// Pauses the vCPU (see the module docs); the error is the reason it
    /// could not.
    fn pause(&mut self) -> Result<(), String> {
        if self.control.is_stopping() {
            return Err("the run is ending".into());
        }
        self.control.request_pause();
        let deadline = Instant::now() + PAUSE_BOUND;
        loop {
            self.kicker.kick();
            if self.control.wait_parked(KICK_INTERVAL) {
                return Ok(());
            }
            if self.control.is_stopping() {
                self.control.resume();
                return Err("the run is ending".into());
            }
            if Instant::now() >= deadline {
                self.control.resume();
                return Err(format!(
                    "the vCPU did not pause within {} s: it is blocked in the kernel (e.g. a \
                     port access waiting on a disk that does not answer); the VM is still \
                     running",
                    PAUSE_BOUND.as_secs()
                ));
            }
        }
    }

    fn stop(&mut self, events: &mut Vec<Value>) -> Outcome {
        if self.control.is_paused() {
            return Outcome::Return(json!({}));
        }
        match self.pause() {
            Ok(()) => {
                events.push(qmp::event("STOP", None));
                Outcome::Return(json!({}))
            }
            Err(e) => Outcome::Error("GenericError", e),
        }
    }

    fn cont(&mut self, events: &mut Vec<Value>) -> Outcome {
        // Requests an error stopped go to the engine again; the vCPU thread
        // submits them (it may do disk I/O) before it re-enters the guest.
        let released = match self.with_chipset(|c| {
            c.disk_mut(vmdma_core::ide::Unit::Master)
                .map_or(0, |d| d.release(Release::Stopped))
        }) {
            Ok(n) => n,
            Err(e) => return e,
        };
        if released > 0 {
            self.control.request_service();
        }
        self.io_error = None;
        self.postmigrate = false;
        if self.control.pause_requested() {
            self.control.resume();
            events.push(qmp::event("RESUME", None));
        }
        Outcome::Return(json!({}))
    }

    /// `migrate` with `file:PATH`: pauses the VM (if it runs), has the
    /// supervising thread open the file and the vCPU thread write the
    /// snapshot; replies when it is durable. The VM stays paused until
    /// `cont`, as QEMU's source does after a migration.
    fn migrate(&mut self, arguments: Option<&Value>, events: &mut Vec<Value>) -> Outcome {
        let Some(uri) = arguments.and_then(|a| a.get("uri")).and_then(Value::as_str) else {
            return Outcome::Error("GenericError", "Parameter 'uri' is missing".into());
        };
        let Some(path) = uri.strip_prefix("file:").filter(|p| !p.is_empty()) else {
            return Outcome::Error(
                "GenericError",
                format!("'{uri}': vmdma migrates to file:PATH only (a snapshot file)"),
            );
        };
        let start = Instant::now();
        let owned = std::path::PathBuf::from(path);
        let file = match self.control.on_supervisor(PAUSE_BOUND, move || {
            crate::snapshot::create_file(&owned).map_err(|e| e.to_string())
        }) {
            Ok(Ok(f)) => f,
            Ok(Err(e)) => {
                return Outcome::Error("GenericError", format!("cannot open '{path}': {e}"));
            }
            Err(e) => return Outcome::Error("GenericError", format!("cannot open '{path}': {e}")),
        };
        if !self.control.is_paused() {
            if let Err(e) = self.pause() {
                return Outcome::Error("GenericError", e);
            }
            events.push(qmp::event("STOP", None));
        }
        events.push(qmp::event("MIGRATION", Some(json!({"status": "active"}))));
        let (tx, rx) = mpsc::channel();
        self.control
            .request_snapshot(SnapshotJob { file, reply: tx });
        let result = rx
            .recv_timeout(MIGRATE_BOUND)
            .unwrap_or_else(|_| Err("the vCPU thread did not write the snapshot in time".into()));
        let (status, migration) = match result {
            Ok(done) => (
                "completed",
                Migration::Completed {
                    done,
                    total: start.elapsed(),
                },
            ),
            Err(e) => ("failed", Migration::Failed(e)),
        };
        self.migration = Some(migration.clone());
        self.postmigrate = true;
        events.push(qmp::event("MIGRATION", Some(json!({"status": status}))));
        match migration {
            Migration::Completed { .. } => Outcome::Return(json!({})),
            Migration::Failed(e) => Outcome::Error("GenericError", e),
        }
    }

    /// `query-migrate`: QEMU's fields for a finished migration.
    fn query_migrate(&self) -> Value {
        match &self.migration {
            None => json!({}),
            Some(Migration::Failed(e)) => json!({"status": "failed", "error-desc": e}),
            Some(Migration::Completed { done, total }) => {
                let page = crate::kvm::memory::PAGE as u64;
                json!({
                    "status": "completed",
                    "total-time": total.as_millis() as u64,
                    "downtime": total.as_millis() as u64,
                    "setup-time": 0,
                    "ram": {
                        "transferred": done.file_bytes,
                        "total": done.ram_bytes + done.zero_pages * page,
                        "remaining": 0,
                        "duplicate": done.zero_pages,
                        "normal": done.ram_bytes / page,
                        "normal-bytes": done.ram_bytes,
                        "page-size": page,
                    },
                })
            }
        }
    }

    /// The disk's queued errors, as events; pauses the VM when one of them
    /// stopped its request (`BLOCK_IO_ERROR` first, then `STOP`, as QEMU).
    fn disk_events(&mut self) -> Vec<Value> {
        let mut out = Vec::new();
        let mut stop = None;
        for e in self.events.drain() {
            out.push(qmp::block_io_error(&e));
            if e.decision == Decision::Stop {
                stop = Some(if e.nospace { "nospace" } else { "failed" });
            }
        }
        let Some(status) = stop else {
            return out;
        };
        if self.control.is_paused() {
            // Already paused (by `stop`): no second STOP.
            self.io_error = Some(status);
            return out;
        }
        match self.pause() {
            Ok(()) => {
                self.io_error = Some(status);
                out.push(qmp::event("STOP", None));
            }
            // Cannot happen with a kept request (the vCPU is not blocked
            // on it); the request stays kept until `cont` or the end.
            Err(e) => eprintln!("vmdma: the disk error policy could not pause the VM: {e}"),
        }
        out
    }

    fn human_monitor_command(&mut self, arguments: Option<&Value>) -> Outcome {
        hmp::serve(self, arguments, PAUSE_BOUND)
    }

    fn query_block(&self) -> Outcome {
        let b = self.block;
        let mut list = vec![json!({
            "device": DEVICE,
            "type": "unknown",
            "removable": false,
            "locked": false,
            "io-status": self.io_error.unwrap_or("ok"),
            "inserted": {
                "file": b.file,
                "ro": b.read_only,
                "drv": "raw",
                "encrypted": false,
                "backing_file_depth": 0,
                "detect_zeroes": "off",
                "bps": 0, "bps_rd": 0, "bps_wr": 0,
                "iops": 0, "iops_rd": 0, "iops_wr": 0,
                "write_threshold": 0,
                "cache": {"writeback": true, "direct": b.direct, "no-flush": false},
                "image": {"filename": b.file, "format": "raw", "virtual-size": b.size},
            },
        })];
        if let Some(file) = &self.cdrom {
            let tray = match self.with_chipset(|c| c.cdrom_tray()) {
                Ok(t) => t,
                Err(o) => return o,
            };
            let (open, locked) = tray.map_or((false, false), |t| (t.open, t.locked));
            let mut cd = json!({
                "device": CDROM_DEVICE,
                "type": "unknown",
                "removable": true,
                "locked": locked,
                "tray_open": open,
                "io-status": "ok",
            });
            if !open {
                cd["inserted"] = json!({
                    "file": file, "ro": true, "drv": "raw", "encrypted": false,
                    "image": {"filename": file, "format": "raw"},
                });
            }
            list.push(cd);
        }
        Outcome::Return(Value::Array(list))
    }

    /// The CD-ROM a command names (`device` or `id`), or the error.
    fn cdrom_arg(&self, args: Option<&Value>) -> Result<(), Outcome> {
        let name = args
            .and_then(|a| a.get("id").or_else(|| a.get("device")))
            .and_then(Value::as_str);
        match name {
            Some(n) if n == CDROM_DEVICE && self.cdrom.is_some() => Ok(()),
            Some(n) => Err(Outcome::Error(
                "DeviceNotFound",
                format!("Device '{n}' not found"),
            )),
            None => Err(Outcome::Error(
                "GenericError",
                "Parameter 'id' is missing".into(),
            )),
        }
    }

    fn tray_event(open: bool) -> Value {
        qmp::event(
            "DEVICE_TRAY_MOVED",
            Some(json!({"device": CDROM_DEVICE, "id": "", "tray-open": open})),
        )
    }

    fn locked_error() -> Outcome {
        Outcome::Error(
            "GenericError",
            format!(
                "Device '{CDROM_DEVICE}' is locked and force was not specified, wait for tray \
                 to open and try again"
            ),
        )
    }

    /// `eject` and `blockdev-open-tray`: opens the tray (the guest sees no
    /// medium). Unlike QEMU's `eject`, the image stays in the drive (and
    /// open) behind the open tray: `blockdev-close-tray` brings it back.
    fn eject(&mut self, args: Option<&Value>, events: &mut Vec<Value>) -> Outcome {
        if let Err(o) = self.cdrom_arg(args) {
            return o;
        }
        let force = args
            .and_then(|a| a.get("force"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        match self.with_chipset(|c| (c.cdrom_tray(), c.cdrom_open_tray(force))) {
            Err(o) => o,
            Ok((_, Err(vmdma_core::ide::MediaError::Locked))) => Self::locked_error(),
            Ok((_, Err(e))) => Outcome::Error("GenericError", e.to_string()),
            Ok((before, Ok(()))) => {
                if before.is_some_and(|t| !t.open) {
                    events.push(Self::tray_event(true));
                }
                Outcome::Return(json!({}))
            }
        }
    }

    fn query_blockstats(&self) -> Outcome {
        let (ide, errors) =
            match self.with_chipset(|c| (c.ide_stats(), c.disk().map_or(0, |d| d.io_errors()))) {
                Ok(v) => v,
                Err(e) => return e,
            };
        Outcome::Return(json!([{
            "device": DEVICE,
            "stats": {
                "rd_bytes": ide.bytes_read,
                "wr_bytes": ide.bytes_written,
                "rd_operations": ide.pio_reads + ide.dma_reads,
                "wr_operations": ide.pio_writes + ide.dma_writes,
                "flush_operations": ide.flushes + ide.write_through_flushes,
                "unmap_operations": ide.trims,
                "failed_operations_host_io": errors,
                "aborted_commands": ide.aborted,
            },
        }]))
    }

    /// `blockdev-change-medium`: the supervising thread opens `filename`
    /// (read-only, a whole number of CD blocks: what `--cdrom` accepts;
    /// the monitor may not open files itself), then it replaces the
    /// medium, as QEMU's opens the tray, swaps and closes it (refused while
    /// the guest locked the tray unless `force`).
    fn change_medium(&mut self, args: Option<&Value>, events: &mut Vec<Value>) -> Outcome {
        if let Err(o) = self.cdrom_arg(args) {
            return o;
        }
        let arg = |k: &str| args.and_then(|a| a.get(k));
        let Some(filename) = arg("filename").and_then(Value::as_str) else {
            return Outcome::Error("GenericError", "Parameter 'filename' is missing".into());
        };
        if let Some(f) = arg("format").and_then(Value::as_str)
            && f != "raw"
        {
            return Outcome::Error(
                "GenericError",
                format!("format '{f}': vmdma reads raw images only"),
            );
        }
        if arg("read-only-mode").and_then(Value::as_str) == Some("read-write") {
            return Outcome::Error(
                "GenericError",
                "a CD-ROM medium is read-only (read-only-mode read-write refused)".into(),
            );
        }
        let force = arg("force").and_then(Value::as_bool).unwrap_or(false);
        let path = std::path::PathBuf::from(filename);
        let image = match self
            .control
            .on_supervisor(PAUSE_BOUND, move || crate::cdrom::open(&path))
        {
            Ok(Ok(image)) => image,
            Ok(Err(e)) => {
                return Outcome::Error("GenericError", format!("Could not open '{filename}': {e}"));
            }
            Err(e) => return Outcome::Error("GenericError", e.into()),
        };
        let (disk, _, _) = image.into_backend(None, CDROM_DEVICE);
        match self.with_chipset(|c| (c.cdrom_tray(), c.cdrom_change_medium(disk, force))) {
            Err(o) => o,
            Ok((_, Err(vmdma_core::ide::MediaError::Locked))) => Self::locked_error(),
            Ok((_, Err(e))) => Outcome::Error("GenericError", e.to_string()),
            Ok((before, Ok(old))) => {
                // The old image is closed here (no other system call).
                drop(old);
                if before.is_some_and(|t| !t.open) {
                    events.push(Self::tray_event(true));
                }
                events.push(Self::tray_event(false));
                self.cdrom = Some(filename.to_string());
                Outcome::Return(json!({}))
            }
        }
    }

    /// `blockdev-close-tray`: closes the tray; the medium in it (the
    /// image the drive has) is reachable again, and the guest sees a media
    /// change (NOT READY, then UNIT ATTENTION 28h, and a GESN new-media
    /// event), as on QEMU.
    fn close_tray(&mut self, args: Option<&Value>, events: &mut Vec<Value>) -> Outcome {
        if let Err(o) = self.cdrom_arg(args) {
            return o;
        }
        match self.with_chipset(|c| (c.cdrom_tray(), c.cdrom_close_tray())) {
            Err(o) => o,
            Ok((_, Err(e))) => Outcome::Error("GenericError", e.to_string()),
            Ok((before, Ok(()))) => {
                if before.is_some_and(|t| t.open) {
                    events.push(Self::tray_event(false));
                }
                Outcome::Return(json!({}))
            }
        }
    }
}

impl Commands for Vm<'_, '_> {
    fn execute(
        &mut self,
        name: &str,
        arguments: Option<&Value>,
        events: &mut Vec<Value>,
    ) -> Outcome {
        match name {
            "query-status" => Outcome::Return(self.status()),
            "stop" => self.stop(events),
            "cont" => self.cont(events),
            "quit" => {
                self.control.request_stop(StopReason::Quit);
                self.kicker.kick();
                Outcome::Quit
            }
            "query-block" => self.query_block(),
            "query-blockstats" => self.query_blockstats(),
            "query-version" => Outcome::Return(qmp::version()),
            "query-commands" => Outcome::Return(qmp::commands(&COMMANDS)),
            "human-monitor-command" => self.human_monitor_command(arguments),
            "eject" => self.eject(arguments, events),
            "blockdev-open-tray" => self.eject(arguments, events),
            "blockdev-close-tray" => self.close_tray(arguments, events),
            "blockdev-change-medium" => self.change_medium(arguments, events),
            "migrate" => self.migrate(arguments, events),
            "query-migrate" => Outcome::Return(self.query_migrate()),
            other => qmp::not_found(
                other,
                "vmdma serves qmp_capabilities, query-commands, query-version, query-status, \
                 stop, cont, quit, query-block, query-blockstats, human-monitor-command, eject, \
                 blockdev-open-tray, blockdev-close-tray, blockdev-change-medium, migrate and \
                 query-migrate",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        let s = parse_spec("unix:/tmp/q.sock,server=on,wait=off").unwrap();
        assert_eq!(s.path, PathBuf::from("/tmp/q.sock"));
        assert_eq!(
            parse_spec("unix:a,,b,server,nowait").unwrap().path,
            PathBuf::from("a,b")
        );
        for bad in [
            "tcp:127.0.0.1:4444,server=on,wait=off",
            "unix:/tmp/q",
            "unix:/tmp/q,server=on",
            "unix:/tmp/q,server=on,wait=on",
            "unix:,server=on,wait=off",
            "unix:/tmp/q,server=on,wait=off,x=1",
            "/tmp/q",
        ] {
            assert!(parse_spec(bad).is_err(), "{bad}");
        }
        assert!(
            parse_spec("tcp:1:2")
                .unwrap_err()
                .contains("only a Unix socket")
        );
    }

    #[test]
    fn shutdown_reasons() {
        let e = shutdown_event(Some(StopReason::Quit));
        assert_eq!(
            e["data"],
            json!({"guest": false, "reason": "host-qmp-quit"})
        );
        assert_eq!(e["event"], "SHUTDOWN");
    }
}
