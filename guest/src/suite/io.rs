//! Stamped disk I/O for the tests: building and checking sector stamps,
//! buffer layouts (PRD fragments in RAM or MMIO scratch), canaries around
//! fragments, the write manifest, and DMA/PIO transfers with the usual
//! checks.

use vmdma_core::protocol::MANIFEST_PREFIX;
use vmdma_guest::ata::regs::{bm, cmd, status};
use vmdma_guest::ata::taskfile::{Drive, LBA28_LIMIT, TaskFile};
use vmdma_guest::msg;
use vmdma_guest::msg::Msg;
use vmdma_guest::prd::{self, PRD_MAX_LEN, Region};
use vmdma_guest::stamp::{self, HEADER_LEN, SECTOR, Template};

use super::{Ctx, Fail};
use crate::arch::dma_memory::DATA_LEN;
use crate::arch::{mem, mmio};
use crate::ide::dma::{self, Direction, DmaCommand, DmaOutcome, StartOrder, Wait};
use crate::ide::pio::{self, Width};
use crate::println;

/// Byte the data buffer is filled with before a read, to see what a
/// transfer touched.
pub const CANARY: u8 = 0xA5;
/// Canary bytes checked after the last fragment.
pub const CANARY_MARGIN: usize = 1024;
/// Largest number of fragments in a layout.
pub const MAX_FRAGS: usize = 64;

/// Where a fragment lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Space {
    /// The RAM data buffer (`DmaMemory::data`).
    Ram,
    /// The MMIO scratch region.
    Mmio,
}

/// One PRD region: an offset into a space and a length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frag {
    /// The space.
    pub space: Space,
    /// Offset from the start of the space.
    pub offset: usize,
    /// Length in bytes.
    pub len: u32,
}

/// The fragments of one transfer, in transfer order. RAM fragments must be
/// in ascending, non-overlapping order (for the canary check).
pub struct Layout {
    frags: [Frag; MAX_FRAGS],
    n: usize,
}

fn fail(m: Msg) -> Fail {
    Fail(m)
}

impl Layout {
    /// An empty layout.
    pub fn new() -> Self {
        Layout {
            frags: [Frag {
                space: Space::Ram,
                offset: 0,
                len: 0,
            }; MAX_FRAGS],
            n: 0,
        }
    }

    /// Appends a fragment.
    pub fn push(&mut self, space: Space, offset: usize, len: u32) -> Result<(), Fail> {
        let slot = self
            .frags
            .get_mut(self.n)
            .ok_or_else(|| fail(msg!("more than {MAX_FRAGS} fragments")))?;
        *slot = Frag { space, offset, len };
        self.n += 1;
        Ok(())
    }

    /// `bytes` contiguous bytes of the RAM buffer from `offset`, split at
    /// 64 KiB boundaries (the buffer is 64 KiB aligned).
    pub fn ram(offset: usize, bytes: usize) -> Result<Self, Fail> {
        let mut l = Layout::new();
        let mut at = offset;
        let end = offset + bytes;
        while at < end {
            let boundary = (at / PRD_MAX_LEN as usize + 1) * PRD_MAX_LEN as usize;
            let piece = boundary.min(end) - at;
            l.push(Space::Ram, at, piece as u32)?;
            at += piece;
        }
        Ok(l)
    }

    /// The fragments.
    pub fn frags(&self) -> &[Frag] {
        self.frags.get(..self.n).unwrap_or(&[])
    }
}

/// Addressing mode of a transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// 28-bit commands (READ DMA, READ SECTORS, ...).
    Lba28,
    /// 48-bit commands (READ DMA EXT, ...).
    Lba48,
}

impl Mode {
    /// LBA28 when the range and count fit, else LBA48.
    pub fn for_range(lba: u64, sectors: u32) -> Self {
        if sectors <= 256 && lba.saturating_add(u64::from(sectors)) <= LBA28_LIMIT {
            Mode::Lba28
        } else {
            Mode::Lba48
        }
    }

    /// The task file of a read/write of `sectors` at `lba` on the master.
    pub fn taskfile(self, lba: u64, sectors: u32) -> Result<TaskFile, Fail> {
        let tf = match self {
            Mode::Lba28 => TaskFile::lba28(Drive::Master, lba, sectors, 0),
            Mode::Lba48 => TaskFile::lba48(Drive::Master, lba, sectors, 0),
        };
        tf.map_err(|e| fail(msg!("{e}")))
    }

