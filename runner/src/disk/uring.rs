//! A raw image file on io_uring: vectored reads and writes straight between
//! the file and guest memory, `fdatasync` for FLUSH, hole punching for TRIM,
//! completions signalled on an eventfd.
//!
//! `submit` queues the request and enters the kernel once. Data in the page
//! cache is then usually copied inline, so the completion is already there
//! when the device polls right after submitting (as fast as `preadv`);
//! anything else completes on a kernel worker while the vCPU runs on, and
//! the runner's I/O thread delivers it when the eventfd fires.
//!
//! # Task work and the vCPU
//! A request that runs on a kernel worker (io-wq: every buffered write on
//! ext4, which has no non-blocking buffered writes; reads of at least
//! [`ASYNC_THRESHOLD`]; flush and discard) leaves task work for the task
//! that entered the kernel for it, here the vCPU thread: the kernel frees
//! such a request with task work, and posts a direct-I/O completion with
//! it. Task work is announced to its task like a signal, and `KVM_RUN`
//! returns for it (`KVM_EXIT_INTR`, the `signal` exits). The ring is set
//! up with `IORING_SETUP_COOP_TASKRUN` (Linux 5.19; without it the ring is
//! created as before): the kernel then does not interrupt the running vCPU
//! with an IPI, and the work runs when the vCPU thread next returns to user
//! space, which it does for every status poll; it still wakes a sleeping
//! task for it (a halted vCPU, which may be waiting for exactly that
//! direct-I/O completion). What remains are the cases where the vCPU
//! thread meets the work inside `KVM_RUN`: halted (interrupt-driven
//! waits), or resuming after the host preempted it (on a loaded machine).
//! Entering the kernel for these requests from the I/O thread instead
//! removes every such exit, but costs a second thread wake-up before the
//! worker starts, which here cost more than the exits it saved (see
//! `docs/performance.md`).
//!
//! # Memory of requests in flight
//! The kernel reads the iovec arrays at submission and reads or writes the
//! guest buffers until the request's completion (CQE). The arrays are kept
//! with the request until its CQE anyway (cheap, and safe without
//! `IORING_FEAT_SUBMIT_STABLE`); the buffers are the request's views, which
//! the device keeps reserved until it has received the completion, and this
//! backend delivers a completion only after the request's last CQE. Short
//! transfers are resubmitted for the rest under the same token. Dropping
//! the backend waits for every request in flight (bounded); if the kernel
//! still holds one after that, the process aborts rather than let guest
//! memory be unmapped under a running request.
//!
//! # When entering the kernel fails
//! An SQE pushed to the submission ring is the kernel's from then on: if
//! `io_uring_enter` fails (EAGAIN or ENOMEM under memory pressure, EINTR),
//! the entry stays in the ring and the *next* enter, whoever makes it,
//! hands it to the kernel. So a pushed request is never forgotten. The
//! enter is retried a bounded number of times ([`ENTER_TRIES`]); if it
//! still fails, the request is *defused*: every length in its iovec array
//! is set to 0 (the kernel reads the array only when it takes the entry,
//! which has not happened yet), the array stays with the backend until the
//! entry's CQE, and the request's completion reports the error. The
//! device may then free its memory: whenever the kernel takes the entry it
//! transfers nothing. A defused discard still punches its hole when taken,
//! so the next request is ordered after it (`IOSQE_IO_DRAIN`) and cannot
//! have its data punched away; a defused flush is merely an extra flush.
//! Dropping the backend leaks the arrays of entries still defused rather
//! than wait for a kernel that may not be enterable.
#![allow(unsafe_code)]

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use io_uring::register::Restriction;
use io_uring::{IoUring, Probe, opcode, squeue, types};
use vmdma_core::block::{
    BlockDevice, BlockError, BlockRequest, Completion, Leased, Refused, RequestToken, SECTOR_SIZE,
    check_range, check_rw,
};
use vmm_sys_util::eventfd::{EFD_NONBLOCK, EventFd};

