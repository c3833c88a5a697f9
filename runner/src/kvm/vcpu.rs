//! One vCPU: PVH register setup and `KVM_RUN` with exit decoding.
//!
//! The unsafe code here rebuilds the I/O data slices of an exit so that the
//! access size (which `kvm-ioctls` does not report) can be read from
//! `kvm_run` first, and reads the suberror of an internal-error exit (which
//! `kvm-ioctls` drops); see [`Vcpu::run`].
#![allow(unsafe_code)]

use kvm_bindings::{
    CpuId, KVM_EXIT_INTERNAL_ERROR, KVM_EXIT_IO, KVM_MAX_CPUID_ENTRIES, KVM_MP_STATE_HALTED,
    kvm_fpu, kvm_regs, kvm_segment,
};
use kvm_ioctls::{Kvm, VcpuExit as KvmExit, VcpuFd, VmFd};
use thiserror::Error;

use crate::kvm::coalesced::CoalescedWrite;
use crate::kvm::exit::VcpuExit;
use crate::layout::{CODE_SELECTOR, DATA_SELECTOR, GDT, GDT_ADDR, TSS_SELECTOR};

/// vCPU setup and run errors.
#[derive(Debug, Error)]
pub enum VcpuError {
    /// A KVM vCPU ioctl failed.
    #[error("{what} failed: {source}")]
    Ioctl {
        /// The operation.
        what: &'static str,
        /// The KVM error.
        source: kvm_ioctls::Error,
    },
    /// `kvm_run` did not describe the I/O exit that `KVM_RUN` reported.
    #[error("inconsistent port-I/O exit (size {size}, count {count}, {len} bytes)")]
    BadIoExit {
        /// `io.size`.
        size: u8,
        /// `io.count`.
        count: u32,
        /// Data length.
        len: usize,
    },
}

fn ioctl<T>(what: &'static str, r: Result<T, kvm_ioctls::Error>) -> Result<T, VcpuError> {
    r.map_err(|source| VcpuError::Ioctl { what, source })
}

/// `KVM_GET_STATS_FD`: `_IO(KVMIO, 0xce)` (not wrapped by kvm-ioctls).
mod stats_ioctl {
    #![allow(missing_docs)]
    vmm_sys_util::ioctl_io_nr!(KVM_GET_STATS_FD, kvm_bindings::KVMIO, 0xce);
}
use stats_ioctl::KVM_GET_STATS_FD;

/// CR0.PE: protected mode.
const CR0_PE: u64 = 1;
/// CR0.ET: extension type (hard-wired to 1 on modern CPUs).
const CR0_ET: u64 = 1 << 4;
/// RFLAGS bit 1 is reserved and always set.
const RFLAGS_RESERVED: u64 = 1 << 1;
/// RFLAGS.IF.
const RFLAGS_IF: u64 = 1 << 9;
/// Local APIC LVT LINT0 / LINT1 register offsets.
const APIC_LVT0: usize = 0x350;
const APIC_LVT1: usize = 0x360;
/// LVT delivery modes.
const APIC_MODE_EXTINT: u32 = 0b111 << 8;
const APIC_MODE_NMI: u32 = 0b100 << 8;
const APIC_LVT_MASKED: u32 = 1 << 16;
const APIC_LVT_MODE_MASK: u32 = 0b111 << 8;

/// A vCPU.
#[derive(Debug)]
pub struct Vcpu {
    fd: VcpuFd,
    id: u8,
    coalesced_ring: bool,
}

impl Vcpu {
    /// Creates vCPU `id` with the host's supported CPUID (required: without
    /// it the guest cannot enable long mode) and PIC interrupts routed
    /// through LINT0.
    pub fn new(kvm: &Kvm, vm: &VmFd, id: u8) -> Result<Self, VcpuError> {
        let fd = ioctl("KVM_CREATE_VCPU", vm.create_vcpu(u64::from(id)))?;
        let mut cpuid = ioctl(
            "KVM_GET_SUPPORTED_CPUID",
            kvm.get_supported_cpuid(KVM_MAX_CPUID_ENTRIES),
        )?;
        set_apic_id(&mut cpuid, id);
        ioctl("KVM_SET_CPUID2", fd.set_cpuid2(&cpuid))?;

        let mut lapic = ioctl("KVM_GET_LAPIC", fd.get_lapic())?;
        let regs: &mut [std::os::raw::c_char] = &mut lapic.regs;
        let lvt0 = apic_reg(regs, APIC_LVT0);
        set_apic_reg(
            regs,
            APIC_LVT0,
            (lvt0 & !(APIC_LVT_MODE_MASK | APIC_LVT_MASKED)) | APIC_MODE_EXTINT,
        );
        let lvt1 = apic_reg(regs, APIC_LVT1);
        set_apic_reg(
            regs,
            APIC_LVT1,
            (lvt1 & !(APIC_LVT_MODE_MASK | APIC_LVT_MASKED)) | APIC_MODE_NMI,
        );
        ioctl("KVM_SET_LAPIC", fd.set_lapic(&lapic))?;

        let fpu = kvm_fpu {
            fcw: 0x37F,
            mxcsr: 0x1F80,
            ..Default::default()
        };
        ioctl("KVM_SET_FPU", fd.set_fpu(&fpu))?;
        Ok(Vcpu {
            fd,
            id,
            coalesced_ring: false,
        })
    }

