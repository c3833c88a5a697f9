use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;

use super::*;
use crate::disk::direct::AlignedBuf;
use crate::disk::raw::check_and_lock;
use vmdma_core::block::RequestId;
use vmdma_core::block::lease::testing::{discard, done, flush, read, write};
use vmdma_core::memory::VolatileSlice;

fn image(sectors: usize) -> (tempfile::NamedTempFile, File, u64) {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    let data: Vec<u8> = (0..sectors * 512).map(|i| (i / 512) as u8).collect();
    f.write_all(&data).unwrap();
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(f.path())
        .unwrap();
    let n = check_and_lock(&file, false).unwrap();
    (f, file, n)
}

fn contents(f: &tempfile::NamedTempFile) -> Vec<u8> {
    let mut v = Vec::new();
    let mut h = File::open(f.path()).unwrap();
    h.seek(SeekFrom::Start(0)).unwrap();
    h.read_to_end(&mut v).unwrap();
    v
}

/// Waits (bounded) for the completion of `token`.
fn finish(d: &mut UringDisk<'_>, token: RequestId) -> Result<(), BlockError> {
    for _ in 0..100 {
        if let Some(c) = d.wait() {
            assert_eq!(c.id(), token);
            return c.result;
        }
    }
    panic!("no completion for {token:?}");
}

#[test]
fn vectored_read_and_write_straight_into_memory() {
    let (f, file, n) = image(8);
    let mut a = vec![0u8; 100];
    let mut b = vec![0u8; 924];
    let mut c = vec![0u8; 512];
    let mut d = UringDisk::new(file, n, false, None)
        .map_err(|e| e.0)
        .unwrap();
    assert_eq!(d.sector_count(), 8);
    let iov = [
        VolatileSlice::from_mut_slice(&mut a),
        VolatileSlice::from_mut_slice(&mut b),
        VolatileSlice::from_mut_slice(&mut c),
    ];
    let t = read(&mut d, 1, &iov).unwrap();
    finish(&mut d, t).unwrap();
    let w = write(&mut d, 5, &iov).unwrap();
    finish(&mut d, w).unwrap();
    let fl = flush(&mut d).unwrap();
    finish(&mut d, fl).unwrap();
    assert_eq!(d.in_flight(), 0);
    drop(d);
    assert!(a.iter().all(|&x| x == 1));
    assert!(b[..412].iter().all(|&x| x == 1));
    assert!(b[412..].iter().all(|&x| x == 2));
    assert!(c.iter().all(|&x| x == 3));
    let v = contents(&f);
    assert!(v[5 * 512..6 * 512].iter().all(|&x| x == 1));
    assert!(v[7 * 512..8 * 512].iter().all(|&x| x == 3));
}

#[test]
fn discard_reads_back_zero_and_checks_are_typed() {
    let (f, file, n) = image(4);
    let mut buf = vec![0u8; 512];
    let mut d = UringDisk::new(file, n, false, None)
        .map_err(|e| e.0)
        .unwrap();
    let iov = [VolatileSlice::from_mut_slice(&mut buf)];
    assert_eq!(read(&mut d, 4, &iov), Err(BlockError::OutOfRange));
    assert_eq!(discard(&mut d, 3, 2), Err(BlockError::OutOfRange));
    let t = discard(&mut d, 1, 2).unwrap();
    match finish(&mut d, t) {
        Ok(()) => {
            let v = contents(&f);
            assert!(v[512..1536].iter().all(|&x| x == 0));
            assert!(v[1536..].iter().all(|&x| x == 3));
        }
        Err(e) => assert_eq!(e, BlockError::Unsupported),
    }
    let t = discard(&mut d, 0, 0).unwrap();
    finish(&mut d, t).unwrap();
}

#[test]
fn read_only_refuses_writes_and_discards() {
    let (f, file, _) = image(2);
    drop(file);
    let ro = File::open(f.path()).unwrap();
    let n = check_and_lock(&ro, true).unwrap();
    let mut buf = vec![0u8; 512];
    let mut d = UringDisk::new(ro, n, true, None).map_err(|e| e.0).unwrap();
    let iov = [VolatileSlice::from_mut_slice(&mut buf)];
    assert_eq!(write(&mut d, 0, &iov), Err(BlockError::ReadOnly));
    assert_eq!(discard(&mut d, 0, 1), Err(BlockError::ReadOnly));
    let t = flush(&mut d).unwrap();
    finish(&mut d, t).unwrap();
    assert!(d.is_read_only());
}

