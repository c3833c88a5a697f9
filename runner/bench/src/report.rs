//! The bench's results as a markdown table and a JSON document.
//!
//! Every figure is the median of the runs with [min–max]. Ratios compare
//! the time per command: `other / vmdma` (above 1: vmdma is faster), once
//! from the medians and once from the minima (the least-disturbed runs).

use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use super::model::{self, Costs, Floor};
use super::plan::{Mode, Target};
use super::sample::{Sample, SampleError};
use super::summary::Stat;

/// The runs of one mode on one target.
pub type Runs = Vec<Result<Sample, SampleError>>;

/// Everything measured.
#[derive(Debug)]
pub struct Results {
    /// The modes, in table order.
    pub modes: Vec<Mode>,
    /// The columns.
    pub targets: Vec<Target>,
    /// `runs[mode][target]`.
    pub runs: Vec<Vec<Runs>>,
    /// Why a column did not run at all (QEMU missing), by target index.
    pub absent: Vec<Option<String>>,
}

const MIB: f64 = (1u64 << 20) as f64;

fn ok(r: &Runs) -> impl Iterator<Item = &Sample> {
    r.iter().filter_map(|s| s.as_ref().ok())
}

fn first_error(r: &Runs) -> Option<&SampleError> {
    r.iter().find_map(|s| s.as_ref().err())
}

/// Seconds per command over the runs.
pub(crate) fn per_command(r: &Runs) -> Option<Stat> {
    Stat::of(ok(r).map(Sample::per_command))
}

fn fmt_stat(s: &Stat, digits: usize) -> String {
    format!("{:.d$} [{:.d$}–{:.d$}]", s.median, s.min, s.max, d = digits)
}

/// `other / vmdma` from medians and from minima of seconds per command.
fn ratio(vmdma: &Stat, other: &Stat) -> (f64, f64) {
    (other.median / vmdma.median, other.min / vmdma.min)
}

impl Results {
    fn cell(&self, m: usize, t: usize) -> Option<&Runs> {
        self.runs.get(m)?.get(t)
    }

    /// Why a cell has no figure.
    pub(crate) fn missing(&self, m: usize, t: usize) -> String {
        if let Some(Some(why)) = self.absent.get(t) {
            return why.clone();
        }
        match self.cell(m, t).and_then(first_error) {
            Some(e) => format!(
                "failed: {}",
                e.to_string().chars().take(80).collect::<String>()
            ),
            None => "–".into(),
        }
    }

    fn vmdma_targets(&self) -> impl Iterator<Item = (usize, &Target)> {
        self.targets
            .iter()
            .enumerate()
            .filter(|(_, t)| matches!(t, Target::Vmdma(_)))
    }

    fn others(&self) -> impl Iterator<Item = (usize, &Target)> {
        self.targets
            .iter()
            .enumerate()
            .filter(|(_, t)| !matches!(t, Target::Vmdma(_)))
    }

    /// The first calibrate-mode cell of the first vmdma column, and the
    /// modes' index.
    fn mode_index(&self, pred: impl Fn(&Mode) -> bool) -> Option<usize> {
        self.modes.iter().position(pred)
    }

    /// vmdma's costs, and instructions per calibration loop.
    fn vmdma_costs(&self) -> Option<(Costs, Vec<&Sample>)> {
        let m = self.mode_index(|m| *m == Mode::Calibrate)?;
        let (t, _) = self.vmdma_targets().next()?;
        let samples: Vec<&Sample> = ok(self.cell(m, t)?).collect();
        let first = *samples.first()?;
        let insn = |k: &str| model::insn_per_loop(first, k);
        Some((model::costs(&samples, &insn)?, samples))
    }

