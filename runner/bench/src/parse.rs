//! Reading what a run reports: the guest's `bench NAME:` lines (on both
//! VMMs) and vmdma's `--stats-json` (counters between the loop's marks).

use std::collections::BTreeMap;

use serde_json::Value;
use vmdma_protocol::{MARK_BENCH_END, MARK_BENCH_START};

/// The guest's report of one benchmark run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GuestReport {
    /// Commands in the timed loop.
    pub commands: u64,
    /// TSC cycles of the loop.
    pub cycles: u64,
    /// TSC frequency.
    pub tsc_hz: u64,
    /// Where the frequency came from (`pit`, `cpuid-15h`).
    pub tsc_source: String,
    /// Per-command cycles: min, mean, p50, p99, max.
    pub latency: Option<[u64; 5]>,
    /// `bench calibrate:` measurements: name → (loops, cycles).
    pub calibrate: BTreeMap<String, (u64, u64)>,
    /// The summary line said 1 passed.
    pub passed: bool,
}

fn key_values(s: &str) -> BTreeMap<&str, &str> {
    s.split_whitespace()
        .filter_map(|w| w.split_once('='))
        .collect()
}

fn num(m: &BTreeMap<&str, &str>, k: &str) -> Option<u64> {
    m.get(k)?.parse().ok()
}

/// Parses the console output of `bench=NAME`.
pub fn guest_output(name: &str, text: &str) -> GuestReport {
    let mut r = GuestReport::default();
    let prefix = format!("bench {name}: ");
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line == "1 passed, 0 failed, 0 skipped" {
            r.passed = true;
        }
        let Some(rest) = line.strip_prefix(&prefix) else {
            continue;
        };
        if let Some((n, tail)) = rest.split_once(" commands of ") {
            r.commands = n.parse().unwrap_or(0);
            r.cycles = tail
                .split_once(", ")
                .and_then(|(_, c)| c.strip_suffix(" TSC cycles"))
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            continue;
        }
        let kv = key_values(rest);
        if let (Some(hz), Some(src)) = (num(&kv, "tsc_hz"), kv.get("tsc_source")) {
            r.tsc_hz = hz;
            r.tsc_source = src.to_string();
        } else if let Some(l) = rest.strip_prefix("latency_cycles ") {
            let kv = key_values(l);
            let get = |k| num(&kv, k);
            if let (Some(a), Some(b), Some(c), Some(d), Some(e)) =
                (get("min"), get("mean"), get("p50"), get("p99"), get("max"))
            {
                r.latency = Some([a, b, c, d, e]);
            }
        } else if let Some((what, tail)) = rest.split_once(' ') {
            let kv = key_values(tail);
            let loops = num(&kv, "loops").or_else(|| num(&kv, "count"));
            if let (Some(n), Some(c)) = (loops, num(&kv, "cycles")) {
                r.calibrate.insert(what.to_string(), (n, c));
            }
        }
    }
    r
}

/// Counters of vmdma over an interval (between two marks), as totals.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Interval {
    /// Exits to user space.
    pub user_exits: u64,
    /// Exits to user space by kind (`io-in`, `io-out`, ...).
    pub user_kinds: BTreeMap<String, u64>,
    /// Port writes KVM coalesced (not exits).
    pub coalesced: u64,
    /// KVM's counters (`exits`, `insn_emulation`, `halt_exits`, ...).
    pub kvm: BTreeMap<String, u64>,
    /// Data path: bytes straight to/from guest RAM.
    pub ram_direct_bytes: u64,
    /// Data path: bytes through bounce space.
    pub bounce_bytes: u64,
    /// Data path: bytes through other VMM buffers.
    pub vmm_buffer_bytes: u64,
    /// Host time between the marks.
    pub seconds: f64,
}

impl Interval {
    /// KVM counter `k` (0 if absent).
    pub fn kvm(&self, k: &str) -> u64 {
        self.kvm.get(k).copied().unwrap_or(0)
    }

    /// Exits KVM handled in the kernel: all exits less those to user space.
    pub fn kernel_exits(&self) -> u64 {
        self.kvm("exits").saturating_sub(self.user_exits)
    }
}

fn u(v: &Value, ptr: &str) -> u64 {
    v.pointer(ptr).and_then(Value::as_u64).unwrap_or(0)
}

/// The mark with `code` in a stats JSON.
fn mark(stats: &Value, code: u8) -> Option<&Value> {
    stats["marks"]
        .as_array()?
        .iter()
        .find(|m| m["code"].as_u64() == Some(u64::from(code)))
}

