//! Port I/O: single accesses and string (`rep ins`/`rep outs`) transfers.
//!
//! None of these asm blocks is `nomem`: a port write may start a DMA that
//! reads memory the compiler must have written out first, and a port read
//! may be the point after which DMA'd data is valid.

use core::arch::asm;

/// Reads a byte from `port`.
pub fn inb(port: u16) -> u8 {
    let v: u8;
    // SAFETY: port reads have no effect on Rust-visible memory.
    unsafe { asm!("in al, dx", in("dx") port, out("al") v, options(nostack, preserves_flags)) };
    v
}

/// Writes a byte to `port`.
pub fn outb(port: u16, v: u8) {
    // SAFETY: see the module documentation of `arch`.
    unsafe { asm!("out dx, al", in("dx") port, in("al") v, options(nostack, preserves_flags)) };
}

/// Reads a word from `port`.
pub fn inw(port: u16) -> u16 {
    let v: u16;
    // SAFETY: port reads have no effect on Rust-visible memory.
    unsafe { asm!("in ax, dx", in("dx") port, out("ax") v, options(nostack, preserves_flags)) };
    v
}

/// Writes a word to `port`.
pub fn outw(port: u16, v: u16) {
    // SAFETY: see the module documentation of `arch`.
    unsafe { asm!("out dx, ax", in("dx") port, in("ax") v, options(nostack, preserves_flags)) };
}

/// Reads a dword from `port`.
pub fn inl(port: u16) -> u32 {
    let v: u32;
    // SAFETY: port reads have no effect on Rust-visible memory.
    unsafe { asm!("in eax, dx", in("dx") port, out("eax") v, options(nostack, preserves_flags)) };
    v
}

/// Writes a dword to `port`.
pub fn outl(port: u16, v: u32) {
    // SAFETY: see the module documentation of `arch`.
    unsafe { asm!("out dx, eax", in("dx") port, in("eax") v, options(nostack, preserves_flags)) };
}

/// `rep outsb`: writes `buf` to `port`, one byte per write. One
/// instruction for the whole string (which matters where guest
/// instructions are emulated); KVM still exits once per byte.
pub fn outsb(port: u16, buf: &[u8]) {
    // SAFETY: reads exactly `buf.len()` bytes of `buf`.
    unsafe {
        asm!("rep outsb", in("dx") port, inout("rsi") buf.as_ptr() => _,
             inout("rcx") buf.len() => _, options(nostack, preserves_flags, readonly));
    }
}

/// `rep insw`: fills `buf` from `port`, two bytes per read. A trailing odd
/// byte is left untouched.
pub fn insw(port: u16, buf: &mut [u8]) {
    let words = buf.len() / 2;
    // SAFETY: writes exactly `2 * words <= buf.len()` bytes at `buf`, which
    // is exclusively borrowed; DF is clear per the asm! contract.
    unsafe {
        asm!("rep insw", in("dx") port, inout("rdi") buf.as_mut_ptr() => _,
             inout("rcx") words => _, options(nostack, preserves_flags));
    }
}

/// `rep outsw`: writes `buf` to `port`, two bytes per write. A trailing odd
/// byte is not sent.
pub fn outsw(port: u16, buf: &[u8]) {
    let words = buf.len() / 2;
    // SAFETY: reads exactly `2 * words <= buf.len()` bytes of `buf`.
    unsafe {
        asm!("rep outsw", in("dx") port, inout("rsi") buf.as_ptr() => _,
             inout("rcx") words => _, options(nostack, preserves_flags, readonly));
    }
}

/// `rep insd`: fills `buf` from `port`, four bytes per read. Trailing bytes
/// (`len % 4`) are left untouched.
pub fn insd(port: u16, buf: &mut [u8]) {
    let dwords = buf.len() / 4;
    // SAFETY: writes exactly `4 * dwords <= buf.len()` bytes at `buf`.
    unsafe {
        asm!("rep insd", in("dx") port, inout("rdi") buf.as_mut_ptr() => _,
             inout("rcx") dwords => _, options(nostack, preserves_flags));
    }
}

/// `rep outsd`: writes `buf` to `port`, four bytes per write. Trailing
/// bytes (`len % 4`) are not sent.
pub fn outsd(port: u16, buf: &[u8]) {
    let dwords = buf.len() / 4;
    // SAFETY: reads exactly `4 * dwords <= buf.len()` bytes of `buf`.
    unsafe {
        asm!("rep outsd", in("dx") port, inout("rsi") buf.as_ptr() => _,
             inout("rcx") dwords => _, options(nostack, preserves_flags, readonly));
    }
}
