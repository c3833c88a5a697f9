//! The allow-lists: which system calls each sandboxed thread may make, and
//! with which arguments. Every entry says who needs it.

use std::collections::BTreeMap;

use super::Role;
use seccompiler::{BackendError, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompRule};

/// KVM request numbers, encoded as <linux/kvm.h> does.
mod kvm {
    #![allow(missing_docs)]
    use vmm_sys_util::{ioctl_io_nr, ioctl_ior_nr, ioctl_iow_nr, ioctl_iowr_nr};

    const KVMIO: u32 = 0xAE;
    ioctl_io_nr!(KVM_RUN, KVMIO, 0x80);
    ioctl_iow_nr!(KVM_IRQ_LINE, KVMIO, 0x61, kvm_bindings::kvm_irq_level);
    ioctl_iow_nr!(
        KVM_REGISTER_COALESCED_MMIO,
        KVMIO,
        0x67,
        kvm_bindings::kvm_coalesced_mmio_zone
    );
    ioctl_iow_nr!(
        KVM_UNREGISTER_COALESCED_MMIO,
        KVMIO,
        0x68,
        kvm_bindings::kvm_coalesced_mmio_zone
    );
    ioctl_ior_nr!(KVM_GET_REGS, KVMIO, 0x81, kvm_bindings::kvm_regs);
    ioctl_ior_nr!(KVM_GET_SREGS, KVMIO, 0x83, kvm_bindings::kvm_sregs);
    ioctl_ior_nr!(KVM_GET_MP_STATE, KVMIO, 0x98, kvm_bindings::kvm_mp_state);
    ioctl_ior_nr!(KVM_GET_XSAVE, KVMIO, 0xa4, kvm_bindings::kvm_xsave);
    ioctl_ior_nr!(KVM_GET_XCRS, KVMIO, 0xa6, kvm_bindings::kvm_xcrs);
    ioctl_iowr_nr!(KVM_GET_MSRS, KVMIO, 0x88, kvm_bindings::kvm_msrs);
    ioctl_ior_nr!(KVM_GET_LAPIC, KVMIO, 0x8e, kvm_bindings::kvm_lapic_state);
    ioctl_ior_nr!(
        KVM_GET_VCPU_EVENTS,
        KVMIO,
        0x9f,
        kvm_bindings::kvm_vcpu_events
    );
    ioctl_ior_nr!(KVM_GET_DEBUGREGS, KVMIO, 0xa1, kvm_bindings::kvm_debugregs);
    ioctl_iowr_nr!(KVM_GET_IRQCHIP, KVMIO, 0x62, kvm_bindings::kvm_irqchip);
    ioctl_ior_nr!(KVM_GET_PIT2, KVMIO, 0x9f, kvm_bindings::kvm_pit_state2);
    ioctl_ior_nr!(KVM_GET_CLOCK, KVMIO, 0x7c, kvm_bindings::kvm_clock_data);
    ioctl_iow_nr!(
        KVM_SET_USER_MEMORY_REGION,
        KVMIO,
        0x46,
        kvm_bindings::kvm_userspace_memory_region
    );
}
use kvm::*;

