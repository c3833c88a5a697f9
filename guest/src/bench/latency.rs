//! Per-command latency statistics of a timed loop, computed after it.

/// Cycles per command: smallest, mean, median, 99th percentile, largest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Shortest command.
    pub min: u64,
    /// Mean (rounded down).
    pub mean: u64,
    /// Median (nearest rank).
    pub p50: u64,
    /// 99th percentile (nearest rank).
    pub p99: u64,
    /// Longest command.
    pub max: u64,
}

/// The nearest-rank index of percentile `p` (0 < p <= 100) in `n > 0`
/// sorted values.
fn rank(n: usize, p: usize) -> usize {
    (n * p).div_ceil(100).saturating_sub(1)
}

/// Summarises `cycles` (reordered in the process); `None` if empty.
pub fn summarize(cycles: &mut [u32]) -> Option<Summary> {
    let n = cycles.len();
    let min = u64::from(*cycles.iter().min()?);
    let max = u64::from(*cycles.iter().max()?);
    let sum: u64 = cycles.iter().map(|c| u64::from(*c)).sum();
    let mean = sum / n as u64;
    let mut nth = |p| {
        let (_, v, _) = cycles.select_nth_unstable(rank(n, p));
        u64::from(*v)
    };
    let p50 = nth(50);
    let p99 = nth(99);
    Some(Summary {
        min,
        mean,
        p50,
        p99,
        max,
    })
}