use super::direct::{AlignedBuf, DirectIo};

/// Ring entries: the IDE channel has one request in flight at a time; the
/// rest is margin for resubmissions and future devices.
const RING_ENTRIES: u32 = 64;
/// Reads and writes of at least this many bytes go to a kernel worker at
/// once (`IOSQE_ASYNC`) instead of being tried inline first: copying many
/// MiB from the page cache inside `io_uring_enter` would hold the vCPU in
/// the port access for milliseconds, which is what asynchronous I/O is
/// meant to avoid. Smaller requests are tried inline: a page-cache hit
/// completes inside the port access as fast as `preadv`; what the kernel
/// would have to wait for goes to a worker all the same where the file
/// system can say so (a page not in the cache on ext4 or xfs, every
/// buffered write on ext4), but not everywhere: a read of a FUSE image can
/// wait for the FUSE server inside `io_uring_enter`, so a server that does
/// not answer holds the vCPU (`tests/qmp.rs` shows both sides). 2 MiB
/// takes in every command a Linux guest issues with the block layer's
/// default `max_sectors_kb` (1280 KiB); such a copy holds the vCPU for
/// about 0.2 ms per MiB on the development machine (5–6 GB/s), the price
/// of not waking a worker and polling while it copies (1 MiB reads in
/// `vmdma bench`: `aio=sync` ÷ io_uring 0.78 → 0.93, `docs/performance.md`).
pub const ASYNC_THRESHOLD: usize = 2 << 20;
/// How long one `wait` (the BMDMA-stop / SRST drain on the vCPU thread)
/// blocks at most before the device defers instead.
pub const WAIT_BOUND: Duration = Duration::from_secs(2);
/// How long dropping the backend waits for requests still in flight.
const DROP_BOUND: Duration = Duration::from_secs(30);
/// How often one submission tries `io_uring_enter` before its request is
/// defused and failed (see the module docs); the pauses between tries
/// double from 50 µs, so a submission gives up after about 6 ms.
pub const ENTER_TRIES: u32 = 8;
/// The first pause between two tries of `io_uring_enter`.
const ENTER_BACKOFF: Duration = Duration::from_micros(50);

/// Why the io_uring backend cannot be used (the caller falls back to
/// `aio=sync`).
#[derive(Debug, thiserror::Error)]
pub enum UringError {
    /// The ring could not be created (old kernel, `io_uring_disabled`,
    /// seccomp, memlock limits).
    #[error("cannot create an io_uring: {0}")]
    Setup(io::Error),
    /// The kernel lacks an operation the backend needs.
    #[error("the kernel's io_uring lacks {0}")]
    Missing(&'static str),
    /// The completion eventfd could not be set up.
    #[error("cannot set up the completion eventfd: {0}")]
    EventFd(io::Error),
}

/// Counters of the backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UringStats {
    /// Requests submitted.
    pub requests: u64,
    /// Requests whose completion was already there right after submission.
    pub inline: u64,
    /// Resubmissions after short transfers or EAGAIN.
    pub resubmits: u64,
    /// Bytes copied through an aligned buffer (`cache=none` with unaligned
    /// guest buffers).
    pub bounced_bytes: u64,
    /// `io_uring_enter` calls that failed and were tried again.
    pub enter_retries: u64,
    /// Requests failed because the kernel could not be entered within
    /// [`ENTER_TRIES`] (defused, see the module docs).
    pub defused: u64,
    /// The ring runs task work cooperatively (`IORING_SETUP_COOP_TASKRUN`,
    /// see the module docs).
    pub coop_taskrun: bool,
}

#[derive(Debug)]
enum Kind {
    Read,
    Write,
    Flush,
    Discard,
}

