//! Attack class: interrupting data commands. SRST and BM START 1→0 right
//! after every kind of data command started (READ DMA, WRITE DMA, TRIM,
//! FLUSH CACHE, PIO in, PIO out), START 1→0→1, bus mastering or I/O decode
//! switched off after START or before it.
//!
//! A synchronous backend (vmdma today) finishes a DMA inside the START
//! write, so the interruption may find the command already done; an
//! asynchronous one (QEMU) may be caught mid-transfer. Either way the
//! verdicts ask the same: every sector either whole or untouched (in memory
//! and on disk), nothing outside the target touched, the channel usable
//! after the guest's recovery. The reasons do not say which way it went, so
//! they do not depend on timing.

use vmdma_guest::ata::regs::{cmd, devctl, feature, status};
use vmdma_guest::ata::taskfile::{Drive, TaskFile};
use vmdma_guest::msg;
use vmdma_guest::msg::Msg;
use vmdma_guest::stamp::{self, SECTOR};

use super::busy::{pio_in, pio_out};
use super::raw::{EOT, Expect, Outcome};
use super::{CaseResult, Hx, Verdict};
use crate::arch::mem;
use crate::ide::channel::DEVCTL_NORMAL;
use crate::ide::dma::Direction;
use crate::pci::{COMMAND_IO, COMMAND_MASTER, REG_COMMAND};
use crate::suite::Fail;
use crate::suite::io::{Layout, Mode};
use crate::{fail, pass};

/// Sectors the interrupted DMA commands move (128 KiB, two PRDs).
const SECTORS: u32 = 256;

/// How a command is interrupted.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// SRST pulse.
    Srst,
    /// BM START 1→0.
    Stop,
}

