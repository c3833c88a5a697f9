//! Console output: COM1 and the `print!`/`println!` macros, and the write
//! manifest on the debug-console port.

pub mod manifest;
pub mod serial;

use core::sync::atomic::{AtomicBool, Ordering};

/// Set by the `quiet` command-line word: no boot banner.
static QUIET: AtomicBool = AtomicBool::new(false);

/// Turns the boot banner off (`quiet`) or on.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Whether the boot banner is off.
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// Prints a boot-banner line (informational; nothing with `quiet`).
#[macro_export]
macro_rules! banner {
    ($($arg:tt)*) => {
        if !$crate::console::quiet() {
            $crate::println!($($arg)*);
        }
    };
}

/// Prints to the serial console (in FIFO-sized bursts, see
/// [`serial`]).
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => {{
        // The serial writer never fails; it sends its rest when dropped.
        let _ = core::fmt::Write::write_fmt(
            &mut $crate::console::serial::Serial::new(),
            format_args!($($arg)*),
        );
    }};
}

/// Prints a line to the serial console (`\n` line ends).
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => {
        $crate::print!("{}\n", format_args!($($arg)*))
    };
}
