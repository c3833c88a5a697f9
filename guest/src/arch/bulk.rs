//! Bulk DMA memory for the benchmarks: one range of RAM beyond the guest
//! image, found in the PVH memory map and handed out once as a
//! `&'static mut [u8]`.
//!
//! Nothing else uses that memory: the image (code, data, page tables,
//! stack, the static DMA memory) ends at `__image_end`, and what the loader
//! put in RAM (start info, command line, memory map) lies below the image
//! or was copied at boot ([`crate::platform::BootInfo`]). The range is in
//! the write-back part of the identity map (below 3 GiB).

use core::sync::atomic::{AtomicBool, Ordering};

use vmdma_guest::ram;
use vmdma_guest::start_info::MemRange;

use super::mmio::image_range;

/// Alignment of the range (so that 64 KiB PRD entries never cross a
/// 64 KiB boundary).
pub const BULK_ALIGN: u64 = 0x1_0000;
/// End of the write-back identity map.
const WRITE_BACK_END: u64 = 3 << 30;

static TAKEN: AtomicBool = AtomicBool::new(false);

/// `len` bytes of RAM from `memmap` above the image, 64 KiB aligned, once;
/// `None` if none fits or it was taken before. The memory holds whatever
/// was there (zeros on a fresh VM).
pub fn take(memmap: &[MemRange], len: usize) -> Option<&'static mut [u8]> {
    let (_, image_end) = image_range();
    let addr = ram::place(memmap, image_end, len as u64, BULK_ALIGN, WRITE_BACK_END)?;
    let ptr = usize::try_from(addr).ok()? as *mut u8;
    if TAKEN.swap(true, Ordering::AcqRel) {
        return None;
    }
    // SAFETY: `addr .. addr + len` is RAM the loader announced, inside the
    // identity map (below 3 GiB, write-back), and not part of the image;
    // nothing else in the guest refers to it, and the flag makes this the
    // only reference ever created.
    Some(unsafe { core::slice::from_raw_parts_mut(ptr, len) })
}

/// Plain integers that any bit pattern is a valid value of.
pub trait Word: Copy + sealed::Sealed {}
impl Word for u32 {}
impl Word for u64 {}

mod sealed {
    pub trait Sealed {}
    impl Sealed for u32 {}
    impl Sealed for u64 {}
}

/// Splits `n` words of `T` off the front of `bytes` (after padding to
/// `T`'s alignment); returns them and the rest, or `None` if they do not
/// fit.
pub fn split_words<T: Word>(
    bytes: &'static mut [u8],
    n: usize,
) -> Option<(&'static mut [T], &'static mut [u8])> {
    let pad = bytes.as_ptr().align_offset(core::mem::align_of::<T>());
    let end = n.checked_mul(core::mem::size_of::<T>())?.checked_add(pad)?;
    if end > bytes.len() {
        return None;
    }
    let (front, rest) = bytes.split_at_mut(end);
    let front = front.get_mut(pad..)?;
    // SAFETY: `T` is a plain integer (sealed `Word`): every bit pattern of
    // the bytes is a valid `T`; `align_to_mut` reinterprets only the
    // aligned middle part, which the checks below require to be all of it.
    let (head, words, tail) = unsafe { front.align_to_mut::<T>() };
    if !head.is_empty() || !tail.is_empty() || words.len() != n {
        return None;
    }
    Some((words, rest))
}
