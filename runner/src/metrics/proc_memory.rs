//! The runner's own memory use: the peak resident set (`VmHWM` in
//! `/proc/self/status`, read on the supervisor thread after the run) and
//! how much of it is guest RAM (the mapping's resident pages, counted with
//! `mincore` by the vCPU thread before the RAM is unmapped), so that "RSS
//! beyond guest RAM" can be told apart from the pages the guest touched.

/// Memory use at the end of a run, in KiB (`None` where `/proc` lacks it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryUse {
    /// Peak resident set of the process (`VmHWM`).
    pub max_rss_kib: Option<u64>,
    /// Resident pages of the guest RAM mapping at the end of the run.
    pub guest_ram_rss_kib: Option<u64>,
}

/// The peak resident set of this process (`VmHWM`), in KiB.
pub fn max_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    kib_field(&status, "VmHWM:")
}

/// The value of `key` (e.g. `VmHWM:`) in `/proc/*/status` text, in kB.
fn kib_field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_and_smaps() {
        let status = "Name:\tvmdma\nVmHWM:\t    4321 kB\nVmRSS:\t 100 kB\n";
        assert_eq!(kib_field(status, "VmHWM:"), Some(4321));
        assert_eq!(kib_field(status, "VmPeak:"), None);
    }

    #[test]
    fn reads_this_process() {
        assert!(max_rss_kib().is_some_and(|k| k > 0));
    }
}
