//! Counters for `--stats`: VM exits by kind and by port/address, the bus
//! outcomes, and the run time.

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
    fn name(self) -> &'static str {
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

/// Exit statistics of one vCPU.
#[derive(Debug, Default, Clone)]
pub struct ExitStats {
    kinds: BTreeMap<ExitKind, u64>,
    ports: BTreeMap<u16, (u64, u64)>,
    mmio_pages: BTreeMap<u64, u64>,
    /// Port or MMIO accesses that no device claimed.
    pub unclaimed: u64,
    /// Port accesses with a width the device does not accept.
    pub bad_width: u64,
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

    /// Counts an MMIO exit at `addr` (by 4 KiB page).
    pub fn mmio(&mut self, addr: u64) {
        *self.mmio_pages.entry(addr & !0xFFF).or_default() += 1;
    }

    /// Exits of `kind` so far.
    pub fn count(&self, kind: ExitKind) -> u64 {
        self.kinds.get(&kind).copied().unwrap_or(0)
    }

    /// All exits so far.
    pub fn total(&self) -> u64 {
        self.kinds.values().sum()
    }

    /// The `--stats` report.
    pub fn report(&self, elapsed: Duration) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "vmdma stats: run time {:.3} s", elapsed.as_secs_f64());
        let _ = writeln!(s, "vmdma stats: vm exits {}", self.total());
        for (k, n) in &self.kinds {
            let _ = writeln!(s, "vmdma stats:   {:<10} {n}", k.name());
        }
        for (port, (r, w)) in &self.ports {
            let _ = writeln!(s, "vmdma stats:   port {port:#06x} in {r} out {w}");
        }
        for (page, n) in &self.mmio_pages {
            let _ = writeln!(s, "vmdma stats:   mmio page {page:#x} {n}");
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
    }
}