    /// The vCPU index.
    pub fn id(&self) -> u8 {
        self.id
    }

    /// Sets `kvm_run.immediate_exit`: with it set, `KVM_RUN` completes the
    /// port or MMIO access userspace just handled (the rest of a `rep
    /// ins/outs`, the value of an `in`) and returns without running guest
    /// code. KVM's state is consistent only after that (KVM's API
    /// documentation, "KVM_RUN"), so a pause does it before a snapshot.
    pub fn set_immediate_exit(&mut self, on: bool) {
        self.fd.set_kvm_immediate_exit(u8::from(on));
    }

    /// The vCPU file descriptor (for `kvm::state`).
    pub(crate) fn fd(&self) -> &VcpuFd {
        &self.fd
    }

    /// Sets the PVH entry state: 32-bit protected mode, paging off, flat
    /// 4 GiB code (CS) and data (DS/ES/FS/GS/SS) segments from the GDT at
    /// [`GDT_ADDR`], a valid TR, EBX = `start_info` (the guest-physical
    /// address of `hvm_start_info`), EIP = `entry`.
    pub fn set_pvh_entry(&self, entry: u32, start_info: u32) -> Result<(), VcpuError> {
        let mut sregs = ioctl("KVM_GET_SREGS", self.fd.get_sregs())?;
        let seg = |selector: u16, type_: u8, s: u8| {
            let g = s; // flat segments are page-granular; the TSS is not
            kvm_segment {
                base: 0,
                limit: if s == 1 { 0xFFFF_FFFF } else { 0x67 },
                selector,
                type_,
                present: 1,
                dpl: 0,
                db: s,
                s,
                l: 0,
                g,
                avl: 0,
                unusable: 0,
                padding: 0,
            }
        };
        sregs.cs = seg(CODE_SELECTOR, 0xB, 1);
        let data = seg(DATA_SELECTOR, 0x3, 1);
        sregs.ds = data;
        sregs.es = data;
        sregs.fs = data;
        sregs.gs = data;
        sregs.ss = data;
        sregs.tr = seg(TSS_SELECTOR, 0xB, 0);
        sregs.gdt.base = GDT_ADDR;
        sregs.gdt.limit = (GDT.len() * 8 - 1) as u16;
        sregs.idt.base = 0;
        sregs.idt.limit = 0;
        sregs.cr0 = CR0_PE | CR0_ET;
        sregs.cr3 = 0;
        sregs.cr4 = 0;
        sregs.efer = 0;
        ioctl("KVM_SET_SREGS", self.fd.set_sregs(&sregs))?;

        let regs = kvm_regs {
            rflags: RFLAGS_RESERVED,
            rip: u64::from(entry),
            rbx: u64::from(start_info),
            ..Default::default()
        };
        ioctl("KVM_SET_REGS", self.fd.set_regs(&regs))
    }

    /// True when the vCPU sleeps in `hlt` with interrupts disabled: nothing
    /// this platform sends (no NMIs) can wake it.
    pub fn halted_with_interrupts_off(&self) -> Result<bool, VcpuError> {
        let mp = ioctl("KVM_GET_MP_STATE", self.fd.get_mp_state())?;
        if mp.mp_state != KVM_MP_STATE_HALTED {
            return Ok(false);
        }
        let regs = ioctl("KVM_GET_REGS", self.fd.get_regs())?;
        Ok(regs.rflags & RFLAGS_IF == 0)
    }

    /// A file with this vCPU's binary statistics (`KVM_GET_STATS_FD`, Linux
    /// 5.14+; read it with `metrics::kvm::KvmStats`).
    pub fn stats_fd(&self) -> Result<std::fs::File, VcpuError> {
        use std::os::fd::FromRawFd;
        // SAFETY: KVM_GET_STATS_FD takes no argument and only returns a new
        // file descriptor (or -1), touching no memory of ours.
        let fd = unsafe { vmm_sys_util::ioctl::ioctl(&self.fd, KVM_GET_STATS_FD()) };
        if fd < 0 {
            return Err(VcpuError::Ioctl {
                what: "KVM_GET_STATS_FD",
                source: kvm_ioctls::Error::last(),
            });
        }
        // SAFETY: the kernel just created `fd` for us; nothing else owns it.
        Ok(unsafe { std::fs::File::from_raw_fd(fd) })
    }

