//! The snapshot mode's two small tables (the snapshot, the restore), a
//! row per VMM column, and their figures as JSON (`snapshot` in the
//! document).

use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use super::plan::{Mode, Target};
use super::report::Results;
use super::snapshot::Snap;
use super::summary::Stat;

/// One figure of a snapshot or restore: its name in the JSON, its column
/// heading, how many decimals the table shows, and how to get it from a
/// run (ms for times, KiB for sizes; `None` where the VMM does not report
/// it).
struct Figure {
    key: &'static str,
    head: &'static str,
    digits: usize,
    get: fn(&Snap) -> Option<f64>,
}

const KIB: f64 = 1024.0;

/// The snapshot table's figures.
const SNAPSHOT: [Figure; 5] = [
    Figure {
        key: "stop_ms",
        head: "stop ms",
        digits: 1,
        get: |s| Some(s.stop_s * 1e3),
    },
    Figure {
        key: "migrate_total_time_ms",
        head: "total-time ms",
        digits: 0,
        get: |s| Some(s.total_time_ms),
    },
    Figure {
        key: "migrate_wall_ms",
        head: "migrate → completed ms",
        digits: 1,
        get: |s| Some(s.wall_s * 1e3),
    },
    Figure {
        key: "file_kib",
        head: "file KiB",
        digits: 0,
        get: |s| Some(s.file_bytes as f64 / KIB),
    },
    Figure {
        key: "file_disk_kib",
        head: "on disk KiB",
        digits: 0,
        get: |s| Some(s.file_disk_bytes as f64 / KIB),
    },
];

/// The restore table's figures.
const RESTORE: [Figure; 7] = [
    Figure {
        key: "read_check_ms",
        head: "read+check ms",
        digits: 2,
        get: |s| s.read_check_s.map(|x| x * 1e3),
    },
    Figure {
        key: "apply_ms",
        head: "apply ms",
        digits: 2,
        get: |s| s.apply_s.map(|x| x * 1e3),
    },
    Figure {
        key: "first_entry_ms",
        head: "first guest entry ms",
        digits: 1,
        get: |s| s.first_entry_s.map(|x| x * 1e3),
    },
    Figure {
        key: "first_line_ms",
        head: "first console line ms",
        digits: 1,
        get: |s| Some(s.first_line_s * 1e3),
    },
    Figure {
        key: "exit_ms",
        head: "suite end (exit) ms",
        digits: 0,
        get: |s| Some(s.exit_s * 1e3),
    },
    Figure {
        key: "vm_hwm_kib",
        head: "VmHWM KiB",
        digits: 0,
        get: |s| s.hwm_kib.map(|k| k as f64),
    },
    Figure {
        key: "vm_rss_kib",
        head: "VmRSS KiB",
        digits: 0,
        get: |s| s.rss_kib.map(|k| k as f64),
    },
];

impl Results {
    /// The snapshot mode's columns (every VMM column): index, target, the
    /// successful runs.
    fn snapshot_columns(&self) -> Option<Vec<(usize, &Target, Vec<&Snap>)>> {
        let m = self.modes.iter().position(|m| *m == Mode::Snapshot)?;
        let row = self.runs.get(m)?;
        Some(
            self.targets
                .iter()
                .enumerate()
                .filter(|(_, t)| t.measures(&Mode::Snapshot))
                .map(|(i, t)| {
                    let snaps = row
                        .get(i)
                        .map(|r| {
                            r.iter()
                                .filter_map(|s| s.as_ref().ok()?.snapshot.as_ref())
                                .collect()
                        })
                        .unwrap_or_default();
                    (i, t, snaps)
                })
                .collect(),
        )
    }

