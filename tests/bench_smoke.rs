//! `vmdma bench` end to end with tiny counts: every column runs (QEMU
//! where installed), the markdown and JSON reports appear, and the
//! counters the report is built from are there. Nothing about time is
//! asserted.

mod common;

use common::{kvm_available, qemu_available, status, stderr};
use serde_json::Value;

#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn bench_runs_end_to_end() {
    if !kvm_available() {
        return;
    }
    let with_qemu = qemu_available();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let md = dir.path().join("bench.md");
    let svg = dir.path().join("bench.svg");
    let image = dir.path().join("bench.img");
    let mut args = vec![
        "bench",
        "--runs",
        "1",
        "--total",
        "8K",
        "--sizes",
        "4K",
        "--random-count",
        "2",
        "--random-span",
        "1M",
        "--modes",
        "seq-write,rand-read,boot,calibrate",
        "--qemu-drive",
        "cache=writeback",
        "--timeout",
        "120",
    ];
    if !with_qemu {
        args.extend(["--qemu", "none"]);
    }
    let (j, m, i, g) = (
        json.to_str().unwrap(),
        md.to_str().unwrap(),
        image.to_str().unwrap(),
        svg.to_str().unwrap(),
    );
    args.extend(["--json", j, "--markdown", m, "--image", i, "--svg", g]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vmdma"))
        .args(&args)
        .output()
        .expect("vmdma bench starts");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        status(&out),
        0,
        "stdout:\n{text}\nstderr:\n{}",
        stderr(&out)
    );
    let table = std::fs::read_to_string(&md).unwrap();
    assert_eq!(
        table.trim(),
        text.trim(),
        "the markdown file is what was printed"
    );
    for section in [
        "### Throughput",
        "### Exits per command",
        "### Boot",
        "### Cost model",
    ] {
        assert!(table.contains(section), "{section} missing:\n{table}");
    }
    // The summary: a row per I/O workload, the matrix only with --full.
    assert!(!table.contains("### Every column"), "{table}");
    let summary: Vec<&str> = table
        .lines()
        .skip_while(|l| !l.starts_with("### Throughput"))
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .collect();
    assert_eq!(
        summary[0],
        "| workload | vmdma | vmdma aio=sync | QEMU | host pread/pwrite | vmdma aio=sync ÷ vmdma | QEMU ÷ vmdma | host ÷ vmdma | runs |"
    );
    assert_eq!(summary.len(), 2 + 5, "seq-write 4K and four rand-read rows");
    assert!(
        summary[2].starts_with("| seq-write 4K (MiB/s) | "),
        "{table}"
    );
    assert!(summary[2].ends_with(" | 1 |"), "{table}");
    // The chart: a bar per figure of the summary (vmdma, aio=sync, host
    // and QEMU where it ran, the host only in polled libata random rows).
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(chart.starts_with("<svg "), "{chart}");
    let bars = chart.matches("<rect class=\"bar\"").count();
    let qemu = if with_qemu { 5 } else { 0 };
    assert_eq!(bars, 5 * 2 + 2 + qemu, "{chart}");

    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["format"], "vmdma-bench/1");
    assert_eq!(v["summary"][0]["mode"], "seq-write 4K");
    assert_eq!(v["summary"][1]["vmdma"]["column"], "vmdma");
    assert_eq!(v["summary"][1]["host"]["column"], "host pread/pwrite");
    let modes: Vec<&str> = v["modes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mode"].as_str().unwrap())
        .collect();
    assert_eq!(
        modes,
        [
            "seq-write 4K",
            "rand-read 4K poll libata",
            "rand-read 4K irq libata",
            "rand-read 4K poll minimal",
            "rand-read 4K irq minimal",
            "boot",
            "calibrate"
        ]
    );
    let col = |mode: usize, label: &str| v["modes"][mode]["columns"][label].clone();
    // vmdma: counters between the marks, the RAM path without copies.
    let run = &col(1, "vmdma")["runs"][0];
    assert_eq!(run["commands"], 2, "{run:#}");
    let c = &run["counters"];
    assert_eq!(c["user_exits"], 2 * 11, "libata shape, coalesced: {c:#}");
    assert_eq!(c["ram_direct_bytes"], 2 * 4096);
    assert_eq!(c["vmm_buffer_bytes"], 0, "no RAM DMA byte copied");
    assert_eq!(c["bounce_bytes"], 0);
    assert_eq!(col(3, "vmdma")["runs"][0]["counters"]["user_exits"], 2 * 5);
    assert!(run["tsc"]["hz"].as_u64().unwrap() > 0);
    assert!(col(1, "vmdma")["floor"]["floor_s"].as_f64().unwrap() > 0.0);
    // The host limit ran the same commands.
    assert_eq!(col(0, "host pread/pwrite")["runs"][0]["commands"], 2);
    // Boot: timings and memory.
    let boot = &col(5, "vmdma")["runs"][0]["boot"];
    assert!(boot["first_byte_s"].as_f64().unwrap() > 0.0, "{boot:#}");
    assert!(boot["max_rss_kib"].as_u64().unwrap() > 0);
    // QEMU ran the same modes, or the column says why not.
    let q = col(1, "QEMU cache=writeback");
    if with_qemu {
        assert_eq!(q["runs"][0]["commands"], 2, "{q:#}");
    } else {
        assert!(q["absent"].as_str().unwrap().contains("QEMU"), "{q:#}");
    }
}

