//! The summary a person reads: one row per I/O workload with vmdma's first
//! column (its default engine), its second (`aio=sync` by default), the
//! faster QEMU column of that row, the host limit (`pread`/`pwrite` through
//! the page cache), and vmdma's ratio to each. The same rows feed the
//! chart (`chart.rs`) and the JSON's `summary`.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::plan::{Mode, Target};
use super::report::{Results, per_command};
use super::summary::Stat;

const MIB: f64 = (1u64 << 20) as f64;

/// One column's figure in a row: seconds per command over the runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    /// The column's label (as in the full matrix).
    pub label: String,
    /// Seconds per command: median, min, max, runs.
    pub time: Stat,
}

/// One workload.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The workload.
    pub mode: Mode,
    /// vmdma's first column.
    pub vmdma: Option<Cell>,
    /// vmdma's second column, if there is one.
    pub second: Option<Cell>,
    /// The QEMU column with the lowest median time per command.
    pub qemu: Option<Cell>,
    /// The host's own `pread`/`pwrite` through the page cache.
    pub host: Option<Cell>,
}

impl Row {
    /// The figure a person compares: MiB/s for sequential workloads, µs
    /// per command for random ones.
    pub fn shown(&self, t: &Stat) -> Stat {
        match self.mode {
            Mode::Seq { bytes, .. } => t.map(|s| bytes as f64 / s / MIB),
            _ => t.map(|s| s * 1e6),
        }
    }

    /// What [`Row::shown`] is in.
    pub fn unit(&self) -> &'static str {
        match self.mode {
            Mode::Seq { .. } => "MiB/s",
            _ => "µs per command",
        }
    }

    /// Throughput in MiB/s (the chart's axis, for every workload).
    pub fn mib_per_s(&self, t: &Stat) -> Stat {
        let bytes = self.mode.command_bytes() as f64;
        t.map(|s| bytes / s / MIB)
    }

    /// `other / vmdma` of the time per command, from the medians and from
    /// the minima (above 1: vmdma is faster).
    pub fn ratio(&self, other: Option<&Cell>) -> Option<(f64, f64)> {
        let (v, o) = (self.vmdma.as_ref()?, other?);
        Some((o.time.median / v.time.median, o.time.min / v.time.min))
    }

    /// The fewest successful runs of any figure in the row.
    pub fn runs(&self) -> usize {
        [&self.vmdma, &self.second, &self.qemu, &self.host]
            .into_iter()
            .flatten()
            .map(|c| c.time.n)
            .min()
            .unwrap_or(0)
    }
}

/// The QEMU option a reader tells the columns apart by: its `aio=` (QEMU's
/// default is a thread pool), or the whole option string.
pub fn qemu_short(label: &str) -> String {
    let opts = label.strip_prefix("QEMU ").unwrap_or(label);
    match opts.split(',').find_map(|o| o.strip_prefix("aio=")) {
        Some(aio) => format!("aio={aio}"),
        None if opts.split(',').all(|o| o.starts_with("cache=")) => "threads".into(),
        None => opts.into(),
    }
}

impl Results {
    fn cell_of(&self, m: usize, t: usize) -> Option<Cell> {
        let target = self.targets.get(t)?;
        Some(Cell {
            label: target.label(),
            time: self.runs.get(m)?.get(t).and_then(per_command)?,
        })
    }

    /// The summary rows, one per I/O mode.
    pub fn rows(&self) -> Vec<Row> {
        let vmdma: Vec<usize> = (0..self.targets.len())
            .filter(|&t| matches!(self.targets.get(t), Some(Target::Vmdma(_))))
            .collect();
        let qemu: Vec<usize> = (0..self.targets.len())
            .filter(|&t| matches!(self.targets.get(t), Some(Target::Qemu(_))))
            .collect();
        let host = self
            .targets
            .iter()
            .position(|t| *t == Target::Host { direct: false });
        self.modes
            .iter()
            .enumerate()
            .filter(|(_, mode)| mode.is_io())
            .map(|(m, mode)| Row {
                mode: *mode,
                vmdma: vmdma.first().and_then(|&t| self.cell_of(m, t)),
                second: vmdma.get(1).and_then(|&t| self.cell_of(m, t)),
                qemu: qemu
                    .iter()
                    .filter_map(|&t| self.cell_of(m, t))
                    .min_by(|a, b| a.time.median.total_cmp(&b.time.median)),
                host: host.and_then(|t| self.cell_of(m, t)),
            })
            .collect()
    }

