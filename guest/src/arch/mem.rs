//! Bulk memory operations with x86 string instructions.
//!
//! Ring-0 guest code may be emulated one instruction at a time (see the
//! guest README), so a byte loop over a buffer is expensive while one `rep`
//! instruction is cheap. These helpers do the bulk in 8-byte units and the
//! tail in bytes. The compiler's `memcmp` is a byte loop, so comparisons
//! must go through [`first_difference`].

use core::arch::asm;

/// Copies `min(dst.len(), src.len())` bytes from `src` to `dst`.
pub fn copy(dst: &mut [u8], src: &[u8]) {
    let n = dst.len().min(src.len());
    // SAFETY: copies exactly `n` bytes between two valid, non-overlapping
    // slices (`&mut` and `&` cannot alias); DF is clear per the asm! contract.
    unsafe {
        asm!(
            "rep movsq",
            "mov rcx, {tail}",
            "rep movsb",
            tail = in(reg) n % 8,
            inout("rcx") n / 8 => _,
            inout("rdi") dst.as_mut_ptr() => _,
            inout("rsi") src.as_ptr() => _,
            options(nostack, preserves_flags),
        );
    }
}

/// Sets every byte of `dst` to `value`.
pub fn fill(dst: &mut [u8], value: u8) {
    let n = dst.len();
    let pattern = u64::from_ne_bytes([value; 8]);
    // SAFETY: writes exactly `n` bytes of the exclusively borrowed `dst`.
    unsafe {
        asm!(
            "rep stosq",
            "mov rcx, {tail}",
            "rep stosb",
            tail = in(reg) n % 8,
            inout("rcx") n / 8 => _,
            inout("rdi") dst.as_mut_ptr() => _,
            in("rax") pattern,
            options(nostack, preserves_flags),
        );
    }
}

/// Index of the first 8-byte word at which `a` and `b` differ, comparing
/// `words` words (`repe cmpsq`); `None` if all are equal.
fn first_different_word(a: &[u8], b: &[u8], words: usize) -> Option<usize> {
    if words == 0 || a.len() < words * 8 || b.len() < words * 8 {
        return None;
    }
    let left: usize;
    let equal: u8;
    // SAFETY: reads `words * 8` bytes of each slice (checked above).
    unsafe {
        asm!(
            "repe cmpsq",
            "sete {eq}",
            eq = out(reg_byte) equal,
            inout("rcx") words => left,
            inout("rsi") a.as_ptr() => _,
            inout("rdi") b.as_ptr() => _,
            options(nostack, readonly),
        );
    }
    if equal != 0 {
        None
    } else {
        // `rcx` was decremented for the mismatching word too.
        Some(words - left - 1)
    }
}

/// Offset of the first byte at which `a` and `b` differ, comparing
/// `min(a.len(), b.len())` bytes; `None` if equal.
pub fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    let n = a.len().min(b.len());
    let words = n / 8;
    let start = match first_different_word(a, b, words) {
        Some(w) => w * 8,
        None => words * 8,
    };
    let tail_a = a.get(start..n)?;
    let tail_b = b.get(start..n)?;
    tail_a
        .iter()
        .zip(tail_b)
        .position(|(x, y)| x != y)
        .map(|i| start + i)
}

/// Offset of the first byte of `buf` that is not `value`; `None` if all are.
pub fn first_not(buf: &[u8], value: u8) -> Option<usize> {
    let words = buf.len() / 8;
    let pattern = u64::from_ne_bytes([value; 8]);
    let mut start = words * 8;
    if words > 0 {
        let left: usize;
        let equal: u8;
        // SAFETY: reads `words * 8 <= buf.len()` bytes of `buf`.
        unsafe {
            asm!(
                "repe scasq",
                "sete {eq}",
                eq = out(reg_byte) equal,
                inout("rcx") words => left,
                inout("rdi") buf.as_ptr() => _,
                in("rax") pattern,
                options(nostack, readonly),
            );
        }
        if equal == 0 {
            start = (words - left - 1) * 8;
        }
    }
    buf.get(start..)?
        .iter()
        .position(|b| *b != value)
        .map(|i| start + i)
}
