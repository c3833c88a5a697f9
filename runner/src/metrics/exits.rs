//! Counters for `--stats`: VM exits by kind and by port/address, the bus
//! outcomes, and the run time.
//!
//! Every counter has a bounded footprint whatever the guest does: exit kinds
//! and ports are finite sets, and MMIO pages are kept for at most
//! [`MAX_MMIO_PAGES`] distinct pages, the rest folded into one counter.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// Kinds of VM exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ExitKind {
    /// `in`/`ins`.
    IoIn,
    /// `out`/`outs`.
    IoOut,
    /// MMIO read outside RAM.
    MmioRead,
    /// MMIO write outside RAM.
    MmioWrite,
    /// `hlt` reported to user space.
    Hlt,
    /// Triple fault.
    Shutdown,
    /// `KVM_RUN` interrupted by a signal (timeout / halt probe kicks).
    Interrupted,
    /// Anything else (entry failure, internal error, system event...).
    Other,
}

impl ExitKind {
    /// The name used in reports (`io-in`, `io-out`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ExitKind::IoIn => "io-in",
            ExitKind::IoOut => "io-out",
            ExitKind::MmioRead => "mmio-read",
            ExitKind::MmioWrite => "mmio-write",
            ExitKind::Hlt => "hlt",
            ExitKind::Shutdown => "shutdown",
            ExitKind::Interrupted => "signal",
            ExitKind::Other => "other",
        }
    }
}

/// Distinct 4 KiB MMIO pages counted one by one; exits on further pages are
/// counted together (a guest sweeping addresses must not grow host memory).
pub const MAX_MMIO_PAGES: usize = 64;

/// Exit statistics of one vCPU.
#[derive(Debug, Default, Clone)]
pub struct ExitStats {
    kinds: BTreeMap<ExitKind, u64>,
    ports: BTreeMap<u16, (u64, u64)>,
    /// MMIO exits by page, for the first [`MAX_MMIO_PAGES`] distinct pages.
    mmio_pages: BTreeMap<u64, u64>,
    /// MMIO exits on pages beyond the first [`MAX_MMIO_PAGES`].
    mmio_other_pages: u64,
    /// Port or MMIO accesses that no device claimed.
    pub unclaimed: u64,
    /// Port accesses with a width the device does not accept.
    pub bad_width: u64,
    /// Coalesced port writes (not exits) by port.
    coalesced: BTreeMap<u16, u64>,
}

impl ExitStats {
    /// Counts an exit of `kind`.
    pub fn exit(&mut self, kind: ExitKind) {
        *self.kinds.entry(kind).or_default() += 1;
    }

    /// Counts a port access (one per exit, string I/O included).
    pub fn port(&mut self, port: u16, write: bool) {
        let e = self.ports.entry(port).or_default();
        if write {
            e.1 += 1;
        } else {
            e.0 += 1;
        }
    }

    /// Counts an MMIO exit at `addr` (by 4 KiB page; once
    /// [`MAX_MMIO_PAGES`] distinct pages are known, exits on new pages go to
    /// one "other pages" counter).
    pub fn mmio(&mut self, addr: u64) {
        let page = addr & !0xFFF;
        if let Some(n) = self.mmio_pages.get_mut(&page) {
            *n = n.saturating_add(1);
        } else if self.mmio_pages.len() < MAX_MMIO_PAGES {
            self.mmio_pages.insert(page, 1);
        } else {
            self.mmio_other_pages = self.mmio_other_pages.saturating_add(1);
        }
    }

    /// Counts a coalesced port write (applied from KVM's ring, not an
    /// exit).
    pub fn coalesced(&mut self, port: u16) {
        *self.coalesced.entry(port).or_default() += 1;
    }

    /// Coalesced writes by port.
    pub fn coalesced_ports(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        self.coalesced.iter().map(|(p, n)| (*p, *n))
    }

    /// All coalesced writes.
    pub fn coalesced_total(&self) -> u64 {
        self.coalesced.values().sum()
    }

    /// Exits of `kind` so far.
    pub fn count(&self, kind: ExitKind) -> u64 {
        self.kinds.get(&kind).copied().unwrap_or(0)
    }

    /// All exits so far.
    pub fn total(&self) -> u64 {
        self.kinds.values().sum()
    }