/// A request in flight.
struct Op<'m> {
    kind: Kind,
    /// File offset of what is left.
    offset: u64,
    /// The request's token: kept until the last CQE, because the kernel
    /// holds raw pointers into its buffers until then.
    token: RequestToken,
    /// The request's buffers (for the aligned buffer's copy-back).
    leased: Vec<Leased<'m>>,
    /// What the kernel is asked to transfer (guest buffers, or the aligned
    /// buffer), advanced past what was done.
    iovecs: Vec<libc::iovec>,
    /// Index of the first iovec not fully done.
    first: usize,
    /// `cache=none` with unaligned guest buffers: the aligned copy.
    bounce: Option<AlignedBuf>,
    /// Discard length.
    len: u64,
}

// SAFETY: an Op holds raw iovec pointers into guest memory or its own
// aligned buffer; they are only dereferenced by the kernel while the op is
// in flight, and the backend (and with it the op) is only used under the
// chipset's lock.
unsafe impl Send for Op<'_> {}

/// What is left of a defused request until its CQE: the iovec array the
/// kernel may still read (all lengths 0) and what it pointed into.
struct Defused {
    _iovecs: Vec<libc::iovec>,
    _bounce: Option<AlignedBuf>,
}

// SAFETY: the raw pointers in the array are never dereferenced by this
// process, and the kernel reads only the (zero) lengths.
unsafe impl Send for Defused {}

/// A raw image on io_uring.
pub struct UringDisk<'m> {
    ring: IoUring,
    file: File,
    sectors: u64,
    read_only: bool,
    direct: Option<DirectIo>,
    eventfd: EventFd,
    ops: HashMap<u64, Op<'m>>,
    /// Defused requests whose SQE the kernel may still take: their iovec
    /// arrays (all lengths 0) stay here until their CQE.
    defused: HashMap<u64, Defused>,
    /// A defused discard may still run: order the next SQE after it.
    drain_next: bool,
    ready: VecDeque<Completion>,
    /// Entries the kernel still owes a CQE for (`ops` and `defused`),
    /// shared with the I/O thread so a wake-up for completions already
    /// taken needs no lock.
    pending: Arc<AtomicUsize>,
    stats: UringStats,
    /// Tests: the next this many enters fail with EAGAIN before the kernel
    /// is asked.
    #[cfg(test)]
    fail_enters: u32,
}

impl std::fmt::Debug for UringDisk<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UringDisk")
            .field("sectors", &self.sectors)
            .field("in_flight", &self.ops.len())
            .finish_non_exhaustive()
    }
}

impl<'m> UringDisk<'m> {
    /// The image file (snapshots read a few sectors of it to tell images
    /// apart).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// A backend on `file` (already checked and locked) of `sectors`
    /// sectors; `direct` when it was opened with `O_DIRECT`.
    /// On failure the file is handed back (for the synchronous engine).
    pub fn new(
        file: File,
        sectors: u64,
        read_only: bool,
        direct: Option<DirectIo>,
    ) -> Result<Self, (UringError, File)> {
        let (ring, eventfd, coop_taskrun) = match Self::ring() {
            Ok(r) => r,
            Err(e) => return Err((e, file)),
        };
        Ok(UringDisk {
            ring,
            file,
            sectors,
            read_only,
            direct,
            eventfd,
            ops: HashMap::new(),
            defused: HashMap::new(),
            drain_next: false,
            ready: VecDeque::new(),
            pending: Arc::new(AtomicUsize::new(0)),
            stats: UringStats {
                coop_taskrun,
                ..UringStats::default()
            },
            #[cfg(test)]
            fail_enters: 0,
        })
    }

