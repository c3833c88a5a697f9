//! What KVM holds of a VM, for snapshots: every register class of a vCPU
//! KVM exposes (general, special, FPU/XSAVE, XCRs, MSRs with the TSC and
//! kvmclock, local APIC, pending events, MP state, debug registers), and
//! the in-kernel PIC, IOAPIC, PIT and clock.
//!
//! As bytes: each KVM structure is written as its own bytes (kvm-bindings'
//! `zerocopy` derives: no `unsafe` here for that), in a fixed order with
//! no padding between them; reading checks every length, and KVM itself
//! checks the values when they are set (an impossible state is an
//! `EINVAL`, reported, never a crash).
//!
//! One `unsafe` call: `KVM_SET_XSAVE` with the 4096-byte `kvm_xsave`, which
//! the kernel may read past if the vCPU's XSAVE area is larger (AMX). The
//! size KVM reports (`KVM_CAP_XSAVE2`) is checked first; a larger area is
//! refused ([`StateError::XsaveTooLarge`]).
#![allow(unsafe_code)]

use kvm_bindings::{
    KVM_IRQCHIP_IOAPIC, KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_SLAVE, Msrs, kvm_clock_data,
    kvm_debugregs, kvm_irqchip, kvm_lapic_state, kvm_mp_state, kvm_msr_entry, kvm_pit_state2,
    kvm_regs, kvm_sregs, kvm_vcpu_events, kvm_xcrs, kvm_xsave,
};
use kvm_ioctls::{Cap, Kvm, VcpuFd, VmFd};
use thiserror::Error;
use zerocopy::{FromBytes, IntoBytes};