/// The counters between marks `start` and `end` of a stats JSON, less the
/// end mark's own exit; `None` if a mark is missing.
pub fn interval(stats: &Value, start: u8, end: u8) -> Option<Interval> {
    let a = mark(stats, start)?;
    let b = mark(stats, end)?;
    let d = |p: &str| u(b, p).saturating_sub(u(a, p));
    let mut user_kinds = BTreeMap::new();
    if let Some(k) = b["exits"]["kinds"].as_object() {
        for name in k.keys() {
            let n = d(&format!("/exits/kinds/{name}"));
            if n > 0 {
                user_kinds.insert(name.clone(), n);
            }
        }
    }
    // The end mark's own exit is an io-out to user space (and a KVM exit).
    if let Some(n) = user_kinds.get_mut("io-out") {
        *n = n.saturating_sub(1);
    }
    let mut kvm = BTreeMap::new();
    if let Some(k) = b["kvm"].as_object() {
        for name in k.keys() {
            kvm.insert(name.clone(), d(&format!("/kvm/{name}")));
        }
    }
    // ... and one emulated instruction (the `out` itself).
    for k in ["exits", "insn_emulation"] {
        if let Some(e) = kvm.get_mut(k) {
            *e = e.saturating_sub(1);
        }
    }
    let at = |m: &Value| m["at_s"].as_f64().unwrap_or(0.0);
    Some(Interval {
        user_exits: d("/exits/total").saturating_sub(1),
        user_kinds,
        coalesced: d("/exits/coalesced_total"),
        kvm,
        ram_direct_bytes: d("/data_path/ram_direct_bytes"),
        bounce_bytes: d("/data_path/bounce_bytes"),
        vmm_buffer_bytes: d("/data_path/vmm_buffer_bytes"),
        seconds: at(b) - at(a),
    })
}

/// The timed loop's interval.
pub fn bench_loop(stats: &Value) -> Option<Interval> {
    interval(stats, MARK_BENCH_START, MARK_BENCH_END)
}

/// Seconds from the guest's exit (its debug-exit write) to the end of
/// vmdma's run (teardown included), from the stats JSON.
pub fn after_guest_exit(stats: &Value) -> Option<f64> {
    Some(stats["run_time_s"].as_f64()? - stats["guest_exit_s"].as_f64()?)
}

/// Seconds from the VM's first run (fully built) to the end of vmdma's
/// run, from the stats JSON.
pub fn after_vm_start(stats: &Value) -> Option<f64> {
    Some(stats["run_time_s"].as_f64()? - stats["vm_start_s"].as_f64()?)
}

/// `memory.max_rss_kib` and `memory.guest_ram_rss_kib`.
pub fn memory(stats: &Value) -> (Option<u64>, Option<u64>) {
    (
        stats.pointer("/memory/max_rss_kib").and_then(Value::as_u64),
        stats
            .pointer("/memory/guest_ram_rss_kib")
            .and_then(Value::as_u64),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn guest_lines() {
        let text = "\nvmdma-guest: started\n\
            bench rand-read: 64 commands of 8 sectors, 1000 TSC cycles\n\
            bench rand-read: tsc_hz=2600000000 tsc_source=pit\n\
            bench rand-read: latency_cycles min=1 mean=2 p50=3 p99=4 max=5\n\
            test bench_rand-read ... ok\n1 passed, 0 failed, 0 skipped\n";
        let r = guest_output("rand-read", text);
        assert_eq!((r.commands, r.cycles, r.tsc_hz), (64, 1000, 2_600_000_000));
        assert_eq!(r.tsc_source, "pit");
        assert_eq!(r.latency, Some([1, 2, 3, 4, 5]));
        assert!(r.passed);
        let c = guest_output(
            "calibrate",
            "bench calibrate: null_exit loops=1000 cycles=26000000\n\
             bench calibrate: commands count=64 sectors=8 cycles=5\n",
        );
        assert_eq!(c.calibrate["null_exit"], (1000, 26_000_000));
        assert_eq!(c.calibrate["commands"], (64, 5));
        assert!(!c.passed);
    }

    #[test]
    fn interval_between_marks() {
        let snap = |code: u8, at: f64, total: u64, out: u64, kvm: u64, ram: u64| {
            json!({"code": code, "at_s": at,
                   "exits": {"total": total, "kinds": {"io-out": out, "io-in": total - out}},
                   "kvm": {"exits": kvm, "insn_emulation": kvm * 10},
                   "data_path": {"ram_direct_bytes": ram, "bounce_bytes": 0, "vmm_buffer_bytes": 0}})
        };
        let stats = json!({"marks": [
            snap(MARK_BENCH_START, 1.0, 100, 60, 110, 0),
            snap(MARK_BENCH_END, 1.5, 351, 211, 400, 40960),
        ], "memory": {"max_rss_kib": 4000, "guest_ram_rss_kib": 1000}});
        let i = bench_loop(&stats).unwrap();
        assert_eq!(i.user_exits, 250);
        assert_eq!(i.user_kinds["io-out"], 150);
        assert_eq!(i.user_kinds["io-in"], 100);
        assert_eq!(i.kvm("exits"), 289);
        assert_eq!(i.kernel_exits(), 39);
        assert_eq!(i.kvm("insn_emulation"), 2899);
        assert_eq!(i.ram_direct_bytes, 40960);
        assert!((i.seconds - 0.5).abs() < 1e-9);
        assert_eq!(memory(&stats), (Some(4000), Some(1000)));
        assert!(interval(&stats, 1, 2).is_none());
    }
}