/// The image shrinks under the runner: the read past the new end fails
/// with EIO instead of returning garbage or hanging.
#[test]
fn a_file_truncated_under_a_read_gives_eio() {
    let (f, file, n) = image(8);
    let mut buf = vec![0xEEu8; 2048];
    let mut d = UringDisk::new(file, n, false, None)
        .map_err(|e| e.0)
        .unwrap();
    OpenOptions::new()
        .write(true)
        .open(f.path())
        .unwrap()
        .set_len(6 * 512)
        .unwrap();
    let iov = [VolatileSlice::from_mut_slice(&mut buf)];
    let t = read(&mut d, 4, &iov).unwrap();
    assert_eq!(finish(&mut d, t), Err(BlockError::Io(libc::EIO)));
    drop(d);
    assert!(
        buf[..1024].iter().all(|&x| x == 4 || x == 5),
        "the part that exists"
    );
}

/// The completion eventfd fires for a request that completes later, and
/// `pending` counts the requests the kernel still has.
#[test]
fn eventfd_and_pending_follow_the_kernel() {
    let (_f, file, n) = image(ASYNC_THRESHOLD / 512);
    let mut big = vec![0u8; ASYNC_THRESHOLD];
    let mut d = UringDisk::new(file, n, false, None)
        .map_err(|e| e.0)
        .unwrap();
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut v = release.split(|c: char| !c.is_ascii_digit());
    let (major, minor): (u32, u32) = (
        v.next().unwrap().parse().unwrap(),
        v.next().unwrap().parse().unwrap(),
    );
    assert_eq!(
        d.stats().coop_taskrun,
        (major, minor) >= (5, 19),
        "IORING_SETUP_COOP_TASKRUN exactly from Linux 5.19 on ({release})"
    );
    let efd = d.completion_eventfd().unwrap();
    let pending = d.pending();
    let iov = [VolatileSlice::from_mut_slice(&mut big)];
    // Large enough to go to a kernel worker (ASYNC_THRESHOLD).
    let t = read(&mut d, 0, &iov).unwrap();
    let mut fds = [libc::pollfd {
        fd: efd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    }];
    // Either it already finished, or the eventfd becomes readable.
    if d.ready.is_empty() {
        assert_eq!(pending.load(Ordering::Acquire), 1);
        // SAFETY: polls one valid pollfd for at most 10 s.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 1, 10_000) };
        assert_eq!(r, 1, "the completion eventfd fired");
    }
    let c = d.poll().unwrap();
    assert_eq!((c.id(), c.result), (t, Ok(())));
    assert_eq!(pending.load(Ordering::Acquire), 0);
    assert_eq!(
        done(d.wait()),
        None,
        "nothing in flight: wait returns at once"
    );
}

/// With `O_DIRECT`, unaligned guest buffers go through an aligned buffer;
/// aligned ones straight to the disk. Ignored where the temporary
/// directory has no direct I/O (`vmdma_odirect`, probed by `build.rs`).
#[test]
#[cfg_attr(
    not(vmdma_odirect),
    ignore = "needs O_DIRECT in the temporary directory (probed at build time)"
)]
fn direct_io_bounces_only_unaligned_buffers() {
    let (f, file, _) = image(8);
    drop(file);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(f.path())
        .expect("O_DIRECT in the temporary directory (the build found it, or CI=true)");
    let direct = DirectIo::probe(&file).expect("usable direct I/O (the build found it)");
    let n = check_and_lock(&file, false).unwrap();
    let mut aligned = AlignedBuf::new(1024, 4096);
    let mut odd = vec![0u8; 512 + 3];
    let mut d = UringDisk::new(file, n, false, Some(direct))
        .map_err(|e| e.0)
        .unwrap();
    let iov = [aligned.view()];
    let t = read(&mut d, 2, &iov).unwrap();
    finish(&mut d, t).unwrap();
    assert_eq!(d.stats().bounced_bytes, 0);
    let iov = [VolatileSlice::from_mut_slice(&mut odd[3..])];
    let t = read(&mut d, 6, &iov).unwrap();
    finish(&mut d, t).unwrap();
    assert_eq!(d.stats().bounced_bytes, 512);
    iov[0].fill(0, 512, 0x5A);
    let t = write(&mut d, 7, &iov).unwrap();
    finish(&mut d, t).unwrap();
    drop(d);
    let mut got = [0u8; 1];
    aligned.view().copy_to(0, &mut got);
    assert_eq!(got[0], 2);
    assert!(odd[3..].iter().all(|&x| x == 0x5A));
    assert!(contents(&f)[7 * 512..].iter().all(|&x| x == 0x5A));
}

