//! Bus-master DMA commands (READ/WRITE DMA, their EXT forms, DATA SET
//! MANAGEMENT), following Linux's `ata_bmdma_setup`/`ata_bmdma_start`/
//! `ata_bmdma_stop` sequence, with the variations the conformance tests
//! need: START before or after the command, START cleared right away,
//! completion by BM status polling, Alternate Status polling or interrupt.
//!
//! [`run_lean`] is the plain Linux sequence without the diagnostic reads,
//! for the benchmarks.
//!
//! The caller fills the PRD table in [`DmaMemory`] first; [`run`] and
//! [`run_lean`] hold the memory borrowed until the bus master is stopped
//! again.

use vmdma_guest::ata::regs::{bm, device, reg, status};
use vmdma_guest::ata::taskfile::TaskFile;

use super::AtaError;
use super::channel::{Channel, WAIT_POLLS};
use crate::arch::cpu;
use crate::arch::dma_memory::DmaMemory;
use crate::arch::io::{inb, outb};
use crate::pic;

/// Data direction, named from memory's side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// ATA read: the controller writes memory (BM command bit 3 set).
    ToMemory,
    /// ATA write (and TRIM): the controller reads memory.
    FromMemory,
}

/// When START is written relative to the ATA command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartOrder {
    /// Command first, then START (what Linux does).
    AfterCommand,
    /// START first, then the command.
    BeforeCommand,
}

/// How the end of the transfer is detected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Poll BM status until INT is set or ACTIVE clears.
    BmStatus,
    /// Poll Alternate Status until BSY and DRQ are clear (works with nIEN).
    AltStatus,
    /// Enable interrupts and wait for the IRQ 14 handler to run.
    Interrupt,
}

/// A DMA command and how to drive it.
#[derive(Clone, Copy, Debug)]
pub struct DmaCommand {
    /// ATA opcode.
    pub opcode: u8,
    /// Task file.
    pub tf: TaskFile,
    /// Data direction.
    pub dir: Direction,
    /// START order.
    pub order: StartOrder,
    /// Completion detection.
    pub wait: Wait,
    /// Clear START immediately after setting it (before waiting).
    pub stop_early: bool,
    /// With [`StartOrder::AfterCommand`]: write `value` to task-file
    /// register `reg` between the command and START, and read it back (the
    /// device must ignore the write while DRQ is set).
    pub probe: Option<(u16, u8)>,
}

impl DmaCommand {
    /// A command driven the way Linux does: START after the command,
    /// completion by BM status polling.
    pub fn new(opcode: u8, tf: TaskFile, dir: Direction) -> Self {
        DmaCommand {
            opcode,
            tf,
            dir,
            order: StartOrder::AfterCommand,
            wait: Wait::BmStatus,
            stop_early: false,
            probe: None,
        }
    }
}

/// What the registers showed during and after the command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaOutcome {
    /// Alternate Status between the command and START (AfterCommand only).
    pub status_before_start: Option<u8>,
    /// BM status between the command and START (AfterCommand only).
    pub bm_before_start: Option<u8>,
    /// The probed register's value after the probe write.
    pub probe_read: Option<u8>,
    /// BM status when completion was detected, before START was cleared.
    pub bm_at_completion: u8,
    /// BM status after START was cleared.
    pub bm_after_stop: u8,
    /// Whether the slave PIC had IRQ 14 requested (checked before reading
    /// Status; meaningful for the polling waits).
    pub irq_requested: bool,
    /// IRQ 14 interrupts taken during the command (interrupt wait only).
    pub irqs: u32,
    /// Status at the end (this read acknowledges INTRQ).
    pub status: u8,
    /// Error at the end.
    pub error: u8,
}

impl DmaOutcome {
    /// Whether the command succeeded the normal way: Status DRDY|DSC only,
    /// BM INT set and ACTIVE clear after stopping, an interrupt requested.
    pub fn is_clean_success(&self) -> bool {
        self.status & !status::DSC == status::DRDY
            && self.bm_after_stop & (bm::STATUS_ACTIVE | bm::STATUS_ERR | bm::STATUS_INT)
                == bm::STATUS_INT
            && (self.irq_requested || self.irqs > 0)
    }
}