impl Cut {
    fn apply(self, hx: &Hx) {
        match self {
            Cut::Srst => {
                let ch = &hx.ctx.ch;
                ch.set_devctl(DEVCTL_NORMAL | devctl::SRST);
                ch.set_devctl(DEVCTL_NORMAL);
            }
            Cut::Stop => hx.stop(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Cut::Srst => "SRST",
            Cut::Stop => "START 1->0",
        }
    }
}

/// Waits until the device asks for the next PIO block (BSY clear, DRQ).
fn wait_drq(hx: &Hx) -> Result<(), Fail> {
    let st = hx.ctx.ch.wait_not_busy("the next PIO block")?;
    if st & status::DRQ == 0 {
        return Err(Fail(msg!(
            "no DRQ for the next PIO block (status {st:#04x})"
        )));
    }
    Ok(())
}

/// After the cut: wait for BSY to clear (bounded), and if the command is
/// still pending (DRQ: a DMA never started, or a PIO phase), end it with
/// SRST. Acknowledges INTRQ and BM INT/ERR.
fn settle(hx: &Hx) -> Result<(), Fail> {
    let ch = &hx.ctx.ch;
    hx.stop();
    let st = ch.wait_not_busy("BSY clear after the interruption")?;
    if st & status::DRQ != 0 {
        ch.soft_reset()?;
    }
    let _ = ch.status();
    let _ = ch.clear_bm_status();
    Ok(())
}

/// Reads `sectors` at `lba` back into data offset 0 with a clean DMA and
/// checks each sector is the stamp of `old` or `new` (`None`: zeros).
fn each_sector_old_or_new(
    hx: &mut Hx,
    lba: u64,
    sectors: u32,
    old: u32,
    new: Option<u32>,
) -> Result<(), Msg> {
    hx.canaries();
    let mut done = 0u32;
    while done < sectors {
        let n = (sectors - done).min(256);
        let layout = Layout::ram(0, n as usize * SECTOR).map_err(|f| f.0)?;
        let x = crate::suite::io::Xfer::new(lba + u64::from(done), n);
        let o = hx.ctx.dma_read(&x, &layout).map_err(|f| f.0)?;
        crate::suite::io::expect_clean("read-back", &o).map_err(|f| f.0)?;
        for i in 0..n {
            let s_lba = lba + u64::from(done + i);
            let at = i as usize * SECTOR;
            let sector = hx.ctx.mem.data.get(at..at + SECTOR).unwrap_or(&[]);
            let ok = match (stamp::decode_header(sector), new) {
                (Some((l, p)), Some(n)) if l == s_lba && (p == old || p == n) => Some(p),
                (Some((l, p)), None) if l == s_lba && p == old => Some(p),
                (None, None) if mem::first_not(sector, 0).is_none() => None,
                _ => {
                    return Err(msg!(
                        "sector {s_lba} is neither the old nor the new content"
                    ));
                }
            };
            if let Some(p) = ok {
                hx.ctx
                    .verify_data(at, s_lba, 1, p)
                    .map_err(|f| msg!("sector {s_lba} is torn: {}", f.0))?;
            }
        }
        done += n;
    }
    hx.canaries();
    Ok(())
}

/// PRDs for `SECTORS` sectors at data offset 0 (two 64 KiB entries).
fn two_prds(hx: &mut Hx) -> Result<u32, Fail> {
    let buf = hx.data_at(0)?;
    hx.prds(&[(buf, 0), (buf + 0x1_0000, EOT)])?;
    hx.table()
}

fn dma_read_cut(hx: &mut Hx, cut: Cut) -> CaseResult {
    let (lba, pattern) = hx.stamped(SECTORS)?;
    let table = two_prds(hx)?;
    let tf = Mode::Lba48.taskfile(lba, SECTORS)?;
    hx.issue(cmd::READ_DMA_EXT, &tf, true, table)?;
    hx.start();
    cut.apply(hx);
    settle(hx)?;
    hx.check_data(&[(
        0,
        SECTORS as usize * SECTOR,
        Expect::StampsOrCanary { lba, pattern },
    )])
    .map_err(Fail)?;
    pass!(
        "{} after START: no partial sector, nothing outside the target",
        cut.name()
    )
}

fn dma_write_cut(hx: &mut Hx, cut: Cut) -> CaseResult {
    let (lba, old) = hx.stamped(SECTORS)?;
    let new = hx.ctx.pattern();
    hx.ctx.build(lba, SECTORS, new)?;
    let layout = Layout::ram(0, SECTORS as usize * SECTOR)?;
    hx.ctx.scatter(&layout)?;
    let table = two_prds(hx)?;
    let tf = Mode::Lba48.taskfile(lba, SECTORS)?;
    hx.ctx.manifest_write(lba, SECTORS, new);
    hx.dirty(lba, SECTORS)?;
    hx.issue(cmd::WRITE_DMA_EXT, &tf, false, table)?;
    hx.start();
    cut.apply(hx);
    settle(hx)?;
    each_sector_old_or_new(hx, lba, SECTORS, old, Some(new)).map_err(Fail)?;
    pass!(
        "{} after START: each sector old or new, none torn",
        cut.name()
    )
}

fn trim_cut(hx: &mut Hx, cut: Cut) -> CaseResult {
    if !hx.ctx.id.trim() {
        return crate::skip_case!("IDENTIFY does not advertise TRIM");
    }
    let (lba, old) = hx.stamped(64)?;
    let block = hx.ctx.mem.data.get_mut(..SECTOR).unwrap_or(&mut []);
    mem::fill(block, 0);
    let v = lba | (64u64 << 48);
    if let Some(e) = block.get_mut(..8) {
        e.copy_from_slice(&v.to_le_bytes());
    }
    let buf = hx.data_at(0)?;
    hx.prds(&[(buf, SECTOR as u32 | EOT)])?;
    let table = hx.table()?;
    let tf = TaskFile::lba48(Drive::Master, 0, 1, feature::DSM_TRIM)?;
    hx.ctx.manifest_trim(lba, 64);
    hx.issue(cmd::DATA_SET_MANAGEMENT, &tf, false, table)?;
    hx.start();
    cut.apply(hx);
    settle(hx)?;
    each_sector_old_or_new(hx, lba, 64, old, None).map_err(Fail)?;
    pass!("{} after START: each sector old or zero", cut.name())
}

fn flush_cut(hx: &mut Hx, cut: Cut) -> CaseResult {
    let lba = hx.ctx.alloc(8)?;
    let p = hx.ctx.write_dma(lba, 8)?;
    let ch = &hx.ctx.ch;
    ch.drain_irq();
    ch.issue(&TaskFile::plain(Drive::Master, 0, 0), cmd::FLUSH_CACHE)?;
    if cut == Cut::Stop {
        hx.start();
    }
    cut.apply(hx);
    settle(hx)?;
    hx.canaries();
    hx.ctx.read_dma_verify(lba, 8, p)?;
    pass!("{} during FLUSH CACHE: data intact", cut.name())
}

fn pio_in_cut(hx: &mut Hx, cut: Cut) -> CaseResult {
    let (lba, pattern) = hx.stamped(8)?;
    let tf = Mode::for_range(lba, 8).taskfile(lba, 8)?;
    hx.ctx
        .ch
        .issue(&tf, Mode::for_range(lba, 8).pio_opcode(false))?;
    pio_in(hx, 0, 2)?;
    if cut == Cut::Stop {
        // Wait for the next block first: QEMU 7.2 cancels a PIO read still
        // in flight on START 1->0 (its cancel path treats buffered PIO reads
        // like DMA), which would make the verdict depend on timing.
        wait_drq(hx)?;
        hx.start();
    }
    cut.apply(hx);
    if cut == Cut::Stop {
        // The PIO read goes on after a BM stop.
        pio_in(hx, 2 * SECTOR, 6)?;
    }
    settle(hx)?;
    let (n, what) = match cut {
        Cut::Stop => (8, "all 8 sectors arrived"),
        Cut::Srst => (2, "the 2 sectors read before it are intact"),
    };
    hx.check_data(&[(0, n * SECTOR, Expect::Stamps { lba, pattern })])
        .map_err(Fail)?;
    pass!("{} during READ SECTORS: {what}", cut.name())
}

fn pio_out_cut(hx: &mut Hx, cut: Cut) -> CaseResult {
    let (lba, old) = hx.stamped(8)?;
    let new = hx.ctx.pattern();
    hx.ctx.build(lba, 8, new)?;
    let layout = Layout::ram(0, 8 * SECTOR)?;
    hx.ctx.scatter(&layout)?;
    let tf = Mode::for_range(lba, 8).taskfile(lba, 8)?;
    hx.ctx.manifest_write(lba, 8, new);
    hx.dirty(lba, 8)?;
    hx.ctx
        .ch
        .issue(&tf, Mode::for_range(lba, 8).pio_opcode(true))?;
    pio_out(hx, 0, 3)?;
    if cut == Cut::Stop {
        wait_drq(hx)?;
        hx.start();
    }
    cut.apply(hx);
    if cut == Cut::Stop {
        pio_out(hx, 3 * SECTOR, 5)?;
    }
    settle(hx)?;
    each_sector_old_or_new(hx, lba, 8, old, Some(new)).map_err(Fail)?;
    pass!(
        "{} during WRITE SECTORS: each sector old or new, none torn",
        cut.name()
    )
}

/// SRST right after START of a 256-sector READ DMA EXT.
pub fn srst_mid_dma_read(hx: &mut Hx) -> CaseResult {
    dma_read_cut(hx, Cut::Srst)
}

/// SRST right after START of a 256-sector WRITE DMA EXT.
pub fn srst_mid_dma_write(hx: &mut Hx) -> CaseResult {
    dma_write_cut(hx, Cut::Srst)
}

/// SRST right after START of a TRIM of 64 sectors.
pub fn srst_mid_trim(hx: &mut Hx) -> CaseResult {
    trim_cut(hx, Cut::Srst)
}

/// SRST right after FLUSH CACHE.
pub fn srst_mid_flush(hx: &mut Hx) -> CaseResult {
    flush_cut(hx, Cut::Srst)
}

/// SRST after 2 of 8 sectors of READ SECTORS.
pub fn srst_mid_pio_in(hx: &mut Hx) -> CaseResult {
    pio_in_cut(hx, Cut::Srst)
}

/// SRST after 3 of 8 sectors of WRITE SECTORS.
pub fn srst_mid_pio_out(hx: &mut Hx) -> CaseResult {
    pio_out_cut(hx, Cut::Srst)
}

/// START 1→0 right after START of a 256-sector READ DMA EXT.
pub fn stop_mid_dma_read(hx: &mut Hx) -> CaseResult {
    dma_read_cut(hx, Cut::Stop)
}

/// START 1→0 right after START of a 256-sector WRITE DMA EXT.
pub fn stop_mid_dma_write(hx: &mut Hx) -> CaseResult {
    dma_write_cut(hx, Cut::Stop)
}

/// START 1→0 right after START of a TRIM.
pub fn stop_mid_trim(hx: &mut Hx) -> CaseResult {
    trim_cut(hx, Cut::Stop)
}

/// BM START 0→1→0 during FLUSH CACHE (no DMA involved).
pub fn stop_mid_flush(hx: &mut Hx) -> CaseResult {
    flush_cut(hx, Cut::Stop)
}

/// BM START 0→1→0 in the middle of READ SECTORS (between two blocks).
pub fn stop_mid_pio_in(hx: &mut Hx) -> CaseResult {
    pio_in_cut(hx, Cut::Stop)
}

/// BM START 0→1→0 in the middle of WRITE SECTORS (between two blocks).
pub fn stop_mid_pio_out(hx: &mut Hx) -> CaseResult {
    pio_out_cut(hx, Cut::Stop)
}

/// START 1→0→1 right after START of a read: the second rising edge
/// restarts the PRD fetch; the read completes once, its data intact.
pub fn restart_mid_dma_read(hx: &mut Hx) -> CaseResult {
    let (lba, pattern) = hx.stamped(SECTORS)?;
    let table = two_prds(hx)?;
    let tf = Mode::Lba48.taskfile(lba, SECTORS)?;
    hx.issue(cmd::READ_DMA_EXT, &tf, true, table)?;
    hx.start();
    hx.stop();
    hx.start();
    let o = hx.conclude();
    settle(hx)?;
    hx.check_data(&[(
        0,
        SECTORS as usize * SECTOR,
        Expect::StampsOrCanary { lba, pattern },
    )])
    .map_err(Fail)?;
    match o.outcome() {
        Outcome::Odd if o.timed_out => fail!("no end after START 1->0->1: {}", o.describe()),
        _ => pass!("START 1->0->1: no partial sector, nothing outside the target"),
    }
}

/// Sets or clears bits of the PCI command register.
fn command_bits(hx: &Hx, clear: u16) {
    let f = hx.pci();
    let c = f.read16(REG_COMMAND);
    f.write16(REG_COMMAND, c & !clear);
}

/// Bus mastering switched off between the command and START: the device
/// cannot reach memory (a master abort, or nothing moves).
pub fn bus_master_off_before_start(hx: &mut Hx) -> CaseResult {
    let (lba, _) = hx.stamped(8)?;
    let buf = hx.data_at(0)?;
    hx.prds(&[(buf, (8 * SECTOR as u32) | EOT)])?;
    let tf = Mode::for_range(lba, 8).taskfile(lba, 8)?;
    let table = hx.table()?;
    hx.issue(
        Mode::for_range(lba, 8).dma_opcode(Direction::ToMemory),
        &tf,
        true,
        table,
    )?;
    command_bits(hx, COMMAND_MASTER);
    hx.start();
    let o = hx.conclude();
    let v = super::raw::dma_verdict(&o, |_| hx.check_data(&[]));
    // Completed without reaching memory (QEMU: an empty address space):
    // the data buffer was checked untouched.
    Ok(match v {
        Verdict::Pass(_) => Verdict::Pass(Msg::from_text("completed without touching memory")),
        v => v,
    })
}

/// Bus mastering switched off right after START of a 256-sector read.
pub fn bus_master_off_mid_dma(hx: &mut Hx) -> CaseResult {
    let (lba, pattern) = hx.stamped(SECTORS)?;
    let table = two_prds(hx)?;
    let tf = Mode::Lba48.taskfile(lba, SECTORS)?;
    hx.issue(cmd::READ_DMA_EXT, &tf, true, table)?;
    hx.start();
    command_bits(hx, COMMAND_MASTER);
    let _ = hx.conclude();
    settle(hx)?;
    hx.check_data(&[(
        0,
        SECTORS as usize * SECTOR,
        Expect::StampsOrCanary { lba, pattern },
    )])
    .map_err(Fail)?;
    pass!("bus mastering off after START: no partial sector, nothing outside the target")
}

/// I/O decode switched off right after START of a 256-sector read: the
/// BMDMA registers vanish (the stop cannot reach them) until the runner
/// restores the command register.
pub fn io_decode_off_mid_dma(hx: &mut Hx) -> CaseResult {
    let (lba, pattern) = hx.stamped(SECTORS)?;
    let table = two_prds(hx)?;
    let tf = Mode::Lba48.taskfile(lba, SECTORS)?;
    hx.issue(cmd::READ_DMA_EXT, &tf, true, table)?;
    hx.start();
    command_bits(hx, COMMAND_IO);
    let unreachable = hx.ctx.ch.bm_status();
    hx.stop();
    let f = hx.pci();
    let c = f.read16(REG_COMMAND);
    f.write16(REG_COMMAND, c | COMMAND_IO);
    let _ = hx.conclude();
    settle(hx)?;
    hx.check_data(&[(
        0,
        SECTORS as usize * SECTOR,
        Expect::StampsOrCanary { lba, pattern },
    )])
    .map_err(Fail)?;
    if unreachable != 0xFF {
        return pass!(
            "BM status still readable with I/O decode off; no partial sector, nothing outside the target"
        );
    }
    pass!("BMDMA unreachable with I/O decode off; no partial sector, nothing outside the target")
}
