//! The runner's own memory use, from `/proc/self`: the peak resident set
//! (`VmHWM` in `status`) and how much of it is guest RAM (the `Rss` of the
//! guest RAM mapping in `smaps`), so that "RSS beyond guest RAM" can be
//! told apart from the pages the guest touched.

use std::ops::Range;

/// Memory use at the end of a run, in KiB (`None` where `/proc` lacks it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryUse {
    /// Peak resident set of the process (`VmHWM`).
    pub max_rss_kib: Option<u64>,
    /// Resident pages of the guest RAM mapping now.
    pub guest_ram_rss_kib: Option<u64>,
}

/// Reads the memory use; `ram` is the guest RAM mapping's address range.
pub fn read(ram: &Range<usize>) -> MemoryUse {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
    MemoryUse {
        max_rss_kib: kib_field(&status, "VmHWM:"),
        guest_ram_rss_kib: mapping_rss(&smaps, ram.start),
    }
}

/// The value of `key` (e.g. `VmHWM:`) in `/proc/*/status` text, in kB.
fn kib_field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
}

/// The `Rss` of the mapping starting at `start` in `/proc/*/smaps` text.
fn mapping_rss(smaps: &str, start: usize) -> Option<u64> {
    let header = format!("{start:x}-");
    let mut lines = smaps.lines();
    lines.find(|l| l.starts_with(&header))?;
    for l in lines {
        if let Some(v) = kib_field(l, "Rss:") {
            return Some(v);
        }
        // The next mapping's header ("addr-addr perms ..."): no Rss found.
        if l.split_whitespace().next().is_some_and(|w| w.contains('-')) {
            return None;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_and_smaps() {
        let status = "Name:\tvmdma\nVmHWM:\t    4321 kB\nVmRSS:\t 100 kB\n";
        assert_eq!(kib_field(status, "VmHWM:"), Some(4321));
        assert_eq!(kib_field(status, "VmPeak:"), None);
        let smaps = "\
7f0000000000-7f0004000000 rw-p 00000000 00:00 0
Size:              65536 kB
Rss:                1200 kB
7f0004000000-7f0004001000 r--p 00000000 00:00 0
Size:                  4 kB
Rss:                   4 kB
";
        assert_eq!(mapping_rss(smaps, 0x7f00_0000_0000), Some(1200));
        assert_eq!(mapping_rss(smaps, 0x7f00_0400_0000), Some(4));
        assert_eq!(mapping_rss(smaps, 0x1234), None);
        let broken = "7f0000000000-7f0004000000 rw-p 0 00:00 0\nSize: 4 kB\n8-9 r--p\nRss: 4 kB\n";
        assert_eq!(mapping_rss(broken, 0x7f00_0000_0000), None);
    }

    #[test]
    fn reads_this_process() {
        let m = read(&(0..0));
        assert!(m.max_rss_kib.is_some_and(|k| k > 0));
    }
}