/// Runs `command` with the PRD table already in `mem`.
pub fn run(
    ch: &Channel,
    mem: &mut DmaMemory,
    command: &DmaCommand,
) -> Result<DmaOutcome, AtaError> {
    let prd = mem.prd_phys().ok_or(AtaError::Buffer)?;
    ch.stop_bus_master();
    ch.drain_irq();
    let irq_base = pic::irq14_count();

    ch.prepare(&command.tf)?;
    ch.set_prd_pointer(prd);
    let mut base = ch.bm_cmd() & !(bm::CMD_START | bm::CMD_WRITE_MEMORY);
    if command.dir == Direction::ToMemory {
        base |= bm::CMD_WRITE_MEMORY;
    }
    ch.set_bm_cmd(base);

    let mut status_before_start = None;
    let mut bm_before_start = None;
    let mut probe_read = None;
    match command.order {
        StartOrder::BeforeCommand => {
            ch.set_bm_cmd(base | bm::CMD_START);
            ch.command(command.opcode);
        }
        StartOrder::AfterCommand => {
            ch.command(command.opcode);
            status_before_start = Some(ch.alt_status());
            bm_before_start = Some(ch.bm_status());
            if let Some((reg, value)) = command.probe {
                ch.write(reg, value);
                probe_read = Some(ch.read(reg));
            }
            ch.set_bm_cmd(base | bm::CMD_START);
        }
    }
    if command.stop_early {
        ch.set_bm_cmd(base);
        let _ = ch.alt_status();
    }

    let waited = match command.wait {
        Wait::BmStatus => wait_bm(ch).map(|_| ()),
        Wait::AltStatus => ch
            .wait_idle("DMA completion (BSY and DRQ clear)")
            .map(|_| ()),
        Wait::Interrupt => wait_irq(ch, irq_base),
    };
    let bm_at_completion = ch.bm_status();
    ch.set_bm_cmd(base);
    let _ = ch.alt_status();
    let bm_after_stop = ch.bm_status();
    if let Err(e) = waited {
        ch.stop_bus_master();
        return Err(e);
    }
    let irq_requested = ch.irq_requested();
    let error = ch.error();
    let st = ch.status();
    ch.set_bm_status(bm_after_stop);
    Ok(DmaOutcome {
        status_before_start,
        bm_before_start,
        probe_read,
        bm_at_completion,
        bm_after_stop,
        irq_requested,
        irqs: pic::irq14_count().wrapping_sub(irq_base),
        status: st,
        error,
    })
}

/// How [`run_lean`] detects the end of the transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeanWait {
    /// Poll BM status until INT (libata's polling mode).
    Poll,
    /// `sti; hlt` until IRQ 14 arrives, then read BM status, as libata's
    /// `ata_bmdma_interrupt` does (again until INT or !ACTIVE, see
    /// [`run_lean`]).
    Interrupt,
}

/// `sti; hlt` rounds [`run_lean`] waits for IRQ 14 at most. A round ends
/// with any interrupt (or, on a VMM that only injects on its own exits,
/// with the supervisor's periodic kick), so this bounds the wait.
pub const IRQ_HALTS: u32 = 64;

