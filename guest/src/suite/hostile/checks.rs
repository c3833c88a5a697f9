//! What runs around every case: the platform restore, the guest's best
//! recovery (SRST, IDENTIFY, a known-good DMA read), the re-stamping of
//! sectors a case left with unpredictable content, and the sentinel checks
//! (guard areas, free low memory, the guest image).

use vmdma_guest::ata::identify::Identify;
use vmdma_guest::ata::regs::{bm, error, reg, status};
use vmdma_guest::ata::taskfile::Drive;
use vmdma_guest::msg;
use vmdma_guest::msg::Msg;
use vmdma_guest::stamp::SECTOR;

use super::Verdict;
use super::env::{GUARD, Hx, LOW_SENTINEL, PROBE_SECTORS, SAVED_CONFIG};
use crate::arch::dma_memory::DATA_LEN;
use crate::arch::{mem, phys};
use crate::ide::channel::DEVCTL_NORMAL;
use crate::ide::dma::{self, Direction, DmaCommand};
use crate::ide::pio;
use crate::pci::REG_COMMAND;
use crate::pic;
use crate::suite::io::{CANARY, Layout, Mode, expect_clean};

impl Hx {
    /// Before a case: nothing pending, the data buffer full of canaries.
    pub fn begin_case(&mut self) {
        mem::fill(&mut self.ctx.mem.data, CANARY);
    }

    /// After a case: restores, recovers and checks; returns the final
    /// verdict (WEDGED if recovery fails, FAIL if a sentinel was hit,
    /// otherwise the case's own verdict).
    pub fn after_case(&mut self, verdict: Verdict) -> Verdict {
        self.restore_platform();
        if let Err(why) = self.recover() {
            // A wedged channel is reported as such, with what the case said.
            return Verdict::Wedged(msg!("{why} (the case said {verdict})"));
        }
        if let Err(why) = self.restamp_dirty() {
            return Verdict::Wedged(msg!("re-stamping written sectors: {why}"));
        }
        if let Err(why) = self.check_sentinels() {
            return Verdict::Fail(msg!("{why} (the case said {verdict})"));
        }
        verdict
    }

    /// Writes back the PCI configuration saved at start, puts the PIC, the
    /// Device Control register and the bus master in their normal state.
    fn restore_platform(&mut self) {
        let f = self.pci();
        // The command register first: with I/O decode off the BAR write
        // would still land, but nothing else could be reached.
        for (reg, v) in SAVED_CONFIG.iter().zip(self.config) {
            if *reg == REG_COMMAND {
                // Only the command half: the status half is write-1-to-clear.
                f.write16(*reg, (v & 0xFFFF) as u16);
            } else {
                f.write32(*reg, v);
            }
        }
        pic::set_irq14_level(false);
        pic::set_irq14_masked(false);
        let ch = &self.ctx.ch;
        ch.set_devctl(DEVCTL_NORMAL);
        ch.stop_bus_master();
    }

    /// SRST, the reset signature, IDENTIFY (capacity and strings as at
    /// start), and a known-good DMA read of the probe sectors.
    fn recover(&mut self) -> Result<(), Msg> {
        let ch = &self.ctx.ch;
        let mut reset = ch.soft_reset();
        if reset.is_err() {
            reset = ch.soft_reset();
        }
        reset.map_err(|e| msg!("SRST: {e}"))?;
        // Read device 0's registers: QEMU keeps the device selected before
        // SRST, and an ATAPI device 1 reads Status 0 after it.
        ch.write(reg::DEVICE, Drive::Master.select_bits());
        let st = ch.status();
        let err = ch.error();
        if st & (status::BSY | status::DRQ | status::ERR) != 0 || st & status::DRDY == 0 {
            return Err(msg!("status {st:#04x} after SRST"));
        }
        if err != error::DIAG_PASSED {
            return Err(msg!("error {err:#04x} after SRST (want 0x01)"));
        }
        ch.drain_irq();
        let _ = ch.clear_bm_status();
        ch.select(Drive::Master)
            .map_err(|e| msg!("select after SRST: {e}"))?;
        let mut raw = [0u8; 512];
        pio::identify(ch, Drive::Master, &mut raw).map_err(|e| msg!("IDENTIFY: {e}"))?;
        let id = Identify::from_bytes(&raw);
        let was = &self.ctx.id;
        let same = id.capacity() == was.capacity()
            && id.lba48() == was.lba48()
            && id.model().raw() == was.model().raw()
            && id.serial().raw() == was.serial().raw();
        if !same {
            return Err(msg!(
                "IDENTIFY changed: {} sectors, model \"{}\" (was {} sectors, \"{}\")",
                id.capacity(),
                id.model().trimmed(),
                was.capacity(),
                was.model().trimmed()
            ));
        }
        self.known_good_read()
    }

