//! The PC board, built in one place for every front end (`vmdma run` on
//! KVM, `vmdma qtest` without a vCPU): the guest address space over RAM
//! (and, for the KVM runner, the MMIO scratch region), the bounce arena
//! and the IDE channel's PIO buffer (page-aligned, so direct I/O can use
//! them without another copy), the disk engines, and the chipset (PCI
//! configuration, host and ISA bridges, the core's PIIX3 IDE) as a decoder
//! on the port bus.
//!
//! Everything borrows from everything else (the chipset borrows the
//! address space, which borrows RAM, the arena and the scratch region), so
//! [`with_board`] builds it in its own stack frame and hands the front end
//! a [`Board`] to run with; it all goes when that call returns. The front
//! end adds its own fixed port devices (COM1, debug exit, fw_cfg...) to
//! [`Board::pio`].

use std::io;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};

use thiserror::Error;
use vmdma_core::dma::AddressSpace;
use vmdma_core::ide::{DriveInfo, PioBuffer};
use vmdma_core::memory::{MemError, RegionMap};
use vmdma_protocol::{MMIO_SCRATCH_BASE, MMIO_SCRATCH_LEN};
use vmm_sys_util::eventfd::EventFd;

use crate::devices::bus::PioBus;
use crate::devices::chipset::{Chipset, ChipsetError, IdeDisks, IrqSink};
use crate::devices::mmio::{GuestBounceArena, GuestSpace};
use crate::devices::mmio_scratch::MmioScratch;
use crate::disk::accounting::{DataPathCounters, HostRanges};
use crate::disk::{DiskMode, Image};
use crate::kvm::memory::{GuestRam, MemoryError};

/// Bytes of the IDE channel's PIO buffer (16 sectors: READ/WRITE MULTIPLE).
pub const PIO_BUFFER_BYTES: usize = 16 * 512;

/// Why the board could not be built.
#[derive(Debug, Error)]
pub enum BoardError {
    /// Guest RAM could not be put in the address space.
    #[error("guest RAM region: {0}")]
    RamRegion(MemError),
    /// The MMIO scratch region could not be put in the address space.
    #[error("MMIO scratch region: {0}")]
    ScratchRegion(MemError),
    /// The view of guest RAM that disk accounting needs failed.
    #[error("guest RAM view: {0}")]
    RamView(MemoryError),
    /// The disk engine's completion eventfd could not be duplicated.
    #[error("disk completion eventfd: {0}")]
    CompletionEventfd(io::Error),
    /// The chipset could not be built.
    #[error(transparent)]
    Chipset(#[from] ChipsetError),
}

/// What to build.
#[derive(Debug)]
pub struct BoardSpec<'a, I> {
    /// Guest RAM, at guest-physical 0.
    pub ram: &'a GuestRam,
    /// Map the MMIO scratch region at [`MMIO_SCRATCH_BASE`] (the KVM
    /// runner does; QEMU's `pc` machine under qtest has no such region).
    pub mmio_scratch: bool,
    /// Device 0 and 1 of the primary IDE channel (opened and checked).
    pub disks: [Option<Image>; 2],
    /// Their IDENTIFY strings.
    pub info: [DriveInfo<'a>; 2],
    /// Where the IDE channel's INTRQ (IRQ 14) goes.
    pub ide_irq: I,
    /// Count where each disk's bytes go (guest RAM, bounce space, other).
    pub data_path: Option<Arc<DataPathCounters>>,
    /// Hand out device 0's completion eventfd (for an I/O thread).
    pub completions: bool,
}

/// The built board, for the front end to run.
pub struct Board<'m> {
    /// The guest-physical address space devices and MMIO exits see.
    pub space: &'m GuestSpace<'m>,
    /// The port bus, with the chipset as a decoder; the front end adds its
    /// fixed devices.
    pub pio: PioBus<'m>,
    /// The chipset (also on [`Board::pio`]).
    pub chipset: Arc<Mutex<Chipset<'m>>>,
    /// The engine each disk runs on.
    pub modes: [Option<DiskMode>; 2],
    /// Device 0's completion eventfd and its count of requests in the
    /// kernel (io_uring only, and only if asked for).
    pub completions: Option<(EventFd, Arc<AtomicUsize>)>,
}

