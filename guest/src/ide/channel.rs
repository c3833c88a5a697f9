//! One IDE channel: its command block, control block and bus-master
//! registers, device selection, task-file loading and bounded waits.

use core::cell::Cell;

use vmdma_guest::ata::regs::{bm, devctl, device, reg, status};
use vmdma_guest::ata::taskfile::{Drive, Regs5, TaskFile};

use super::AtaError;
use crate::arch::io::{inb, inl, outb, outl};
use crate::pic;

/// Primary channel command block base.
pub const PRIMARY_CMD: u16 = 0x1F0;
/// Primary channel control block (Alternate Status / Device Control).
pub const PRIMARY_CTRL: u16 = 0x3F6;

/// Status polls before a wait gives up. A port read costs several
/// microseconds on a slow (nested, emulated) host and well under one on a
/// real one, so this is seconds at worst and still finite.
pub const WAIT_POLLS: u32 = 400_000;

/// IRR checks in [`Channel::irq_requested`] and [`Channel::irq_released`].
pub const IRR_POLLS: u32 = 32;

/// The Device Control value the guest normally runs with: nIEN clear.
pub const DEVCTL_NORMAL: u8 = devctl::OBS;

/// An IDE channel.
pub struct Channel {
    cmd: u16,
    ctrl: u16,
    bm: u16,
    devctl: Cell<u8>,
}

impl Channel {
    /// The primary channel with bus-master registers at `bmiba`.
    pub fn primary(bmiba: u16) -> Self {
        Channel {
            cmd: PRIMARY_CMD,
            ctrl: PRIMARY_CTRL,
            bm: bmiba,
            devctl: Cell::new(DEVCTL_NORMAL),
        }
    }

    /// The command block, control block and bus-master base ports.
    pub fn ports(&self) -> (u16, u16, u16) {
        (self.cmd, self.ctrl, self.bm)
    }

    /// Reads command block register `r` (see `regs::reg`).
    pub fn read(&self, r: u16) -> u8 {
        inb(self.cmd + r)
    }

    /// Writes command block register `r`.
    pub fn write(&self, r: u16, v: u8) {
        outb(self.cmd + r, v);
    }

    /// The data port (for 16/32-bit PIO).
    pub fn data_port(&self) -> u16 {
        self.cmd + reg::DATA
    }

    /// Reads Status (this acknowledges INTRQ).
    pub fn status(&self) -> u8 {
        self.read(reg::STATUS_COMMAND)
    }

    /// Reads Alternate Status (does not acknowledge INTRQ).
    pub fn alt_status(&self) -> u8 {
        inb(self.ctrl)
    }

    /// Reads Error.
    pub fn error(&self) -> u8 {
        self.read(reg::ERROR_FEATURES)
    }

    /// Writes Device Control and remembers the value.
    pub fn set_devctl(&self, v: u8) {
        self.devctl.set(v);
        outb(self.ctrl, v);
    }

    /// The last value written to Device Control.
    pub fn devctl(&self) -> u8 {
        self.devctl.get()
    }

    /// Polls Alternate Status until `done(status)`; returns that status.
    pub fn wait(&self, what: &'static str, done: impl Fn(u8) -> bool) -> Result<u8, AtaError> {
        let mut st = 0;
        for _ in 0..WAIT_POLLS {
            st = self.alt_status();
            if done(st) {
                return Ok(st);
            }
        }
        Err(AtaError::Timeout { what, status: st })
    }

    /// Waits until BSY is clear.
    pub fn wait_not_busy(&self, what: &'static str) -> Result<u8, AtaError> {
        self.wait(what, |s| s & status::BSY == 0)
    }

    /// Waits until BSY and DRQ are clear.
    pub fn wait_idle(&self, what: &'static str) -> Result<u8, AtaError> {
        self.wait(what, |s| s & (status::BSY | status::DRQ) == 0)
    }

    /// Selects `drive` (as `ata_dev_select` does: wait idle, write Device,
    /// pause with an Alternate Status read, wait idle).
    pub fn select(&self, drive: Drive) -> Result<(), AtaError> {
        self.select_raw(drive.select_bits())
    }

    fn select_raw(&self, device_reg: u8) -> Result<(), AtaError> {
        self.wait_idle("idle before device select")?;
        self.write(reg::DEVICE, device_reg);
        let _ = self.alt_status();
        self.wait_idle("idle after device select")?;
        Ok(())
    }

    /// Writes the five registers in order (Features .. LBA high).
    pub fn write_regs5(&self, r: &Regs5) {
        self.write(reg::ERROR_FEATURES, r.features);
        self.write(reg::COUNT, r.count);
        self.write(reg::LBA_LOW, r.lba_low);
        self.write(reg::LBA_MID, r.lba_mid);
        self.write(reg::LBA_HIGH, r.lba_high);
    }

    /// Loads a task file: HOB bytes first (LBA48), then the low bytes, then
    /// Device.
    pub fn load(&self, tf: &TaskFile) {
        if let Some(hob) = &tf.hob {
            self.write_regs5(hob);
        }
        self.write_regs5(&tf.low);
        self.write(reg::DEVICE, tf.device);
    }