    /// Maps KVM's coalesced-I/O ring, so that [`Vcpu::run`] drains it.
    pub fn enable_coalesced_ring(&mut self) -> Result<(), VcpuError> {
        ioctl(
            "mmap of the coalesced I/O ring",
            self.fd.map_coalesced_mmio_ring(),
        )?;
        self.coalesced_ring = true;
        Ok(())
    }

    /// Moves every write KVM coalesced during the last `KVM_RUN` into
    /// `out`, oldest first.
    fn drain_coalesced(&mut self, out: &mut Vec<CoalescedWrite>) {
        if !self.coalesced_ring {
            return;
        }
        while let Ok(Some(e)) = self.fd.coalesced_mmio_read() {
            // SAFETY: `pio` and `pad` are both a `u32` in the union of
            // `kvm_coalesced_mmio`, so reading either is reading plain data.
            let pio = unsafe { e.__bindgen_anon_1.pio };
            let (Ok(port), Ok(len)) = (u16::try_from(e.phys_addr), u8::try_from(e.len)) else {
                continue;
            };
            // Only port zones are registered; anything else is dropped.
            if pio == 1 && usize::from(len) <= e.data.len() {
                out.push(CoalescedWrite {
                    port,
                    len,
                    data: e.data,
                });
            }
        }
    }