    /// The summary table (markdown).
    pub fn compact_table(&self, s: &mut String) {
        let rows = self.rows();
        if rows.is_empty() {
            return;
        }
        let vlabel = |f: fn(&Row) -> &Option<Cell>| {
            rows.iter()
                .find_map(|r| f(r).as_ref().map(|c| c.label.clone()))
        };
        let first = vlabel(|r| &r.vmdma).unwrap_or_else(|| "vmdma".into());
        let second = vlabel(|r| &r.second);
        let _ = writeln!(
            s,
            "\n### Throughput\n\nSequential rows in MiB/s, random rows (4 KiB, queue depth 1) in µs per \
             command: the median [min–max] of the runs (the last column: how many succeeded). \
             \"QEMU\" is the faster QEMU column of the row (named). Ratios compare the time per \
             command, other ÷ {first}, from the medians and (in parentheses) from the minima: above \
             1, {first} is faster; for the host, the share of the host's own speed {first} reaches. \
             Every column, every ratio: `--full` and the JSON.\n"
        );
        let mut head = vec!["workload".to_string(), first.clone()];
        head.extend(second.clone());
        head.extend(["QEMU".into(), "host pread/pwrite".into()]);
        if let Some(sec) = &second {
            head.push(format!("{sec} ÷ {first}"));
        }
        head.push(format!("QEMU ÷ {first}"));
        head.push(format!("host ÷ {first}"));
        head.push("runs".into());
        let _ = writeln!(s, "| {} |", head.join(" | "));
        let _ = writeln!(s, "|{}", " --- |".repeat(head.len()));
        for row in &rows {
            let digits = match row.mode {
                Mode::Seq { .. } => 1,
                _ => 0,
            };
            let fig = |c: &Option<Cell>| match c {
                Some(c) => {
                    let x = row.shown(&c.time);
                    format!("{:.d$} [{:.d$}–{:.d$}]", x.median, x.min, x.max, d = digits)
                }
                None => "–".into(),
            };
            let ratio = |c: &Option<Cell>| {
                row.ratio(c.as_ref())
                    .map_or("–".into(), |(med, min)| format!("{med:.2} ({min:.2})"))
            };
            let mut cells = vec![format!("{} ({})", row.mode, row.unit()), fig(&row.vmdma)];
            if second.is_some() {
                cells.push(fig(&row.second));
            }
            cells.push(match &row.qemu {
                Some(q) => format!("{} {}", fig(&row.qemu), qemu_short(&q.label)),
                None => "–".into(),
            });
            cells.push(fig(&row.host));
            if second.is_some() {
                cells.push(ratio(&row.second));
            }
            cells.push(ratio(&row.qemu));
            cells.push(ratio(&row.host));
            cells.push(row.runs().to_string());
            let _ = writeln!(s, "| {} |", cells.join(" | "));
        }
    }