/// Why state could not be read from or put into KVM, or parsed.
#[derive(Debug, Error)]
pub enum StateError {
    /// A KVM ioctl failed (on restore: KVM refused the value).
    #[error("{what} failed: {source}")]
    Ioctl {
        /// The operation.
        what: &'static str,
        /// The KVM error.
        source: kvm_ioctls::Error,
    },
    /// Saved bytes end inside a structure, or go on past the last.
    #[error("vCPU/VM state: {0}")]
    Bytes(&'static str),
    /// KVM set fewer MSRs than saved (one it does not accept).
    #[error("KVM_SET_MSRS set {set} of {all} MSRs (MSR {index:#x} refused)")]
    Msrs {
        /// MSRs set.
        set: usize,
        /// MSRs given.
        all: usize,
        /// The first one refused.
        index: u32,
    },
    /// More MSRs than KVM can take in one call.
    #[error("{0} MSRs in the saved state: more than KVM takes")]
    TooManyMsrs(usize),
    /// The XSAVE area is larger than `kvm_xsave` (AMX).
    #[error("the vCPU's XSAVE area is {0} bytes; snapshots handle at most 4096")]
    XsaveTooLarge(usize),
}

fn ioctl<T>(what: &'static str, r: Result<T, kvm_ioctls::Error>) -> Result<T, StateError> {
    r.map_err(|source| StateError::Ioctl { what, source })
}

/// The most MSRs one state holds (KVM's index list is about 150 here).
pub const MAX_MSRS: usize = 1024;

/// The MSRs to save: KVM's list of MSRs it can save and restore
/// (`KVM_GET_MSR_INDEX_LIST`), read once when the VM is made (the vCPU
/// thread's sandbox has no `/dev/kvm` ioctl).
pub fn msr_list(kvm: &Kvm) -> Result<Vec<u32>, StateError> {
    let list = ioctl("KVM_GET_MSR_INDEX_LIST", kvm.get_msr_index_list())?;
    Ok(list.as_slice().to_vec())
}

/// The size of the vCPU's XSAVE area (`KVM_CAP_XSAVE2`; 4096 where the
/// capability is absent).
pub fn xsave_size(vm: &VmFd) -> usize {
    match usize::try_from(vm.check_extension_int(Cap::Xsave2)) {
        Ok(n) if n > 0 => n,
        _ => std::mem::size_of::<kvm_xsave>(),
    }
}

/// A vCPU's registers.
#[derive(Debug)]
pub struct VcpuState {
    regs: kvm_regs,
    sregs: kvm_sregs,
    xsave: kvm_xsave,
    xcrs: kvm_xcrs,
    msrs: Vec<kvm_msr_entry>,
    lapic: kvm_lapic_state,
    events: kvm_vcpu_events,
    mp_state: kvm_mp_state,
    debugregs: kvm_debugregs,
}

/// The in-kernel devices and clock of the VM.
#[derive(Clone, Debug)]
pub struct VmState {
    pic_master: kvm_irqchip,
    pic_slave: kvm_irqchip,
    ioapic: kvm_irqchip,
    pit: kvm_pit_state2,
    clock: kvm_clock_data,
}

/// Reads MSRs in `list` that KVM returns; KVM stops at the first it cannot
/// read, so the rest are tried after it (an MSR the vCPU does not have is
/// left out, as Firecracker and QEMU do).
fn read_msrs(fd: &VcpuFd, list: &[u32]) -> Result<Vec<kvm_msr_entry>, StateError> {
    let mut out = Vec::with_capacity(list.len());
    let mut rest = list;
    while !rest.is_empty() {
        let entries: Vec<kvm_msr_entry> = rest
            .iter()
            .map(|&index| kvm_msr_entry {
                index,
                ..Default::default()
            })
            .collect();
        let mut msrs =
            Msrs::from_entries(&entries).map_err(|_| StateError::TooManyMsrs(entries.len()))?;
        let n = ioctl("KVM_GET_MSRS", fd.get_msrs(&mut msrs))?;
        out.extend_from_slice(msrs.as_slice().get(..n).unwrap_or(&[]));
        // Skip the one it stopped at.
        rest = rest.get(n + 1..).unwrap_or(&[]);
    }
    Ok(out)
}

impl VcpuState {
    /// Reads the state of the vCPU `fd` (stopped: not in `KVM_RUN`), with
    /// the MSRs of `msr_list` and an XSAVE area of `xsave_size` bytes.
    pub fn read(fd: &VcpuFd, msr_list: &[u32], xsave_size: usize) -> Result<Self, StateError> {
        if xsave_size > std::mem::size_of::<kvm_xsave>() {
            return Err(StateError::XsaveTooLarge(xsave_size));
        }
        // Pending events first (KVM's advice: before the registers that
        // depend on them).
        let events = ioctl("KVM_GET_VCPU_EVENTS", fd.get_vcpu_events())?;
        let mp_state = ioctl("KVM_GET_MP_STATE", fd.get_mp_state())?;
        let regs = ioctl("KVM_GET_REGS", fd.get_regs())?;
        let sregs = ioctl("KVM_GET_SREGS", fd.get_sregs())?;
        let xsave = ioctl("KVM_GET_XSAVE", fd.get_xsave())?;
        let xcrs = ioctl("KVM_GET_XCRS", fd.get_xcrs())?;
        let debugregs = ioctl("KVM_GET_DEBUGREGS", fd.get_debug_regs())?;
        let lapic = ioctl("KVM_GET_LAPIC", fd.get_lapic())?;
        let msrs = read_msrs(fd, msr_list)?;
        Ok(VcpuState {
            regs,
            sregs,
            xsave,
            xcrs,
            msrs,
            lapic,
            events,
            mp_state,
            debugregs,
        })
    }

