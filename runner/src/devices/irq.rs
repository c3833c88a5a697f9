//! Interrupt lines of the in-kernel irqchip (PIC + IOAPIC), driven with
//! `KVM_IRQ_LINE`. ISA devices use them edge-style ([`IrqLine::pulse`],
//! the serial port) or level-style ([`IrqLine::set_level`], an IDE channel
//! holding INTRQ until its status register is read).

use std::sync::Arc;

use kvm_ioctls::VmFd;
use vm_superio::Trigger;

/// One interrupt line (GSI) of a VM.
#[derive(Debug, Clone)]
pub struct IrqLine {
    vm: Arc<VmFd>,
    gsi: u32,
}

impl IrqLine {
    /// Line `gsi` of `vm`'s irqchip (ISA IRQs 0..=15 are GSIs 0..=15).
    pub fn new(vm: Arc<VmFd>, gsi: u32) -> Self {
        IrqLine { vm, gsi }
    }

    /// The line number.
    pub fn gsi(&self) -> u32 {
        self.gsi
    }

    /// Drives the line high (`true`) or low.
    pub fn set_level(&self, high: bool) -> Result<(), kvm_ioctls::Error> {
        self.vm.set_irq_line(self.gsi, high)
    }

    /// Raises and lowers the line: one edge.
    pub fn pulse(&self) -> Result<(), kvm_ioctls::Error> {
        self.set_level(true)?;
        self.set_level(false)
    }
}

impl Trigger for IrqLine {
    type E = kvm_ioctls::Error;

    fn trigger(&self) -> Result<(), Self::E> {
        self.pulse()
    }
}

/// A trigger that drops interrupts (tests, and devices whose interrupt is
/// not wired).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoIrq;

impl Trigger for NoIrq {
    type E = std::convert::Infallible;

    fn trigger(&self) -> Result<(), Self::E> {
        Ok(())
    }
}
