//! Serial console output and the `print!`/`println!` macros.

pub mod serial;

/// Prints to the serial console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => {{
        // The serial writer never fails.
        let _ = core::fmt::Write::write_fmt(&mut $crate::console::serial::Serial, format_args!($($arg)*));
    }};
}

/// Prints a line to the serial console (`\n` line ends).
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => {{
        $crate::print!($($arg)*);
        $crate::print!("\n");
    }};
}