    /// READ DMA / WRITE DMA opcode.
    pub fn dma_opcode(self, dir: Direction) -> u8 {
        match (self, dir) {
            (Mode::Lba28, Direction::ToMemory) => cmd::READ_DMA,
            (Mode::Lba28, Direction::FromMemory) => cmd::WRITE_DMA,
            (Mode::Lba48, Direction::ToMemory) => cmd::READ_DMA_EXT,
            (Mode::Lba48, Direction::FromMemory) => cmd::WRITE_DMA_EXT,
        }
    }

    /// READ SECTORS / WRITE SECTORS opcode.
    pub fn pio_opcode(self, write: bool) -> u8 {
        match (self, write) {
            (Mode::Lba28, false) => cmd::READ_SECTORS,
            (Mode::Lba28, true) => cmd::WRITE_SECTORS,
            (Mode::Lba48, false) => cmd::READ_SECTORS_EXT,
            (Mode::Lba48, true) => cmd::WRITE_SECTORS_EXT,
        }
    }
}

/// A DMA transfer's parameters.
#[derive(Clone, Copy, Debug)]
pub struct Xfer {
    /// First LBA.
    pub lba: u64,
    /// Sector count in the command.
    pub sectors: u32,
    /// Addressing mode.
    pub mode: Mode,
    /// START order.
    pub order: StartOrder,
    /// Completion detection.
    pub wait: Wait,
    /// Clear START right after setting it.
    pub stop_early: bool,
    /// Task-file write probe between command and START.
    pub probe: Option<(u16, u8)>,
}

impl Xfer {
    /// Defaults: mode chosen by range, Linux's order, BM status polling.
    pub fn new(lba: u64, sectors: u32) -> Self {
        Xfer {
            lba,
            sectors,
            mode: Mode::for_range(lba, sectors),
            order: StartOrder::AfterCommand,
            wait: Wait::BmStatus,
            stop_early: false,
            probe: None,
        }
    }

    fn command(&self, dir: Direction) -> Result<DmaCommand, Fail> {
        Ok(DmaCommand {
            order: self.order,
            wait: self.wait,
            stop_early: self.stop_early,
            probe: self.probe,
            ..DmaCommand::new(
                self.mode.dma_opcode(dir),
                self.mode.taskfile(self.lba, self.sectors)?,
                dir,
            )
        })
    }
}

/// Fails unless `o` is a clean completion (Status 0x50-ish, BM INT only
/// after stop, interrupt raised).
pub fn expect_clean(what: &str, o: &DmaOutcome) -> Result<(), Fail> {
    if o.is_clean_success() {
        return Ok(());
    }
    Err(fail(msg!(
        "{what}: status {:#04x} error {:#04x}, BM status {:#04x} at completion / {:#04x} after stop, irq {}",
        o.status,
        o.error,
        o.bm_at_completion,
        o.bm_after_stop,
        o.irq_requested || o.irqs > 0
    )))
}

/// Checks `sectors` stamped sectors in `buf`.
fn verify_sectors(buf: &[u8], template: &Template, lba: u64, sectors: u32) -> Result<(), Fail> {
    let pattern = template.pattern();
    for i in 0..u64::from(sectors) {
        let at = i as usize * SECTOR;
        let lba_i = lba + i;
        let s = buf
            .get(at..at + SECTOR)
            .ok_or_else(|| fail(msg!("verify: buffer too small")))?;
        if let Err(m) = stamp::check_header(s, lba_i, pattern) {
            return Err(match stamp::decode_header(s) {
                Some((l, p)) => fail(msg!(
                    "{m} (sector holds the stamp of LBA {l} pattern {p}, want LBA {lba_i} pattern {pattern})"
                )),
                None => fail(msg!("{m} (no stamp)")),
            });
        }
        let body = s.get(HEADER_LEN..).unwrap_or(&[]);
        if let Some(off) = mem::first_difference(body, template.body()) {
            let o = HEADER_LEN + off;
            return Err(fail(msg!(
                "sector {lba_i} byte {o}: got {:#04x}, want {:#04x}",
                s.get(o).copied().unwrap_or(0),
                template.sector().get(o).copied().unwrap_or(0)
            )));
        }
    }
    Ok(())
}

impl Ctx {
    fn set_template(&mut self, pattern: u32) {
        if self.template.pattern() != pattern {
            self.template = Template::new(pattern);
        }
    }