    /// Puts the state into the vCPU `fd` (made like the saved one, before
    /// its first `KVM_RUN`). The order is QEMU's and Firecracker's:
    /// special registers (CR0/CR4/EFER decide how the rest is read), then
    /// the others, MSRs before the LAPIC, pending events last.
    pub fn write(&self, fd: &VcpuFd, xsave_size: usize) -> Result<(), StateError> {
        if xsave_size > std::mem::size_of::<kvm_xsave>() {
            return Err(StateError::XsaveTooLarge(xsave_size));
        }
        ioctl("KVM_SET_SREGS", fd.set_sregs(&self.sregs))?;
        ioctl("KVM_SET_REGS", fd.set_regs(&self.regs))?;
        // SAFETY: KVM reads the XSAVE area of the vCPU's size from the
        // pointer; that size was checked above to fit in `kvm_xsave`, so the
        // kernel reads only inside `self.xsave`.
        ioctl("KVM_SET_XSAVE", unsafe { fd.set_xsave(&self.xsave) })?;
        ioctl("KVM_SET_XCRS", fd.set_xcrs(&self.xcrs))?;
        ioctl("KVM_SET_DEBUGREGS", fd.set_debug_regs(&self.debugregs))?;
        let msrs =
            Msrs::from_entries(&self.msrs).map_err(|_| StateError::TooManyMsrs(self.msrs.len()))?;
        let set = ioctl("KVM_SET_MSRS", fd.set_msrs(&msrs))?;
        if set != self.msrs.len() {
            return Err(StateError::Msrs {
                set,
                all: self.msrs.len(),
                index: self.msrs.get(set).map_or(0, |m| m.index),
            });
        }
        ioctl("KVM_SET_LAPIC", fd.set_lapic(&self.lapic))?;
        ioctl("KVM_SET_MP_STATE", fd.set_mp_state(self.mp_state))?;
        ioctl("KVM_SET_VCPU_EVENTS", fd.set_vcpu_events(&self.events))?;
        Ok(())
    }

    /// The state as bytes (see the module docs).
    pub fn to_bytes(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.regs.as_bytes());
        out.extend_from_slice(self.sregs.as_bytes());
        out.extend_from_slice(self.xsave.as_bytes());
        out.extend_from_slice(self.xcrs.as_bytes());
        out.extend_from_slice(self.lapic.as_bytes());
        out.extend_from_slice(self.events.as_bytes());
        out.extend_from_slice(self.mp_state.as_bytes());
        out.extend_from_slice(self.debugregs.as_bytes());
        out.extend_from_slice(&(self.msrs.len() as u32).to_le_bytes());
        for m in &self.msrs {
            out.extend_from_slice(m.as_bytes());
        }
    }

    /// Parses [`VcpuState::to_bytes`]'s output; every length is checked.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StateError> {
        let mut r = Cursor(bytes);
        let regs = r.take()?;
        let sregs = r.take()?;
        let xsave = r.take()?;
        let xcrs = r.take()?;
        let lapic = r.take()?;
        let events = r.take()?;
        let mp_state = r.take()?;
        let debugregs = r.take()?;
        let n = u32::from_le_bytes(r.take()?) as usize;
        if n > MAX_MSRS {
            return Err(StateError::TooManyMsrs(n));
        }
        let msrs = (0..n).map(|_| r.take()).collect::<Result<Vec<_>, _>>()?;
        r.end()?;
        Ok(VcpuState {
            regs,
            sregs,
            xsave,
            xcrs,
            msrs,
            lapic,
            events,
            mp_state,
            debugregs,
        })
    }

    /// The instruction pointer (for messages and tests).
    pub fn rip(&self) -> u64 {
        self.regs.rip
    }
}

fn irqchip(vm: &VmFd, id: u32, what: &'static str) -> Result<kvm_irqchip, StateError> {
    let mut chip = kvm_irqchip {
        chip_id: id,
        ..Default::default()
    };
    ioctl(what, vm.get_irqchip(&mut chip))?;
    Ok(chip)
}

