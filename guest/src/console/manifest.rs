//! The write manifest's channel: the debug-console port
//! ([`MANIFEST_PORT`], QEMU's `-debugcon`), not the console.
//!
//! Each manifest line is formatted into a fixed buffer and sent with one
//! `rep outsb` (one exit where the VMM batches string I/O). Before the first
//! line the guest reads the port once: a listener answers
//! [`MANIFEST_PORT_READBACK`] (QEMU's isa-debugcon does; vmdma does with
//! `--manifest FILE`), and without one the guest sends nothing at all.

use core::fmt::{self, Write as _};
use core::sync::atomic::{AtomicU8, Ordering};

use vmdma_guest::msg::Msg;
use vmdma_protocol::{MANIFEST_PORT, MANIFEST_PORT_READBACK};

use crate::arch::io::{inb, outsb};

const UNKNOWN: u8 = 0;
const PRESENT: u8 = 1;
const ABSENT: u8 = 2;

/// Whether a listener was found (probed on first use).
static STATE: AtomicU8 = AtomicU8::new(UNKNOWN);

/// Whether something records the manifest (probes the port the first time).
pub fn present() -> bool {
    match STATE.load(Ordering::Relaxed) {
        PRESENT => true,
        ABSENT => false,
        _ => {
            let here = inb(MANIFEST_PORT) == MANIFEST_PORT_READBACK;
            STATE.store(if here { PRESENT } else { ABSENT }, Ordering::Relaxed);
            here
        }
    }
}

/// Sends one manifest line (`args` without the line end), if a listener is
/// present. Lines are far shorter than a [`Msg`]; a longer one would be
/// cut and then rejected by the host's parser, never misread.
pub fn line(args: fmt::Arguments<'_>) {
    if !present() {
        return;
    }
    let mut m = Msg::new();
    let _ = m.write_fmt(args);
    m.push_str("\n");
    outsb(MANIFEST_PORT, m.as_str().as_bytes());
}