    /// Enters the guest until the next exit. A signal (the supervisor's
    /// kick) gives [`VcpuExit::Interrupted`]. The writes KVM coalesced
    /// before the exit are appended to `coalesced`, in order: the caller
    /// applies them before it handles the exit.
    pub fn run(&mut self, coalesced: &mut Vec<CoalescedWrite>) -> Result<VcpuExit<'_>, VcpuError> {
        // Phase 1: let kvm-ioctls decode; keep only plain values and, for
        // exits with data, the raw location of that data, so the borrow of
        // `self.fd` ends here.
        enum Raw {
            Io {
                port: u16,
                write: bool,
                ptr: *mut u8,
                len: usize,
            },
            Mmio {
                addr: u64,
                write: bool,
                ptr: *mut u8,
                len: usize,
            },
            /// An exit that names the guest's RIP; `internal` for
            /// KVM_EXIT_INTERNAL_ERROR, else a failed entry with its reason.
            WithRip {
                internal: bool,
                reason: u64,
            },
            Done(VcpuExit<'static>),
        }
        let raw = match self.fd.run() {
            Ok(KvmExit::IoIn(port, data)) => Raw::Io {
                port,
                write: false,
                ptr: data.as_mut_ptr(),
                len: data.len(),
            },
            Ok(KvmExit::IoOut(port, data)) => Raw::Io {
                port,
                write: true,
                ptr: data.as_ptr().cast_mut(),
                len: data.len(),
            },
            Ok(KvmExit::MmioRead(addr, data)) => Raw::Mmio {
                addr,
                write: false,
                ptr: data.as_mut_ptr(),
                len: data.len(),
            },
            Ok(KvmExit::MmioWrite(addr, data)) => Raw::Mmio {
                addr,
                write: true,
                ptr: data.as_ptr().cast_mut(),
                len: data.len(),
            },
            Ok(KvmExit::Hlt) => Raw::Done(VcpuExit::Hlt),
            Ok(KvmExit::Shutdown) => Raw::Done(VcpuExit::Shutdown),
            Ok(KvmExit::Intr) => Raw::Done(VcpuExit::Interrupted),
            Ok(KvmExit::FailEntry(reason, _cpu)) => Raw::WithRip {
                internal: false,
                reason,
            },
            Ok(KvmExit::InternalError) => Raw::WithRip {
                internal: true,
                reason: 0,
            },
            Ok(KvmExit::SystemEvent(kind, _)) => Raw::Done(VcpuExit::SystemEvent(kind)),
            Ok(KvmExit::Exception) => Raw::Done(VcpuExit::Unexpected("KVM_EXIT_EXCEPTION")),
            Ok(KvmExit::Debug(_)) => Raw::Done(VcpuExit::Unexpected("KVM_EXIT_DEBUG")),
            Ok(KvmExit::Unknown) => Raw::Done(VcpuExit::Unexpected("KVM_EXIT_UNKNOWN")),
            Ok(_) => Raw::Done(VcpuExit::Unexpected("unsupported exit reason")),
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {
                Raw::Done(VcpuExit::Interrupted)
            }
            Err(source) => {
                return Err(VcpuError::Ioctl {
                    what: "KVM_RUN",
                    source,
                });
            }
        };
        // Between the phases no view into `kvm_run` exists: drain the ring.
        self.drain_coalesced(coalesced);
        // Phase 2: rebuild the data views, tied to `&mut self`.
        match raw {
            Raw::Done(exit) => Ok(exit),
            Raw::WithRip { internal, reason } => {
                // The RIP is part of the report only; if it cannot be read,
                // the exit is still reported.
                let rip = self.fd.get_regs().ok().map(|r| r.rip);
                if !internal {
                    return Ok(VcpuExit::FailEntry { reason, rip });
                }
                let run = self.fd.get_kvm_run();
                let suberror = if run.exit_reason == KVM_EXIT_INTERNAL_ERROR {
                    // SAFETY: `exit_reason` is KVM_EXIT_INTERNAL_ERROR, so
                    // the kernel filled the `internal` member of the union;
                    // it is plain old data.
                    unsafe { run.__bindgen_anon_1.internal.suberror }
                } else {
                    0
                };
                Ok(VcpuExit::InternalError { suberror, rip })
            }
            Raw::Mmio {
                addr,
                write,
                ptr,
                len,
            } => {
                // SAFETY: `ptr..ptr+len` is `kvm_run.mmio.data[..len]` inside
                // the vCPU's `kvm_run` mapping, which lives as long as
                // `self.fd`; the returned view borrows `self` mutably, so
                // nothing else touches the mapping while it exists, and the
                // borrow that produced the pointer has ended.
                let data = unsafe { std::slice::from_raw_parts_mut(ptr, len) };
                Ok(if write {
                    VcpuExit::MmioWrite { addr, data }
                } else {
                    VcpuExit::MmioRead { addr, data }
                })
            }
            Raw::Io {
                port,
                write,
                ptr,
                len,
            } => {
                let run = self.fd.get_kvm_run();
                if run.exit_reason != KVM_EXIT_IO {
                    return Err(VcpuError::BadIoExit {
                        size: 0,
                        count: 0,
                        len,
                    });
                }
                // SAFETY: `exit_reason` is KVM_EXIT_IO, so the kernel filled
                // the `io` member of the union; it is plain old data.
                let io = unsafe { run.__bindgen_anon_1.io };
                let size = usize::from(io.size);
                if !matches!(size, 1 | 2 | 4) || (io.count as usize).checked_mul(size) != Some(len)
                {
                    return Err(VcpuError::BadIoExit {
                        size: io.size,
                        count: io.count,
                        len,
                    });
                }
                // SAFETY: `ptr..ptr+len` is the port-I/O data area of the
                // vCPU's `kvm_run` mapping (at `io.data_offset`, past the
                // `kvm_run` struct, so it does not overlap the `run`
                // reference, which is dead here anyway); it lives as long as
                // `self.fd` and the view borrows `self` mutably.
                let data = unsafe { std::slice::from_raw_parts_mut(ptr, len) };
                Ok(if write {
                    VcpuExit::IoOut { port, size, data }
                } else {
                    VcpuExit::IoIn { port, size, data }
                })
            }
        }
    }
}

/// Puts `id` in the APIC-ID fields of CPUID leaves 1 and 0xB.
fn set_apic_id(cpuid: &mut CpuId, id: u8) {
    for e in cpuid.as_mut_slice() {
        match e.function {
            1 => e.ebx = (e.ebx & 0x00FF_FFFF) | (u32::from(id) << 24),
            0xB => e.edx = u32::from(id),
            _ => {}
        }
    }
}

fn apic_reg(regs: &[std::os::raw::c_char], off: usize) -> u32 {
    let mut b = [0u8; 4];
    for (d, s) in b.iter_mut().zip(regs.iter().skip(off)) {
        *d = *s as u8;
    }
    u32::from_le_bytes(b)
}

fn set_apic_reg(regs: &mut [std::os::raw::c_char], off: usize, v: u32) {
    for (d, s) in regs.iter_mut().skip(off).zip(v.to_le_bytes()) {
        *d = s as std::os::raw::c_char;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apic_register_helpers() {
        let mut regs = [0 as std::os::raw::c_char; 1024];
        set_apic_reg(&mut regs, APIC_LVT0, 0x0001_0700);
        assert_eq!(apic_reg(&regs, APIC_LVT0), 0x0001_0700);
        assert_eq!(
            apic_reg(&regs, 1022),
            0,
            "reads past the end give zero bytes"
        );
        set_apic_reg(&mut regs, 1022, u32::MAX);
        assert_eq!(apic_reg(&regs, 1022), 0xFFFF);
    }
}
