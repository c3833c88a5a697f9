//! The cost model of a DMA command on this machine, and its floor.
//!
//! `bench=calibrate` measures, between POST-code marks that vmdma records
//! with KVM's counters: a register loop (→ the cost of one emulated guest
//! instruction, `c_insn`, from KVM's `insn_emulation`) and a loop of reads
//! of an unclaimed port (→ the cost of one exit to user space beyond its
//! instruction, `c_exit`). A command's floor is what its own guest
//! instructions and exits cost at those prices:
//!
//! ```text
//! floor = I × c_insn + E × c_exit + C × c_kernel
//! ```
//!
//! with `I` (emulated instructions), `E` (exits to user space) and `C`
//! (port writes KVM coalesced, priced like a port access the kernel
//! emulates: the PIC loop) per command, counted by vmdma between the marks
//! of the timed loop. What a
//! VMM spends beyond the floor is its device work per exit and command.
//! QEMU runs the same guest code, so the same `I` and `E` apply with its
//! own `c_exit` (its unclaimed-port loop) and `c_insn`.

use serde_json::{Value, json};

use super::sample::Sample;
use super::summary::Stat;

/// The per-unit costs from calibration runs, in seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Costs {
    /// One emulated guest instruction.
    pub insn: f64,
    /// One exit to user space (an unclaimed port read) beyond its
    /// instruction.
    pub null_exit: f64,
    /// One exit to an emulated device register (Alternate Status) beyond
    /// its instruction.
    pub device_exit: f64,
    /// One port access the kernel emulates (the PIC) beyond its
    /// instruction.
    pub kernel_access: f64,
}

/// Emulated instructions per iteration of a calibration section, from
/// vmdma's counters (`None` without them).
pub fn insn_per_loop(s: &Sample, section: &str) -> Option<f64> {
    let sec = s.calibrate.get(section)?;
    let c = sec.counters.as_ref()?;
    Some(c.kvm("insn_emulation") as f64 / sec.loops.max(1) as f64)
}

/// The median costs over calibration `samples`, with instruction counts
/// per iteration `insn` (section → count; vmdma's, which QEMU shares).
pub fn costs(samples: &[&Sample], insn: &dyn Fn(&str) -> Option<f64>) -> Option<Costs> {
    let per_loop = |s: &Sample, k: &str| {
        let sec = s.calibrate.get(k)?;
        Some(sec.seconds / sec.loops.max(1) as f64)
    };
    let c_insn = Stat::of(
        samples
            .iter()
            .filter_map(|s| Some(per_loop(s, "alu")? / insn("alu")?)),
    )?
    .median;
    let beyond = |k: &str| {
        Stat::of(
            samples
                .iter()
                .filter_map(|s| Some(per_loop(s, k)? - insn(k)? * c_insn)),
        )
        .map(|s| s.median)
    };
    Some(Costs {
        insn: c_insn,
        null_exit: beyond("null_exit")?,
        device_exit: beyond("device_exit")?,
        kernel_access: beyond("kernel_exit")?,
    })
}

/// A command's floor and how far a measured time is from it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Floor {
    /// Emulated instructions per command.
    pub insn: f64,
    /// Exits to user space per command.
    pub exits: f64,
    /// Coalesced port writes per command.
    pub coalesced: f64,
    /// The costs used.
    pub costs: Costs,
    /// The measured time per command (median).
    pub measured: f64,
}

impl Floor {
    /// `insn × c_insn + exits × c_exit + coalesced × c_kernel`.
    pub fn floor(&self) -> f64 {
        self.insn * self.costs.insn
            + self.exits * self.costs.null_exit
            + self.coalesced * self.costs.kernel_access.max(0.0)
    }

    /// How far above the floor the measurement is (0.1 = 10 %).
    pub fn above(&self) -> f64 {
        self.measured / self.floor() - 1.0
    }

    /// The arithmetic, in microseconds.
    pub fn arithmetic(&self) -> String {
        let us = 1e6;
        let kernel = self.costs.kernel_access.max(0.0);
        format!(
            "{:.0} instructions × {:.3} µs + {:.1} exits × {:.2} µs + {:.1} coalesced writes × \
             {:.2} µs = {:.1} + {:.1} + {:.1} = {:.1} µs; measured {:.1} µs ({:+.1} %)",
            self.insn,
            self.costs.insn * us,
            self.exits,
            self.costs.null_exit * us,
            self.coalesced,
            kernel * us,
            self.insn * self.costs.insn * us,
            self.exits * self.costs.null_exit * us,
            self.coalesced * kernel * us,
            self.floor() * us,
            self.measured * us,
            self.above() * 100.0
        )
    }

    /// As JSON.
    pub fn to_json(self) -> Value {
        json!({
            "insn_per_command": self.insn,
            "user_exits_per_command": self.exits,
            "coalesced_writes_per_command": self.coalesced,
            "insn_s": self.costs.insn,
            "null_exit_s": self.costs.null_exit,
            "device_exit_s": self.costs.device_exit,
            "kernel_access_s": self.costs.kernel_access,
            "floor_s": self.floor(),
            "measured_s": self.measured,
            "above_floor": self.above(),
            "arithmetic": self.arithmetic(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::Interval;
    use crate::sample::Section;

    fn section(loops: u64, seconds: f64, insn: u64) -> Section {
        let mut c = Interval::default();
        c.kvm.insert("insn_emulation".into(), insn);
        Section {
            loops,
            seconds,
            counters: Some(c),
        }
    }

    #[test]
    fn costs_and_floor() {
        let mut s = Sample::default();
        s.calibrate
            .insert("alu".into(), section(1000, 6000e-6, 6000));
        s.calibrate
            .insert("null_exit".into(), section(1000, 12000e-6, 4000));
        s.calibrate
            .insert("device_exit".into(), section(1000, 13000e-6, 4000));
        s.calibrate
            .insert("kernel_exit".into(), section(1000, 4100e-6, 4000));
        let insn = |k: &str| insn_per_loop(&s, k);
        let c = costs(&[&s], &insn).unwrap();
        assert!((c.insn - 1e-6).abs() < 1e-12);
        assert!((c.null_exit - 8e-6).abs() < 1e-12);
        assert!((c.device_exit - 9e-6).abs() < 1e-12);
        assert!((c.kernel_access - 0.1e-6).abs() < 1e-12);
        let f = Floor {
            insn: 200.0,
            exits: 25.0,
            coalesced: 10.0,
            costs: c,
            measured: 441.1e-6,
        };
        assert!((f.floor() - 401e-6).abs() < 1e-12);
        assert!((f.above() - 0.1).abs() < 1e-9);
        assert!(
            f.arithmetic()
                .contains("= 200.0 + 200.0 + 1.0 = 401.0 µs; measured 441.1 µs (+10.0 %)"),
            "{}",
            f.arithmetic()
        );
    }
}