    /// Exits by kind (kinds never seen are absent).
    pub fn kinds(&self) -> impl Iterator<Item = (ExitKind, u64)> + '_ {
        self.kinds.iter().map(|(k, n)| (*k, *n))
    }

    /// Port exits: `(port, reads, writes)` in port order.
    pub fn ports(&self) -> impl Iterator<Item = (u16, u64, u64)> + '_ {
        self.ports.iter().map(|(p, (r, w))| (*p, *r, *w))
    }

    /// MMIO exits by 4 KiB page (the first [`MAX_MMIO_PAGES`] pages), and
    /// the exits on all further pages.
    pub fn mmio_pages(&self) -> (impl Iterator<Item = (u64, u64)> + '_, u64) {
        (
            self.mmio_pages.iter().map(|(p, n)| (*p, *n)),
            self.mmio_other_pages,
        )
    }

    /// The `--stats` report.
    pub fn report(&self, elapsed: Duration) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "vmdma stats: run time {:.3} s", elapsed.as_secs_f64());
        let _ = writeln!(
            s,
            "vmdma stats: vm exits {} (and {} coalesced port writes)",
            self.total(),
            self.coalesced_total()
        );
        for (k, n) in &self.kinds {
            let _ = writeln!(s, "vmdma stats:   {:<10} {n}", k.name());
        }
        for (port, (r, w)) in &self.ports {
            let _ = writeln!(s, "vmdma stats:   port {port:#06x} in {r} out {w}");
        }
        for (page, n) in &self.mmio_pages {
            let _ = writeln!(s, "vmdma stats:   mmio page {page:#x} {n}");
        }
        for (port, n) in &self.coalesced {
            let _ = writeln!(s, "vmdma stats:   port {port:#06x} coalesced writes {n}");
        }
        if self.mmio_other_pages > 0 {
            let _ = writeln!(
                s,
                "vmdma stats:   mmio other pages {} (beyond the first {MAX_MMIO_PAGES} pages)",
                self.mmio_other_pages
            );
        }
        let _ = writeln!(
            s,
            "vmdma stats: unclaimed accesses {}, bad-width accesses {}",
            self.unclaimed, self.bad_width
        );
        s
    }
}

/// The IDE part of `--stats`: the controller's counters and VM exits per
/// DMA command (all exits of the run divided by the DMA data commands, an
/// upper bound on what one command costs).
pub fn dma_report(exits: &ExitStats, ide: &vmdma_core::ide::IdeStats) -> String {
    let mut s = String::new();
    for line in ide.to_string().lines() {
        let _ = writeln!(s, "vmdma stats: {line}");
    }
    let dma = ide.dma_reads + ide.dma_writes;
    let _ = write!(s, "vmdma stats: DMA commands {dma}");
    if dma > 0 {
        let _ = write!(
            s,
            ", {:.1} VM exits per DMA command (whole run)",
            exits.total() as f64 / dma as f64
        );
    }
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_report() {
        let mut s = ExitStats::default();
        s.exit(ExitKind::IoOut);
        s.exit(ExitKind::IoOut);
        s.exit(ExitKind::MmioRead);
        s.port(0x3F8, true);
        s.mmio(0xD000_0123);
        assert_eq!(s.count(ExitKind::IoOut), 2);
        assert_eq!(s.total(), 3);
        let r = s.report(Duration::from_millis(1500));
        assert!(r.contains("run time 1.500 s"));
        assert!(r.contains("io-out     2"));
        assert!(r.contains("port 0x03f8 in 0 out 1"));
        assert!(r.contains("mmio page 0xd0000000 1"));
        assert!(!r.contains("mmio other pages"));
    }

    #[test]
    fn mmio_pages_are_bounded() {
        let mut s = ExitStats::default();
        for i in 0..10_000u64 {
            let addr = 0xE000_0000 + i * 0x1000 + 0x10;
            s.exit(ExitKind::MmioWrite);
            s.mmio(addr);
        }
        // A page already known keeps its own count after the cap.
        s.exit(ExitKind::MmioRead);
        s.mmio(0xE000_0000);
        assert_eq!(s.mmio_pages.len(), MAX_MMIO_PAGES);
        let per_page: u64 = s.mmio_pages.values().sum();
        assert_eq!(per_page + s.mmio_other_pages, 10_001);
        assert_eq!(s.mmio_other_pages, 10_000 - MAX_MMIO_PAGES as u64);
        assert_eq!(s.mmio_pages.get(&0xE000_0000), Some(&2));
        assert_eq!(s.total(), 10_001);
        let r = s.report(Duration::ZERO);
        assert_eq!(r.matches("mmio page ").count(), MAX_MMIO_PAGES);
        assert!(r.contains("mmio page 0xe0000000 2"));
        assert!(r.contains("mmio other pages 9936 (beyond the first 64 pages)"));
    }
}