/// `--modes snapshot`: a snapshot of the conformance suite and its restore
/// on vmdma (and QEMU where installed); the two tables and the JSON's
/// figures are there, and every restored suite passed.
#[test]
#[cfg_attr(
    not(vmdma_kvm),
    ignore = "needs /dev/kvm, read-write (probed at build time)"
)]
fn bench_snapshot_mode_snapshots_and_restores() {
    if !kvm_available() {
        return;
    }
    let with_qemu = qemu_available();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let image = dir.path().join("bench.img");
    let svg = dir.path().join("bench.svg");
    let (j, i, g) = (
        json.to_str().unwrap(),
        image.to_str().unwrap(),
        svg.to_str().unwrap(),
    );
    let mut args = vec![
        "bench",
        "--runs",
        "1",
        "--total",
        "8K",
        "--random-span",
        "1M",
        "--modes",
        "snapshot",
        "--vmdma-disk",
        "default",
        "--qemu-drive",
        "cache=writeback",
        "--timeout",
        "120",
        "--json",
        j,
        "--image",
        i,
        "--svg",
        g,
    ];
    if !with_qemu {
        args.extend(["--qemu", "none"]);
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vmdma"))
        .args(&args)
        .output()
        .expect("vmdma bench starts");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        status(&out),
        0,
        "stdout:\n{text}\nstderr:\n{}",
        stderr(&out)
    );
    for section in ["### Snapshot", "### Restore"] {
        assert!(text.contains(section), "{section} missing:\n{text}");
    }
    assert!(
        !text.contains("### Exits per command"),
        "no I/O mode: {text}"
    );
    assert!(!svg.exists(), "no I/O workload, no chart");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let run = |label: &str| v["modes"][0]["columns"][label]["runs"][0]["snapshot"].clone();
    let s = run("vmdma");
    assert!(s["file_bytes"].as_u64().unwrap() > 0, "{s:#}");
    assert!(s["file_disk_bytes"].as_u64().unwrap() > 0, "{s:#}");
    assert!(s["migrate_total_time_ms"].as_f64().is_some(), "{s:#}");
    for k in [
        "restore_read_check_s",
        "restore_apply_s",
        "restore_first_entry_s",
        "restore_first_line_s",
    ] {
        assert!(s[k].as_f64().unwrap() > 0.0, "{k}: {s:#}");
    }
    assert!(s["restore_vm_hwm_kib"].as_u64().unwrap() > 0, "{s:#}");
    assert!(s["suite_passed"].as_u64().unwrap() > 0, "{s:#}");
    assert!(!s["restore_first_line"].as_str().unwrap().is_empty());
    assert_eq!(v["snapshot"]["vmdma"]["runs"], 1);
    let q = &v["modes"][0]["columns"]["QEMU cache=writeback"];
    if with_qemu {
        let s = run("QEMU cache=writeback");
        assert!(s["file_bytes"].as_u64().unwrap() > 0, "{q:#}");
        assert!(s["restore_read_check_s"].is_null(), "QEMU has no phases");
        assert!(s["restore_vm_hwm_kib"].as_u64().unwrap() > 0, "{q:#}");
        assert!(s["suite_passed"].as_u64().unwrap() > 0, "{q:#}");
    } else {
        assert!(q["absent"].as_str().unwrap().contains("QEMU"), "{q:#}");
        assert!(text.contains("| QEMU cache=writeback | QEMU"), "{text}");
    }
}