/// The KVM ioctls of each thread, with what they are for.
pub fn ioctls(role: Role) -> Vec<(u64, &'static str)> {
    match role {
        Role::Vcpu => vec![
            (KVM_RUN(), "KVM_RUN: enter the guest"),
            (KVM_IRQ_LINE(), "KVM_IRQ_LINE: IRQ 4 (serial) and 14 (IDE)"),
            (KVM_GET_MP_STATE(), "KVM_GET_MP_STATE: the halt probe"),
            (
                KVM_REGISTER_COALESCED_MMIO(),
                "KVM_REGISTER_COALESCED_MMIO: COM1's transmit register, IER = 0",
            ),
            (
                KVM_UNREGISTER_COALESCED_MMIO(),
                "KVM_UNREGISTER_COALESCED_MMIO: COM1's transmit register, IER != 0",
            ),
            (
                KVM_GET_REGS(),
                "KVM_GET_REGS: the halt probe, guest-fault reports",
            ),
            (
                KVM_GET_SREGS(),
                "KVM_GET_SREGS: guest-fault reports, snapshots",
            ),
            (KVM_GET_XSAVE(), "KVM_GET_XSAVE: snapshots"),
            (KVM_GET_XCRS(), "KVM_GET_XCRS: snapshots"),
            (KVM_GET_MSRS(), "KVM_GET_MSRS: snapshots"),
            (KVM_GET_LAPIC(), "KVM_GET_LAPIC: snapshots"),
            (KVM_GET_VCPU_EVENTS(), "KVM_GET_VCPU_EVENTS: snapshots"),
            (KVM_GET_DEBUGREGS(), "KVM_GET_DEBUGREGS: snapshots"),
            (KVM_GET_IRQCHIP(), "KVM_GET_IRQCHIP: snapshots"),
            (KVM_GET_PIT2(), "KVM_GET_PIT2: snapshots"),
            (KVM_GET_CLOCK(), "KVM_GET_CLOCK: snapshots"),
            (
                KVM_SET_USER_MEMORY_REGION(),
                "KVM_SET_USER_MEMORY_REGION: deleting the RAM slot at the end",
            ),
        ],
        Role::Io => vec![(KVM_IRQ_LINE(), "KVM_IRQ_LINE: IRQ 14 on a completion")],
        // No KVM request: the monitor never touches the VM, only the run
        // control. FIONBIO: the accepted connection is made non-blocking.
        Role::Monitor => vec![(libc::FIONBIO, "FIONBIO: a client's socket non-blocking")],
    }
}

/// System calls allowed with any arguments, with who needs them.
fn plain(role: Role) -> Vec<(i64, &'static str)> {
    if role == Role::Monitor {
        return monitor_plain();
    }
    let mut v = vec![
        (
            libc::SYS_read,
            "eventfds; the I/O thread's completion eventfd",
        ),
        (libc::SYS_write, "serial console, stderr, eventfds"),
        (
            libc::SYS_close,
            "files and rings closed at the end of the run",
        ),
        (libc::SYS_futex, "locks (chipset, serial), thread join"),
        (libc::SYS_sched_yield, "std synchronisation"),
        (
            libc::SYS_io_uring_enter,
            "submitting and waiting for disk requests",
        ),
        (libc::SYS_brk, "the allocator"),
        (
            libc::SYS_munmap,
            "the allocator; unmapping RAM and rings at the end",
        ),
        (libc::SYS_mremap, "the allocator (growing vectors)"),
        (libc::SYS_madvise, "the allocator returning memory"),
        (
            libc::SYS_clock_gettime,
            "Instant::now where the vDSO is not used",
        ),
        (libc::SYS_nanosleep, "bounded waits"),
        (libc::SYS_clock_nanosleep, "bounded waits"),
        (
            libc::SYS_restart_syscall,
            "a timed wait (futex, sleep) resumed after io_uring task work or a signal",
        ),
        (libc::SYS_getrandom, "std hash maps"),
        (
            libc::SYS_rt_sigreturn,
            "returning from the kick and stop signal handlers",
        ),
        (libc::SYS_rt_sigprocmask, "thread teardown, abort"),
        (
            libc::SYS_sigaltstack,
            "thread teardown (std's signal stack)",
        ),
        (libc::SYS_gettid, "abort"),
        (libc::SYS_getpid, "abort"),
        (libc::SYS_fstat, "image size checks"),
        (libc::SYS_newfstatat, "image size checks"),
        (libc::SYS_statx, "image size checks"),
        (libc::SYS_exit, "thread exit"),
        (
            libc::SYS_exit_group,
            "process exit (also the SIGSYS handler's)",
        ),
    ];
    match role {
        Role::Vcpu => v.extend([
            (libc::SYS_writev, "stdout/stderr"),
            (libc::SYS_pread64, "aio=sync disk reads"),
            (libc::SYS_pwrite64, "aio=sync disk writes"),
            (libc::SYS_preadv, "aio=sync disk reads into guest memory"),
            (libc::SYS_pwritev, "aio=sync disk writes from guest memory"),
            (libc::SYS_preadv2, "aio=sync disk reads (RWF flags)"),
            (libc::SYS_pwritev2, "aio=sync disk writes (RWF_DSYNC)"),
            (
                libc::SYS_fdatasync,
                "FLUSH CACHE with aio=sync; final flush",
            ),
            (libc::SYS_fsync, "final flush"),
            (libc::SYS_fallocate, "TRIM with aio=sync"),
            (
                libc::SYS_mincore,
                "the guest RAM's resident size at the end (--stats-json)",
            ),
        ]),
        Role::Io => v.extend([
            (libc::SYS_epoll_wait, "sleeping until a completion or stop"),
            (libc::SYS_epoll_pwait, "sleeping until a completion or stop"),
        ]),
        Role::Monitor => {}
    }
    v
}

