//! Command dispatch, and the commands that move no data through the data
//! port or the bus master.

use crate::block::BlockDevice;

use super::super::IrqLine;
use super::super::command::{AtaCommand, feature};
use super::super::error::IdeError;
use super::super::identify::TransferMode;
use super::super::registers::{AtaError, DeviceHead, Status};
use super::super::stats::bump;
use super::super::taskfile::Geometry;
use super::pio::Phase;
use super::{AfterFlush, Channel, DmaKind, Outcome, Unit};

impl<'m, M, B, I, const IOV: usize, const PRD: usize> Channel<'m, M, B, I, IOV, PRD>
where
    M: crate::dma::DmaMemory + ?Sized,
    B: BlockDevice<'m>,
    I: IrqLine,
{
    /// A Command register write. Ignored for an absent slave and while the
    /// device is BSY or DRQ (as in QEMU: a DMA command waiting for START
    /// keeps DRQ until it ends, so only SRST gets out of it).
    pub(super) fn exec(&mut self, opcode: u8, bus_master: bool) {
        let u = self.selected;
        if !self.present(u) {
            return;
        }
        #[cfg(feature = "atapi")]
        if opcode == super::packet::ata_op::DEVICE_RESET && self.is_packet_unit(u) {
            self.lower_irq();
            self.device_reset(u);
            return;
        }
        if self
            .units
            .get(u)
            .tf
            .status
            .intersects(Status::BSY | Status::DRQ)
        {
            return;
        }
        let cmd = AtaCommand::decode(opcode);
        self.count_command(cmd);
        let tf = self.tf(u);
        tf.status = Status::DRDY | Status::BSY;
        tf.error = AtaError::empty();
        let outcome = self.dispatch(u, opcode, cmd, bus_master);
        self.finish(u, outcome);
    }

    fn dispatch(&mut self, u: Unit, opcode: u8, cmd: AtaCommand, bus_master: bool) -> Outcome {
        let Some(multiple) = self.drive(u).map(|d| u32::from(d.multiple)) else {
            return Outcome::Abort(IdeError::NoDevice);
        };
        #[cfg(feature = "atapi")]
        if self.is_packet_unit(u) {
            return self.packet_dispatch(u, opcode);
        }
        match cmd {
            AtaCommand::ReadSectors { ext } => {
                self.tf(u).begin_command(ext);
                self.pio_read_block(u, 1)
            }
            AtaCommand::ReadMultiple { ext } => {
                if multiple == 0 {
                    return Outcome::Abort(IdeError::MultipleDisabled);
                }
                self.tf(u).begin_command(ext);
                self.pio_read_block(u, multiple)
            }
            AtaCommand::WriteSectors { ext } => {
                self.tf(u).begin_command(ext);
                self.pio_write_start(u, 1)
            }
            AtaCommand::WriteMultiple { ext } => {
                if multiple == 0 {
                    return Outcome::Abort(IdeError::MultipleDisabled);
                }
                self.tf(u).begin_command(ext);
                self.pio_write_start(u, multiple)
            }
            AtaCommand::ReadDma { ext } => {
                self.tf(u).begin_command(ext);
                self.dma_accept(u, DmaKind::Read, bus_master)
            }
            AtaCommand::WriteDma { ext } => {
                self.tf(u).begin_command(ext);
                self.dma_accept(u, DmaKind::Write, bus_master)
            }
            AtaCommand::DataSetManagement => self.trim_accept(u, opcode, bus_master),
            AtaCommand::ReadVerify { ext } => {
                // No range check, as in QEMU.
                self.tf(u).begin_command(ext);
                Outcome::Done { dsc: true }
            }
            AtaCommand::FlushCache { .. } => self.flush_start(u, AfterFlush::Command),
            AtaCommand::IdentifyDevice => self.identify(u),
            AtaCommand::SetFeatures => self.set_features(u, opcode),
            AtaCommand::SetMultipleMode => self.set_multiple_mode(u, opcode),
            AtaCommand::InitializeDeviceParameters => self.initialize_device_parameters(u, opcode),
            AtaCommand::ReadNativeMaxAddress { ext } => self.read_native_max(u, ext),
            AtaCommand::ExecuteDeviceDiagnostic => self.execute_device_diagnostic(),
            // QEMU completes these without DSC (Status 0x40).
            AtaCommand::PowerManagement => Outcome::Done { dsc: false },
            AtaCommand::CheckPowerMode => {
                self.tf(u).nsector = 0xFF;
                Outcome::Done { dsc: true }
            }
            AtaCommand::Seek => Outcome::Done { dsc: true },
            AtaCommand::SecurityFreezeLock => {
                self.tf(u).nsector = 0;
                Outcome::Done { dsc: true }
            }
            AtaCommand::Unknown(_) => Outcome::Abort(IdeError::Unsupported {
                opcode,
                feature: self.units.get(u).tf.feature,
            }),
        }
    }

    fn count_command(&mut self, cmd: AtaCommand) {
        let s = &mut self.stats;
        bump(&mut s.commands, 1);
        let counter = match cmd {
            AtaCommand::ReadSectors { .. } | AtaCommand::ReadMultiple { .. } => &mut s.pio_reads,
            AtaCommand::WriteSectors { .. } | AtaCommand::WriteMultiple { .. } => &mut s.pio_writes,
            AtaCommand::ReadDma { .. } => &mut s.dma_reads,
            AtaCommand::WriteDma { .. } => &mut s.dma_writes,
            AtaCommand::DataSetManagement => &mut s.trims,
            AtaCommand::FlushCache { .. } => &mut s.flushes,
            AtaCommand::IdentifyDevice => &mut s.identifies,
            _ => &mut s.other_commands,
        };
        bump(counter, 1);
    }

    /// IDENTIFY DEVICE: 512 bytes of data in, IRQ.
    /// EXECUTE DEVICE DIAGNOSTIC. Both devices run it whichever is
    /// selected (ATA/ATAPI-6 §8.11), so each present one shows its
    /// signature, Status 0x50 and the "passed" code 0x01 in Error (without
    /// ERR); the Device register reads 0xA0 (DEV clear) afterwards, as in
    /// QEMU, and device 0 is selected if present (QEMU keeps its internal
    /// unit, as for SRST).
    pub(super) fn execute_device_diagnostic(&mut self) -> Outcome {
        let atapi_selected = self.drive(self.selected).is_some_and(|d| d.is_atapi());
        for unit in self.units.both_mut() {
            unit.tf.select = DeviceHead::OBSOLETE;
            if let Some(d) = unit.drive.as_ref() {
                unit.tf.set_signature(true);
                unit.tf.status = Status::DRDY | Status::DSC;
                unit.tf.error = AtaError::AMNF;
                if d.is_atapi() {
                    // ATAPI: the signature, DRDY clear, and no interrupt.
                    unit.tf.set_packet_signature();
                    unit.tf.status = Status::empty();
                }
            }
        }
        if self.present(Unit::Master) {
            self.selected = Unit::Master;
        }
        if !atapi_selected {
            self.raise_irq();
        }
        Outcome::Started
    }

    pub(super) fn identify(&mut self, u: Unit) -> Outcome {
        let Some(drive) = self.units.get(u).drive.as_ref() else {
            return Outcome::Abort(IdeError::NoDevice);
        };
        let mut bytes = [0u8; 512];
        drive.identify.copy_to(&mut bytes);
        if !self.pio_fill(&bytes) {
            return Outcome::Abort(IdeError::NoPioBuffer);
        }
        self.tf(u).status = Status::DRDY | Status::DSC | Status::DRQ;
        self.pio_start_in(Phase::Identify(u), 512);
        self.raise_irq();
        Outcome::Started
    }

    pub(super) fn set_features(&mut self, u: Unit, opcode: u8) -> Outcome {
        let unit = self.units.get_mut(u);
        let Some(drive) = unit.drive.as_mut() else {
            return Outcome::Abort(IdeError::NoDevice);
        };
        let f = unit.tf.feature;
        match f {
            feature::ENABLE_WRITE_CACHE => {
                drive.write_cache = true;
                drive.identify.set_write_cache(true);
                Outcome::Done { dsc: true }
            }
            feature::DISABLE_WRITE_CACHE => {
                drive.write_cache = false;
                drive.identify.set_write_cache(false);
                self.flush_start(u, AfterFlush::Command)
            }
            feature::SET_TRANSFER_MODE => {
                let [mode, ..] = unit.tf.nsector.to_le_bytes();
                match TransferMode::decode(mode) {
                    Some(m) => {
                        drive.identify.set_transfer_mode(m);
                        Outcome::Done { dsc: true }
                    }
                    // Deviation: QEMU accepts any mode number of a known
                    // class; vmdma refuses modes IDENTIFY does not list.
                    None => Outcome::Abort(IdeError::BadParameter { opcode }),
                }
            }
            f if feature::NO_OPS.contains(&f) => Outcome::Done { dsc: true },
            f => Outcome::Abort(IdeError::Unsupported { opcode, feature: f }),
        }
    }

    fn set_multiple_mode(&mut self, u: Unit, opcode: u8) -> Outcome {
        let unit = self.units.get_mut(u);
        let Some(drive) = unit.drive.as_mut() else {
            return Outcome::Abort(IdeError::NoDevice);
        };
        let [n, ..] = unit.tf.nsector.to_le_bytes();
        if n != 0 && (n > drive.max_multiple || !n.is_power_of_two()) {
            return Outcome::Abort(IdeError::BadParameter { opcode });
        }
        drive.multiple = n;
        drive.identify.set_multiple(n);
        Outcome::Done { dsc: true }
    }

    /// INITIALIZE DEVICE PARAMETERS: heads = Device bits 3:0 + 1, sectors
    /// per track = Sector Count. Deviation: QEMU treats it as a no-op;
    /// vmdma applies the translation (CHS commands and IDENTIFY words 54–58
    /// follow it) and refuses 0 sectors per track with ABRT.
    fn initialize_device_parameters(&mut self, u: Unit, opcode: u8) -> Outcome {
        let unit = self.units.get_mut(u);
        let Some(drive) = unit.drive.as_mut() else {
            return Outcome::Abort(IdeError::NoDevice);
        };
        let heads = (unit.tf.select & DeviceHead::HEAD).bits() + 1;
        let [sectors, ..] = unit.tf.nsector.to_le_bytes();
        match Geometry::with_params(drive.sectors(), heads, sectors) {
            Some(g) => {
                drive.geometry = g;
                drive.identify.set_current_geometry(g);
                Outcome::Done { dsc: true }
            }
            None => Outcome::Abort(IdeError::BadParameter { opcode }),
        }
    }

    /// READ NATIVE MAX ADDRESS (/EXT): the last sector into the address
    /// registers, in the current addressing mode. As in QEMU, LBA28 and CHS
    /// keep only the bits their registers hold (a disk above 2^28 sectors
    /// reports the last LBA modulo 2^28; ACS-2 asks for 0x0FFFFFFF there,
    /// but the bundled guest suite pins QEMU's value).
    fn read_native_max(&mut self, u: Unit, ext: bool) -> Outcome {
        let unit = self.units.get_mut(u);
        let Some(drive) = unit.drive.as_ref() else {
            return Outcome::Abort(IdeError::NoDevice);
        };
        let Some(last) = drive.sectors().checked_sub(1) else {
            return Outcome::Abort(IdeError::OutOfRange { lba: 0, count: 1 });
        };
        unit.tf.begin_command(ext);
        unit.tf.set_lba(last, drive.geometry);
        Outcome::Done { dsc: true }
    }
}