/// Runs one DMA command with the PRD table already in `mem`, the way
/// Linux's libata drives a PIIX (`ata_sff_qc_issue` with
/// `ata_bmdma_setup`/`ata_bmdma_start`, completion by polling BM status or
/// by the interrupt, then `ata_bmdma_stop`, the Status read and
/// `ata_bmdma_irq_clear`):
///
/// ```text
/// select (wait idle, Device, Alternate Status pause, wait idle)
/// task file ([HOB Features..LBA high], Features..LBA high, Device)
/// PRD pointer        BM command (direction)      command      BM command | START
/// poll BM status (INT or !ACTIVE) -- or: sti; hlt until IRQ 14, read BM status
/// BM command (stop), pause          Status       BM status write-back (W1C INT/ERR)
/// ```
///
/// None of the diagnostic reads of [`run`]: 20 port accesses per LBA28
/// command, 25 per LBA48 one (five HOB registers). Returns the final
/// Status. Fails on a timeout, on a Status other than DRDY (DSC ignored)
/// with BSY, DRQ, ERR and DF clear ([`AtaError::Device`], with the Error
/// register), or when BM status at completion lacks INT or has ERR
/// ([`AtaError::BusMaster`]).
pub fn run_lean(
    ch: &Channel,
    mem: &mut DmaMemory,
    opcode: u8,
    tf: &TaskFile,
    dir: Direction,
    wait: LeanWait,
) -> Result<u8, AtaError> {
    let prd = mem.prd_phys().ok_or(AtaError::Buffer)?;
    ch.prepare(tf)?;
    ch.set_prd_pointer(prd);
    let mut base = ch.bm_cmd() & !(bm::CMD_START | bm::CMD_WRITE_MEMORY);
    if dir == Direction::ToMemory {
        base |= bm::CMD_WRITE_MEMORY;
    }
    ch.set_bm_cmd(base);
    let irq_base = pic::irq14_count();
    ch.command(opcode);
    ch.set_bm_cmd(base | bm::CMD_START);
    let waited = match wait {
        LeanWait::Poll => wait_bm(ch),
        // After the interrupt, BM status normally shows INT at the first
        // read. QEMU (aio=threads) was seen to inject IRQ 14 before its
        // BM status showed INT and !ACTIVE, so the read repeats until
        // they do (libata treats such an interrupt as not yet its own).
        LeanWait::Interrupt => halt_for_irq(ch, irq_base).and_then(|()| wait_bm(ch)),
    };
    ch.set_bm_cmd(base);
    let _ = ch.alt_status();
    let bm_status = match waited {
        Ok(v) => v,
        Err(e) => {
            ch.stop_bus_master();
            return Err(e);
        }
    };
    let st = ch.status();
    // INT and ERR are write-1-to-clear; ACTIVE is read-only and the
    // drive-capable bits are written back unchanged.
    ch.set_bm_status(bm_status);
    if st & (status::BSY | status::DRQ | status::ERR | status::DF | status::DRDY) != status::DRDY {
        return Err(AtaError::Device {
            status: st,
            error: ch.error(),
        });
    }
    if bm_status & (bm::STATUS_ERR | bm::STATUS_INT) != bm::STATUS_INT {
        return Err(AtaError::BusMaster {
            bm_status,
            status: st,
        });
    }
    Ok(st)
}

/// The ports [`run_minimal`] writes, computed once per channel (each
/// address computation is an instruction, and guest instructions may be
/// emulated one by one).
#[derive(Clone, Copy, Debug)]
pub struct MinimalPorts {
    count: u16,
    lba_low: u16,
    lba_mid: u16,
    lba_high: u16,
    device: u16,
    command: u16,
    bm_cmd: u16,
    bm_status: u16,
}

impl MinimalPorts {
    /// The ports of `ch`.
    pub fn of(ch: &Channel) -> Self {
        let (cmd, _, bmiba) = ch.ports();
        MinimalPorts {
            count: cmd + reg::COUNT,
            lba_low: cmd + reg::LBA_LOW,
            lba_mid: cmd + reg::LBA_MID,
            lba_high: cmd + reg::LBA_HIGH,
            device: cmd + reg::DEVICE,
            command: cmd + reg::STATUS_COMMAND,
            bm_cmd: bmiba + bm::CMD,
            bm_status: bmiba + bm::STATUS,
        }
    }
}

/// What every command of a [`run_minimal`] loop shares.
#[derive(Clone, Copy, Debug)]
pub struct MinimalCommand {
    /// The channel's ports.
    pub ports: MinimalPorts,
    /// ATA opcode.
    pub opcode: u8,
    /// Sectors per command.
    pub sectors: u32,
    /// LBA48 task file (else LBA28).
    pub lba48: bool,
    /// BM command with the direction bit, without START.
    pub bm_cmd: u8,
    /// Completion detection.
    pub wait: LeanWait,
}