    /// READ DMA of the probe sectors into the start of the data buffer (the
    /// rest full of canaries): a clean completion, the right stamps, nothing
    /// else touched.
    fn known_good_read(&mut self) -> Result<(), Msg> {
        let bytes = PROBE_SECTORS as usize * SECTOR;
        mem::fill(&mut self.ctx.mem.data, CANARY);
        let layout = Layout::ram(0, bytes).map_err(|f| f.0)?;
        self.ctx.load_prds(&layout).map_err(|f| f.0)?;
        let tf = Mode::Lba28
            .taskfile(self.probe_lba, PROBE_SECTORS)
            .map_err(|f| f.0)?;
        let cmd = DmaCommand::new(
            Mode::Lba28.dma_opcode(Direction::ToMemory),
            tf,
            Direction::ToMemory,
        );
        let o = dma::run(&self.ctx.ch, self.ctx.mem, &cmd)
            .map_err(|e| msg!("known-good DMA read: {e}"))?;
        expect_clean("known-good DMA read", &o).map_err(|f| f.0)?;
        let (lba, pattern) = (self.probe_lba, self.probe_pattern);
        self.ctx
            .verify_data(0, lba, PROBE_SECTORS, pattern)
            .map_err(|f| msg!("known-good DMA read: {}", f.0))?;
        let rest = self.ctx.mem.data.get(bytes..DATA_LEN).unwrap_or(&[]);
        if let Some(i) = mem::first_not(rest, CANARY) {
            return Err(msg!(
                "known-good DMA read wrote data buffer offset {:#x}",
                bytes + i
            ));
        }
        if self.ctx.ch.bm_status() & (bm::STATUS_ACTIVE | bm::STATUS_ERR) != 0 {
            return Err(Msg::from_text("BM status ACTIVE or ERR after a clean read"));
        }
        Ok(())
    }

    /// Writes fresh stamps (announced) over the sectors the case dirtied.
    fn restamp_dirty(&mut self) -> Result<(), Msg> {
        let (ranges, n) = self.take_dirty();
        for &(lba, sectors) in ranges.get(..n).unwrap_or(&[]) {
            let mut done = 0u32;
            while done < sectors {
                let chunk = (sectors - done).min(256);
                let at = lba + u64::from(done);
                self.ctx.write_dma(at, chunk).map_err(|f| f.0)?;
                done += chunk;
            }
        }
        Ok(())
    }

    /// The guard areas, the low-memory sentinel and the guest image. A hit
    /// is reported once: the sentinels are refilled and the image copy
    /// retaken, so the next case starts clean.
    fn check_sentinels(&mut self) -> Result<(), Msg> {
        let m = &self.ctx.mem;
        let mut hit = None;
        if let Some(i) = mem::first_not(&m.guard_below, GUARD) {
            hit = Some(msg!(
                "the guard below the data buffer changed at offset {i:#x}"
            ));
        } else if let Some(i) = mem::first_not(&m.guard_above, GUARD) {
            hit = Some(msg!(
                "the guard after the PRD table changed at offset {i:#x}"
            ));
        }
        if hit.is_none() {
            for &(a, l) in self.low_ranges() {
                if let Ok(Some(at)) = phys::scan(a, l, LOW_SENTINEL) {
                    hit = Some(msg!("free RAM at {at:#x} changed"));
                    break;
                }
            }
        }
        if hit.is_none()
            && let Some(off) =
                phys::image_difference(self.image.bytes.get(..self.image_len).unwrap_or(&[]))
        {
            let (start, _) = phys::loaded_image();
            hit = Some(msg!("the guest image changed at {:#x}", start + off as u64));
        }
        match hit {
            None => Ok(()),
            Some(why) => {
                self.fill_sentinels();
                if let Some(n) = phys::copy_image(&mut self.image.bytes) {
                    self.image_len = n;
                }
                Err(why)
            }
        }
    }
}
