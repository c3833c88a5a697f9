//! Kicking a thread out of `KVM_RUN` (or out of a wait in the kernel):
//! the signal the supervisor sends a stopping vCPU, and the [`Kicker`] the
//! QMP monitor's `stop` uses on the vCPU thread. The handler (installed by
//! the supervisor) does nothing; the interruption is the point.

use vmm_sys_util::signal::{Killable, SIGRTMIN};

/// The signal used to kick a vCPU out of `KVM_RUN`.
pub fn kick_signal() -> libc::c_int {
    SIGRTMIN()
}

/// Kicks one thread out of `KVM_RUN` with the supervisor's kick signal
/// (the QMP monitor's `stop` uses it on the vCPU thread).
#[derive(Clone, Copy, Debug)]
pub struct Kicker {
    thread: libc::pthread_t,
}

impl Kicker {
    /// A kicker for the calling thread. It must be used only while that
    /// thread runs: the monitor that holds it is a scoped thread inside
    /// the vCPU thread's scope, joined before the vCPU thread ends.
    #[allow(unsafe_code)]
    pub fn current_thread() -> Self {
        // SAFETY: pthread_self has no preconditions and cannot fail.
        let thread = unsafe { libc::pthread_self() };
        Kicker { thread }
    }

    /// Sends the kick signal, as the supervisor does (its handler does
    /// nothing: `KVM_RUN` returns `EINTR`, a wait in the kernel returns
    /// early). A kick is a hint: a failure is ignored.
    pub fn kick(&self) {
        let _ = self.kill(kick_signal());
    }
}

// SAFETY: `thread` is a live thread of this process for as long as the
// kicker is used (see `Kicker::current_thread`), and the kick signal has a
// handler (registered by `run` before any vCPU thread exists), so a kick
// cannot end the process.
#[allow(unsafe_code)]
unsafe impl Killable for Kicker {
    fn pthread_handle(&self) -> libc::pthread_t {
        self.thread
    }
}
