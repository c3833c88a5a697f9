//! A static handed out once as `&'static mut` (the DMA memory, the boot
//! information): its initial value is a constant, so it lies in `.bss` or
//! `.data` and the guest never spends instructions initialising or moving
//! it (string instructions are slow where ring-0 code is emulated).

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

/// A value reachable only through the one `&mut` [`TakeOnce::take`] hands
/// out.
pub struct TakeOnce<T> {
    taken: AtomicBool,
    cell: UnsafeCell<T>,
}

// SAFETY: the contents are reachable only through the one `&mut` that
// `take` hands out (guarded by the atomic flag).
unsafe impl<T> Sync for TakeOnce<T> {}

impl<T> TakeOnce<T> {
    /// Holds `value` until it is taken.
    pub const fn new(value: T) -> Self {
        TakeOnce {
            taken: AtomicBool::new(false),
            cell: UnsafeCell::new(value),
        }
    }

    /// The value, exclusively and for good; `None` after the first call.
    #[expect(
        clippy::mut_from_ref,
        reason = "the atomic flag makes the returned borrow unique"
    )]
    pub fn take(&'static self) -> Option<&'static mut T> {
        if self.taken.swap(true, Ordering::AcqRel) {
            return None;
        }
        // SAFETY: the flag was clear, so no other reference exists and none
        // will ever be created again.
        Some(unsafe { &mut *self.cell.get() })
    }
}