/// Dropping the backend with a request in flight waits for it: the buffer
/// is complete afterwards (the kernel is done with it).
#[test]
fn drop_waits_for_requests_in_flight() {
    let (_f, file, n) = image(ASYNC_THRESHOLD / 512);
    let mut big = vec![0u8; ASYNC_THRESHOLD];
    {
        let mut d = UringDisk::new(file, n, false, None)
            .map_err(|e| e.0)
            .unwrap();
        let iov = [VolatileSlice::from_mut_slice(&mut big)];
        read(&mut d, 0, &iov).unwrap();
    }
    assert_eq!(
        big[ASYNC_THRESHOLD - 1],
        ((ASYNC_THRESHOLD / 512 - 1) % 256) as u8
    );
}

/// The ring refuses what the backend never submits: an OPENAT (which a
/// compromised thread could use to reach files no seccomp filter sees)
/// completes with EACCES, and no new registration is accepted.
#[test]
fn the_ring_is_restricted_to_the_backends_operations() {
    let (_f, file, n) = image(8);
    let mut d = UringDisk::new(file, n, false, None)
        .map_err(|e| e.0)
        .unwrap();
    let path = c"/etc/hostname";
    let sqe = opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), path.as_ptr())
        .build()
        .user_data(u64::MAX);
    // SAFETY: the SQE points at a 'static C string; nothing else.
    unsafe { d.ring.submission().push(&sqe).unwrap() };
    d.ring.submit_and_wait(1).unwrap();
    let cqe = d.ring.completion().next().expect("a completion");
    assert_eq!(cqe.user_data(), u64::MAX);
    assert_eq!(cqe.result(), -libc::EACCES);
    let mut probe = Probe::new();
    let err = d.ring.submitter().register_probe(&mut probe).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EACCES));
}

/// `io_uring_enter` fails a few times (as under memory pressure): the
/// backend tries again, the data lands in the request's buffer, and the
/// completion comes once.
#[test]
fn a_failed_enter_is_tried_again_and_the_data_lands() {
    let (_f, file, n) = image(8);
    let mut buf = vec![0u8; 1024];
    let mut d = UringDisk::new(file, n, false, None)
        .map_err(|e| e.0)
        .unwrap();
    d.fail_enters = ENTER_TRIES - 1;
    let iov = [VolatileSlice::from_mut_slice(&mut buf)];
    let t = read(&mut d, 3, &iov).unwrap();
    assert_eq!(finish(&mut d, t), Ok(()));
    assert_eq!(done(d.poll()), None, "one completion");
    assert_eq!(d.stats().enter_retries, u64::from(ENTER_TRIES - 1));
    assert_eq!(d.stats().defused, 0);
    drop(d);
    assert!(buf[..512].iter().all(|&x| x == 3));
    assert!(buf[512..].iter().all(|&x| x == 4));
}

