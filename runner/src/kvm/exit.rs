//! A decoded VM exit: what `Vcpu::run` returns, with the exit's data
//! borrowed from `kvm_run`. Handling it is the vCPU loop's business
//! (`crate::vcpu_loop`).

/// A decoded VM exit (see [`super::vcpu`] for how KVM's exits map to it).
#[derive(Debug)]
pub enum VcpuExit<'a> {
    /// Port input: `data` holds `count` items of `size` bytes to fill.
    IoIn {
        /// Port.
        port: u16,
        /// Bytes per item (1, 2 or 4).
        size: usize,
        /// `count * size` bytes.
        data: &'a mut [u8],
    },
    /// Port output of `count` items of `size` bytes.
    IoOut {
        /// Port.
        port: u16,
        /// Bytes per item.
        size: usize,
        /// `count * size` bytes.
        data: &'a [u8],
    },
    /// MMIO read outside RAM.
    MmioRead {
        /// Guest-physical address.
        addr: u64,
        /// Bytes to fill.
        data: &'a mut [u8],
    },
    /// MMIO write outside RAM.
    MmioWrite {
        /// Guest-physical address.
        addr: u64,
        /// Bytes written.
        data: &'a [u8],
    },
    /// `hlt` reached user space.
    Hlt,
    /// Triple fault.
    Shutdown,
    /// `KVM_RUN` returned because of a signal.
    Interrupted,
    /// KVM could not enter the guest.
    FailEntry {
        /// The hardware entry failure reason.
        reason: u64,
        /// The guest's RIP, if it could be read.
        rip: Option<u64>,
    },
    /// `KVM_EXIT_INTERNAL_ERROR`: KVM could not handle what the guest did
    /// (an instruction it cannot emulate, an exception while delivering an
    /// event) or hit an exit it did not expect.
    InternalError {
        /// `kvm_run.internal.suberror` (`KVM_INTERNAL_ERROR_*`).
        suberror: u32,
        /// The guest's RIP, if it could be read.
        rip: Option<u64>,
    },
    /// A system event (reset, shutdown, crash) with KVM's type.
    SystemEvent(u32),
    /// An exit this runner does not expect (KVM's name for it).
    Unexpected(&'static str),
}
