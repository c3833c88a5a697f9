//! The sandbox: a seccomp allow-list per runner thread, in the style of
//! Firecracker, built with rust-vmm's `seccompiler`.
//!
//! The vCPU thread builds the VM (opens nothing after that: the kernel and
//! disk files are open before it starts), spawns the I/O thread, then
//! enters its filter right before the first `KVM_RUN`; the I/O thread
//! enters its own as it starts. From then on each may make only the system
//! calls of its list ([`rules`]), with argument filters where the argument
//! decides what the call can do: `ioctl` only with the KVM requests the
//! thread uses, `mmap`/`mprotect` never with `PROT_EXEC`, `tgkill` and
//! `rt_sigaction` only for `SIGABRT` (the way `abort` works). Anything else
//! raises SIGSYS; the handler ([`sigsys`]) names the thread and the system
//! call on stderr and ends the process with status 159 (128 + SIGSYS), as
//! Firecracker does, without touching anything the guest could have
//! influenced.
//!
//! The supervisor (main) thread is not filtered: it handles no guest data
//! (it waits, kicks the vCPU with a signal and prints the report).
//! `vmdma qtest` runs without a filter (a test front end, no guest code).
//! `--no-seccomp` turns the filters off for debugging.

pub mod allocator;
pub mod rules;
mod sigsys;

use std::cell::Cell;
use std::fmt;

use seccompiler::{BackendError, BpfProgram, SeccompAction, SeccompFilter, TargetArch};

/// Why a thread could not enter its sandbox.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// seccompiler refused the allow-list (a condition, a rule) or could
    /// not compile it to BPF.
    #[error("seccomp filter of the {role} thread: {source}")]
    Filter {
        /// Whose filter.
        role: Role,
        /// seccompiler's reason.
        source: BackendError,
    },
    /// The SIGSYS handler (status 159) could not be installed.
    #[error("cannot install the SIGSYS handler: {0}")]
    SigsysHandler(vmm_sys_util::errno::Error),
    /// The kernel refused the filter.
    #[error("cannot install the seccomp filter of the {role} thread: {source}")]
    Apply {
        /// Whose filter.
        role: Role,
        /// The kernel's reason.
        source: seccompiler::Error,
    },
}

/// Which thread a filter is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The vCPU thread (runs KVM_RUN and every device on port exits).
    Vcpu,
    /// The I/O thread (disk completions, IRQ 14).
    Io,
    /// The QMP monitor thread (`--qmp`: its socket, the pause).
    Monitor,
}

impl Role {
    /// The name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Role::Vcpu => "vcpu",
            Role::Io => "I/O",
            Role::Monitor => "monitor",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

thread_local! {
    /// The role of the current thread once it is sandboxed (0: none), read
    /// by the SIGSYS handler.
    static ROLE: Cell<u8> = const { Cell::new(0) };
}

fn role_code(role: Role) -> u8 {
    match role {
        Role::Vcpu => 1,
        Role::Io => 2,
        Role::Monitor => 3,
    }
}

/// The role of the calling thread, if it entered the sandbox.
pub(crate) fn current_role() -> Option<Role> {
    match ROLE.with(Cell::get) {
        1 => Some(Role::Vcpu),
        2 => Some(Role::Io),
        3 => Some(Role::Monitor),
        _ => None,
    }
}

/// Which threads enter their seccomp filter, and the debug hook.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sandbox {
    /// Filters on (the default; `--no-seccomp` turns them off).
    pub enabled: bool,
    /// Debug builds: the thread that makes one forbidden call once inside.
    pub selftest: Option<Role>,
}

impl Sandbox {
    /// Puts the calling thread in its sandbox (if enabled), then runs the
    /// self-test if it is this thread's.
    pub fn enter(&self, role: Role) -> Result<(), SandboxError> {
        if !self.enabled {
            return Ok(());
        }
        enter(role)?;
        #[cfg(debug_assertions)]
        if self.selftest == Some(role) {
            make_forbidden_call();
        }
        Ok(())
    }
}

/// Compiles the filter of `role`: its allow-list, SIGSYS for the rest.
pub fn program(role: Role) -> Result<BpfProgram, SandboxError> {
    let filter_err = |source| SandboxError::Filter { role, source };
    let filter = SeccompFilter::new(
        rules::allow_list(role).map_err(filter_err)?,
        SeccompAction::Trap,
        SeccompAction::Allow,
        TargetArch::x86_64,
    )
    .map_err(filter_err)?;
    BpfProgram::try_from(filter).map_err(filter_err)
}

/// Puts the calling thread in the sandbox of `role` (for the rest of its
/// life). Installs the SIGSYS handler first (once per process).
pub fn enter(role: Role) -> Result<(), SandboxError> {
    let prog = program(role)?;
    sigsys::install()?;
    ROLE.with(|r| r.set(role_code(role)));
    seccompiler::apply_filter(&prog).map_err(|source| SandboxError::Apply { role, source })
}

/// The `--stats` line: whether the filters were on, and their sizes.
pub fn report(enabled: bool) -> String {
    if !enabled {
        return "vmdma stats: seccomp: off (--no-seccomp)\n".into();
    }
    let (vs, vi) = rules::size(Role::Vcpu);
    let (is, ii) = rules::size(Role::Io);
    let (ms, _) = rules::size(Role::Monitor);
    format!(
        "vmdma stats: seccomp: on; vcpu thread {vs} system calls ({vi} KVM ioctl requests), \
         I/O thread {is} system calls ({ii} KVM ioctl request), monitor thread (--qmp) {ms} \
         system calls\n"
    )
}

/// Test hook (debug builds): a system call no sandboxed thread may make.
/// Under the filter it never returns: the SIGSYS handler ends the process.
#[cfg(debug_assertions)]
pub fn make_forbidden_call() {
    // socket(2) is on no list; without a filter this just opens and closes
    // a socket.
    if let Ok(s) = std::net::UdpSocket::bind("127.0.0.1:0") {
        drop(s);
    }
}
