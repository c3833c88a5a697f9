//! `--stats-json FILE`: the run's counters as one JSON object, for tools
//! (the `vmdma bench` subcommand reads it). Format `vmdma-stats/1`:
//!
//! ```text
//! { "format": "vmdma-stats/1",
//!   "run_time_s": 0.05,                   process start to the end of the run
//!   "vm_start_s": 0.002,                  process start to the guest's first run
//!                                         (the VM built), or null
//!   "guest_exit_s": 0.03,                 process start to the stop request (the
//!                                         guest's debug-exit write), or null
//!   "stop": { "reason": "guest-exit", "value": 0 }   or "shutdown"/"timeout"
//!   "exits": EXITS,                       the runner's exits (to user space)
//!   "kvm": { "exits": N, "io_exits": N, ... } or null   KVM's counters
//!   "ide": { "commands": N, "dma_reads": N, ... }        the controller's
//!   "data_path": { "ram_direct_bytes": N, "bounce_bytes": N,
//!                  "vmm_buffer_bytes": N },
//!   "marks": [ { "code": 177, "at_s": 0.01, "exits": EXITS, "kvm": {...},
//!                "data_path": {...} }, ... ],
//!   "marks_dropped": 0,
//!   "coalesced_pio": true,               side-effect-free port writes coalesced
//!   "restore": { "read_check_s": 0.003,  --incoming: reading the snapshot and
//!                "apply_s": 0.001,        checking it whole; putting RAM, KVM and
//!                "first_entry_s": 0.01 }  device state back; process start to the
//!                                         guest's first entry (as vm_start_s);
//!              or null without --incoming
//!   "memory": { "max_rss_kib": N, "guest_ram_rss_kib": N } }   from /proc/self
//! EXITS = { "total": N, "kinds": { "io-in": N, ... },
//!           "ports": { "0x01f0": { "in": N, "out": N }, ... },
//!           "mmio_pages": { "0xd0000000": N, ... }, "mmio_other_pages": N,
//!           "unclaimed": N, "bad_width": N,
//!           "coalesced_total": N, "coalesced": { "0x01f2": N, ... } }
//! ```
//!
//! KVM's `exits` counts every exit, also those handled in the kernel; the
//! runner's `exits.total` only those that reached user space.

use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use vmdma_core::ide::IdeStats;

use crate::control::StopReason;
use crate::disk::accounting::DataPath;
use crate::metrics::exits::ExitStats;
use crate::metrics::kvm::KvmCounters;
use crate::metrics::marks::Snapshot;
use crate::metrics::report::RunReport;

/// The format name in the `format` field.
pub const FORMAT: &str = "vmdma-stats/1";

/// The runner's exit counters.
pub fn exits(s: &ExitStats) -> Value {
    let kinds: Map<String, Value> = s
        .kinds()
        .map(|(k, n)| (k.name().to_string(), json!(n)))
        .collect();
    let ports: Map<String, Value> = s
        .ports()
        .map(|(p, r, w)| (format!("{p:#06x}"), json!({ "in": r, "out": w })))
        .collect();
    let (pages, other) = s.mmio_pages();
    let pages: Map<String, Value> = pages.map(|(p, n)| (format!("{p:#x}"), json!(n))).collect();
    json!({
        "total": s.total(),
        "kinds": kinds,
        "ports": ports,
        "mmio_pages": pages,
        "mmio_other_pages": other,
        "unclaimed": s.unclaimed,
        "bad_width": s.bad_width,
        "coalesced_total": s.coalesced_total(),
        "coalesced": s
            .coalesced_ports()
            .map(|(p, n)| (format!("{p:#06x}"), json!(n)))
            .collect::<Map<String, Value>>(),
    })
}

fn kvm(k: Option<&KvmCounters>) -> Value {
    k.map_or(Value::Null, |k| {
        Value::Object(k.iter().map(|(n, v)| (n.clone(), json!(v))).collect())
    })
}

fn data_path(d: &DataPath) -> Value {
    json!({
        "ram_direct_bytes": d.ram_direct_bytes,
        "bounce_bytes": d.bounce_bytes,
        "vmm_buffer_bytes": d.vmm_buffer_bytes,
    })
}

fn ide(s: &IdeStats) -> Value {
    json!({
        "commands": s.commands,
        "pio_reads": s.pio_reads,
        "pio_writes": s.pio_writes,
        "dma_reads": s.dma_reads,
        "dma_writes": s.dma_writes,
        "trims": s.trims,
        "flushes": s.flushes,
        "identifies": s.identifies,
        "other_commands": s.other_commands,
        "aborted": s.aborted,
        "dma_completed": s.dma_completed,
        "dma_block_requests": s.dma_block_requests,
        "dma_max_requests": s.dma_max_requests,
        "short_prd_tables": s.short_prd_tables,
        "host_bus_errors": s.host_bus_errors,
        "bytes_read": s.bytes_read,
        "bytes_written": s.bytes_written,
        "trim_ranges": s.trim_ranges,
        "bounce_waits": s.bounce_waits,
        "stray_completions": s.stray_completions,
        "bounced_bytes": s.bounced_bytes,
        "staged_bytes": s.staged_bytes,
        "deferred_stops": s.deferred_stops,
        "deferred_resets": s.deferred_resets,
        "dma_dropped": s.dma_dropped,
        "dma_ended": s.dma_ended,
        "write_through_flushes": s.write_through_flushes,
    })
}

