//! KVM coalesced PIO: port writes that have no immediate side effect are
//! not exits. KVM appends them to a ring shared with user space, and the
//! vCPU loop applies them, in order, to the port bus before it handles the
//! exit that ended the guest's run, so every device sees exactly the
//! sequence of accesses it would have seen had each write exited.
//!
//! A write may be coalesced only if, until the next exit, nothing but a
//! later read (an exit, which drains the ring first) could observe it: no
//! interrupt, no DMA, no output. Here that is
//!
//! - the IDE task file, 0x1F1–0x1F6 (Features .. Device): the controller
//!   only stores them. Whatever BAR4 is moved to, no bus-master command
//!   register (BAR4 + 0 or + 8, 16-byte aligned) can land there;
//! - the bus-master status (BMDMA_BASE + 2, write-1-to-clear of INT/ERR)
//!   and PRD pointer (BMDMA_BASE + 4 .. + 8), where the runner puts BAR4;
//!   moved elsewhere, those ports decode to nothing, and a coalesced write
//!   there is dropped just as late as it would have been dropped at once.
//!
//! The command register, BM command (START), Device Control, the data
//! port and everything else still exit. Device state changes only in
//! those exits today; a completion from another thread (an I/O thread)
//! must drain the ring too before it touches the device.
//!
//! Without `KVM_CAP_COALESCED_PIO` (or with `--no-coalesced-pio`) every
//! write exits as before.

use kvm_ioctls::{Cap, IoEventAddress, VmFd};

use crate::devices::bus::Access;
use crate::devices::chipset::BMDMA_BASE;
use crate::stats::ExitStats;
use crate::vmm::exit::ExitContext;

/// One coalesced port write, copied out of KVM's ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoalescedWrite {
    /// Port.
    pub port: u16,
    /// Bytes written (1, 2 or 4).
    pub len: u8,
    /// The bytes (`len` of them).
    pub data: [u8; 8],
}

/// The coalesced port ranges: (first port, ports).
pub const ZONES: [(u16, u32); 2] = [
    // IDE primary command block: Features, Count, LBA low/mid/high, Device.
    (0x1F1, 6),
    // BMDMA primary: status (+2), its device-specific neighbour (+3,
    // unclaimed), PRD pointer (+4..+8).
    (BMDMA_BASE + 2, 6),
];

/// Registers [`ZONES`] with `vm`; `Ok(false)` if KVM has no coalesced PIO.
pub fn register(vm: &VmFd) -> Result<bool, kvm_ioctls::Error> {
    if !vm.check_extension(Cap::CoalescedPio) {
        return Ok(false);
    }
    for (port, len) in ZONES {
        vm.register_coalesced_mmio(IoEventAddress::Pio(u64::from(port)), len)?;
    }
    Ok(true)
}

/// Applies the drained writes in order (and empties `pending`), counting
/// them apart from exits.
pub fn apply(pending: &mut Vec<CoalescedWrite>, ctx: &ExitContext<'_, '_>, stats: &mut ExitStats) {
    for w in pending.drain(..) {
        let data = w.data.get(..usize::from(w.len)).unwrap_or(&[]);
        stats.coalesced(w.port);
        match ctx.pio.write(w.port, data) {
            Access::Handled => {}
            Access::Unclaimed => {
                stats.unclaimed += 1;
                if ctx.trace {
                    eprintln!(
                        "vmdma: trace: unclaimed coalesced out port {:#x} {data:02x?}",
                        w.port
                    );
                }
            }
            Access::BadWidth => {
                stats.bad_width += 1;
                if ctx.trace {
                    eprintln!(
                        "vmdma: trace: refused width coalesced out port {:#x} {data:02x?}",
                        w.port
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use vmdma_core::dma::AddressSpace;
    use vmdma_core::memory::RegionMap;

    use super::*;
    use crate::devices::bus::{PioBus, PioDevice, Widths};
    use crate::devices::mmio::{GuestBounceArena, GuestSpace};

    #[derive(Default)]
    struct Log(Vec<(u16, Vec<u8>)>);
    impl PioDevice for Log {
        fn read(&mut self, _offset: u16, data: &mut [u8]) {
            data.fill(0);
        }
        fn write(&mut self, offset: u16, data: &[u8]) {
            self.0.push((offset, data.to_vec()));
        }
    }

    #[test]
    fn applies_in_order_and_counts() {
        let log = Arc::new(Mutex::new(Log::default()));
        let mut bus = PioBus::new();
        bus.insert(0x1F0, 8, Widths::BYTE, log.clone()).unwrap();
        let bounce = GuestBounceArena::new();
        let space: GuestSpace<'_> = AddressSpace::new(RegionMap::new(), &bounce);
        let ctx = ExitContext {
            pio: &bus,
            mmio: &space,
            trace: false,
        };
        let w = |port, byte| CoalescedWrite {
            port,
            len: 1,
            data: [byte, 0, 0, 0, 0, 0, 0, 0],
        };
        let mut pending = vec![w(0x1F2, 8), w(0x1F6, 0xE0), w(0x300, 1)];
        let mut st = ExitStats::default();
        apply(&mut pending, &ctx, &mut st);
        assert!(pending.is_empty());
        assert_eq!(log.lock().unwrap().0, vec![(2, vec![8]), (6, vec![0xE0])]);
        assert_eq!(st.coalesced_total(), 3);
        assert_eq!(st.unclaimed, 1);
        assert_eq!(st.total(), 0, "coalesced writes are not exits");
    }

    #[test]
    fn zones_cover_only_side_effect_free_ports() {
        for (port, len) in ZONES {
            let ports = port..port + len as u16;
            for p in [0x1F0, 0x1F7, 0x3F6, BMDMA_BASE] {
                assert!(!ports.contains(&p), "{p:#x} has side effects");
            }
        }
    }
}