    /// A ring that has every operation the backend needs, with a
    /// registered completion eventfd.
    fn ring() -> Result<(IoUring, EventFd, bool), UringError> {
        // Created disabled, so that the restrictions below are in place
        // before the first submission. Cooperative task work (see the module
        // docs) where the kernel has it (EINVAL before Linux 5.19).
        let build = |coop: bool| {
            let mut b = IoUring::builder();
            b.dontfork().setup_r_disabled();
            if coop {
                b.setup_coop_taskrun();
            }
            b.build(RING_ENTRIES)
        };
        let (ring, coop) = match build(true) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => (build(false), false),
            r => (r, true),
        };
        let ring = ring.map_err(UringError::Setup)?;
        let mut probe = Probe::new();
        ring.submitter()
            .register_probe(&mut probe)
            .map_err(UringError::Setup)?;
        for (code, name) in [
            (opcode::Readv::CODE, "READV"),
            (opcode::Writev::CODE, "WRITEV"),
            (opcode::Fsync::CODE, "FSYNC"),
            (opcode::Fallocate::CODE, "FALLOCATE"),
        ] {
            if !probe.is_supported(code) {
                return Err(UringError::Missing(name));
            }
        }
        // Signalled for every CQE. (`register_eventfd_async` would skip the
        // inline ones, but also completions posted outside io-wq, such as
        // direct I/O: those would then wait for the next port access.)
        let eventfd = EventFd::new(EFD_NONBLOCK).map_err(UringError::EventFd)?;
        ring.submitter()
            .register_eventfd(eventfd.as_raw_fd())
            .map_err(UringError::EventFd)?;
        // The ring can do what the backend needs and nothing else: these four
        // operations with these flags, and no later registration. (io_uring
        // operations are not system calls, so the seccomp filters cannot
        // see them; this is their allow-list.)
        let flags = (squeue::Flags::IO_DRAIN | squeue::Flags::ASYNC).bits();
        ring.submitter()
            .register_restrictions(&mut [
                Restriction::sqe_op(opcode::Readv::CODE),
                Restriction::sqe_op(opcode::Writev::CODE),
                Restriction::sqe_op(opcode::Fsync::CODE),
                Restriction::sqe_op(opcode::Fallocate::CODE),
                Restriction::sqe_flags_allowed(flags),
            ])
            .map_err(UringError::Setup)?;
        ring.submitter()
            .register_enable_rings()
            .map_err(UringError::Setup)?;
        Ok((ring, eventfd, coop))
    }

    /// The eventfd the kernel signals when completions arrive (a hint:
    /// spurious wake-ups happen; `poll` tells).
    pub fn completion_fd(&self) -> RawFd {
        self.eventfd.as_raw_fd()
    }

    /// A second handle on the completion eventfd (for the I/O thread).
    pub fn completion_eventfd(&self) -> io::Result<EventFd> {
        self.eventfd.try_clone()
    }

    /// How many requests the kernel still has (updated as they are
    /// submitted and reaped): zero means a completion signal was already
    /// taken care of.
    pub fn pending(&self) -> Arc<AtomicUsize> {
        self.pending.clone()
    }

    /// The counters.
    pub fn stats(&self) -> UringStats {
        self.stats
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.ops.len()
    }

    /// Defused requests whose entry the kernel has not answered yet.
    pub fn defused_in_ring(&self) -> usize {
        self.defused.len()
    }

    fn update_pending(&self) {
        self.pending
            .store(self.ops.len() + self.defused.len(), Ordering::Release);
    }

    /// One `io_uring_enter` that submits what is queued.
    fn enter_once(&mut self) -> io::Result<()> {
        #[cfg(test)]
        if self.fail_enters > 0 {
            self.fail_enters -= 1;
            return Err(io::Error::from_raw_os_error(libc::EAGAIN));
        }
        self.ring.submit()?;
        if self.ring.submission().is_empty() {
            Ok(())
        } else {
            // The kernel took only part of the queue (it stopped at an
            // entry it could not allocate a request for).
            Err(io::Error::from_raw_os_error(libc::EAGAIN))
        }
    }

    /// Hands the queued SQEs to the kernel, trying up to [`ENTER_TRIES`]
    /// times while the failure is one that passes (EAGAIN, ENOMEM, EINTR,
    /// EBUSY). On `Err` the entries are still in the ring.
    fn enter(&mut self) -> io::Result<()> {
        let mut pause = ENTER_BACKOFF;
        let mut tries = 0;
        loop {
            let err = match self.enter_once() {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            tries += 1;
            let passing = matches!(
                err.raw_os_error(),
                Some(libc::EAGAIN | libc::ENOMEM | libc::EINTR | libc::EBUSY)
            );
            if !passing || tries >= ENTER_TRIES {
                return Err(err);
            }
            self.stats.enter_retries += 1;
            std::thread::sleep(pause);
            pause = pause.saturating_mul(2);
        }
    }

    /// Fails op `key` whose SQE is in the ring but could not be handed to
    /// the kernel: defuses it (see the module docs) and queues its error
    /// completion. The entry stays tracked until its CQE.
    fn defuse(&mut self, key: u64, err: &io::Error) {
        let Some(mut op) = self.ops.remove(&key) else {
            return;
        };
        // Before the kernel can read the array: it has not taken the entry.
        for v in &mut op.iovecs {
            v.iov_len = 0;
        }
        if matches!(op.kind, Kind::Discard) {
            self.drain_next = true;
        }
        self.stats.defused += 1;
        self.ready.push_back(Completion::new(
            op.token,
            Err(BlockError::Io(err.raw_os_error().unwrap_or(libc::EIO))),
        ));
        self.defused.insert(
            key,
            Defused {
                _iovecs: op.iovecs,
                _bounce: op.bounce,
            },
        );
        self.update_pending();
    }

    fn fd(&self) -> types::Fd {
        types::Fd(self.file.as_raw_fd())
    }

    /// Queues the SQE for what is left of op `key`.
    fn push(&mut self, key: u64) -> io::Result<()> {
        let fd = self.fd();
        let Some(op) = self.ops.get(&key) else {
            return Ok(());
        };
        let rest = op.iovecs.get(op.first..).unwrap_or_default();
        let cnt = u32::try_from(rest.len()).unwrap_or(u32::MAX);
        let punt = if left(op) >= ASYNC_THRESHOLD {
            squeue::Flags::ASYNC
        } else {
            squeue::Flags::empty()
        };
        let entry = match op.kind {
            Kind::Read => opcode::Readv::new(fd, rest.as_ptr(), cnt)
                .offset(op.offset)
                .build()
                .flags(punt),
            Kind::Write => opcode::Writev::new(fd, rest.as_ptr(), cnt)
                .offset(op.offset)
                .build()
                .flags(punt),
            // Drained: a flush orders after every write queued before it.
            Kind::Flush => opcode::Fsync::new(fd)
                .flags(types::FsyncFlags::DATASYNC)
                .build()
                .flags(squeue::Flags::IO_DRAIN),
            Kind::Discard => opcode::Fallocate::new(fd, op.len)
                .offset(op.offset)
                .mode(libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE)
                .build(),
        }
        .user_data(key);
        let entry = if self.drain_next {
            entry.flags(squeue::Flags::IO_DRAIN)
        } else {
            entry
        };
        // SAFETY: the SQE points at `op.iovecs` (a heap array kept in the
        // op until its last CQE) and, through it, at the request's buffers
        // (pointers taken from views opened with the request's token) or
        // the op's own aligned buffer. The op keeps the token until its
        // last CQE, so the device cannot have the token back, and with it
        // the memory, before the kernel is done; dropping the backend waits
        // for every op (or aborts). A request whose entry cannot be handed
        // to the kernel gives its token back only after its lengths are
        // zeroed (`defuse`). Flush and discard pass no memory.
        // If the enter that follows fails, the op is defused, not freed.
        let pushed = unsafe { self.ring.submission().push(&entry) };
        if pushed.is_err() {
            // The queue is full: hand what is queued to the kernel, retry.
            // On failure nothing of this op is in the ring.
            self.enter()?;
            // SAFETY: as above.
            unsafe { self.ring.submission().push(&entry) }
                .map_err(|_| io::Error::from_raw_os_error(libc::EBUSY))?;
        }
        self.drain_next = false;
        Ok(())
    }

    /// Pushes op `key` and hands it to the kernel. When the push fails
    /// nothing is in the ring: the op is left for the caller to end with
    /// the error. When the enter fails the op is defused and its completion
    /// carries the error; the caller sees `Ok`.
    fn push_and_enter(&mut self, key: u64) -> io::Result<()> {
        self.push(key)?;
        if let Err(e) = self.enter() {
            self.defuse(key, &e);
        }
        Ok(())
    }

    /// Moves every CQE into `ready` (resubmitting short transfers); returns
    /// how many requests finished.
    fn reap(&mut self) -> usize {
        let cqes: Vec<(u64, i32)> = self
            .ring
            .completion()
            .map(|c| (c.user_data(), c.result()))
            .collect();
        let mut finished = 0;
        let mut resubmit = Vec::new();
        for (key, res) in cqes {
            // A defused entry's CQE: the kernel is done with its array.
            if self.defused.remove(&key).is_some() {
                continue;
            }
            let Some(op) = self.ops.get_mut(&key) else {
                continue;
            };
            let result = match (&op.kind, res) {
                (_, r) if r == -libc::EINTR || r == -libc::EAGAIN => {
                    resubmit.push(key);
                    continue;
                }
                (Kind::Discard, r) if r == -libc::EOPNOTSUPP => Err(BlockError::Unsupported),
                (_, r) if r < 0 => Err(BlockError::Io(-r)),
                (Kind::Read | Kind::Write, 0) if left(op) > 0 => {
                    // End of file before the request's end: the image shrank.
                    Err(BlockError::Io(libc::EIO))
                }
                (Kind::Read | Kind::Write, n) => {
                    let n = usize::try_from(n).unwrap_or(0);
                    advance(op, n);
                    if left(op) > 0 {
                        resubmit.push(key);
                        continue;
                    }
                    Ok(())
                }
                _ => Ok(()),
            };
            if let Some(op) = self.ops.remove(&key) {
                if let (Kind::Read, Some(b), Ok(())) = (&op.kind, &op.bounce, &result) {
                    let views: Vec<_> =
                        op.leased.iter().filter_map(|l| l.view(&op.token)).collect();
                    b.scatter(&views);
                }
                self.ready.push_back(Completion::new(op.token, result));
                finished += 1;
            }
        }
        self.update_pending();
        for key in resubmit {
            self.stats.resubmits += 1;
            let before = self.ready.len();
            if let Err(e) = self.push_and_enter(key) {
                // Not in the ring: the op is over.
                if let Some(op) = self.ops.remove(&key) {
                    self.ready.push_back(Completion::new(
                        op.token,
                        Err(BlockError::Io(e.raw_os_error().unwrap_or(libc::EIO))),
                    ));
                }
                self.update_pending();
            }
            // Ended here, or defused (its completion is queued).
            finished += self.ready.len() - before;
        }
        finished
    }

    /// Waits for the kernel until `deadline` for at least one CQE.
    fn wait_until(&mut self, deadline: Instant) -> bool {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let ts = types::Timespec::from(left);
        let args = types::SubmitArgs::new().timespec(&ts);
        match self.ring.submitter().submit_with_args(1, &args) {
            Ok(_) => true,
            Err(e) if e.raw_os_error() == Some(libc::ETIME) => false,
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => true,
            Err(_) => false,
        }
    }

    /// Starts `op`. `Err` (with the token) only when nothing reached the
    /// ring; a request the kernel could not be given is defused and
    /// completes with the error (see the module docs).
    fn start(&mut self, op: Op<'m>) -> Result<(), Refused> {
        if self.ops.len() + self.defused.len() >= RING_ENTRIES as usize {
            return Err(Refused::new(op.token, BlockError::QueueFull));
        }
        let key = op.token.id().get();
        self.ops.insert(key, op);
        self.update_pending();
        self.stats.requests += 1;
        let Err(e) = self.push_and_enter(key) else {
            return Ok(());
        };
        let op = self.ops.remove(&key);
        self.update_pending();
        let error = BlockError::Io(e.raw_os_error().unwrap_or(libc::EIO));
        match op {
            Some(op) => Err(Refused::new(op.token, error)),
            // Unreachable: the op was inserted above and only a failed
            // enter (which returns Ok) removes it.
            None => Ok(()),
        }
    }

    fn rw(
        &mut self,
        token: RequestToken,
        read: bool,
        sector: u64,
        iov: &[Leased<'m>],
    ) -> Result<(), Refused> {
        let (offset, bytes) = match check_rw(self.sectors, sector, iov) {
            Ok(r) => r,
            Err(e) => return Err(Refused::new(token, e)),
        };
        let views = match super::raw::views(iov, &token) {
            Ok(v) => v,
            Err(e) => return Err(Refused::new(token, e)),
        };
        let mut bounce = None;
        let iovecs = match self.direct {
            Some(d) if !d.aligned(&views) => {
                let Ok(len) = usize::try_from(bytes) else {
                    return Err(Refused::new(token, BlockError::OutOfRange));
                };
                let mut b = AlignedBuf::new(len, d.mem_align);
                if !read {
                    b.gather(&views);
                }
                self.stats.bounced_bytes += bytes;
                let v = b.view();
                let iovecs = vec![libc::iovec {
                    iov_base: v.as_ptr().cast(),
                    iov_len: v.len(),
                }];
                bounce = Some(b);
                iovecs
            }
            // Raw pointers out of the views: the op keeps the token until
            // the kernel is done with them (see `push`).
            _ => views
                .iter()
                .map(|s| libc::iovec {
                    iov_base: s.as_ptr().cast(),
                    iov_len: s.len(),
                })
                .collect(),
        };
        drop(views);
        self.start(Op {
            token,
            kind: if read { Kind::Read } else { Kind::Write },
            offset,
            leased: iov.to_vec(),
            iovecs,
            first: 0,
            bounce,
            len: 0,
        })
    }

    /// [`BlockDevice::submit`] with the completion eventfd's notifications
    /// off (see there).
    fn submit_quietly(
        &mut self,
        token: RequestToken,
        req: BlockRequest<'_, 'm>,
    ) -> Result<(), Refused> {
        let id = token.id();
        match req {
            BlockRequest::Read { sector, iov } => self.rw(token, true, sector, iov)?,
            BlockRequest::Write { sector, iov } => {
                if self.read_only {
                    return Err(Refused::new(token, BlockError::ReadOnly));
                }
                self.rw(token, false, sector, iov)?
            }
            BlockRequest::Flush => {
                if self.read_only {
                    // Nothing of ours to make durable.
                    self.ready.push_back(Completion::new(token, Ok(())));
                    return Ok(());
                }
                self.start(Op {
                    token,
                    kind: Kind::Flush,
                    offset: 0,
                    leased: Vec::new(),
                    iovecs: Vec::new(),
                    first: 0,
                    bounce: None,
                    len: 0,
                })?
            }
            BlockRequest::Discard { sector, count } => {
                if self.read_only {
                    return Err(Refused::new(token, BlockError::ReadOnly));
                }
                if let Err(e) = check_range(self.sectors, sector, count) {
                    return Err(Refused::new(token, e));
                }
                if count == 0 {
                    self.ready.push_back(Completion::new(token, Ok(())));
                    return Ok(());
                }
                let sz = SECTOR_SIZE as u64;
                // check_range bounds both by the sector count (from a u64
                // byte size), so these cannot overflow.
                self.start(Op {
                    token,
                    kind: Kind::Discard,
                    offset: sector * sz,
                    leased: Vec::new(),
                    iovecs: Vec::new(),
                    first: 0,
                    bounce: None,
                    len: count * sz,
                })?
            }
        }
        // Inline completions (page-cache hits) are already in the CQ; with
        // notifications off they signalled nothing (`submit`).
        if self.reap() > 0 && self.ready.iter().any(|c| c.id() == id) {
            self.stats.inline += 1;
        }
        Ok(())
    }
}

/// Bytes op `op` still has to transfer.
fn left(op: &Op<'_>) -> usize {
    op.iovecs
        .get(op.first..)
        .unwrap_or_default()
        .iter()
        .map(|v| v.iov_len)
        .sum()
}

/// Marks `n` more bytes of `op` done.
fn advance(op: &mut Op<'_>, mut n: usize) {
    op.offset = op.offset.saturating_add(n as u64);
    while n > 0 {
        let Some(v) = op.iovecs.get_mut(op.first) else {
            return;
        };
        if n >= v.iov_len {
            n -= v.iov_len;
            v.iov_len = 0;
            op.first += 1;
        } else {
            v.iov_base = v.iov_base.cast::<u8>().wrapping_add(n).cast();
            v.iov_len -= n;
            n = 0;
        }
    }
}

impl<'m> BlockDevice<'m> for UringDisk<'m> {
    fn sector_count(&self) -> u64 {
        self.sectors
    }

    fn is_read_only(&self) -> bool {
        self.read_only
    }

    fn submit(&mut self, token: RequestToken, req: BlockRequest<'_, 'm>) -> Result<(), Refused> {
        let id = token.id();
        // A page-cache hit completes inside this thread's `io_uring_enter`
        // and is taken right here: the eventfd would only wake the I/O
        // thread for nothing (an inter-processor wake-up per command, the
        // cost that separated this engine from `aio=sync` on small cached
        // reads). So notifications are off while this request is
        // submitted; whatever completed meanwhile is reaped once they are
        // back on and, if it is another request's, handed to the I/O
        // thread by signalling the eventfd here.
        self.ring.completion().disable_eventfd();
        let submitted = self.submit_quietly(token, req);
        self.ring.completion().enable_eventfd();
        self.reap();
        if self.ready.iter().any(|c| c.id() != id) {
            let _ = self.eventfd.write(1);
        }
        submitted
    }
    fn poll(&mut self) -> Option<Completion> {
        if let Some(c) = self.ready.pop_front() {
            return Some(c);
        }
        // Clear the eventfd before reaping: a CQE that lands after the reap
        // signals it again, so the I/O thread cannot miss it.
        let _ = self.eventfd.read();
        self.reap();
        self.ready.pop_front()
    }

    /// Waits at most [`WAIT_BOUND`] for a request to finish.
    fn wait(&mut self) -> Option<Completion> {
        let deadline = Instant::now() + WAIT_BOUND;
        loop {
            if let Some(c) = self.poll() {
                return Some(c);
            }
            if self.ops.is_empty() || !self.wait_until(deadline) {
                return None;
            }
        }
    }
}

impl Drop for UringDisk<'_> {
    fn drop(&mut self) {
        let deadline = Instant::now() + DROP_BOUND;
        while !self.ops.is_empty() || !self.defused.is_empty() {
            self.reap();
            if self.ops.is_empty() {
                // Only defused entries are left (or none): they reach no
                // guest memory, but the kernel may still read their arrays.
                // Leak those rather than free them under it, and do not
                // wait for a kernel that may not be enterable.
                std::mem::forget(std::mem::take(&mut self.defused));
                break;
            }
            if self.wait_until(deadline) {
                continue;
            }
            if Instant::now() < deadline {
                // The kernel could not be entered: try again shortly.
                std::thread::sleep(ENTER_BACKOFF * 20);
            } else {
                // The kernel still holds guest buffers; unmapping them under
                // a running request would let it write freed memory.
                eprintln!(
                    "vmdma: fatal: {} disk request(s) still in flight after {}s; aborting",
                    self.ops.len(),
                    DROP_BOUND.as_secs()
                );
                std::process::abort();
            }
        }
    }
}

#[cfg(test)]
mod tests;
