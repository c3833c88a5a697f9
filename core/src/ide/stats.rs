//! Counters the host can print (the runner's `--stats`).

/// Per-controller counters. All saturate rather than wrap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct IdeStats {
    /// Commands accepted (every Command register write a present, idle
    /// device acted on).
    pub commands: u64,
    /// READ SECTORS / READ MULTIPLE commands.
    pub pio_reads: u64,
    /// WRITE SECTORS / WRITE MULTIPLE commands.
    pub pio_writes: u64,
    /// READ DMA commands.
    pub dma_reads: u64,
    /// WRITE DMA commands.
    pub dma_writes: u64,
    /// DATA SET MANAGEMENT (TRIM) commands.
    pub trims: u64,
    /// FLUSH CACHE commands.
    pub flushes: u64,
    /// IDENTIFY DEVICE commands.
    pub identifies: u64,
    /// Other non-data commands.
    pub other_commands: u64,
    /// Commands that ended with ERR (ABRT).
    pub aborted: u64,
    /// DMA data commands (read/write) whose data phase completed.
    pub dma_completed: u64,
    /// Block requests issued by those DMA commands.
    pub dma_block_requests: u64,
    /// The most block requests one DMA command needed.
    pub dma_max_requests: u32,
    /// DMA commands that ended on a short PRD table (no IRQ).
    pub short_prd_tables: u64,
    /// DMA commands that ended with a bus-master error (BM status ERR).
    pub host_bus_errors: u64,
    /// DMA commands started while PCI bus mastering was off: they moved no
    /// data and ended as QEMU's do (see `ide::channel::dma`).
    pub dma_without_bus_master: u64,
    /// Bytes read from the disks (PIO and DMA).
    pub bytes_read: u64,
    /// Bytes written to the disks (PIO and DMA).
    pub bytes_written: u64,
    /// TRIM ranges passed to the backend.
    pub trim_ranges: u64,
    /// Times a DMA transfer had to wait for bounce-buffer space.
    pub bounce_waits: u64,
    /// Completions that matched no request of this channel.
    pub stray_completions: u64,
    /// Bytes DMA moved through per-piece bounce space (MMIO).
    pub bounced_bytes: u64,
    /// Bytes DMA staged (copied between guest memory and bounce space,
    /// for sectors that did not map piece by piece).
    pub staged_bytes: u64,
    /// BMDMA stops whose effect waited for a request in flight.
    pub deferred_stops: u64,
    /// Software resets whose effect waited for a request in flight.
    pub deferred_resets: u64,
    /// DMA commands dropped by a software reset while waiting for START.
    pub dma_dropped: u64,
    /// DMA-class commands (READ/WRITE DMA (EXT), DATA SET MANAGEMENT) that
    /// ended, by whichever path: completed, failed, short PRD table, dropped
    /// by a reset. Equal to `dma_reads + dma_writes + trims` once the
    /// channel is idle: each command ends exactly once.
    pub dma_ended: u64,
    /// Flushes the device issued itself after a write because the guest
    /// turned the write cache off (SET FEATURES 0x82): each such write
    /// reached stable storage before it completed.
    pub write_through_flushes: u64,
}

impl IdeStats {
    /// All counters zero (const, for `static` controllers).
    pub const fn new() -> Self {
        IdeStats {
            commands: 0,
            pio_reads: 0,
            pio_writes: 0,
            dma_reads: 0,
            dma_writes: 0,
            trims: 0,
            flushes: 0,
            identifies: 0,
            other_commands: 0,
            aborted: 0,
            dma_completed: 0,
            dma_block_requests: 0,
            dma_max_requests: 0,
            short_prd_tables: 0,
            host_bus_errors: 0,
            bytes_read: 0,
            bytes_written: 0,
            trim_ranges: 0,
            bounce_waits: 0,
            stray_completions: 0,
            bounced_bytes: 0,
            staged_bytes: 0,
            deferred_stops: 0,
            deferred_resets: 0,
            dma_dropped: 0,
            dma_ended: 0,
            dma_without_bus_master: 0,
            write_through_flushes: 0,
        }
    }

    /// Block requests per completed DMA command, in hundredths (e.g. 100 =
    /// exactly one request each); `None` before the first one.
    pub fn requests_per_dma_x100(&self) -> Option<u64> {
        self.dma_block_requests
            .saturating_mul(100)
            .checked_div(self.dma_completed)
    }
}

impl core::fmt::Display for IdeStats {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        writeln!(
            f,
            "ide: {} commands ({} aborted): pio read {} write {}, dma read {} write {}, trim {}, flush {}, identify {}, other {}",
            self.commands,
            self.aborted,
            self.pio_reads,
            self.pio_writes,
            self.dma_reads,
            self.dma_writes,
            self.trims,
            self.flushes,
            self.identifies,
            self.other_commands
        )?;
        write!(
            f,
            "ide: {} bytes read, {} written; {} DMA commands with {} block requests",
            self.bytes_read, self.bytes_written, self.dma_completed, self.dma_block_requests
        )?;
        if let Some(r) = self.requests_per_dma_x100() {
            write!(
                f,
                " ({}.{:02} per command, max {})",
                r / 100,
                r % 100,
                self.dma_max_requests
            )?;
        }
        write!(
            f,
            "; {} bounce waits, {} short PRD tables, {} bus-master errors, {} TRIM ranges",
            self.bounce_waits, self.short_prd_tables, self.host_bus_errors, self.trim_ranges
        )?;
        write!(
            f,
            "; {} bytes bounced, {} staged; {} stops and {} resets deferred; {} write-through flushes",
            self.bounced_bytes,
            self.staged_bytes,
            self.deferred_stops,
            self.deferred_resets,
            self.write_through_flushes
        )
    }
}

/// `*c += n`, saturating.
pub(crate) fn bump(c: &mut u64, n: u64) {
    *c = c.saturating_add(n);
}
