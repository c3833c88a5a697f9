//! The local APIC, set up in virtual-wire mode so that the 8259's
//! interrupts reach the CPU (what PC firmware does; a firmware-less VMM may
//! leave LINT0 masked).

use crate::arch::{cpu, mmio};

const IA32_APIC_BASE: u32 = 0x1B;
const APIC_BASE_ENABLE: u64 = 1 << 11;
const SVR: u64 = 0xF0;
const LVT_LINT0: u64 = 0x350;
const LVT_LINT1: u64 = 0x360;
const SVR_ENABLE: u32 = 0x100;
const LVT_EXTINT: u32 = 0x700;
const LVT_NMI: u32 = 0x400;

/// What [`virtual_wire`] found.
#[derive(Clone, Copy, Debug)]
pub enum ApicMode {
    /// The APIC is globally disabled: the 8259 drives INTR directly.
    Disabled,
    /// LINT0 now delivers ExtINT (the 8259) and LINT1 NMI.
    VirtualWire {
        /// The APIC's MMIO base.
        base: u64,
    },
}

/// Why the APIC could not be set up.
#[derive(Clone, Copy, Debug)]
pub struct ApicError {
    /// The unusable MMIO base.
    pub base: u64,
}

/// Enables the APIC (spurious vector 0xFF) with LINT0 = ExtINT and
/// LINT1 = NMI.
pub fn virtual_wire() -> Result<ApicMode, ApicError> {
    let msr = cpu::rdmsr(IA32_APIC_BASE);
    if msr & APIC_BASE_ENABLE == 0 {
        return Ok(ApicMode::Disabled);
    }
    let base = msr & 0xF_FFFF_F000;
    let svr = mmio::read32(base + SVR).ok_or(ApicError { base })?;
    let ok = mmio::write32(base + SVR, svr | SVR_ENABLE | 0xFF)
        && mmio::write32(base + LVT_LINT0, LVT_EXTINT)
        && mmio::write32(base + LVT_LINT1, LVT_NMI);
    if ok {
        Ok(ApicMode::VirtualWire { base })
    } else {
        Err(ApicError { base })
    }
}
