//! A disk that stops answering: a one-file FUSE file system, served from a
//! thread of the test, whose reads never get a reply.
//!
//! It speaks the kernel's FUSE protocol on `/dev/fuse` directly (no
//! libfuse, nothing to install) and mounts itself with mount(2), so it
//! needs root (CAP_SYS_ADMIN) and `/dev/fuse`; [`available`] says whether
//! this process has both. The file system holds one regular file,
//! `disk.img`, of a chosen size, opened in one of two [`Mode`]s. Every READ
//! is recorded and held; writes are
//! accepted and dropped. Dropping the [`BlockingFuse`] ends the server:
//! closing its `/dev/fuse` descriptor aborts the connection, so every held
//! read fails (ECONNABORTED) and its reader is free; then the mount is
//! detached.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

/// The file's name in the file system.
pub const IMAGE_NAME: &str = "disk.img";

const ROOT_ID: u64 = 1;
const IMAGE_ID: u64 = 2;

// Opcodes (include/uapi/linux/fuse.h).
const LOOKUP: u32 = 1;
const FORGET: u32 = 2;
const GETATTR: u32 = 3;
const OPEN: u32 = 14;
const READ: u32 = 15;
const WRITE: u32 = 16;
const RELEASE: u32 = 18;
const FSYNC: u32 = 20;
const FLUSH: u32 = 25;
const INIT: u32 = 26;
const INTERRUPT: u32 = 36;
const BATCH_FORGET: u32 = 42;

const FOPEN_DIRECT_IO: u32 = 1;

/// How the file's reads reach the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `FOPEN_DIRECT_IO`: a read is one synchronous FUSE request from the
    /// task doing it (io_uring issues it inline, in `io_uring_enter`); once
    /// the server has taken it, the kernel waits for the answer
    /// uninterruptibly (not even SIGKILL ends that wait), which is what an
    /// NFS hard mount or a hung FUSE server does to a reader.
    Direct,
    /// Through the page cache: a read of uncached data is handed to an
    /// io_uring worker, which waits for the server's answer.
    Cached,
}
const IN_HEADER: usize = 40;
const MAX_WRITE: u32 = 128 * 1024;

/// True when this process can mount a FUSE file system: `/dev/fuse` opens
/// and the process has CAP_SYS_ADMIN.
pub fn available() -> bool {
    let cap_sys_admin = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1 << 21) != 0);
    cap_sys_admin
        && OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/fuse")
            .is_ok()
}

/// A READ the server received (and holds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeldRead {
    /// File offset in bytes.
    pub offset: u64,
    /// Bytes asked for.
    pub size: u32,
}

/// A mounted FUSE file system whose one file never answers reads.
#[derive(Debug)]
pub struct BlockingFuse {
    mountpoint: PathBuf,
    stop: Arc<AtomicBool>,
    server: Option<JoinHandle<()>>,
    reads: Receiver<HeldRead>,
}

impl BlockingFuse {
    /// Mounts the file system on `mountpoint` (an empty directory) with a
    /// `size`-byte `disk.img` opened in `mode`.
    pub fn mount(mountpoint: &Path, size: u64, mode: Mode) -> std::io::Result<Self> {
        let dev = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/fuse")?;
        let target = CString::new(mountpoint.as_os_str().as_bytes()).unwrap();
        let options = CString::new(format!(
            "fd={},rootmode=40000,user_id=0,group_id=0,allow_other",
            dev.as_raw_fd()
        ))
        .unwrap();
        // SAFETY: mount(2) with NUL-terminated strings that outlive the call.
        let r = unsafe {
            libc::mount(
                c"vmdma-blocking".as_ptr(),
                target.as_ptr(),
                c"fuse".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                options.as_ptr().cast(),
            )
        };
        if r != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, reads) = mpsc::channel();
        let server = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("blocking-fuse".into())
                .spawn(move || serve(dev, size, mode, &stop, &tx))?
        };
        Ok(BlockingFuse {
            mountpoint: mountpoint.to_path_buf(),
            stop,
            server: Some(server),
            reads,
        })
    }

    /// The path of the file whose reads block.
    pub fn image(&self) -> PathBuf {
        self.mountpoint.join(IMAGE_NAME)
    }

    /// The next READ the server received, waiting at most `timeout`.
    pub fn next_read(&self, timeout: Duration) -> Option<HeldRead> {
        self.reads.recv_timeout(timeout).ok()
    }
}