impl VmState {
    /// Reads the irqchip, PIT and clock of `vm`.
    pub fn read(vm: &VmFd) -> Result<Self, StateError> {
        Ok(VmState {
            pic_master: irqchip(vm, KVM_IRQCHIP_PIC_MASTER, "KVM_GET_IRQCHIP (PIC master)")?,
            pic_slave: irqchip(vm, KVM_IRQCHIP_PIC_SLAVE, "KVM_GET_IRQCHIP (PIC slave)")?,
            ioapic: irqchip(vm, KVM_IRQCHIP_IOAPIC, "KVM_GET_IRQCHIP (IOAPIC)")?,
            pit: ioctl("KVM_GET_PIT2", vm.get_pit2())?,
            clock: ioctl("KVM_GET_CLOCK", vm.get_clock())?,
        })
    }

    /// Puts them into `vm` (made like the saved one).
    pub fn write(&self, vm: &VmFd) -> Result<(), StateError> {
        for (chip, id) in [
            (&self.pic_master, KVM_IRQCHIP_PIC_MASTER),
            (&self.pic_slave, KVM_IRQCHIP_PIC_SLAVE),
            (&self.ioapic, KVM_IRQCHIP_IOAPIC),
        ] {
            if chip.chip_id != id {
                return Err(StateError::Bytes("an irqchip of the wrong kind"));
            }
            ioctl("KVM_SET_IRQCHIP", vm.set_irqchip(chip))?;
        }
        ioctl("KVM_SET_PIT2", vm.set_pit2(&self.pit))?;
        // Only the clock value: KVM refuses flags it did not set itself.
        let clock = kvm_clock_data {
            clock: self.clock.clock,
            ..Default::default()
        };
        ioctl("KVM_SET_CLOCK", vm.set_clock(&clock))?;
        Ok(())
    }

    /// The state as bytes.
    pub fn to_bytes(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.pic_master.as_bytes());
        out.extend_from_slice(self.pic_slave.as_bytes());
        out.extend_from_slice(self.ioapic.as_bytes());
        out.extend_from_slice(self.pit.as_bytes());
        out.extend_from_slice(self.clock.as_bytes());
    }

    /// Parses [`VmState::to_bytes`]'s output.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StateError> {
        let mut r = Cursor(bytes);
        let s = VmState {
            pic_master: r.take()?,
            pic_slave: r.take()?,
            ioapic: r.take()?,
            pit: r.take()?,
            clock: r.take()?,
        };
        r.end()?;
        Ok(s)
    }
}

/// Reads structures off the front of a byte slice.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn take<T: FromBytes>(&mut self) -> Result<T, StateError> {
        let (v, rest) = T::read_from_prefix(self.0).map_err(|_| StateError::Bytes("truncated"))?;
        self.0 = rest;
        Ok(v)
    }

    fn end(&self) -> Result<(), StateError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(StateError::Bytes("bytes after the last structure"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_and_lengths_are_checked() {
        let s = VcpuState {
            regs: kvm_regs {
                rip: 0x1234,
                ..Default::default()
            },
            sregs: Default::default(),
            xsave: Default::default(),
            xcrs: Default::default(),
            msrs: vec![kvm_msr_entry {
                index: 0x10,
                data: 77,
                ..Default::default()
            }],
            lapic: Default::default(),
            events: Default::default(),
            mp_state: Default::default(),
            debugregs: Default::default(),
        };
        let mut b = Vec::new();
        s.to_bytes(&mut b);
        let t = VcpuState::from_bytes(&b).unwrap();
        assert_eq!(t.rip(), 0x1234);
        assert_eq!(t.msrs[0].data, 77);
        for cut in [0, 1, b.len() / 2, b.len() - 1] {
            assert!(VcpuState::from_bytes(&b[..cut]).is_err(), "{cut}");
        }
        b.push(0);
        assert!(VcpuState::from_bytes(&b).is_err(), "trailing byte");
        // A huge MSR count is refused before anything is allocated.
        let mut b = Vec::new();
        s.to_bytes(&mut b);
        let at = b.len() - 4 - std::mem::size_of::<kvm_msr_entry>();
        b[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            VcpuState::from_bytes(&b),
            Err(StateError::TooManyMsrs(_))
        ));
    }
}
