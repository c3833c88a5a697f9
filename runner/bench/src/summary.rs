//! Median, minimum and maximum over runs.

use serde_json::{Value, json};

/// A figure over several runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stat {
    /// The median (mean of the middle two for an even count).
    pub median: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
    /// Runs.
    pub n: usize,
}

impl Stat {
    /// The statistics of `v`; `None` if empty (NaNs are dropped).
    pub fn of(v: impl IntoIterator<Item = f64>) -> Option<Stat> {
        let mut v: Vec<f64> = v.into_iter().filter(|x| !x.is_nan()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let mid = |i: usize| v.get(i).copied().unwrap_or(0.0);
        let median = if n % 2 == 1 {
            mid(n / 2)
        } else {
            (mid(n / 2 - 1) + mid(n / 2)) / 2.0
        };
        Some(Stat {
            median,
            min: mid(0),
            max: mid(n - 1),
            n,
        })
    }

    /// `f` applied to every figure (for a decreasing `f`, such as a rate
    /// from a time, min and max swap).
    pub fn map(&self, f: impl Fn(f64) -> f64) -> Stat {
        let (a, b) = (f(self.min), f(self.max));
        Stat {
            median: f(self.median),
            min: a.min(b),
            max: a.max(b),
            n: self.n,
        }
    }

    /// As JSON.
    pub fn to_json(self) -> Value {
        json!({"median": self.median, "min": self.min, "max": self.max, "runs": self.n})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_min_max() {
        let s = Stat::of([3.0, 1.0, 2.0, 10.0, 4.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.n), (3.0, 1.0, 10.0, 5));
        assert_eq!(Stat::of([1.0, 2.0, 3.0, 4.0]).unwrap().median, 2.5);
        assert!(Stat::of([]).is_none());
        assert!(Stat::of([f64::NAN]).is_none());
        let r = Stat::of([1.0, 2.0, 4.0]).unwrap().map(|t| 1.0 / t);
        assert_eq!((r.median, r.min, r.max), (0.5, 0.25, 1.0));
    }
}
