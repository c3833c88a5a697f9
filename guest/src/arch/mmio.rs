//! Access to guest-physical memory outside the guest image: the PVH start
//! info and command line (read once at boot), the local APIC, and the
//! vmdma MMIO scratch region.
//!
//! The low 4 GiB are identity-mapped, so a physical address is also a
//! pointer. Accesses are volatile (each is one load/store, as a device or an
//! MMIO handler expects). Callers pass addresses the platform announced;
//! reading an unbacked address returns whatever the platform returns for a
//! hole, it cannot corrupt the guest.

use core::ptr;

use vmdma_guest::cmdline::IDENTITY_MAP_END;

/// Whether `[addr, addr + len)` lies inside the identity map.
fn mapped(addr: u64, len: u64) -> bool {
    addr.checked_add(len)
        .is_some_and(|end| end <= IDENTITY_MAP_END)
}

/// The address as a pointer; only called after [`mapped`] succeeded.
fn as_ptr(addr: u64) -> Option<usize> {
    usize::try_from(addr).ok()
}

/// Copies `out.len()` bytes of guest-physical memory at `addr` into `out`
/// with one `rep movsb` (byte reads in address order, one instruction: it
/// runs at boot, where every guest instruction may be emulated); returns
/// `false` (copying nothing) if the range is not identity-mapped. Must not
/// be used on the guest image's own memory (the callers read
/// loader-provided structures, which lie outside it).
pub fn read_phys(addr: u64, out: &mut [u8]) -> bool {
    let len = out.len() as u64;
    let Some(base) = as_ptr(addr).filter(|_| mapped(addr, len)) else {
        return false;
    };
    // SAFETY: `base .. base + len` is inside the identity map (checked), so
    // the loads cannot fault; the memory is not a Rust object (loader data
    // outside the image), and `out` is exclusively borrowed and exactly
    // `len` bytes long. DF is clear per the asm! contract.
    unsafe {
        core::arch::asm!(
            "rep movsb",
            inout("rcx") out.len() => _,
            inout("rsi") base => _,
            inout("rdi") out.as_mut_ptr() => _,
            options(nostack, preserves_flags),
        );
    }
    true
}

/// Reads the 32-bit value at guest-physical `addr` (4-byte aligned, mapped);
/// `None` otherwise.
pub fn read32(addr: u64) -> Option<u32> {
    if !addr.is_multiple_of(4) || !mapped(addr, 4) {
        return None;
    }
    let p = as_ptr(addr)? as *const u32;
    // SAFETY: aligned and identity-mapped (checked); see the module doc.
    Some(unsafe { ptr::read_volatile(p) })
}

/// Writes the 32-bit `value` at guest-physical `addr` (4-byte aligned,
/// mapped, outside the guest image); returns `false` otherwise.
pub fn write32(addr: u64, value: u32) -> bool {
    if !addr.is_multiple_of(4) || !mapped(addr, 4) || overlaps_image(addr, 4) {
        return false;
    }
    let Some(p) = as_ptr(addr) else { return false };
    // SAFETY: aligned, identity-mapped and not guest-image memory (checked),
    // so no Rust object is modified.
    unsafe { ptr::write_volatile(p as *mut u32, value) };
    true
}

/// Reads the 64-bit value at guest-physical `addr` (8-byte aligned, mapped).
pub fn read64(addr: u64) -> Option<u64> {
    if !addr.is_multiple_of(8) || !mapped(addr, 8) {
        return None;
    }
    let p = as_ptr(addr)? as *const u64;
    // SAFETY: aligned and identity-mapped (checked); see the module doc.
    Some(unsafe { ptr::read_volatile(p) })
}

/// Writes the 64-bit `value` at guest-physical `addr` (8-byte aligned,
/// mapped, outside the guest image); returns `false` otherwise.
pub fn write64(addr: u64, value: u64) -> bool {
    if !addr.is_multiple_of(8) || !mapped(addr, 8) || overlaps_image(addr, 8) {
        return false;
    }
    let Some(p) = as_ptr(addr) else { return false };
    // SAFETY: aligned, identity-mapped and not guest-image memory (checked).
    unsafe { ptr::write_volatile(p as *mut u64, value) };
    true
}

unsafe extern "C" {
    static __image_start: u8;
    static __image_end: u8;
}

/// The guest image's physical range `[start, end)` (from the linker script).
pub fn image_range() -> (u64, u64) {
    let start = ptr::addr_of!(__image_start) as u64;
    let end = ptr::addr_of!(__image_end) as u64;
    (start, end)
}

/// Whether `[addr, addr + len)` intersects the guest image.
pub fn overlaps_image(addr: u64, len: u64) -> bool {
    let (start, end) = image_range();
    let Some(last) = addr.checked_add(len) else {
        return true;
    };
    addr < end && start < last
}