    /// The summary rows as JSON.
    pub fn summary_json(&self) -> Value {
        let cell = |row: &Row, c: &Option<Cell>| {
            c.as_ref().map(|c| {
                json!({
                    "column": c.label,
                    "seconds_per_command": c.time.to_json(),
                    "mib_per_s": row.mib_per_s(&c.time).to_json(),
                    "time_ratio_to_vmdma": row.ratio(Some(c)).map(|(med, min)| {
                        json!({"of_medians": med, "of_minima": min})
                    }),
                })
            })
        };
        Value::Array(
            self.rows()
                .iter()
                .map(|r| {
                    json!({
                        "mode": r.mode.to_string(),
                        "vmdma": cell(r, &r.vmdma),
                        "vmdma_second": cell(r, &r.second),
                        "qemu_best": cell(r, &r.qemu),
                        "host": cell(r, &r.host),
                        "runs": r.runs(),
                    })
                })
                .collect(),
        )
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::report::Runs;
    use crate::sample::Sample;

    /// A sample of `commands` commands taking `seconds`.
    pub fn sample(commands: u64, seconds: f64) -> Sample {
        Sample {
            commands,
            command_bytes: 4096,
            seconds,
            ..Sample::default()
        }
    }

    /// Results with the bench's default columns, one sequential and one
    /// random mode, 3 runs, and per-command times `t[mode][target]`
    /// (scaled by 1, 1.1, 0.9 over the runs).
    pub fn results(t: [[f64; 5]; 2]) -> Results {
        let targets = vec![
            Target::Vmdma(None),
            Target::Vmdma(Some("aio=sync".into())),
            Target::Qemu("cache=writeback".into()),
            Target::Qemu("cache=writeback,aio=io_uring".into()),
            Target::Host { direct: false },
        ];
        let modes = vec![
            Mode::Seq {
                write: false,
                bytes: 1 << 20,
            },
            Mode::Rand {
                write: true,
                irq: false,
                minimal: false,
            },
            Mode::Boot,
        ];
        let runs: Vec<Vec<Runs>> = modes
            .iter()
            .enumerate()
            .map(|(m, _)| {
                (0..targets.len())
                    .map(|c| {
                        let per = t.get(m).and_then(|r| r.get(c)).copied().unwrap_or(0.0);
                        if per == 0.0 {
                            return Vec::new();
                        }
                        [1.0, 1.1, 0.9]
                            .iter()
                            .map(|k| Ok(sample(100, 100.0 * per * k)))
                            .collect()
                    })
                    .collect()
            })
            .collect();
        Results {
            absent: vec![None; targets.len()],
            modes,
            targets,
            runs,
        }
    }

    #[test]
    fn a_row_per_io_mode_with_the_faster_qemu_column() {
        // seconds per command: vmdma, aio=sync, QEMU threads, QEMU io_uring, host
        let r = results([
            [1e-3, 0.9e-3, 1.5e-3, 1.4e-3, 0.5e-3],
            [3e-4, 2.8e-4, 4e-4, 4.2e-4, 1e-5],
        ]);
        let rows = r.rows();
        assert_eq!(rows.len(), 2, "boot has no row");
        let seq = &rows[0];
        assert_eq!(
            seq.qemu.as_ref().unwrap().label,
            "QEMU cache=writeback,aio=io_uring"
        );
        assert_eq!(rows[1].qemu.as_ref().unwrap().label, "QEMU cache=writeback");
        let (med, min) = seq.ratio(seq.qemu.as_ref()).unwrap();
        assert!((med - 1.4).abs() < 1e-9 && (min - 1.4).abs() < 1e-9);
        // 1 MiB per ms: 1000 MiB/s median, min from the slowest run.
        let shown = seq.shown(&seq.vmdma.as_ref().unwrap().time);
        assert!((shown.median - 1000.0).abs() < 1e-6, "{shown:?}");
        assert!((shown.min - 1000.0 / 1.1).abs() < 1e-6, "{shown:?}");
        assert_eq!(seq.runs(), 3);
        // Random rows are in µs per command.
        let rand = &rows[1];
        assert!((rand.shown(&rand.vmdma.as_ref().unwrap().time).median - 300.0).abs() < 1e-6);

        let mut s = String::new();
        r.compact_table(&mut s);
        let lines: Vec<&str> = s.lines().filter(|l| l.starts_with('|')).collect();
        assert_eq!(lines.len(), 4, "{s}");
        assert_eq!(
            lines[0],
            "| workload | vmdma | vmdma aio=sync | QEMU | host pread/pwrite | vmdma aio=sync ÷ vmdma | QEMU ÷ vmdma | host ÷ vmdma | runs |"
        );
        assert_eq!(
            lines[2],
            "| seq-read 1M (MiB/s) | 1000.0 [909.1–1111.1] | 1111.1 [1010.1–1234.6] | 714.3 [649.4–793.7] aio=io_uring | 2000.0 [1818.2–2222.2] | 0.90 (0.90) | 1.40 (1.40) | 0.50 (0.50) | 3 |"
        );
        assert_eq!(
            lines[3],
            "| rand-write 4K poll libata (µs per command) | 300 [270–330] | 280 [252–308] | 400 [360–440] threads | 10 [9–11] | 0.93 (0.93) | 1.33 (1.33) | 0.03 (0.03) | 3 |"
        );
        let j = r.summary_json();
        assert_eq!(j[0]["mode"], "seq-read 1M");
        assert_eq!(
            j[0]["qemu_best"]["column"],
            "QEMU cache=writeback,aio=io_uring"
        );
        assert_eq!(j[1]["runs"], 3);
    }

    #[test]
    fn missing_columns_leave_dashes() {
        let r = results([[1e-3, 0.0, 0.0, 0.0, 0.0], [3e-4, 0.0, 0.0, 0.0, 0.0]]);
        let mut s = String::new();
        r.compact_table(&mut s);
        let row = s.lines().find(|l| l.starts_with("| seq-read")).unwrap();
        assert_eq!(
            row,
            "| seq-read 1M (MiB/s) | 1000.0 [909.1–1111.1] | – | – | – | – | 3 |"
        );
    }

    #[test]
    fn qemu_columns_are_named_by_their_aio() {
        assert_eq!(qemu_short("QEMU cache=writeback"), "threads");
        assert_eq!(
            qemu_short("QEMU cache=writeback,aio=io_uring"),
            "aio=io_uring"
        );
        assert_eq!(qemu_short("QEMU cache=none,aio=native"), "aio=native");
        assert_eq!(qemu_short("QEMU discard=unmap"), "discard=unmap");
    }
}