    /// The floor of `mode` on target `t`: the instruction and exit counts
    /// of that vmdma column (of the first vmdma column, less its signal
    /// exits, for the others), the target's own costs.
    fn floor(&self, mode: &Mode, t: usize) -> Option<Floor> {
        let (_, vm_samples) = self.vmdma_costs()?;
        let cal = self.mode_index(|m| *m == Mode::Calibrate)?;
        let m = self.mode_index(|x| x == mode)?;
        let (vt, _) = self.vmdma_targets().next()?;
        let first = *vm_samples.first()?;
        let insn = |k: &str| model::insn_per_loop(first, k);
        let cal_samples: Vec<&Sample> = ok(self.cell(cal, t)?).collect();
        let costs = model::costs(&cal_samples, &insn)?;
        // A vmdma column's own counts; for the others those of the first
        // vmdma column, whose guest code they run.
        let is_vmdma = matches!(self.targets.get(t), Some(Target::Vmdma(_)));
        let counted: Vec<&Sample> = ok(self.cell(m, if is_vmdma { t } else { vt })?).collect();
        let per = |f: &dyn Fn(&Sample) -> Option<f64>| {
            Stat::of(counted.iter().filter_map(|s| f(s))).map(|s| s.median)
        };
        let insn_cmd = per(&|s| {
            let c = s.counters.as_ref()?;
            Some(c.kvm("insn_emulation") as f64 / s.commands.max(1) as f64)
        })?;
        let exits_cmd = per(&|s| {
            let c = s.counters.as_ref()?;
            // A signal exit (io_uring task work interrupting KVM_RUN) is
            // vmdma's own; another VMM runs the guest without it.
            let signals = if is_vmdma {
                0
            } else {
                c.user_kinds.get("signal").copied().unwrap_or(0)
            };
            Some(c.user_exits.saturating_sub(signals) as f64 / s.commands.max(1) as f64)
        })?;
        let coalesced_cmd = per(&|s| {
            let c = s.counters.as_ref()?;
            Some(c.coalesced as f64 / s.commands.max(1) as f64)
        })?;
        // Only vmdma coalesces: elsewhere every one of those writes exits.
        let (exits_cmd, coalesced_cmd) = match self.targets.get(t) {
            Some(Target::Vmdma(_)) => (exits_cmd, coalesced_cmd),
            _ => (exits_cmd + coalesced_cmd, 0.0),
        };
        Some(Floor {
            insn: insn_cmd,
            exits: exits_cmd,
            coalesced: coalesced_cmd,
            costs,
            measured: per_command(self.cell(m, t)?)?.median,
        })
    }