/// Runs one DMA command of `m.sectors` sectors at `lba` with the fewest port
/// accesses a driver that has one command at a time needs (the `minimal`
/// benchmark shape):
///
/// ```text
/// task file ([HOB Count, LBA low/mid/high], Count, LBA low/mid/high, Device)
/// command      BM command = `bm_cmd` | START
/// poll BM status (INT or !ACTIVE) -- or: sti; hlt until IRQ 14, read BM status
/// BM command = `bm_cmd` (stop)     Status     BM status write-back (W1C)
/// ```
///
/// The caller has loaded the PRD pointer, the drive is selected and idle
/// (the previous command's Status said so), `m.bm_cmd` is the BM command
/// value with the direction bit and without START, and `lba`/`m.sectors`
/// fit the addressing mode (the count register's 0 stands for the largest
/// count). No Features write: READ/WRITE DMA ignore it. 14 accesses for an
/// LBA48 command (10 for LBA28), of which only command, START, the poll,
/// stop and Status need the device's answer at once. Errors as
/// [`run_lean`].
#[inline(always)]
pub fn run_minimal(ch: &Channel, m: &MinimalCommand, lba: u64) -> Result<u8, AtaError> {
    let p = &m.ports;
    let (opcode, lba48, bm_cmd, wait) = (m.opcode, m.lba48, m.bm_cmd, m.wait);
    let [l0, l1, l2, l3, l4, l5, ..] = lba.to_le_bytes();
    let [c0, c1, ..] = m.sectors.to_le_bytes();
    let mut dev = device::OBS | device::LBA;
    if lba48 {
        outb(p.count, c1);
        outb(p.lba_low, l3);
        outb(p.lba_mid, l4);
        outb(p.lba_high, l5);
    } else {
        dev |= l3 & 0x0F;
    }
    outb(p.count, c0);
    outb(p.lba_low, l0);
    outb(p.lba_mid, l1);
    outb(p.lba_high, l2);
    outb(p.device, dev);
    let irq_base = pic::irq14_count();
    outb(p.command, opcode);
    outb(p.bm_cmd, bm_cmd | bm::CMD_START);
    let waited = match wait {
        LeanWait::Poll => wait_bm(ch),
        LeanWait::Interrupt => halt_for_irq(ch, irq_base).and_then(|()| wait_bm(ch)),
    };
    outb(p.bm_cmd, bm_cmd);
    let bm_status = match waited {
        Ok(v) => v,
        Err(e) => return Err(minimal_failed(ch, e)),
    };
    let st = inb(p.command);
    outb(p.bm_status, bm_status);
    if st & (status::BSY | status::DRQ | status::ERR | status::DF | status::DRDY) != status::DRDY
        || bm_status & (bm::STATUS_ERR | bm::STATUS_INT) != bm::STATUS_INT
    {
        return Err(minimal_error(ch, st, bm_status));
    }
    Ok(st)
}

/// The error path of [`run_minimal`] when the wait failed.
#[cold]
fn minimal_failed(ch: &Channel, e: AtaError) -> AtaError {
    ch.stop_bus_master();
    e
}

/// The error of [`run_minimal`] for a bad Status or BM status.
#[cold]
fn minimal_error(ch: &Channel, st: u8, bm_status: u8) -> AtaError {
    if st & (status::BSY | status::DRQ | status::ERR | status::DF | status::DRDY) != status::DRDY {
        AtaError::Device {
            status: st,
            error: ch.error(),
        }
    } else {
        AtaError::BusMaster {
            bm_status,
            status: st,
        }
    }
}

/// Halts with interrupts enabled until IRQ 14 has been taken since
/// `base` (at most [`IRQ_HALTS`] rounds).
fn halt_for_irq(ch: &Channel, base: u32) -> Result<(), AtaError> {
    for _ in 0..IRQ_HALTS {
        if pic::irq14_count() != base {
            return Ok(());
        }
        cpu::wait_for_interrupt();
    }
    if pic::irq14_count() != base {
        return Ok(());
    }
    Err(AtaError::Timeout {
        what: "IRQ 14 (sti; hlt)",
        status: ch.alt_status(),
    })
}

/// Polls BM status until INT is set or ACTIVE is clear; returns it.
fn wait_bm(ch: &Channel) -> Result<u8, AtaError> {
    let mut s = 0;
    for _ in 0..WAIT_POLLS {
        s = ch.bm_status();
        if s & bm::STATUS_INT != 0 || s & bm::STATUS_ACTIVE == 0 {
            return Ok(s);
        }
    }
    Err(AtaError::Timeout {
        what: "BM status INT or !ACTIVE",
        status: s,
    })
}

fn wait_irq(ch: &Channel, base: u32) -> Result<(), AtaError> {
    pic::with_interrupts(|| {
        for _ in 0..WAIT_POLLS {
            if pic::irq14_count() != base {
                return Ok(());
            }
            let _ = ch.alt_status();
        }
        Err(AtaError::Timeout {
            what: "IRQ 14",
            status: ch.alt_status(),
        })
    })
}
