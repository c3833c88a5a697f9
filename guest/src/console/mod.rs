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

/// Prints the first line, `vmdma-guest: started, hvm_start_info at 0x...`,
/// without the formatting machinery: it is the first sign of life and is
/// printed on every boot, where each guest instruction may be emulated
/// (`format_args!` with a hex number cost about 800 instructions).
pub fn started(start_info: u32) {
    let mut hex = [0u8; 8];
    let digits = start_info.checked_ilog(16).map_or(1, |d| d as usize + 1);
    for (i, slot) in hex.iter_mut().take(digits).enumerate() {
        let nibble = (start_info >> (4 * (digits - 1 - i))) & 0xF;
        *slot = b"0123456789abcdef"
            .get(nibble as usize)
            .copied()
            .unwrap_or(b'?');
    }
    let mut out = serial::Serial::new();
    let _ = core::fmt::Write::write_str(&mut out, "\nvmdma-guest: started, hvm_start_info at 0x");
    let hex = hex.get(..digits).unwrap_or(&[]);
    let _ = core::fmt::Write::write_str(&mut out, core::str::from_utf8(hex).unwrap_or("?"));
    let _ = core::fmt::Write::write_str(&mut out, "\n");
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