/// Seccomp makes every `io_uring_enter` of one thread fail with EAGAIN, as
/// the kernel does when it cannot allocate a request: a read and a write
/// submitted there are defused and fail, once each. Their memory is then
/// handed to "another client" (filled with a sentinel), and another thread
/// enters the ring: the kernel takes the defused entries and transfers
/// nothing, so neither that memory nor the disk changes.
#[test]
fn an_enter_that_keeps_failing_defuses_the_request() {
    use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};

    let (f, file, n) = image(8);
    let mut rbuf = vec![0u8; 1024];
    let mut wbuf = vec![0x77u8; 512];
    let mut other = vec![0u8; 512];
    let before = contents(&f);
    let mut d = UringDisk::new(file, n, false, None)
        .map_err(|e| e.0)
        .unwrap();
    let riov = [VolatileSlice::from_mut_slice(&mut rbuf)];
    let wiov = [VolatileSlice::from_mut_slice(&mut wbuf)];
    let filter = SeccompFilter::new(
        [(libc::SYS_io_uring_enter, vec![])].into_iter().collect(),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EAGAIN as u32),
        TargetArch::x86_64,
    )
    .unwrap();
    let prog = BpfProgram::try_from(filter).unwrap();
    let d = std::thread::scope(|s| {
        s.spawn(|| {
            seccompiler::apply_filter(&prog).unwrap();
            let r = read(&mut d, 1, &riov).unwrap();
            let w = write(&mut d, 5, &wiov).unwrap();
            let eagain = Err(BlockError::Io(libc::EAGAIN));
            assert_eq!(d.poll().map(|c| (c.id(), c.result)), Some((r, eagain)));
            assert_eq!(d.poll().map(|c| (c.id(), c.result)), Some((w, eagain)));
            assert_eq!(done(d.poll()), None, "one completion each");
            assert_eq!(d.in_flight(), 0);
            assert_eq!(d.defused_in_ring(), 2, "the entries are still in the ring");
            assert_eq!(d.stats().defused, 2);
            d
        })
        .join()
        .unwrap()
    });
    let mut d = d;
    // The device freed the memory; someone else owns it now.
    riov[0].fill(0, 1024, 0xA5);
    wiov[0].fill(0, 512, 0xA5);
    // An enter from a thread without the filter hands the defused entries
    // to the kernel, before this request.
    let oiov = [VolatileSlice::from_mut_slice(&mut other)];
    let t = read(&mut d, 2, &oiov).unwrap();
    assert_eq!(finish(&mut d, t), Ok(()));
    for _ in 0..1000 {
        if d.defused_in_ring() == 0 {
            break;
        }
        d.wait_until(Instant::now() + Duration::from_millis(10));
        d.reap();
    }
    assert_eq!(d.defused_in_ring(), 0, "the kernel answered the entries");
    assert_eq!(done(d.poll()), None, "no second completion");
    drop(d);
    assert!(other.iter().all(|&x| x == 2), "the new request's data");
    assert!(
        rbuf.iter().all(|&x| x == 0xA5),
        "nothing read into freed memory"
    );
    assert!(wbuf.iter().all(|&x| x == 0xA5));
    assert_eq!(contents(&f), before, "nothing written to the disk");
}

/// A small read the kernel cannot finish (a pipe with nothing in it: the
/// kernel holds the request until data comes) leaves `submit` in flight;
/// the eventfd then announces its completion like any other, and the data
/// lands in the request's buffer.
#[test]
fn a_small_request_the_kernel_holds_leaves_submit_in_flight() {
    let (rx, mut tx) = std::io::pipe().unwrap();
    let file = File::from(std::os::fd::OwnedFd::from(rx));
    let mut buf = vec![0u8; 512];
    let mut d = UringDisk::new(file, 8, true, None)
        .map_err(|e| e.0)
        .unwrap();
    let efd = d.completion_eventfd().unwrap();
    let iov = [VolatileSlice::from_mut_slice(&mut buf)];
    let t = read(&mut d, 0, &iov).unwrap();
    assert!(d.ready.is_empty(), "nothing to read yet");
    assert_eq!(d.in_flight(), 1);
    assert_eq!(d.stats().inline, 0);
    tx.write_all(&[0x5A; 512]).unwrap();
    let mut fds = [libc::pollfd {
        fd: efd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    }];
    // SAFETY: polls one valid pollfd for at most 10 s.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), 1, 10_000) };
    assert_eq!(r, 1, "the completion eventfd fired");
    let c = d.poll().unwrap();
    assert_eq!((c.id(), c.result), (t, Ok(())));
    drop(d);
    assert!(buf.iter().all(|&b| b == 0x5A));
}

/// A small buffered write on ext4 runs on a kernel worker; whether it
/// completed by the time `submit` returned or later, every completion is
/// delivered exactly once, with the data in the file.
#[test]
fn small_writes_on_a_worker_complete_once_with_their_data() {
    let (f, file, n) = image(64);
    let mut bufs: Vec<Vec<u8>> = (0..64u8).map(|i| vec![i ^ 0xA5; 512]).collect();
    let mut d = UringDisk::new(file, n, false, None)
        .map_err(|e| e.0)
        .unwrap();
    for (i, b) in bufs.iter_mut().enumerate() {
        let iov = [VolatileSlice::from_mut_slice(b)];
        let t = write(&mut d, i as u64, &iov).unwrap();
        finish(&mut d, t).unwrap();
    }
    assert_eq!(d.stats().requests, 64);
    drop(d);
    let data = contents(&f);
    for i in 0..64usize {
        assert!(
            data[i * 512..(i + 1) * 512]
                .iter()
                .all(|&b| b == (i as u8) ^ 0xA5)
        );
    }
}
