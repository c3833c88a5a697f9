//! Bulk access to guest-physical memory that is not a Rust object, with
//! string instructions (one `rep` instruction instead of a byte loop on an
//! emulating host):
//!
//! - the guest image's loaded bytes (`.text` to the end of `.data`), copied
//!   and compared without forming references to the statics they hold;
//! - free RAM outside the image (sentinel areas below 1 MiB), filled and
//!   scanned.
//!
//! The low 4 GiB are identity-mapped, so a physical address is a pointer.

use core::arch::asm;
use core::ptr;

use super::mmio::{image_range, overlaps_image};
use vmdma_guest::cmdline::IDENTITY_MAP_END;

unsafe extern "C" {
    static __bss_start: u8;
}

/// The loaded part of the guest image, `[start, end)`: everything the
/// loader copied from the file (`.text`, `.rodata`, `.data`), not `.bss`.
pub fn loaded_image() -> (u64, u64) {
    let (start, _) = image_range();
    let end = ptr::addr_of!(__bss_start) as u64;
    (start, end)
}

/// Copies the loaded image into the start of `dst`; returns its length, or
/// `None` (copying nothing) if `dst` is too small.
pub fn copy_image(dst: &mut [u8]) -> Option<usize> {
    let (start, end) = loaded_image();
    let n = usize::try_from(end.checked_sub(start)?).ok()?;
    if n > dst.len() || !n.is_multiple_of(8) {
        return None;
    }
    // SAFETY: reads `n` bytes of the loaded image (mapped, part of this
    // program) through asm without forming a Rust reference to the statics
    // it holds; writes `n <= dst.len()` bytes of the exclusively borrowed
    // `dst`, which lies in `.bss`, outside the range read.
    unsafe {
        asm!(
            "rep movsq",
            inout("rcx") n / 8 => _,
            inout("rdi") dst.as_mut_ptr() => _,
            inout("rsi") start as *const u8 => _,
            options(nostack, preserves_flags),
        );
    }
    Some(n)
}

/// Offset of the first 8-byte word at which the loaded image differs from
/// `copy` (as made by [`copy_image`]); `None` if equal, or if `copy` is
/// shorter than the image.
pub fn image_difference(copy: &[u8]) -> Option<usize> {
    let (start, end) = loaded_image();
    let n = usize::try_from(end.checked_sub(start)?).ok()?;
    if n > copy.len() || n < 8 {
        return None;
    }
    let words = n / 8;
    let left: usize;
    let equal: u8;
    // SAFETY: reads `8 * words <= n` bytes of the image and of `copy`
    // through asm (no references into the image are formed).
    unsafe {
        asm!(
            "repe cmpsq",
            "sete {eq}",
            eq = out(reg_byte) equal,
            inout("rcx") words => left,
            inout("rsi") start as *const u8 => _,
            inout("rdi") copy.as_ptr() => _,
            options(nostack, readonly),
        );
    }
    if equal != 0 {
        None
    } else {
        Some((words - left - 1) * 8)
    }
}

/// Whether `[addr, addr + len)` is 8-byte aligned, identity-mapped, and
/// outside the guest image.
fn free_range(addr: u64, len: u64) -> bool {
    addr.is_multiple_of(8)
        && len.is_multiple_of(8)
        && addr
            .checked_add(len)
            .is_some_and(|end| end <= IDENTITY_MAP_END)
        && !overlaps_image(addr, len)
}

/// Fills `[addr, addr + len)` with `byte`. Only for RAM the platform
/// reported and nothing else uses (the caller's promise); the range must be
/// 8-byte aligned, mapped and outside the image, else nothing is written
/// and `false` returned.
pub fn fill(addr: u64, len: u64, byte: u8) -> bool {
    if !free_range(addr, len) {
        return false;
    }
    let Ok(words) = usize::try_from(len / 8) else {
        return false;
    };
    // SAFETY: the range is mapped and outside the image (checked), so no
    // Rust object is written; the caller promises nothing else uses it.
    unsafe {
        asm!(
            "rep stosq",
            inout("rcx") words => _,
            inout("rdi") addr as *mut u8 => _,
            in("rax") u64::from_ne_bytes([byte; 8]),
            options(nostack, preserves_flags),
        );
    }
    true
}

/// The address of the first 8-byte word in `[addr, addr + len)` that is not
/// `byte` repeated; `Ok(None)` if all are, `Err(())` if the range is not
/// aligned, mapped and outside the image.
pub fn scan(addr: u64, len: u64, byte: u8) -> Result<Option<u64>, ()> {
    if !free_range(addr, len) {
        return Err(());
    }
    let words = usize::try_from(len / 8).map_err(|_| ())?;
    if words == 0 {
        return Ok(None);
    }
    let left: usize;
    let equal: u8;
    // SAFETY: reads the mapped range (checked) through asm; no Rust object
    // is involved.
    unsafe {
        asm!(
            "repe scasq",
            "sete {eq}",
            eq = out(reg_byte) equal,
            inout("rcx") words => left,
            inout("rdi") addr as *const u8 => _,
            in("rax") u64::from_ne_bytes([byte; 8]),
            options(nostack, readonly),
        );
    }
    if equal != 0 {
        Ok(None)
    } else {
        Ok(Some(addr + 8 * (words - left - 1) as u64))
    }
}
