//! The SIGSYS handler: what happens when a sandboxed thread makes a system
//! call outside its list. It writes one line to stderr (the thread and the
//! system call number) and ends the process with status 159, using only
//! async-signal-safe calls that are on every list (`write`, `exit_group`).
#![allow(unsafe_code)]

use std::sync::Once;

use vmm_sys_util::signal::register_signal_handler;

use super::{Role, SandboxError, current_role};

/// Exit status after a forbidden system call: 128 + SIGSYS, what a shell
/// reports for a process SIGSYS killed.
pub const STATUS: i32 = 128 + libc::SIGSYS;

static INSTALL: Once = Once::new();

/// Installs the handler (once per process; later calls only report the
/// first result).
pub(super) fn install() -> Result<(), SandboxError> {
    let mut result = Ok(());
    INSTALL.call_once(|| {
        result =
            register_signal_handler(libc::SIGSYS, on_sigsys).map_err(SandboxError::SigsysHandler);
    });
    result
}

/// Offset of `si_syscall` in `siginfo_t` on x86_64 Linux: the union after
/// `si_signo`, `si_errno`, `si_code` and padding starts at 16; for SIGSYS
/// it holds `_call_addr` (8 bytes), then `_syscall` (int).
const SI_SYSCALL_OFFSET: usize = 24;

extern "C" fn on_sigsys(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let nr = if info.is_null() {
        -1
    } else {
        // SAFETY: the kernel passes a valid siginfo_t (128 bytes) for a
        // SA_SIGINFO handler; for SIGSYS from seccomp `si_syscall` is the
        // int at this offset. Read unaligned to make no layout assumption
        // beyond the offset.
        unsafe {
            info.cast::<u8>()
                .add(SI_SYSCALL_OFFSET)
                .cast::<i32>()
                .read_unaligned()
        }
    };
    let mut line = Line::new();
    line.push(b"vmdma: seccomp: the ");
    line.push(current_role().map_or("unsandboxed", Role::name).as_bytes());
    line.push(b" thread made a forbidden system call (number ");
    line.push_int(nr);
    line.push(b"); exiting (--no-seccomp turns the filter off)\n");
    // SAFETY: write(2) and _exit(2) are async-signal-safe; the buffer is a
    // valid local of `len` bytes.
    unsafe {
        libc::write(2, line.buf.as_ptr().cast(), line.len);
        libc::_exit(STATUS);
    }
}

/// A fixed buffer for the message (no allocation in a signal handler).
struct Line {
    buf: [u8; 192],
    len: usize,
}

impl Line {
    fn new() -> Self {
        Line {
            buf: [0; 192],
            len: 0,
        }
    }

    fn push(&mut self, s: &[u8]) {
        for &b in s {
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = b;
                self.len += 1;
            }
        }
    }

    fn push_int(&mut self, n: i32) {
        if n < 0 {
            self.push(b"-");
        }
        let mut digits = [0u8; 10];
        let mut v = n.unsigned_abs();
        let mut i = digits.len();
        loop {
            i -= 1;
            if let Some(d) = digits.get_mut(i) {
                *d = b'0' + (v % 10) as u8;
            }
            v /= 10;
            if v == 0 || i == 0 {
                break;
            }
        }
        self.push(digits.get(i..).unwrap_or(&[]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_formats_numbers() {
        for (n, s) in [(0, "0"), (41, "41"), (-1, "-1"), (i32::MAX, "2147483647")] {
            let mut l = Line::new();
            l.push_int(n);
            assert_eq!(&l.buf[..l.len], s.as_bytes());
        }
    }

    #[test]
    fn the_line_never_overflows() {
        let mut l = Line::new();
        for _ in 0..100 {
            l.push(b"0123456789");
        }
        assert_eq!(l.len, l.buf.len());
    }
}