    fn figure_table(&self, s: &mut String, figures: &[Figure]) {
        let Some(cols) = self.snapshot_columns() else {
            return;
        };
        let m = self
            .modes
            .iter()
            .position(|m| *m == Mode::Snapshot)
            .unwrap_or(0);
        let head: Vec<&str> = figures.iter().map(|f| f.head).collect();
        let _ = writeln!(s, "| column | {} | runs |", head.join(" | "));
        let _ = writeln!(s, "|{}", " --- |".repeat(figures.len() + 2));
        for (t, target, snaps) in cols {
            if snaps.is_empty() {
                let blank = " |".repeat(figures.len() + 1);
                let _ = writeln!(s, "| {} | {}{blank}", target.label(), self.missing(m, t));
                continue;
            }
            let cells: Vec<String> = figures
                .iter()
                .map(|f| {
                    Stat::of(snaps.iter().filter_map(|x| (f.get)(x))).map_or("–".into(), |x| {
                        format!(
                            "{:.d$} [{:.d$}–{:.d$}]",
                            x.median,
                            x.min,
                            x.max,
                            d = f.digits
                        )
                    })
                })
                .collect();
            let _ = writeln!(
                s,
                "| {} | {} | {} |",
                target.label(),
                cells.join(" | "),
                snaps.len()
            );
        }
    }

    /// The snapshot and restore tables (markdown); nothing without the
    /// snapshot mode.
    pub fn snapshot_tables(&self, s: &mut String) {
        if self.snapshot_columns().is_none() {
            return;
        }
        let _ = writeln!(
            s,
            "\n### Snapshot (the bundled guest's conformance suite, after test `check_power_mode`)\n\n\
             On a fresh sparse image of 130 GiB (the suite's LBA48 tests) in every run. As soon \
             as the guest printed that test's line: QMP `stop` (its reply: the VM paused; \
             QEMU would otherwise migrate the running VM live and the guest would go on), then \
             `migrate`, vmdma to `file:PATH`, QEMU to `exec:cat > PATH` (7.2 has no `file:`); \
             `total-time` as the VMM's `query-migrate` reports it (whole ms), and the wall time \
             from sending `migrate` to the client reading `completed`; the file's size and its \
             blocks on disk. vmdma's time includes \
             `fdatasync` of the file, QEMU's does not (`cat` writes into the page cache). \
             Median [min–max] of the runs.\n"
        );
        self.figure_table(s, &SNAPSHOT);
        let _ = writeln!(
            s,
            "\n### Restore (that snapshot, on a copy of the image taken with it)\n\n\
             vmdma `--incoming file:PATH` (its phases from `--stats-json`: reading and checking the \
             file, putting the state back, process start → the guest's first entry), QEMU \
             `-incoming \"exec:cat PATH\"`. Measured alike from outside for both: process spawn → \
             the restored guest's first console line end (the rest of a line the snapshot cut, or \
             the line of the next test: one non-data command; the JSON has the line), then VmHWM and VmRSS of the VMM process from \
             `/proc/PID/status` at that moment, and spawn → exit (the suite's last tests, one of \
             them 64 DMA writes and reads, where the VMMs' I/O speeds differ). Every restored \
             suite ended with 0 failed, or the run counts as failed.\n"
        );
        self.figure_table(s, &RESTORE);
    }