    /// The markdown report: the summary table, with `full` every column
    /// and every ratio too, then the snapshot and restore tables, the
    /// exits, boot and cost-model sections.
    pub fn markdown(&self, header: &str, full: bool) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "{header}");
        self.compact_table(&mut s);
        if full {
            self.io_table(&mut s);
        }
        self.snapshot_tables(&mut s);
        self.exits_table(&mut s);
        self.boot_table(&mut s);
        self.floor_section(&mut s);
        s
    }

    fn io_table(&self, s: &mut String) {
        let io: Vec<usize> = (0..self.modes.len())
            .filter(|&m| self.modes.get(m).is_some_and(Mode::is_io))
            .collect();
        if io.is_empty() {
            return;
        }
        let _ = writeln!(
            s,
            "\n### Every column\n\nSequential: MiB/s. Random 4 KiB, queue depth 1: IOPS, then mean / p99 \
             latency in µs (medians over the runs). Median [min–max] of the runs. Ratios: time per \
             command of the other column / vmdma's (above 1: vmdma is faster), from the medians and \
             (in parentheses) from the minima.\n"
        );
        let mut head = vec!["mode".to_string()];
        head.extend(self.targets.iter().map(Target::label));
        for (_, v) in self.vmdma_targets() {
            for (_, o) in self.others() {
                head.push(format!("{} ÷ {}", o.label(), v.label()));
            }
        }
        let _ = writeln!(s, "| {} |", head.join(" | "));
        let _ = writeln!(s, "|{}", " --- |".repeat(head.len()));
        for m in io {
            let Some(mode) = self.modes.get(m) else {
                continue;
            };
            let mut row = vec![mode.to_string()];
            for t in 0..self.targets.len() {
                row.push(self.io_cell(m, t, mode));
            }
            for (vt, _) in self.vmdma_targets() {
                for (ot, _) in self.others() {
                    let r = self
                        .cell(m, vt)
                        .and_then(per_command)
                        .zip(self.cell(m, ot).and_then(per_command))
                        .map(|(v, o)| ratio(&v, &o));
                    row.push(r.map_or("–".into(), |(med, min)| format!("{med:.2} ({min:.2})")));
                }
            }
            let _ = writeln!(s, "| {} |", row.join(" | "));
        }
    }

    fn io_cell(&self, m: usize, t: usize, mode: &Mode) -> String {
        let Some(runs) = self.cell(m, t) else {
            return "–".into();
        };
        let Some(pc) = per_command(runs) else {
            return self.missing(m, t);
        };
        match mode {
            Mode::Seq { bytes, .. } => {
                let b = *bytes as f64;
                fmt_stat(&pc.map(|t| b / t / MIB), 1)
            }
            _ => {
                let iops = pc.map(|t| 1.0 / t);
                let mean = Stat::of(ok(runs).filter_map(|s| Some(s.latency?[1] * 1e6)));
                let p99 = Stat::of(ok(runs).filter_map(|s| Some(s.latency?[3] * 1e6)));
                format!(
                    "{}; {:.0} / {:.0} µs",
                    fmt_stat(&iops, 0),
                    mean.map_or(f64::NAN, |x| x.median),
                    p99.map_or(f64::NAN, |x| x.median)
                )
            }
        }
    }

    fn exits_table(&self, s: &mut String) {
        let Some((vt, v)) = self.vmdma_targets().next() else {
            return;
        };
        if !self.modes.iter().any(Mode::is_io) {
            return;
        }
        let _ = writeln!(
            s,
            "\n### Exits per command ({}, runner counters between the loop's marks)\n\n\
             To user space (by kind), port writes KVM coalesced (no exit), handled in the kernel \
             (KVM's `exits` less those to user space), \
             halts, emulated guest instructions; data path per command: bytes straight \
             between the image and guest RAM, through bounce space, through a VMM buffer \
             (a copy of RAM DMA would show here).\n",
            v.label()
        );
        let _ = writeln!(
            s,
            "| mode | to user space | coalesced writes | in the kernel | halts | emulated instructions | RAM direct bytes | bounce bytes | copied bytes |"
        );
        let _ = writeln!(s, "| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
        for (m, mode) in self.modes.iter().enumerate() {
            if !mode.is_io() {
                continue;
            }
            let Some(runs) = self.cell(m, vt) else {
                continue;
            };
            let per = |f: &dyn Fn(&Sample) -> Option<f64>| {
                Stat::of(ok(runs).filter_map(f)).map(|x| x.median)
            };
            let c = |f: fn(&super::parse::Interval) -> f64| {
                per(&|s: &Sample| Some(f(s.counters.as_ref()?) / s.commands.max(1) as f64))
            };
            let kinds = ok(runs)
                .next()
                .and_then(|s| s.counters.as_ref())
                .map(|c| {
                    c.user_kinds
                        .keys()
                        .map(|k| {
                            let v = per(&|s: &Sample| {
                                let n = s.counters.as_ref()?.user_kinds.get(k).copied()?;
                                Some(n as f64 / s.commands.max(1) as f64)
                            });
                            format!("{k} {:.2}", v.unwrap_or(f64::NAN))
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            let f = |x: Option<f64>, d: usize| x.map_or("–".into(), |v| format!("{v:.d$}"));
            let _ = writeln!(
                s,
                "| {mode} | {} ({kinds}) | {} | {} | {} | {} | {} | {} | {} |",
                f(c(|c| c.user_exits as f64), 2),
                f(c(|c| c.coalesced as f64), 2),
                f(c(|c| c.kernel_exits() as f64), 2),
                f(c(|c| c.kvm("halt_exits") as f64), 2),
                f(c(|c| c.kvm("insn_emulation") as f64), 0),
                f(c(|c| c.ram_direct_bytes as f64), 0),
                f(c(|c| c.bounce_bytes as f64), 0),
                f(c(|c| c.vmm_buffer_bytes as f64), 0),
            );
        }
    }

    fn boot_table(&self, s: &mut String) {
        let Some(m) = self.mode_index(|m| *m == Mode::Boot) else {
            return;
        };
        let _ = writeln!(
            s,
            "\n### Boot (`bench=boot quiet`: device setup and IDENTIFY, no commands)\n\n\
             Process start → the guest's first instruction (the VM built) → first byte on the \
             console → the guest's exit (its debug-exit write) → process exit (after tearing the VM \
             down), in ms; the first and third from vmdma's own clock, aligned at the process's \
             exit. Peak RSS and the guest RAM's resident share in KiB (vmdma's `--stats-json`, \
             from `/proc/self`).\n"
        );
        let _ = writeln!(
            s,
            "| column | VM start ms | first byte ms | guest exit ms | process exit ms | max RSS KiB | guest RAM KiB | RSS beyond guest RAM KiB |"
        );
        let _ = writeln!(s, "| --- | --- | --- | --- | --- | --- | --- | --- |");
        for (t, target) in self.targets.iter().enumerate() {
            if !target.measures(&Mode::Boot) {
                continue;
            }
            let Some(runs) = self.cell(m, t) else {
                continue;
            };
            let boots: Vec<_> = ok(runs).filter_map(|s| s.boot.clone()).collect();
            if boots.is_empty() {
                let _ = writeln!(
                    s,
                    "| {} | {} | | | | | |",
                    target.label(),
                    self.missing(m, t)
                );
                continue;
            }
            let st = |f: &dyn Fn(&super::sample::Boot) -> Option<f64>, d: usize| {
                Stat::of(boots.iter().filter_map(f)).map_or("–".into(), |x| fmt_stat(&x, d))
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                target.label(),
                st(&|b| Some(b.vm_start_s? * 1e3), 1),
                st(&|b| Some(b.first_byte_s? * 1e3), 1),
                st(&|b| Some(b.guest_exit_s? * 1e3), 1),
                st(&|b| Some(b.exit_s * 1e3), 1),
                st(&|b| Some(b.max_rss_kib? as f64), 0),
                st(&|b| Some(b.guest_ram_rss_kib? as f64), 0),
                st(
                    &|b| Some((b.max_rss_kib? as f64) - (b.guest_ram_rss_kib? as f64)),
                    0
                ),
            );
        }
    }

    fn floor_section(&self, s: &mut String) {
        let Some((costs, _)) = self.vmdma_costs() else {
            return;
        };
        let us = 1e6;
        let _ = writeln!(
            s,
            "\n### Cost model and the floor of a 4 KiB command\n\n\
             vmdma's calibration (medians): one emulated guest instruction {:.3} µs; one exit to \
             user space beyond its instruction {:.2} µs (unclaimed port), {:.2} µs (IDE Alternate \
             Status); one port access the kernel emulates (PIC) {:.2} µs beyond its instruction. \
             Floor = instructions × instruction cost + exits × exit cost + coalesced writes × \
             kernel access cost, with the counts each vmdma column measured per command (QEMU runs \
             the same guest code, so it gets the first vmdma column's counts without that \
             column's signal exits; it coalesces nothing, so there every such write is an exit), and each \
             column's own costs from its calibration runs. Polled modes only: the interrupt-driven \
             ones add a halt and an interrupt injection the model does not price.\n",
            costs.insn * us,
            costs.null_exit * us,
            costs.device_exit * us,
            costs.kernel_access * us
        );
        for mode in &self.modes {
            if !matches!(mode, Mode::Rand { irq: false, .. }) {
                continue;
            }
            for (t, target) in self.targets.iter().enumerate() {
                if matches!(target, Target::Host { .. }) {
                    continue;
                }
                if let Some(f) = self.floor(mode, t) {
                    let _ = writeln!(s, "- {mode}, {}: {}", target.label(), f.arithmetic());
                }
            }
        }
    }

    /// The JSON document.
    pub fn json(&self, meta: Value) -> Value {
        let mut modes = Vec::new();
        for (m, mode) in self.modes.iter().enumerate() {
            let mut cols = Map::new();
            for (t, target) in self.targets.iter().enumerate() {
                let Some(runs) = self.cell(m, t) else {
                    continue;
                };
                if !target.measures(mode) {
                    continue;
                }
                let samples: Vec<Value> = runs
                    .iter()
                    .map(|r| match r {
                        Ok(s) => s.to_json(),
                        Err(e) => json!({ "error": e.to_string() }),
                    })
                    .collect();
                let pc = per_command(runs);
                let floor = matches!(mode, Mode::Rand { .. })
                    .then(|| self.floor(mode, t))
                    .flatten();
                cols.insert(
                    target.label(),
                    json!({
                        "absent": self.absent.get(t).cloned().flatten(),
                        "seconds_per_command": pc.map(|p| p.to_json()),
                        "mib_per_s": pc.filter(|_| mode.is_io()).map(|p| p.map(|t| mode.command_bytes() as f64 / t / MIB).to_json()),
                        "floor": floor.map(|f| f.to_json()),
                        "runs": samples,
                    }),
                );
            }
            let mut ratios = Map::new();
            for (vt, v) in self.vmdma_targets() {
                for (ot, o) in self.others() {
                    if let (Some(a), Some(b)) = (
                        self.cell(m, vt).and_then(per_command),
                        self.cell(m, ot).and_then(per_command),
                    ) {
                        let (med, min) = ratio(&a, &b);
                        ratios.insert(
                            format!("{} / {}", o.label(), v.label()),
                            json!({"of_medians": med, "of_minima": min}),
                        );
                    }
                }
            }
            modes.push(json!({"mode": mode.to_string(), "columns": cols, "time_ratios": ratios}));
        }
        json!({
            "format": "vmdma-bench/1",
            "meta": meta,
            "columns": self.targets.iter().map(Target::label).collect::<Vec<_>>(),
            "summary": self.summary_json(),
            "snapshot": self.snapshot_json(),
            "modes": modes,
        })
    }

    /// Whether every run of every present column succeeded.
    pub fn all_ok(&self) -> bool {
        self.runs.iter().all(|row| {
            row.iter().enumerate().all(|(t, r)| {
                matches!(self.absent.get(t), Some(Some(_))) || r.iter().all(Result::is_ok)
            })
        })
    }
}
