//! Stamped DMA and PIO transfers with the write manifest.

use vmdma_guest::ata::regs::status;
use vmdma_guest::msg;
use vmdma_guest::stamp::SECTOR;
use vmdma_protocol::MANIFEST_PREFIX;

use super::fail;
use super::{CANARY, Layout, Mode, Xfer, expect_clean};
use crate::arch::mem;
use crate::console::manifest;
use crate::ide::dma::{self, Direction, DmaOutcome};
use crate::ide::pio::{self, Width};
use crate::suite::{Ctx, Fail};

impl Ctx {
    /// Announces a write in the manifest (before issuing it).
    pub fn manifest_write(&self, lba: u64, sectors: u32, pattern: u32) {
        manifest::line(format_args!(
            "{MANIFEST_PREFIX} write {lba} {sectors} {pattern}"
        ));
    }

    /// Announces that the `period` sectors stamped for `from ..` with
    /// `pattern` are written again and again over `sectors` sectors from
    /// `lba` (the `repeat` line of
    /// [`MANIFEST_PREFIX`](vmdma_protocol::MANIFEST_PREFIX)).
    pub fn manifest_repeat(&self, lba: u64, sectors: u64, pattern: u32, from: u64, period: u64) {
        manifest::line(format_args!(
            "{MANIFEST_PREFIX} repeat {lba} {sectors} {pattern} {from} {period}"
        ));
    }

    /// Announces `count` writes of the `sectors` sectors stamped for
    /// `from ..` with `pattern`, at the LBAs of
    /// `BenchLbas::new(seed, base, span, sectors)` (the `random` line).
    #[expect(clippy::too_many_arguments, reason = "the fields of one manifest line")]
    pub fn manifest_random(
        &self,
        base: u64,
        span: u64,
        sectors: u64,
        count: u64,
        seed: u64,
        pattern: u32,
        from: u64,
    ) {
        manifest::line(format_args!(
            "{MANIFEST_PREFIX} random {base} {span} {sectors} {count} {seed} {pattern} {from}"
        ));
    }

    /// Announces a TRIM in the manifest (before issuing it).
    pub fn manifest_trim(&self, lba: u64, sectors: u64) {
        manifest::line(format_args!("{MANIFEST_PREFIX} trim {lba} {sectors}"));
    }

    /// DMA-writes stamped sectors of `pattern` through `layout` without
    /// announcing them (for writes the device must refuse or drop).
    pub fn dma_write_unannounced(
        &mut self,
        x: &Xfer,
        pattern: u32,
        layout: &Layout,
    ) -> Result<DmaOutcome, Fail> {
        self.build(x.lba, x.sectors, pattern)?;
        self.scatter(layout)?;
        self.load_prds(layout)?;
        let command = x.command(Direction::FromMemory)?;
        Ok(dma::run(&self.ch, self.mem, &command)?)
    }

    /// DMA-writes stamped sectors of `pattern` through `layout`, announced
    /// in the manifest.
    pub fn dma_write(
        &mut self,
        x: &Xfer,
        pattern: u32,
        layout: &Layout,
    ) -> Result<DmaOutcome, Fail> {
        self.manifest_write(x.lba, x.sectors, pattern);
        self.dma_write_unannounced(x, pattern, layout)
    }

    /// DMA-reads into `layout` after filling it with canaries.
    pub fn dma_read(&mut self, x: &Xfer, layout: &Layout) -> Result<DmaOutcome, Fail> {
        self.fill_canary(layout)?;
        self.load_prds(layout)?;
        let command = x.command(Direction::ToMemory)?;
        Ok(dma::run(&self.ch, self.mem, &command)?)
    }

    /// DMA-reads through `layout`, expects a clean completion, checks the
    /// canaries and the stamps.
    pub fn dma_read_verify(&mut self, x: &Xfer, pattern: u32, layout: &Layout) -> Result<(), Fail> {
        let o = self.dma_read(x, layout)?;
        expect_clean("DMA read", &o)?;
        self.check_canary(layout)?;
        self.gather(layout)?;
        self.verify_stage(x.lba, x.sectors, pattern)
    }

    /// Writes `sectors` fresh stamped sectors at `lba` by DMA (one
    /// contiguous buffer) and returns their pattern.
    pub fn write_dma(&mut self, lba: u64, sectors: u32) -> Result<u32, Fail> {
        let pattern = self.pattern();
        let layout = Layout::ram(0, sectors as usize * SECTOR)?;
        let o = self.dma_write(&Xfer::new(lba, sectors), pattern, &layout)?;
        expect_clean("DMA write", &o)?;
        Ok(pattern)
    }

    /// Reads `sectors` at `lba` by DMA (one contiguous buffer) and checks
    /// them against `pattern`.
    pub fn read_dma_verify(&mut self, lba: u64, sectors: u32, pattern: u32) -> Result<(), Fail> {
        let layout = Layout::ram(0, sectors as usize * SECTOR)?;
        self.dma_read_verify(&Xfer::new(lba, sectors), pattern, &layout)
    }

    /// Writes `sectors` fresh stamped sectors at `lba` by PIO (announced);
    /// returns their pattern.
    pub fn write_pio(
        &mut self,
        mode: Mode,
        lba: u64,
        sectors: u32,
        width: Width,
    ) -> Result<u32, Fail> {
        let pattern = self.pattern();
        self.write_pio_with(mode.pio_opcode(true), mode, lba, sectors, width, 1, pattern)?;
        Ok(pattern)
    }

    /// PIO write with an explicit opcode and DRQ block size (announced).
    #[expect(clippy::too_many_arguments, reason = "a flat test helper")]
    pub fn write_pio_with(
        &mut self,
        opcode: u8,
        mode: Mode,
        lba: u64,
        sectors: u32,
        width: Width,
        block: usize,
        pattern: u32,
    ) -> Result<(), Fail> {
        self.build(lba, sectors, pattern)?;
        let tf = mode.taskfile(lba, sectors)?;
        self.manifest_write(lba, sectors, pattern);
        let bytes = sectors as usize * SECTOR;
        let buf = self.stage.bytes.get(..bytes).unwrap_or(&[]);
        let st = pio::data_out(&self.ch, &tf, opcode, width, block, buf)?;
        crate::ensure_eq!(st & !status::DSC, status::DRDY, "status after PIO write");
        Ok(())
    }

    /// Reads `sectors` at `lba` by PIO and checks them against `pattern`.
    pub fn read_pio_verify(
        &mut self,
        mode: Mode,
        lba: u64,
        sectors: u32,
        width: Width,
        pattern: u32,
    ) -> Result<(), Fail> {
        self.read_pio_with(mode.pio_opcode(false), mode, lba, sectors, width, 1)?;
        self.verify_stage(lba, sectors, pattern)
    }

    /// PIO read into the staging buffer with an explicit opcode and DRQ
    /// block size (the buffer is pre-filled with canaries).
    pub fn read_pio_with(
        &mut self,
        opcode: u8,
        mode: Mode,
        lba: u64,
        sectors: u32,
        width: Width,
        block: usize,
    ) -> Result<(), Fail> {
        let tf = mode.taskfile(lba, sectors)?;
        let bytes = sectors as usize * SECTOR;
        let buf = self
            .stage
            .bytes
            .get_mut(..bytes)
            .ok_or_else(|| fail(msg!("{sectors} sectors exceed the staging buffer")))?;
        mem::fill(buf, CANARY);
        let st = pio::data_in(&self.ch, &tf, opcode, width, block, buf)?;
        crate::ensure_eq!(st & !status::DSC, status::DRDY, "status after PIO read");
        Ok(())
    }
}
