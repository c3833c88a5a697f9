//! Attack class: every opcode 0x00-0xFF written to the Command register
//! with a plain task file (Features 0, Count 1, an unused LBA). Each must
//! end (BSY clears): completed, aborted, or in a data phase (DRQ), which
//! the case ends with SRST without moving data, so no opcode writes the
//! disk. Completed and aborted commands must raise the IRQ. The device
//! settings the sweep changes (geometry, multiple count) are put back.

use vmdma_guest::ata::regs::{cmd, error, status};
use vmdma_guest::ata::taskfile::{Drive, TaskFile};
use vmdma_guest::msg;
use vmdma_guest::msg::Msg;

use super::{CaseResult, Hx};
use crate::suite::Fail;
use crate::suite::io::Mode;
use crate::{fail, pass};

/// What the sweep saw.
#[derive(Default)]
struct Counts {
    done: u32,
    aborted: u32,
    data: u32,
}

/// Puts back the geometry and the multiple count IDENTIFY showed at start.
pub(super) fn restore_settings(hx: &mut Hx) -> Result<(), Fail> {
    let tf = hx.default_geometry_tf();
    hx.ctx.non_data(&tf, cmd::INITIALIZE_DEVICE_PARAMETERS)?;
    let w59 = hx.ctx.id.word(59);
    let mult = if w59 & 0x100 != 0 {
        (w59 & 0xFF) as u8
    } else {
        0
    };
    hx.ctx.non_data(
        &TaskFile::plain(Drive::Master, 0, mult),
        cmd::SET_MULTIPLE_MODE,
    )?;
    Ok(())
}

/// Issues every opcode in `first..=last`.
fn sweep(hx: &mut Hx, first: u8, last: u8) -> CaseResult {
    let lba = hx.ctx.alloc(256)?;
    let tf = Mode::Lba28.taskfile(lba, 1)?;
    let mut c = Counts::default();
    let mut problem: Option<Msg> = None;
    for op in first..=last {
        let ch = &hx.ctx.ch;
        ch.drain_irq();
        let _ = ch.clear_bm_status();
        if ch.select(Drive::Master).is_err() {
            ch.soft_reset()?;
            ch.select(Drive::Master)?;
        }
        ch.load(&tf);
        ch.command(op);
        let st = match ch.wait_not_busy("the command to end") {
            Ok(st) => st,
            Err(_) => {
                problem.get_or_insert(msg!("opcode {op:#04x} left BSY set"));
                ch.soft_reset()?;
                continue;
            }
        };
        if st & status::DRQ != 0 {
            c.data += 1;
            ch.soft_reset()?;
            continue;
        }
        let irq = ch.irq_requested();
        let err = ch.error();
        let st = ch.status();
        if st & status::DRDY == 0 || st & status::DF != 0 {
            problem.get_or_insert(msg!("opcode {op:#04x}: status {st:#04x}"));
        } else if st & status::ERR != 0 {
            if err & error::ABRT == 0 {
                problem.get_or_insert(msg!("opcode {op:#04x}: ERR without ABRT ({err:#04x})"));
            }
            c.aborted += 1;
        } else {
            c.done += 1;
        }
        if !irq {
            problem.get_or_insert(msg!("opcode {op:#04x}: no interrupt (status {st:#04x})"));
        }
    }
    restore_settings(hx)?;
    if let Some(p) = problem {
        return fail!("{p}");
    }
    pass!(
        "{} completed, {} aborted, {} entered a data phase (ended by SRST)",
        c.done,
        c.aborted,
        c.data
    )
}

/// Opcodes 0x00-0x3F.
pub fn opcodes_00_3f(hx: &mut Hx) -> CaseResult {
    sweep(hx, 0x00, 0x3F)
}

/// Opcodes 0x40-0x7F.
pub fn opcodes_40_7f(hx: &mut Hx) -> CaseResult {
    sweep(hx, 0x40, 0x7F)
}

/// Opcodes 0x80-0xBF.
pub fn opcodes_80_bf(hx: &mut Hx) -> CaseResult {
    sweep(hx, 0x80, 0xBF)
}

/// Opcodes 0xC0-0xFF.
pub fn opcodes_c0_ff(hx: &mut Hx) -> CaseResult {
    sweep(hx, 0xC0, 0xFF)
}
