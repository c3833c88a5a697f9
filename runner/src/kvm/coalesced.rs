//! KVM coalesced PIO, the primitive: registering port zones whose writes
//! KVM appends to a ring shared with user space instead of exiting, and the
//! record of one such write. Which ports may be coalesced is the device
//! model's decision (`devices::chipset::COALESCED_ZONES` says why each is
//! safe); applying the writes, in order, before the exit that ended the
//! guest's run is the vCPU loop's (`vcpu_loop::coalesced`).
//!
//! Without `KVM_CAP_COALESCED_PIO` (or with `--no-coalesced-pio`) every
//! write exits as before.

use std::sync::Arc;

use kvm_ioctls::{Cap, IoEventAddress, VmFd};

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

/// Registers `zones` (first port, ports) with `vm`; `Ok(false)` if KVM has
/// no coalesced PIO.
pub fn register(vm: &VmFd, zones: &[(u16, u32)]) -> Result<bool, kvm_ioctls::Error> {
    if !vm.check_extension(Cap::CoalescedPio) {
        return Ok(false);
    }
    for &(port, len) in zones {
        vm.register_coalesced_mmio(IoEventAddress::Pio(u64::from(port)), len)?;
    }
    Ok(true)
}

/// One coalesced zone a device switches on and off while the guest runs
/// (COM1's transmit register: coalesced only while the UART raises no
/// interrupt, see `devices::serial`). Switched from the vCPU thread while
/// it handles an exit, so every write KVM coalesced before the switch has
/// been applied already.
#[derive(Debug)]
pub struct SwitchedZone {
    vm: Arc<VmFd>,
    port: u16,
    len: u32,
    on: bool,
}

impl SwitchedZone {
    /// The zone (`port`, `len` ports), off.
    pub fn new(vm: Arc<VmFd>, port: u16, len: u32) -> Self {
        SwitchedZone {
            vm,
            port,
            len,
            on: false,
        }
    }

    /// Registers or unregisters the zone if that changes anything. KVM
    /// refuses either only when it cannot allocate its device list: a
    /// refused registration leaves the zone off (every write exits, as
    /// without coalescing), a refused removal leaves it on.
    pub fn set(&mut self, on: bool) {
        if on == self.on {
            return;
        }
        let addr = IoEventAddress::Pio(u64::from(self.port));
        let r = if on {
            self.vm.register_coalesced_mmio(addr, self.len)
        } else {
            self.vm.unregister_coalesced_mmio(addr, self.len)
        };
        if r.is_ok() {
            self.on = on;
        }
    }
}