/// The monitor's list: its sockets, its epoll, waiting, the allocator,
/// kicking the vCPU (`tgkill`, below). No file, socket or process calls:
/// the listening socket exists before the thread starts.
fn monitor_plain() -> Vec<(i64, &'static str)> {
    vec![
        (libc::SYS_accept4, "a new client on the listening socket"),
        (libc::SYS_read, "the stop eventfd"),
        (
            libc::SYS_recvfrom,
            "client requests (std reads sockets with recv)",
        ),
        (libc::SYS_write, "stderr; the stop eventfd"),
        (
            libc::SYS_sendto,
            "replies and events (std sends with MSG_NOSIGNAL)",
        ),
        (libc::SYS_close, "a client that left"),
        (libc::SYS_epoll_ctl, "watching a client"),
        (libc::SYS_epoll_wait, "sleeping until a client or stop"),
        (libc::SYS_epoll_pwait, "sleeping until a client or stop"),
        (libc::SYS_futex, "the run control's lock and condvar"),
        (libc::SYS_sched_yield, "std synchronisation"),
        (libc::SYS_brk, "the allocator"),
        (libc::SYS_munmap, "the allocator"),
        (libc::SYS_mremap, "the allocator (growing vectors)"),
        (libc::SYS_madvise, "the allocator returning memory"),
        (libc::SYS_clock_gettime, "timestamps, bounded waits"),
        (libc::SYS_nanosleep, "waiting for a slow client to read"),
        (
            libc::SYS_clock_nanosleep,
            "waiting for a slow client to read",
        ),
        (libc::SYS_getrandom, "std hash maps (JSON objects)"),
        (
            libc::SYS_restart_syscall,
            "a timed wait (futex, sleep) resumed after a signal",
        ),
        (libc::SYS_rt_sigreturn, "returning from a signal handler"),
        (
            libc::SYS_rt_sigprocmask,
            "pthread_kill, thread teardown, abort",
        ),
        (
            libc::SYS_sigaltstack,
            "thread teardown (std's signal stack)",
        ),
        (libc::SYS_gettid, "abort"),
        (libc::SYS_getpid, "pthread_kill, abort"),
        (libc::SYS_exit, "thread exit"),
        (libc::SYS_exit_group, "process exit (the SIGSYS handler's)"),
    ]
}

fn cond(arg: u8, op: SeccompCmpOp, value: u64) -> Result<SeccompCondition, BackendError> {
    SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, value)
}

fn rule(conds: Vec<SeccompCondition>) -> Result<SeccompRule, BackendError> {
    SeccompRule::new(conds)
}

