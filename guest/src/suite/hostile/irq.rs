//! Attack class: interrupt storms. IRQ 14 masked, unmasked and switched
//! between edge and level while DMA commands complete; nIEN toggled around
//! commands; a latched interrupt under a mask storm; BM INT never
//! cleared.
//! Counts of interrupts are checked, never printed (they may vary).

use vmdma_guest::ata::regs::{bm, cmd, devctl};
use vmdma_guest::ata::taskfile::{Drive, TaskFile};
use vmdma_guest::stamp::SECTOR;

use super::raw::{EOT, Expect, dma_verdict};
use super::{CaseResult, Hx, Verdict};
use crate::ide::channel::DEVCTL_NORMAL;
use crate::{fail, pass, pic};

/// Reads 2 stamped sectors by DMA; PASS on a clean completion.
fn good_read(hx: &mut Hx) -> CaseResult {
    let (lba, pattern) = hx.stamped(2)?;
    let buf = hx.data_at(0)?;
    hx.prds(&[(buf, (2 * SECTOR as u32) | EOT)])?;
    let o = hx.read(lba, 2)?;
    let v = dma_verdict(&o, |side| {
        hx.check_side(side, &[(0, 2 * SECTOR, Expect::Stamps { lba, pattern })])
    });
    hx.canaries();
    Ok(v)
}

/// 8 DMA reads, each with IRQ 14 masked/unmasked and edge/level toggled
/// 8 times around it; then an interrupt-driven command gets exactly one
/// interrupt.
pub fn irq_mask_storm(hx: &mut Hx) -> CaseResult {
    for _ in 0..8 {
        for i in 0..8 {
            pic::set_irq14_masked(i % 2 == 0);
            pic::set_irq14_level(i % 3 == 0);
        }
        let v = good_read(hx)?;
        if !matches!(v, Verdict::Pass(_)) {
            pic::set_irq14_level(false);
            pic::set_irq14_masked(false);
            return fail!("a read during the storm: {v}");
        }
    }
    pic::set_irq14_level(false);
    pic::set_irq14_masked(false);
    one_interrupt(hx)
}

/// CHECK POWER MODE with interrupts enabled: exactly one IRQ 14.
fn one_interrupt(hx: &mut Hx) -> CaseResult {
    let ch = &hx.ctx.ch;
    let _ = ch.status();
    ch.drain_irq();
    let base = pic::irq14_count();
    ch.issue(&TaskFile::plain(Drive::Master, 0, 0), cmd::CHECK_POWER_MODE)?;
    let _ = ch.wait_not_busy("CHECK POWER MODE")?;
    let n = ch.irq_window(256);
    let _ = ch.status();
    let _ = ch.clear_bm_status();
    if n != 1 || pic::irq14_count().wrapping_sub(base) != 1 {
        return fail!("the command after the storm raised {n} interrupts (want 1)");
    }
    pass!("exactly one interrupt per command afterwards")
}

/// nIEN toggled 256 times, with non-data commands issued under both
/// settings; then nIEN clear delivers exactly one interrupt per command.
pub fn nien_storm(hx: &mut Hx) -> CaseResult {
    let tf = TaskFile::plain(Drive::Master, 0, 0);
    for i in 0..256u32 {
        let v = if i % 2 == 0 {
            DEVCTL_NORMAL | devctl::NIEN
        } else {
            DEVCTL_NORMAL
        };
        hx.ctx.ch.set_devctl(v);
        if i % 32 == 0 {
            hx.ctx.ch.issue(&tf, cmd::CHECK_POWER_MODE)?;
            let _ = hx.ctx.ch.wait_not_busy("CHECK POWER MODE")?;
        }
    }
    hx.ctx.ch.set_devctl(DEVCTL_NORMAL);
    let _ = hx.ctx.ch.status();
    hx.ctx.ch.drain_irq();
    one_interrupt(hx)
}

/// An interrupt latched while IRQ 14 is masked, then the mask toggled 64
/// times with interrupts disabled: opening a window delivers it exactly
/// once. (A level-triggered line left high with interrupts enabled would
/// livelock this guest's handler, which does not acknowledge the device, so
/// the storm is made at the mask, not with the line.)
pub fn masked_irq_mask_toggles(hx: &mut Hx) -> CaseResult {
    let ch = &hx.ctx.ch;
    let _ = ch.status();
    ch.drain_irq();
    pic::set_irq14_masked(true);
    let base = pic::irq14_count();
    ch.issue(&TaskFile::plain(Drive::Master, 0, 0), cmd::CHECK_POWER_MODE)?;
    let _ = ch.wait_not_busy("CHECK POWER MODE")?;
    for i in 0..64 {
        pic::set_irq14_masked(i % 2 == 0);
    }
    pic::set_irq14_masked(false);
    let n = ch.irq_window(256);
    let _ = ch.status();
    let _ = ch.clear_bm_status();
    let total = pic::irq14_count().wrapping_sub(base);
    if n != 1 || total != 1 {
        return fail!("the latched interrupt arrived {total} times (want 1)");
    }
    pass!("the latched interrupt arrived once")
}

/// 8 DMA reads without ever clearing BM INT: each still completes.
pub fn bm_int_never_cleared(hx: &mut Hx) -> CaseResult {
    for _ in 0..8 {
        let (lba, pattern) = hx.stamped(1)?;
        let buf = hx.data_at(0)?;
        hx.prds(&[(buf, SECTOR as u32 | EOT)])?;
        let mode = crate::suite::io::Mode::for_range(lba, 1);
        let tf = mode.taskfile(lba, 1)?;
        let table = hx.table()?;
        let ch = &hx.ctx.ch;
        ch.prepare(&tf)?;
        ch.set_prd_pointer(table);
        ch.set_bm_cmd(bm::CMD_WRITE_MEMORY);
        ch.command(mode.dma_opcode(crate::ide::dma::Direction::ToMemory));
        hx.start();
        let mut st = 0;
        for _ in 0..crate::ide::channel::WAIT_POLLS {
            st = ch.bm_status();
            if st & bm::STATUS_ACTIVE == 0 {
                break;
            }
        }
        hx.stop();
        let s = ch.status();
        if st & bm::STATUS_ACTIVE != 0 || s & 0xC9 != 0x40 {
            return fail!("a read with BM INT left set: BM {st:#04x}, status {s:#04x}");
        }
        hx.check_data(&[(0, SECTOR, Expect::Stamps { lba, pattern })])
            .map_err(crate::suite::Fail)?;
        hx.canaries();
    }
    let _ = hx.ctx.ch.clear_bm_status();
    pass!("reads complete with BM INT left set")
}
