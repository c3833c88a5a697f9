//! The summary as a chart: an SVG of horizontal bars, one group per
//! workload, vmdma's columns against the faster QEMU column and the host
//! limit, in MiB/s on a logarithmic axis (the figures span four orders of
//! magnitude), each bar the median with a line from the slowest to the
//! fastest run. Written by hand: a few rectangles, lines and labels.

use std::fmt::Write as _;

use super::compact::{Cell, Row, qemu_short};
use super::report::Results;

const WIDTH: f64 = 960.0;
/// Left edge of the plot (workload labels to its left).
const PLOT_X: f64 = 250.0;
/// Right edge of the plot (value labels to its right).
const PLOT_END: f64 = 870.0;
const TOP: f64 = 64.0;
const BAR: f64 = 9.0;
const BAR_GAP: f64 = 2.0;
const GROUP_GAP: f64 = 12.0;
const BOTTOM: f64 = 40.0;

/// The series: which cell of a row, its legend, its colour.
const SERIES: [(&str, &str); 4] = [
    ("vmdma", "#1f5fa6"),
    ("vmdma 2", "#8fb8e3"),
    ("QEMU", "#e07b1a"),
    ("host", "#7a7a7a"),
];

fn cells(r: &Row) -> [Option<&Cell>; 4] {
    [
        r.vmdma.as_ref(),
        r.second.as_ref(),
        r.qemu.as_ref(),
        r.host.as_ref(),
    ]
}