    /// Selects the task file's drive and loads the task file.
    pub fn prepare(&self, tf: &TaskFile) -> Result<(), AtaError> {
        self.select_raw(tf.device & (device::OBS | device::DEV1))?;
        self.load(tf);
        Ok(())
    }

    /// Writes the Command register.
    pub fn command(&self, opcode: u8) {
        self.write(reg::STATUS_COMMAND, opcode);
    }

    /// Selects the task file's drive, loads it and writes `opcode`.
    pub fn issue(&self, tf: &TaskFile, opcode: u8) -> Result<(), AtaError> {
        self.prepare(tf)?;
        self.command(opcode);
        Ok(())
    }

    /// Reads registers 2-5 (Count, LBA low/mid/high), with Features as 0.
    fn read_regs4(&self) -> Regs5 {
        Regs5 {
            features: 0,
            count: self.read(reg::COUNT),
            lba_low: self.read(reg::LBA_LOW),
            lba_mid: self.read(reg::LBA_MID),
            lba_high: self.read(reg::LBA_HIGH),
        }
    }

    /// Reads the low task-file bytes (Count, LBA) and, with HOB set in
    /// Device Control, the high-order bytes; restores Device Control.
    pub fn read_taskfile(&self) -> (Regs5, Regs5) {
        let normal = self.devctl();
        let low = self.read_regs4();
        self.set_devctl(normal | devctl::HOB);
        let hob = self.read_regs4();
        self.set_devctl(normal);
        (hob, low)
    }

    /// Software reset (SRST rising edge, then release) and wait for the
    /// drives to finish (BSY clear). Returns Status (read, acknowledging the
    /// diagnostic interrupt).
    pub fn soft_reset(&self) -> Result<u8, AtaError> {
        let normal = self.devctl();
        self.set_devctl(normal | devctl::SRST);
        // Linux waits 20 us here; an Alternate Status read is the pause.
        let _ = self.alt_status();
        self.set_devctl(normal);
        let _ = self.alt_status();
        self.wait_not_busy("BSY clear after SRST")?;
        Ok(self.status())
    }

    /// Whether IRQ 14 is requested at the PIC, checking up to
    /// [`IRR_POLLS`] times with an Alternate Status read in between (a
    /// VMM may raise the line a moment after the status changed).
    pub fn irq_requested(&self) -> bool {
        for _ in 0..IRR_POLLS {
            if pic::irq14_requested() {
                return true;
            }
            let _ = self.alt_status();
        }
        false
    }

    /// Whether IRQ 14 is not requested at the PIC (in level mode: the line
    /// is low), checking up to [`IRR_POLLS`] times.
    pub fn irq_released(&self) -> bool {
        for _ in 0..IRR_POLLS {
            if !pic::irq14_requested() {
                return true;
            }
            let _ = self.alt_status();
        }
        false
    }

    /// Takes any latched IRQ 14 now (see [`pic::drain`]), polling
    /// Alternate Status; returns how many arrived.
    pub fn drain_irq(&self) -> u32 {
        pic::drain(|| {
            let _ = self.alt_status();
        })
    }

    /// Enables interrupts for `polls` Alternate Status reads (see
    /// [`pic::window`]); returns how many IRQ 14s arrived.
    pub fn irq_window(&self, polls: u32) -> u32 {
        pic::window(polls, || {
            let _ = self.alt_status();
        })
    }

    // --- Bus-master registers -------------------------------------------

    /// Reads the bus-master command register.
    pub fn bm_cmd(&self) -> u8 {
        inb(self.bm + bm::CMD)
    }

    /// Writes the bus-master command register.
    pub fn set_bm_cmd(&self, v: u8) {
        outb(self.bm + bm::CMD, v);
    }

    /// Reads the bus-master status register.
    pub fn bm_status(&self) -> u8 {
        inb(self.bm + bm::STATUS)
    }

    /// Writes the bus-master status register (INT and ERR are
    /// write-1-to-clear, the drive-capable bits are plain storage).
    pub fn set_bm_status(&self, v: u8) {
        outb(self.bm + bm::STATUS, v);
    }

    /// Clears INT and ERR (read and write back, as Linux does).
    pub fn clear_bm_status(&self) -> u8 {
        let v = self.bm_status();
        self.set_bm_status(v);
        v
    }

    /// Writes the PRD table pointer (one 32-bit access).
    pub fn set_prd_pointer(&self, addr: u32) {
        outl(self.bm + bm::PRD_ADDR, addr);
    }

    /// Reads the PRD table pointer.
    pub fn prd_pointer(&self) -> u32 {
        inl(self.bm + bm::PRD_ADDR)
    }

    /// Clears START (stopping any transfer) and the status bits.
    pub fn stop_bus_master(&self) {
        let c = self.bm_cmd();
        self.set_bm_cmd(c & !bm::CMD_START);
        let _ = self.alt_status();
        let _ = self.clear_bm_status();
    }
}