/// The allow-list of `role` in seccompiler's form: a syscall with no rules
/// is allowed with any arguments; with rules, if one of them matches.
pub fn allow_list(role: Role) -> Result<BTreeMap<i64, Vec<SeccompRule>>, BackendError> {
    let mut map: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for (nr, _) in plain(role) {
        map.insert(nr, Vec::new());
    }
    let ioctl_rules = ioctls(role)
        .into_iter()
        .map(|(req, _)| rule(vec![cond(1, SeccompCmpOp::Eq, req)?]))
        .collect::<Result<Vec<_>, _>>()?;
    map.insert(libc::SYS_ioctl, ioctl_rules);
    // No executable memory: allocations and the allocator's page
    // protections, never PROT_EXEC.
    let no_exec = SeccompCmpOp::MaskedEq(libc::PROT_EXEC as u64);
    map.insert(
        libc::SYS_mmap,
        vec![rule(vec![cond(2, no_exec.clone(), 0)?])?],
    );
    map.insert(libc::SYS_mprotect, vec![rule(vec![cond(2, no_exec, 0)?])?]);
    // F_GETFD only: std's debug builds check that a descriptor is open
    // before closing it.
    map.insert(
        libc::SYS_fcntl,
        vec![rule(vec![cond(
            1,
            SeccompCmpOp::Eq,
            libc::F_GETFD as u64,
        )?])?],
    );
    // abort(): restore SIGABRT's default action, raise it on this thread.
    let sigabrt = libc::SIGABRT as u64;
    map.insert(
        libc::SYS_rt_sigaction,
        vec![rule(vec![cond(0, SeccompCmpOp::Eq, sigabrt)?])?],
    );
    let mut tgkill = vec![rule(vec![cond(2, SeccompCmpOp::Eq, sigabrt)?])?];
    if role == Role::Monitor {
        // `stop` kicks the vCPU thread out of KVM_RUN with the kick signal.
        let kick = vmm_sys_util::signal::SIGRTMIN() as u64;
        tgkill.push(rule(vec![cond(2, SeccompCmpOp::Eq, kick)?])?);
    }
    map.insert(libc::SYS_tgkill, tgkill);
    Ok(map)
}

/// Counts for the report: (system calls, ioctl requests) of `role`.
pub fn size(role: Role) -> (usize, usize) {
    let n = allow_list(role).map_or(0, |m| m.len());
    (n, ioctls(role).len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The request numbers, as Linux's <linux/kvm.h> defines them on x86_64.
    #[test]
    fn kvm_request_numbers_match_the_kernel_headers() {
        assert_eq!(KVM_RUN(), 0xAE80);
        assert_eq!(KVM_IRQ_LINE(), 0x4008_AE61);
        assert_eq!(KVM_GET_REGS(), 0x8090_AE81);
        assert_eq!(KVM_GET_SREGS(), 0x8138_AE83);
        assert_eq!(KVM_GET_MP_STATE(), 0x8004_AE98);
        assert_eq!(KVM_SET_USER_MEMORY_REGION(), 0x4020_AE46);
        assert_eq!(KVM_REGISTER_COALESCED_MMIO(), 0x4010_AE67);
        assert_eq!(KVM_UNREGISTER_COALESCED_MMIO(), 0x4010_AE68);
    }

    #[test]
    fn lists_compile_and_leave_out_what_a_compromised_thread_wants() {
        for role in [Role::Vcpu, Role::Io, Role::Monitor] {
            let map = allow_list(role).unwrap();
            for forbidden in [
                libc::SYS_open,
                libc::SYS_openat,
                libc::SYS_socket,
                libc::SYS_connect,
                libc::SYS_execve,
                libc::SYS_clone,
                libc::SYS_clone3,
                libc::SYS_fork,
                libc::SYS_ptrace,
                libc::SYS_io_uring_setup,
                libc::SYS_io_uring_register,
                libc::SYS_kill,
                libc::SYS_unlink,
                libc::SYS_unlinkat,
                libc::SYS_ftruncate,
                libc::SYS_mount,
            ] {
                assert!(!map.contains_key(&forbidden), "{role}: {forbidden}");
            }
            super::super::program(role).unwrap();
        }
    }

    /// docs/guarantees.md states the sizes of the lists; they must be these.
    #[test]
    fn the_docs_state_the_list_sizes() {
        let readme = include_str!("../../../docs/guarantees.md").replace('\n', " ");
        let (vs, vi) = size(Role::Vcpu);
        let (is, _) = size(Role::Io);
        let (ms, _) = size(Role::Monitor);
        for needle in [
            format!("the monitor thread {ms} system calls"),
            format!("the vCPU thread {vs} system calls"),
            format!("only with the {vi} KVM requests"),
            format!("the I/O thread {is} system calls"),
        ] {
            assert!(
                readme.contains(&needle),
                "docs/guarantees.md lacks {needle:?}"
            );
        }
    }
}
