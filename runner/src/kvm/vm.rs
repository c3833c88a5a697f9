//! The VM: `/dev/kvm`, the VM file descriptor with its in-kernel irqchip
//! (PIC + IOAPIC) and PIT, and guest RAM.

use std::sync::Arc;

use kvm_bindings::{KVM_PIT_SPEAKER_DUMMY, kvm_pit_config};
use kvm_ioctls::{Kvm, VmFd};
use thiserror::Error;

use crate::kvm::memory::{GuestRam, MemoryError};
use crate::kvm::state::{self, StateError, VcpuState, VmState};
use crate::kvm::vcpu::{Vcpu, VcpuError};
use crate::layout::{KVM_IDENTITY_MAP_ADDR, KVM_TSS_ADDR};

/// VM creation errors.
#[derive(Debug, Error)]
pub enum VmError {
    /// `/dev/kvm` could not be opened.
    #[error("cannot open /dev/kvm: {0}")]
    OpenKvm(kvm_ioctls::Error),
    /// A VM ioctl failed.
    #[error("{what} failed: {source}")]
    Ioctl {
        /// The operation.
        what: &'static str,
        /// The KVM error.
        source: kvm_ioctls::Error,
    },
    /// Guest RAM could not be set up.
    #[error(transparent)]
    Memory(#[from] MemoryError),
    /// A vCPU could not be created.
    #[error(transparent)]
    Vcpu(#[from] VcpuError),
    /// The list of MSRs to save could not be read.
    #[error(transparent)]
    State(StateError),
}

fn ioctl<T>(what: &'static str, r: Result<T, kvm_ioctls::Error>) -> Result<T, VmError> {
    r.map_err(|source| VmError::Ioctl { what, source })
}

/// A KVM virtual machine with its RAM.
///
/// The RAM deletes its KVM slot when dropped (see [`GuestRam`]), so no field
/// order or lifetime of `fd` clones is needed for soundness.
#[derive(Debug)]
pub struct Vm {
    fd: Arc<VmFd>,
    kvm: Kvm,
    ram: GuestRam,
    /// The MSRs a snapshot saves (read before any sandbox).
    msrs: Vec<u32>,
    /// The vCPU's XSAVE area size (`KVM_CAP_XSAVE2`, read before any
    /// sandbox).
    xsave_size: usize,
}

impl Vm {
    /// Creates a VM with `ram_size` bytes of RAM at address 0.
    pub fn new(ram_size: usize) -> Result<Self, VmError> {
        let kvm = Kvm::new().map_err(VmError::OpenKvm)?;
        let fd = ioctl("KVM_CREATE_VM", kvm.create_vm())?;
        ioctl(
            "KVM_SET_TSS_ADDR",
            fd.set_tss_address(KVM_TSS_ADDR as usize),
        )?;
        ioctl(
            "KVM_SET_IDENTITY_MAP_ADDR",
            fd.set_identity_map_address(KVM_IDENTITY_MAP_ADDR),
        )?;
        // RAM before the irqchip: with an irqchip in place, installing the
        // first memory slot waited about 5 ms here (nested KVM), a third
        // of the whole boot; before it, 0.1 ms.
        let fd = Arc::new(fd);
        let mut ram = GuestRam::new(ram_size)?;
        ram.register(&fd, 0)?;
        ioctl("KVM_CREATE_IRQCHIP", fd.create_irq_chip())?;
        let pit = kvm_pit_config {
            flags: KVM_PIT_SPEAKER_DUMMY,
            ..Default::default()
        };
        ioctl("KVM_CREATE_PIT2", fd.create_pit2(pit))?;
        let msrs = state::msr_list(&kvm).map_err(VmError::State)?;
        let xsave_size = state::xsave_size(&fd);
        Ok(Vm {
            fd,
            kvm,
            ram,
            msrs,
            xsave_size,
        })
    }

    /// The VM file descriptor (shared with interrupt triggers).
    pub fn fd(&self) -> &Arc<VmFd> {
        &self.fd
    }

    /// Guest RAM.
    pub fn ram(&self) -> &GuestRam {
        &self.ram
    }

    /// Guest RAM, mutably (a restore writes it before the vCPU runs).
    pub fn ram_mut(&mut self) -> &mut GuestRam {
        &mut self.ram
    }

    /// Reads the irqchip, PIT and clock (for a snapshot).
    pub fn read_state(&self) -> Result<VmState, StateError> {
        VmState::read(&self.fd)
    }

    /// Puts saved irqchip, PIT and clock state in place.
    pub fn write_state(&self, s: &VmState) -> Result<(), StateError> {
        s.write(&self.fd)
    }

    /// Reads the state of `vcpu` (not running).
    pub fn read_vcpu_state(&self, vcpu: &Vcpu) -> Result<VcpuState, StateError> {
        VcpuState::read(vcpu.fd(), &self.msrs, self.xsave_size)
    }

    /// Puts saved state into `vcpu` (before its first run).
    pub fn write_vcpu_state(&self, vcpu: &Vcpu, s: &VcpuState) -> Result<(), StateError> {
        s.write(vcpu.fd(), self.xsave_size)
    }

    /// Creates vCPU `id`.
    pub fn create_vcpu(&self, id: u8) -> Result<Vcpu, VmError> {
        Ok(Vcpu::new(&self.kvm, &self.fd, id)?)
    }
}
