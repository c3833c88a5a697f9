//! MMIO re-entrancy tracking, per requester.
//!
//! A device whose MMIO handler is entered while that same device is in the
//! middle of a DMA access would see its own state mid-update (the
//! re-entrancy class: CVE-2021-3750, CVE-2023-0330). The memory layer
//! therefore records which requesters are *inside* an MMIO dispatch they
//! started (a bounce pre-fill or write-back, a DMA read or write of MMIO)
//! and refuses to dispatch into a region owned by one of them.
//!
//! Tracking is per requester, not per region: two threads that touch the
//! same region at once (a vCPU's MMIO exit and another device's bounce
//! write-back, say) are concurrent accesses, which handlers must tolerate
//! (they take `&self`), not re-entrancy.
//!
//! The host (`DeviceId::HOST`: vCPU exits, the VMM itself) owns no region
//! and is neither tracked nor refused on this ground: its accesses are
//! always the root of a call chain, never nested inside a handler. (A
//! handler that does DMA must use its own device id, not the host's.) The
//! core has no notion of threads, so device-to-device DMA is judged
//! conservatively: a device's access to the MMIO of another device that is
//! inside a dispatch of its own is refused even if the two run on
//! different threads.

use core::sync::atomic::{AtomicU16, Ordering};

use super::error::MemError;
use super::ids::DeviceId;

/// Dispatches by (non-host) requesters that may be in progress at once.
/// One per thread doing device DMA is plenty; more is a typed error.
pub const MAX_CONCURRENT_DISPATCHES: usize = 8;

/// Slot value of a free slot (`DeviceId` 0 is never handed out).
const FREE: u16 = 0;

/// The requesters currently inside an MMIO dispatch.
#[derive(Debug)]
pub(crate) struct Engaged {
    slots: [AtomicU16; MAX_CONCURRENT_DISPATCHES],
}

/// Marks one requester as dispatching until dropped.
#[derive(Debug)]
pub(crate) struct Claim<'a> {
    slot: Option<&'a AtomicU16>,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if let Some(s) = self.slot {
            s.store(FREE, Ordering::Release);
        }
    }
}

impl Engaged {
    pub(crate) const fn new() -> Self {
        Engaged {
            slots: [const { AtomicU16::new(FREE) }; MAX_CONCURRENT_DISPATCHES],
        }
    }

    fn contains(&self, id: DeviceId) -> bool {
        self.slots
            .iter()
            .any(|s| s.load(Ordering::Acquire) == id.raw())
    }

    /// Starts a dispatch by `requester` into a region owned by `owner`.
    /// A device is refused the region of its own or of a device that is
    /// inside a dispatch of its own; the host never is.
    pub(crate) fn enter(
        &self,
        requester: DeviceId,
        owner: Option<DeviceId>,
        addr: u64,
    ) -> Result<Claim<'_>, MemError> {
        if requester == DeviceId::HOST {
            return Ok(Claim { slot: None });
        }
        if let Some(o) = owner
            && (o == requester || self.contains(o))
        {
            return Err(MemError::Reentrant { addr });
        }
        for s in &self.slots {
            if s.compare_exchange(FREE, requester.raw(), Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                return Ok(Claim { slot: Some(s) });
            }
        }
        Err(MemError::DispatchLimit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_entry_into_an_engaged_owner_is_refused() {
        let e = Engaged::new();
        let (a, b) = (DeviceId::test(1), DeviceId::test(2));
        assert_eq!(
            e.enter(a, Some(a), 0x10).err(),
            Some(MemError::Reentrant { addr: 0x10 })
        );
        let outer = e.enter(a, Some(b), 0).unwrap();
        // b's handler does DMA as b into a's region: a is mid-dispatch.
        assert_eq!(
            e.enter(b, Some(a), 0x20).err(),
            Some(MemError::Reentrant { addr: 0x20 })
        );
        // Unowned regions are fine; the host is never refused.
        let inner = e.enter(b, None, 0).unwrap();
        let host = e.enter(DeviceId::HOST, Some(b), 0).unwrap();
        let host2 = e.enter(DeviceId::HOST, Some(a), 0).unwrap();
        drop((inner, host, host2, outer));
        assert!(e.enter(b, Some(a), 0).is_ok());
    }

    #[test]
    fn slots_are_bounded_and_freed() {
        let e = Engaged::new();
        let claims: std::vec::Vec<_> = (1..=MAX_CONCURRENT_DISPATCHES as u16)
            .map(|i| e.enter(DeviceId::test(i), None, 0).unwrap())
            .collect();
        assert_eq!(
            e.enter(DeviceId::test(99), None, 0).err(),
            Some(MemError::DispatchLimit)
        );
        assert!(
            e.enter(DeviceId::HOST, None, 0).is_ok(),
            "host is untracked"
        );
        drop(claims);
        assert!(e.enter(DeviceId::test(99), None, 0).is_ok());
    }
}