    /// Builds `sectors` stamped sectors of (`lba`, `pattern`) at the start
    /// of the staging buffer.
    pub fn build(&mut self, lba: u64, sectors: u32, pattern: u32) -> Result<(), Fail> {
        self.set_template(pattern);
        for i in 0..u64::from(sectors) {
            let at = i as usize * SECTOR;
            let s = self
                .stage
                .bytes
                .get_mut(at..at + SECTOR)
                .ok_or_else(|| fail(msg!("{sectors} sectors exceed the staging buffer")))?;
            mem::copy(s, self.template.sector());
            stamp::write_header(s, lba + i, pattern);
        }
        Ok(())
    }

    /// Checks the start of the staging buffer for `sectors` stamped sectors.
    pub fn verify_stage(&mut self, lba: u64, sectors: u32, pattern: u32) -> Result<(), Fail> {
        self.set_template(pattern);
        verify_sectors(&self.stage.bytes, &self.template, lba, sectors)
    }

    /// Checks the RAM data buffer from `offset` for stamped sectors.
    pub fn verify_data(
        &mut self,
        offset: usize,
        lba: u64,
        sectors: u32,
        pattern: u32,
    ) -> Result<(), Fail> {
        self.set_template(pattern);
        let buf = self.mem.data.get(offset..).unwrap_or(&[]);
        verify_sectors(buf, &self.template, lba, sectors)
    }

    fn mmio_addr(&self, offset: usize, len: u32) -> Result<u64, Fail> {
        let s = self
            .scratch
            .ok_or_else(|| fail(Msg::from_text("no MMIO scratch region")))?;
        let end = (offset as u64).checked_add(u64::from(len));
        if end.is_none_or(|e| e > s.len) || !offset.is_multiple_of(8) || !len.is_multiple_of(8) {
            return Err(fail(msg!(
                "MMIO fragment {offset:#x}+{len:#x} outside the scratch region or not 8-byte aligned"
            )));
        }
        Ok(s.base + offset as u64)
    }

    /// Copies the staging buffer into the layout's fragments, in order.
    pub fn scatter(&mut self, layout: &Layout) -> Result<(), Fail> {
        let mut pos = 0usize;
        for f in layout.frags() {
            let len = f.len as usize;
            let src = self
                .stage
                .bytes
                .get(pos..pos + len)
                .ok_or_else(|| fail(msg!("layout exceeds the staging buffer")))?;
            match f.space {
                Space::Ram => {
                    let dst = self
                        .mem
                        .data
                        .get_mut(f.offset..f.offset + len)
                        .ok_or_else(|| {
                            fail(msg!("fragment {:#x} outside the DMA buffer", f.offset))
                        })?;
                    mem::copy(dst, src);
                }
                Space::Mmio => {
                    let base = self.mmio_addr(f.offset, f.len)?;
                    for (i, w) in src.chunks_exact(8).enumerate() {
                        let v = u64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
                        if !mmio::write64(base + 8 * i as u64, v) {
                            return Err(fail(msg!("MMIO write at {base:#x} refused")));
                        }
                    }
                }
            }
            pos += len;
        }
        Ok(())
    }

    /// Copies the layout's fragments, in order, into the staging buffer.
    pub fn gather(&mut self, layout: &Layout) -> Result<(), Fail> {
        let mut pos = 0usize;
        for f in layout.frags() {
            let len = f.len as usize;
            let base = match f.space {
                Space::Mmio => Some(self.mmio_addr(f.offset, f.len)?),
                Space::Ram => None,
            };
            let dst = self
                .stage
                .bytes
                .get_mut(pos..pos + len)
                .ok_or_else(|| fail(msg!("layout exceeds the staging buffer")))?;
            match base {
                None => {
                    let src = self.mem.data.get(f.offset..f.offset + len).ok_or_else(|| {
                        fail(msg!("fragment {:#x} outside the DMA buffer", f.offset))
                    })?;
                    mem::copy(dst, src);
                }
                Some(base) => {
                    for (i, w) in dst.chunks_exact_mut(8).enumerate() {
                        let v = mmio::read64(base + 8 * i as u64)
                            .ok_or_else(|| fail(msg!("MMIO read at {base:#x} refused")))?;
                        w.copy_from_slice(&v.to_le_bytes());
                    }
                }
            }
            pos += len;
        }
        Ok(())
    }

    /// One past the last RAM byte the layout's canary check covers.
    fn canary_end(layout: &Layout) -> usize {
        let end = layout
            .frags()
            .iter()
            .filter(|f| f.space == Space::Ram)
            .map(|f| f.offset + f.len as usize)
            .max()
            .unwrap_or(0);
        (end + CANARY_MARGIN).min(DATA_LEN)
    }