impl std::fmt::Debug for Board<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Board")
            .field("modes", &self.modes)
            .finish_non_exhaustive()
    }
}

/// A value on a page boundary (its first field is its data: see the
/// `repr(C)` of the arena and the PIO buffer).
#[repr(C, align(4096))]
struct PageAligned<T>(T);

/// Builds the board `spec` describes and runs `f` on it. Everything the
/// board borrows lives in this stack frame, for as long as `f` runs.
pub fn with_board<I, R>(
    spec: BoardSpec<'_, I>,
    f: impl FnOnce(Board<'_>) -> R,
) -> Result<R, BoardError>
where
    I: IrqSink + 'static,
{
    let ram = spec.ram;
    let scratch = spec
        .mmio_scratch
        .then(|| MmioScratch::new(MMIO_SCRATCH_LEN as usize));
    let mut regions = RegionMap::new();
    regions
        .add_ram(0, ram.backing())
        .map_err(BoardError::RamRegion)?;
    if let Some(scratch) = &scratch {
        regions
            .add_mmio(MMIO_SCRATCH_BASE, MMIO_SCRATCH_LEN, scratch, None)
            .map_err(BoardError::ScratchRegion)?;
    }
    // Bounce space and the IDE channel's PIO buffer: outside the
    // controller, alive as long as guest memory, so a request in flight
    // never points into freed or moved memory; page-aligned so that direct
    // I/O (cache=none) can use them without another copy.
    let bounce = Box::new(PageAligned(GuestBounceArena::new()));
    let space: GuestSpace<'_> = AddressSpace::new(regions, &bounce.0);
    let pio_buffer = Box::new(PageAligned(PioBuffer::<PIO_BUFFER_BYTES>::new()));

    // Where the disk's bytes go (RAM directly, bounce space, or a VMM
    // buffer), counted by host address.
    let accounting = match spec.data_path {
        Some(counters) => {
            let view = ram.slice(0, ram.len()).map_err(BoardError::RamView)?;
            let start = view.as_ptr() as usize;
            let arena = &bounce.0 as *const GuestBounceArena as usize;
            let ranges = HostRanges {
                ram: start..start + view.len(),
                bounce: arena..arena + std::mem::size_of::<GuestBounceArena>(),
            };
            Some((ranges, counters))
        }
        None => None,
    };
    let mut modes = [None, None];
    let mut completions = None;
    let mut engines = [None, None];
    for (unit, image) in spec.disks.into_iter().enumerate() {
        let Some(image) = image else { continue };
        let (mut disk, mode, warning) = image.into_backend();
        if let Some(w) = warning {
            eprintln!("vmdma: warning: {w}");
        }
        if unit == 0 && spec.completions {
            completions = disk
                .completion_eventfd()
                .transpose()
                .map_err(BoardError::CompletionEventfd)?;
        }
        if let Some((ranges, counters)) = &accounting {
            disk = disk.with_accounting(ranges.clone(), counters.clone());
        }
        modes[unit] = Some(mode);
        engines[unit] = Some(disk);
    }
    let [master, slave] = engines;
    let [master_info, slave_info] = spec.info;
    // PCI configuration, host/ISA bridges and the PIIX3 IDE function with
    // the disks on the primary channel (DMA straight into `space`).
    let chipset = Arc::new(Mutex::new(Chipset::with_disks(
        &space,
        &pio_buffer.0,
        IdeDisks {
            master,
            slave,
            master_info,
            slave_info,
        },
        spec.ide_irq,
    )?));
    let mut pio = PioBus::new();
    pio.add_decoder(chipset.clone());
    Ok(f(Board {
        space: &space,
        pio,
        chipset,
        modes,
        completions,
    }))
}