impl Drop for BlockingFuse {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.server.take() {
            // The server closes /dev/fuse as it ends: the connection is
            // aborted and every held read fails.
            let _ = t.join();
        }
        let target = CString::new(self.mountpoint.as_os_str().as_bytes()).unwrap();
        // SAFETY: umount2(2) with a NUL-terminated path.
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Answers request `unique` with `error` (a negative errno or 0) and
/// `payload`.
fn reply(dev: &mut File, unique: u64, error: i32, payload: &[u8]) {
    let mut out = Vec::with_capacity(16 + payload.len());
    out.extend_from_slice(&(16 + payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&error.to_le_bytes());
    out.extend_from_slice(&unique.to_le_bytes());
    out.extend_from_slice(payload);
    // ENOENT: the request was interrupted meanwhile; nothing to do.
    let _ = dev.write_all(&out);
}

/// `struct fuse_attr` of node `id`.
fn attr(id: u64, size: u64) -> Vec<u8> {
    let (mode, nlink, size) = if id == ROOT_ID {
        (0o40755u32, 2u32, 0)
    } else {
        (0o100644, 1, size)
    };
    let mut a = Vec::with_capacity(88);
    for v in [id, size, size.div_ceil(512), 0, 0, 0] {
        a.extend_from_slice(&v.to_le_bytes());
    }
    for v in [0u32, 0, 0, mode, nlink, 0, 0, 0, 4096, 0] {
        a.extend_from_slice(&v.to_le_bytes());
    }
    a
}

/// Serves requests until `stop`; closes `dev` (aborting the connection)
/// when it returns.
fn serve(mut dev: File, size: u64, mode: Mode, stop: &AtomicBool, reads: &Sender<HeldRead>) {
    let mut buf = vec![0u8; MAX_WRITE as usize + 4096];
    while !stop.load(Ordering::SeqCst) {
        let mut pfd = libc::pollfd {
            fd: dev.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll(2) on one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, 50) };
        if n <= 0 {
            continue;
        }
        let len = match dev.read(&mut buf) {
            Ok(n) if n >= IN_HEADER => n,
            // ENOENT (an interrupted request vanished), EINTR: go on;
            // ENODEV: unmounted.
            Ok(_) => continue,
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => return,
            Err(_) => continue,
        };
        let req = &buf[..len];
        let opcode = u32_at(req, 4);
        let unique = u64_at(req, 8);
        let node = u64_at(req, 16);
        let body = &req[IN_HEADER..];
        match opcode {
            INIT => {
                let max_readahead = u32_at(body, 8);
                let mut out = Vec::with_capacity(64);
                for v in [7u32, 31, max_readahead, 0] {
                    out.extend_from_slice(&v.to_le_bytes());
                }
                out.extend_from_slice(&16u16.to_le_bytes()); // max_background
                out.extend_from_slice(&12u16.to_le_bytes()); // congestion_threshold
                out.extend_from_slice(&MAX_WRITE.to_le_bytes());
                out.extend_from_slice(&1u32.to_le_bytes()); // time_gran
                out.resize(64, 0);
                reply(&mut dev, unique, 0, &out);
            }
            LOOKUP => {
                let name = body.split(|&b| b == 0).next().unwrap_or(&[]);
                if node == ROOT_ID && name == IMAGE_NAME.as_bytes() {
                    let mut out = Vec::with_capacity(128);
                    for v in [IMAGE_ID, 0, 0, 0] {
                        out.extend_from_slice(&v.to_le_bytes());
                    }
                    out.extend_from_slice(&[0u8; 8]);
                    out.extend_from_slice(&attr(IMAGE_ID, size));
                    reply(&mut dev, unique, 0, &out);
                } else {
                    reply(&mut dev, unique, -libc::ENOENT, &[]);
                }
            }
            GETATTR => {
                let mut out = vec![0u8; 16];
                out.extend_from_slice(&attr(node, size));
                reply(&mut dev, unique, 0, &out);
            }
            OPEN => {
                let mut out = 1u64.to_le_bytes().to_vec();
                let flags = match mode {
                    Mode::Direct => FOPEN_DIRECT_IO,
                    Mode::Cached => 0,
                };
                out.extend_from_slice(&flags.to_le_bytes());
                out.extend_from_slice(&0u32.to_le_bytes());
                reply(&mut dev, unique, 0, &out);
            }
            READ => {
                // Held: never answered.
                let _ = reads.send(HeldRead {
                    offset: u64_at(body, 8),
                    size: u32_at(body, 16),
                });
            }
            WRITE => {
                let mut out = u32_at(body, 16).to_le_bytes().to_vec();
                out.extend_from_slice(&0u32.to_le_bytes());
                reply(&mut dev, unique, 0, &out);
            }
            FLUSH | RELEASE | FSYNC => reply(&mut dev, unique, 0, &[]),
            // No reply expected; an interrupted read stays held.
            FORGET | BATCH_FORGET | INTERRUPT => {}
            _ => reply(&mut dev, unique, -libc::ENOSYS, &[]),
        }
    }
}