    /// Fills the RAM span of the layout (plus a margin) and its MMIO
    /// fragments with [`CANARY`].
    pub fn fill_canary(&mut self, layout: &Layout) -> Result<(), Fail> {
        let end = Self::canary_end(layout);
        mem::fill(self.mem.data.get_mut(..end).unwrap_or(&mut []), CANARY);
        for f in layout.frags().iter().filter(|f| f.space == Space::Mmio) {
            let base = self.mmio_addr(f.offset, f.len)?;
            let word = u64::from_ne_bytes([CANARY; 8]);
            for i in 0..u64::from(f.len / 8) {
                if !mmio::write64(base + 8 * i, word) {
                    return Err(fail(msg!("MMIO write at {base:#x} refused")));
                }
            }
        }
        Ok(())
    }

    /// Checks that RAM outside the layout's fragments (up to the margin
    /// after the last one) still holds [`CANARY`].
    pub fn check_canary(&self, layout: &Layout) -> Result<(), Fail> {
        let end = Self::canary_end(layout);
        let mut at = 0usize;
        let check = |from: usize, to: usize| -> Result<(), Fail> {
            let gap = self.mem.data.get(from..to).unwrap_or(&[]);
            match mem::first_not(gap, CANARY) {
                None => Ok(()),
                Some(i) => Err(fail(msg!(
                    "DMA wrote outside its PRD regions: data buffer offset {:#x} is {:#04x}",
                    from + i,
                    gap.get(i).copied().unwrap_or(0)
                ))),
            }
        };
        for f in layout.frags().iter().filter(|f| f.space == Space::Ram) {
            if f.offset > at {
                check(at, f.offset)?;
            }
            at = at.max(f.offset + f.len as usize);
        }
        check(at, end)
    }

    /// Checks that the RAM fragments of the layout still hold [`CANARY`]
    /// (no data moved).
    pub fn check_untouched(&self, layout: &Layout) -> Result<(), Fail> {
        for f in layout.frags().iter().filter(|f| f.space == Space::Ram) {
            let region = self
                .mem
                .data
                .get(f.offset..f.offset + f.len as usize)
                .unwrap_or(&[]);
            if let Some(i) = mem::first_not(region, CANARY) {
                return Err(fail(msg!(
                    "data moved into PRD region at offset {:#x}",
                    f.offset + i
                )));
            }
        }
        Ok(())
    }

    /// Writes the layout as the PRD table.
    pub fn load_prds(&mut self, layout: &Layout) -> Result<(), Fail> {
        let mut regions = [Region { addr: 0, len: 0 }; MAX_FRAGS];
        for (r, f) in regions.iter_mut().zip(layout.frags()) {
            let addr = match f.space {
                Space::Ram => self
                    .mem
                    .data_phys(f.offset)
                    .ok_or_else(|| fail(msg!("fragment {:#x} outside the DMA buffer", f.offset)))?,
                Space::Mmio => u32::try_from(self.mmio_addr(f.offset, f.len)?)
                    .map_err(|_| fail(msg!("MMIO scratch above 4 GiB")))?,
            };
            *r = Region { addr, len: f.len };
        }
        let regions = regions.get(..layout.frags().len()).unwrap_or(&[]);
        prd::encode_table(regions, &mut self.mem.prd).map_err(|e| fail(msg!("{e}")))?;
        Ok(())
    }

    /// Announces a write in the manifest (before issuing it).
    pub fn manifest_write(&self, lba: u64, sectors: u32, pattern: u32) {
        println!("{MANIFEST_PREFIX} write {lba} {sectors} {pattern}");
    }

    /// Announces a TRIM in the manifest (before issuing it).
    pub fn manifest_trim(&self, lba: u64, sectors: u64) {
        println!("{MANIFEST_PREFIX} trim {lba} {sectors}");
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

/// Fails unless BM status `v` (masked to ACTIVE|ERR|INT) equals `want`.
pub fn expect_bm(v: u8, want: u8, what: &str) -> Result<(), Fail> {
    let got = v & (bm::STATUS_ACTIVE | bm::STATUS_ERR | bm::STATUS_INT);
    if got != want {
        return Err(fail(msg!(
            "{what}: BM status {got:#04x} (raw {v:#04x}), want {want:#04x}"
        )));
    }
    Ok(())
}

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