fn stop(r: &StopReason) -> Value {
    match r {
        StopReason::GuestExit(v) => json!({ "reason": "guest-exit", "value": v }),
        StopReason::Shutdown(why) => json!({ "reason": "shutdown", "why": why }),
        StopReason::GuestFault(why) => json!({ "reason": "guest-fault", "why": why }),
        StopReason::Timeout => json!({ "reason": "timeout" }),
        StopReason::Signal(sig) => json!({ "reason": "signal", "signal": sig }),
        StopReason::Quit => json!({ "reason": "quit" }),
    }
}

fn snapshot(s: &Snapshot) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("at_s".into(), json!(s.at.as_secs_f64()));
    m.insert("exits".into(), exits(&s.exits));
    m.insert("kvm".into(), kvm(s.kvm.as_ref()));
    m.insert("data_path".into(), data_path(&s.data_path));
    m
}

/// The whole report; `start` is when the process started, `elapsed` its
/// run time.
pub fn report(r: &RunReport, start: Instant, elapsed: Duration) -> Value {
    let marks: Vec<Value> = r
        .marks
        .iter()
        .map(|m| {
            let mut o = snapshot(&m.snapshot);
            o.insert("code".into(), json!(m.code));
            Value::Object(o)
        })
        .collect();
    json!({
        "format": FORMAT,
        "run_time_s": elapsed.as_secs_f64(),
        "vm_start_s": r.started_at.map(|t| t.saturating_duration_since(start).as_secs_f64()),
        "guest_exit_s": r.stopped_at.map(|t| t.saturating_duration_since(start).as_secs_f64()),
        "stop": stop(&r.reason),
        "exits": exits(&r.stats),
        "kvm": kvm(r.kvm.as_ref()),
        "ide": ide(&r.ide),
        "data_path": data_path(&r.data_path),
        "disk": r.disk.as_ref().map(|d| json!({
            "aio": d.mode.aio.name(),
            "cache": d.mode.cache.name(),
            "requests": d.uring.map(|u| u.requests),
            "completed_inline": d.uring.map(|u| u.inline),
            "coop_taskrun": d.uring.map(|u| u.coop_taskrun),
            "io_thread_wakeups": d.io_thread_wakeups,
            "direct_io_bounced_bytes": d.bounced_bytes,
            "io_errors": d.io_errors,
        })),
        "marks": marks,
        "marks_dropped": r.marks_dropped,
        "coalesced_pio": r.coalesced_pio,
        "restore": r.restore.map(|t| json!({
            "read_check_s": t.check.as_secs_f64(),
            "apply_s": t.apply.as_secs_f64(),
            "first_entry_s": r.started_at.map(|s| s.saturating_duration_since(start).as_secs_f64()),
        })),
        "memory": {
            "max_rss_kib": r.memory.max_rss_kib,
            "guest_ram_rss_kib": r.memory.guest_ram_rss_kib,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::exits::ExitKind;

    #[test]
    fn report_shape() {
        let mut r = RunReport::without_counters(StopReason::GuestExit(0));
        r.stats.exit(ExitKind::IoOut);
        r.stats.port(0x1F7, true);
        r.stats.mmio(0xD000_0010);
        r.ide.dma_reads = 3;
        r.data_path.ram_direct_bytes = 4096;
        let start = Instant::now();
        r.stopped_at = Some(start + Duration::from_millis(3));
        let v = report(&r, start, Duration::from_millis(5));
        assert!((v["guest_exit_s"].as_f64().unwrap() - 0.003).abs() < 1e-9);
        assert_eq!(v["format"], FORMAT);
        assert_eq!(v["stop"]["reason"], "guest-exit");
        assert_eq!(v["exits"]["total"], 1);
        assert_eq!(v["exits"]["kinds"]["io-out"], 1);
        assert_eq!(v["exits"]["ports"]["0x01f7"]["out"], 1);
        assert_eq!(v["exits"]["mmio_pages"]["0xd0000000"], 1);
        assert_eq!(v["ide"]["dma_reads"], 3);
        assert_eq!(v["data_path"]["ram_direct_bytes"], 4096);
        assert!(v["kvm"].is_null());
        assert_eq!(v["marks"].as_array().map(Vec::len), Some(0));
        assert!((v["run_time_s"].as_f64().unwrap() - 0.005).abs() < 1e-9);
        assert!(v["restore"].is_null(), "no --incoming");
        r.restore = Some(crate::metrics::report::RestoreTimes {
            check: Duration::from_micros(2900),
            apply: Duration::from_micros(1400),
        });
        r.started_at = Some(start + Duration::from_millis(10));
        let v = report(&r, start, Duration::from_millis(5));
        assert!((v["restore"]["read_check_s"].as_f64().unwrap() - 0.0029).abs() < 1e-9);
        assert!((v["restore"]["apply_s"].as_f64().unwrap() - 0.0014).abs() < 1e-9);
        assert!((v["restore"]["first_entry_s"].as_f64().unwrap() - 0.010).abs() < 1e-9);
    }
}