    /// The tables' figures as JSON: column → figure → statistics.
    pub fn snapshot_json(&self) -> Value {
        let Some(cols) = self.snapshot_columns() else {
            return Value::Null;
        };
        let mut out = Map::new();
        for (_, target, snaps) in cols {
            let figs: Map<String, Value> = SNAPSHOT
                .iter()
                .chain(RESTORE.iter())
                .map(|f| {
                    let st = Stat::of(snaps.iter().filter_map(|x| (f.get)(x)));
                    (f.key.to_string(), st.map_or(Value::Null, |x| x.to_json()))
                })
                .collect();
            out.insert(
                target.label(),
                json!({"runs": snaps.len(), "figures": figs}),
            );
        }
        Value::Object(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Runs;
    use crate::sample::{Sample, SampleError};
    use crate::snapshot::SnapError;

    fn snap(k: f64, vmdma: bool) -> Sample {
        Sample {
            snapshot: Some(Snap {
                stop_s: 0.001 * k,
                total_time_ms: (10.0 * k).round(),
                wall_s: 0.0115 * k,
                file_bytes: 2 << 20,
                file_disk_bytes: 1 << 20,
                read_check_s: vmdma.then_some(0.0029 * k),
                apply_s: vmdma.then_some(0.0014 * k),
                first_entry_s: vmdma.then_some(0.010 * k),
                first_line_s: 0.020 * k,
                first_line: "test execute_device_diagnostic ... ok".into(),
                exit_s: 0.5 * k,
                hwm_kib: Some((8000.0 * k) as u64),
                rss_kib: Some(7000),
                max_rss_kib: vmdma.then_some(9000),
                passed: 62,
            }),
            ..Sample::default()
        }
    }

    fn results(qemu: Option<&str>) -> Results {
        let targets = vec![
            Target::Vmdma(None),
            Target::Qemu("cache=writeback".into()),
            Target::Host { direct: false },
        ];
        let runs_of = |vmdma: bool| -> Runs { [1.0, 1.2, 0.9].map(|k| Ok(snap(k, vmdma))).into() };
        let qemu_runs: Runs = if qemu.is_some() {
            Vec::new()
        } else {
            let mut r = runs_of(false);
            r.push(Err(SampleError::Snapshot(SnapError::Failed(
                "migrate: no end".into(),
            ))));
            r
        };
        Results {
            modes: vec![Mode::Snapshot],
            runs: vec![vec![runs_of(true), qemu_runs, Vec::new()]],
            absent: vec![None, qemu.map(String::from), None],
            targets,
        }
    }

    #[test]
    fn two_tables_a_row_per_vmm() {
        let r = results(None);
        let mut s = String::new();
        r.snapshot_tables(&mut s);
        let rows: Vec<&str> = s.lines().filter(|l| l.starts_with('|')).collect();
        assert_eq!(rows.len(), 8, "{s}");
        assert_eq!(
            rows[0],
            "| column | stop ms | total-time ms | migrate → completed ms | file KiB | on disk KiB | runs |"
        );
        assert_eq!(
            rows[2],
            "| vmdma | 1.0 [0.9–1.2] | 10 [9–12] | 11.5 [10.3–13.8] | 2048 [2048–2048] | 1024 [1024–1024] | 3 |"
        );
        assert_eq!(
            rows[3],
            "| QEMU cache=writeback | 1.0 [0.9–1.2] | 10 [9–12] | 11.5 [10.3–13.8] | 2048 [2048–2048] | 1024 [1024–1024] | 3 |",
            "the failed run is not counted"
        );
        assert_eq!(
            rows[4],
            "| column | read+check ms | apply ms | first guest entry ms | first console line ms | suite end (exit) ms | VmHWM KiB | VmRSS KiB | runs |"
        );
        assert_eq!(
            rows[6],
            "| vmdma | 2.90 [2.61–3.48] | 1.40 [1.26–1.68] | 10.0 [9.0–12.0] | 20.0 [18.0–24.0] | 500 [450–600] | 8000 [7200–9600] | 7000 [7000–7000] | 3 |"
        );
        assert_eq!(
            rows[7],
            "| QEMU cache=writeback | – | – | – | 20.0 [18.0–24.0] | 500 [450–600] | 8000 [7200–9600] | 7000 [7000–7000] | 3 |",
            "QEMU reports no phases"
        );
        let j = r.snapshot_json();
        assert_eq!(j["vmdma"]["runs"], 3);
        assert!(
            (j["vmdma"]["figures"]["read_check_ms"]["median"]
                .as_f64()
                .unwrap()
                - 2.9)
                .abs()
                < 1e-9
        );
        assert!(j["QEMU cache=writeback"]["figures"]["apply_ms"].is_null());
        assert!(j.get("host pread/pwrite").is_none(), "the host has no VM");
    }

    #[test]
    fn an_absent_qemu_says_why() {
        let r = results(Some("QEMU not found (qemu-system-x86_64: No such file)"));
        let mut s = String::new();
        r.snapshot_tables(&mut s);
        let qemu: Vec<&str> = s.lines().filter(|l| l.starts_with("| QEMU")).collect();
        assert_eq!(
            qemu,
            [
                "| QEMU cache=writeback | QEMU not found (qemu-system-x86_64: No such file) | | | | | |",
                "| QEMU cache=writeback | QEMU not found (qemu-system-x86_64: No such file) | | | | | | | |"
            ]
        );
        let mut none = String::new();
        let mut other = results(None);
        other.modes = vec![Mode::Boot];
        other.snapshot_tables(&mut none);
        assert!(none.is_empty());
        assert!(other.snapshot_json().is_null());
    }
}
