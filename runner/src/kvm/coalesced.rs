//! KVM coalesced PIO, the primitive: registering port zones whose writes
//! KVM appends to a ring shared with user space instead of exiting, and the
//! record of one such write. Which ports may be coalesced is the device
//! model's decision (`devices::chipset::COALESCED_ZONES` says why each is
//! safe); applying the writes, in order, before the exit that ended the
//! guest's run is the vCPU loop's (`vcpu_loop::coalesced`).
//!
//! Without `KVM_CAP_COALESCED_PIO` (or with `--no-coalesced-pio`) every
//! write exits as before.

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
