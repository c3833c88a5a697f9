//! Non-data commands with their Status, Error, task file and interrupt.

use vmdma_guest::ata::regs::status;
use vmdma_guest::ata::taskfile::TaskFile;

use crate::suite::{Ctx, Fail};

/// What a non-data command left behind.
#[derive(Clone, Copy, Debug)]
pub struct NonData {
    /// Status (read last, acknowledging INTRQ).
    pub status: u8,
    /// Error.
    pub error: u8,
    /// Whether IRQ 14 was requested at the PIC before Status was read.
    pub irq: bool,
    /// High-order task-file bytes after the command.
    pub hob: vmdma_guest::ata::taskfile::Regs5,
    /// Low task-file bytes after the command.
    pub low: vmdma_guest::ata::taskfile::Regs5,
    /// Device register after the command.
    pub device: u8,
}

impl Ctx {
    /// Runs a non-data command and records Status, Error, the task file
    /// and whether it raised an interrupt.
    pub fn non_data(&mut self, tf: &TaskFile, opcode: u8) -> Result<NonData, Fail> {
        self.ch.drain_irq();
        self.ch.issue(tf, opcode)?;
        self.ch.wait_not_busy("non-data command completion")?;
        let irq = self.ch.irq_requested();
        let (hob, low) = self.ch.read_taskfile();
        let device = self.ch.read(vmdma_guest::ata::regs::reg::DEVICE);
        let error = self.ch.error();
        let status = self.ch.status();
        Ok(NonData {
            status,
            error,
            irq,
            hob,
            low,
            device,
        })
    }

    /// Runs a non-data command and expects success (Status DRDY, no ERR,
    /// an interrupt).
    pub fn non_data_ok(&mut self, tf: &TaskFile, opcode: u8) -> Result<NonData, Fail> {
        let r = self.non_data(tf, opcode)?;
        crate::ensure!(
            r.status & !status::DSC == status::DRDY,
            "command {opcode:#04x}: status {:#04x} error {:#04x}",
            r.status,
            r.error
        );
        crate::ensure!(r.irq, "command {opcode:#04x}: no interrupt");
        Ok(r)
    }

    /// Runs a non-data command and expects it to be aborted (Status 0x41,
    /// Error ABRT, an interrupt).
    pub fn non_data_aborted(&mut self, tf: &TaskFile, opcode: u8) -> Result<NonData, Fail> {
        let r = self.non_data(tf, opcode)?;
        crate::ensure!(
            r.status == status::ABORTED && r.error & vmdma_guest::ata::regs::error::ABRT != 0,
            "command {opcode:#04x}: status {:#04x} error {:#04x}, want 0x41 / ABRT",
            r.status,
            r.error
        );
        crate::ensure!(r.irq, "command {opcode:#04x}: no interrupt on abort");
        Ok(r)
    }
}
