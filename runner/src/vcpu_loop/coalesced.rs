//! Applying KVM's coalesced port writes: the vCPU drains the ring when
//! `KVM_RUN` returns ([`crate::kvm::vcpu::Vcpu::run`]), and the loop
//! applies the writes, in order, to the port bus before it handles the exit
//! that ended the guest's run, so every device sees exactly the sequence
//! of accesses it would have seen had each write exited.
//!
//! Which ports may be coalesced, and why that is safe, is the chipset's
//! declaration ([`crate::devices::chipset::COALESCED_ZONES`]); registering
//! them is [`crate::kvm::coalesced::register`]. Device state changes only
//! in exits today; a completion from another thread (an I/O thread) must
//! drain the ring too before it touches the device.

use crate::devices::bus::Access;
use crate::kvm::coalesced::CoalescedWrite;
use crate::metrics::exits::ExitStats;
use crate::vcpu_loop::dispatch::ExitContext;

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
}