/// `s` with the characters XML gives a meaning escaped.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// A figure with about three significant digits.
fn figure(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// The label of the decade 10^`d`.
fn decade(d: i32) -> String {
    if d >= 0 {
        format!("{}", 10u64.pow(d.unsigned_abs()))
    } else {
        format!("{}", 10f64.powi(d))
    }
}

/// A log10 axis over whole decades.
struct Axis {
    lo: i32,
    hi: i32,
}

impl Axis {
    fn x(&self, v: f64) -> f64 {
        let span = f64::from((self.hi - self.lo).max(1));
        let at = (v.max(f64::MIN_POSITIVE).log10() - f64::from(self.lo)) / span;
        PLOT_X + at.clamp(0.0, 1.0) * (PLOT_END - PLOT_X)
    }
}

impl Results {
    /// The chart as an SVG document; `None` when no workload has a figure.
    pub fn chart(&self, title: &str) -> Option<String> {
        let rows: Vec<Row> = self
            .rows()
            .into_iter()
            .filter(|r| cells(r).iter().any(Option::is_some))
            .collect();
        let values: Vec<f64> = rows
            .iter()
            .flat_map(|r| {
                cells(r)
                    .into_iter()
                    .flatten()
                    .flat_map(|c| {
                        let m = r.mib_per_s(&c.time);
                        [m.min, m.max]
                    })
                    .collect::<Vec<_>>()
            })
            .filter(|v| v.is_finite() && *v > 0.0)
            .collect();
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().fold(0.0, f64::max);
        if values.is_empty() {
            return None;
        }
        let axis = Axis {
            lo: lo.log10().floor() as i32,
            hi: (hi.log10().ceil() as i32).max(lo.log10().floor() as i32 + 1),
        };
        // The legend names the columns of the run.
        let name = |i: usize| -> String {
            let label = rows
                .iter()
                .find_map(|r| cells(r)[i].map(|c| c.label.clone()));
            match (i, label) {
                (2, _) => "QEMU (the faster column of the row)".into(),
                (3, _) => "host pread/pwrite (page cache)".into(),
                (_, Some(l)) => l,
                (_, None) => SERIES[i].0.into(),
            }
        };
        let present: Vec<usize> = (0..4)
            .filter(|&i| rows.iter().any(|r| cells(r)[i].is_some()))
            .collect();
        let group = present.len() as f64 * (BAR + BAR_GAP) + GROUP_GAP;
        let plot_h = rows.len() as f64 * group;
        let height = TOP + plot_h + BOTTOM;

        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0}" viewBox="0 0 {WIDTH} {height:.0}" font-family="sans-serif" font-size="11">"#
        );
        let _ = writeln!(
            s,
            r#"<rect width="100%" height="100%" fill="white"/><text x="{PLOT_X}" y="18" font-size="13" font-weight="bold">{}</text>"#,
            esc(title)
        );
        let _ = writeln!(
            s,
            r#"<text x="{PLOT_X}" y="34">MiB/s, logarithmic; bar: median, line: slowest to fastest run</text>"#
        );
        // Legend.
        let mut lx = PLOT_X;
        for &i in &present {
            let label = name(i);
            let _ = writeln!(
                s,
                r#"<rect x="{lx:.1}" y="42" width="10" height="10" fill="{}"/><text x="{:.1}" y="51">{}</text>"#,
                SERIES[i].1,
                lx + 14.0,
                esc(&label)
            );
            lx += 28.0 + 6.6 * label.chars().count() as f64;
        }
        // Decades.
        for d in axis.lo..=axis.hi {
            let v = 10f64.powi(d);
            let x = axis.x(v);
            let _ = writeln!(
                s,
                r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="#dddddd"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
                TOP + plot_h,
                TOP + plot_h + 14.0,
                decade(d)
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">MiB/s</text>"#,
            (PLOT_X + PLOT_END) / 2.0,
            TOP + plot_h + 30.0
        );
        for (g, r) in rows.iter().enumerate() {
            let y0 = TOP + g as f64 * group;
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                PLOT_X - 8.0,
                y0 + (group - GROUP_GAP) / 2.0 + 4.0,
                esc(&r.mode.to_string())
            );
            for (k, &i) in present.iter().enumerate() {
                let Some(c) = cells(r)[i] else { continue };
                let m = r.mib_per_s(&c.time);
                let y = y0 + k as f64 * (BAR + BAR_GAP);
                let mid = y + BAR / 2.0;
                let what = match i {
                    2 => format!("QEMU {}", qemu_short(&c.label)),
                    _ => c.label.clone(),
                };
                let _ = writeln!(
                    s,
                    r#"<rect class="bar" x="{PLOT_X}" y="{y:.1}" width="{:.1}" height="{BAR}" fill="{}"><title>{}: {} MiB/s [{}–{}], {} runs</title></rect>"#,
                    (axis.x(m.median) - PLOT_X).max(0.5),
                    SERIES[i].1,
                    esc(&what),
                    figure(m.median),
                    figure(m.min),
                    figure(m.max),
                    m.n
                );
                let _ = writeln!(
                    s,
                    r#"<line x1="{:.1}" y1="{mid:.1}" x2="{:.1}" y2="{mid:.1}" stroke="black"/><text x="{:.1}" y="{:.1}" font-size="9">{}</text>"#,
                    axis.x(m.min),
                    axis.x(m.max),
                    axis.x(m.max) + 4.0,
                    mid + 3.0,
                    figure(m.median)
                );
            }
        }
        let _ = writeln!(s, "</svg>");
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compact::tests::results;

    #[test]
    fn a_bar_per_figure_on_a_log_axis() {
        let r = results([
            [1e-3, 0.9e-3, 1.5e-3, 1.4e-3, 0.5e-3],
            [3e-4, 2.8e-4, 4e-4, 4.2e-4, 1e-5],
        ]);
        let svg = r.chart("vmdma bench <test> & co").unwrap();
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<rect class=\"bar\"").count(), 8, "2 rows × 4");
        assert!(svg.contains("vmdma bench &lt;test&gt; &amp; co"));
        assert!(svg.contains(">seq-read 1M<") && svg.contains(">rand-write 4K poll libata<"));
        assert!(svg.contains("QEMU aio=io_uring: 714 MiB/s [649–794], 3 runs"));
        // From QEMU's slowest 4 KiB run (462 µs: 8.5 MiB/s) to the host's
        // fastest 1 MiB (0.45 ms: 2222 MiB/s): decades 1 to 10000.
        for d in ["1", "10", "100", "1000", "10000"] {
            assert!(svg.contains(&format!(">{d}</text>")), "decade {d}");
        }
        assert!(!svg.contains(">100000</text>"));
    }

    #[test]
    fn decades() {
        assert_eq!(decade(0), "1");
        assert_eq!(decade(3), "1000");
        assert_eq!(decade(-1), "0.1");
    }

    #[test]
    fn log_axis_positions() {
        let a = Axis { lo: 0, hi: 4 };
        assert_eq!(a.x(1.0), PLOT_X);
        assert_eq!(a.x(10_000.0), PLOT_END);
        assert!((a.x(100.0) - (PLOT_X + PLOT_END) / 2.0).abs() < 1e-9);
        assert_eq!(a.x(0.0), PLOT_X, "clamped");
    }

    #[test]
    fn no_figures_no_chart() {
        let r = results([[0.0; 5], [0.0; 5]]);
        assert!(r.chart("t").is_none());
    }
}
