//! Several runs of one measurement, summarised as a median with its spread.

use std::fmt;

/// Whether larger figures are better (throughput) or smaller ones (latency).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    /// Operations or requests per second.
    Higher,
    /// Latency.
    Lower,
}

/// The figures of one measurement over several runs.
#[derive(Debug, Clone, Default)]
pub struct Runs {
    values: Vec<f64>,
}

impl FromIterator<f64> for Runs {
    fn from_iter<I: IntoIterator<Item = f64>>(figures: I) -> Self {
        Runs {
            values: figures.into_iter().collect(),
        }
    }
}

impl Runs {
    /// No runs yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one run's figure.
    pub fn push(&mut self, value: f64) {
        self.values.push(value);
    }

    /// How many runs were recorded.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    fn sorted(&self) -> Vec<f64> {
        let mut sorted = self.values.clone();
        sorted.sort_by(f64::total_cmp);
        sorted
    }

    /// The median run (the mean of the middle two for an even count); `None` without runs.
    pub fn median(&self) -> Option<f64> {
        let sorted = self.sorted();
        let n = sorted.len();
        match n {
            0 => None,
            _ if n % 2 == 1 => Some(sorted[n / 2]),
            _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
        }
    }

    /// The lowest and highest runs.
    pub fn range(&self) -> Option<(f64, f64)> {
        let sorted = self.sorted();
        Some((*sorted.first()?, *sorted.last()?))
    }
}

/// How a figure is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Operations per second, printed with k/M suffixes.
    PerSecond,
    /// Milliseconds.
    Millis,
    /// Microseconds (CPU time per operation).
    Micros,
    /// A count per operation (allocations), printed with at most one decimal.
    Count,
}

/// A compact human form of one figure: `12.3k`, `1.25M`, `842`, `3.41 ms`.
pub fn format_value(value: f64, unit: Unit) -> String {
    match unit {
        Unit::PerSecond => {
            if value >= 1e6 {
                format!("{:.2}M", value / 1e6)
            } else if value >= 1e5 {
                format!("{:.0}k", value / 1e3)
            } else if value >= 1e4 {
                format!("{:.1}k", value / 1e3)
            } else if value >= 1e3 {
                format!("{:.2}k", value / 1e3)
            } else {
                format!("{value:.0}")
            }
        }
        Unit::Count => {
            if value.fract() == 0.0 {
                format!("{value:.0}")
            } else {
                format!("{value:.1}")
            }
        }
        Unit::Micros => {
            if value >= 100.0 {
                format!("{value:.0} µs")
            } else {
                format!("{value:.1} µs")
            }
        }
        Unit::Millis => {
            if value >= 100.0 {
                format!("{value:.0} ms")
            } else if value >= 10.0 {
                format!("{value:.1} ms")
            } else {
                format!("{value:.2} ms")
            }
        }
    }
}

/// A measurement ready for the table: the runs and how to print them.
#[derive(Debug, Clone)]
pub struct Figure {
    /// The runs.
    pub runs: Runs,
    /// How to print them.
    pub unit: Unit,
}

impl Figure {
    /// A figure over `runs`.
    pub fn new(runs: Runs, unit: Unit) -> Self {
        Self { runs, unit }
    }
}

impl fmt::Display for Figure {
    /// `median (min–max)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.runs.median(), self.runs.range()) {
            // Counts do not vary run to run; a range would only repeat the figure.
            (Some(median), Some((low, high))) if self.unit == Unit::Count && low == high => {
                f.write_str(&format_value(median, self.unit))
            }
            (Some(median), Some((low, high))) => {
                let strip =
                    |s: String| s.trim_end_matches(" ms").trim_end_matches(" µs").to_owned();
                write!(
                    f,
                    "{} ({}–{})",
                    format_value(median, self.unit),
                    strip(format_value(low, self.unit)),
                    strip(format_value(high, self.unit)),
                )
            }
            _ => f.write_str("–"),
        }
    }
}

/// How much better `ours` is than `other` by median: above 1 means ours is better (faster, or
/// lower latency), below 1 worse.
pub fn advantage(ours: &Runs, other: &Runs, better: Better) -> Option<f64> {
    let (ours, other) = (ours.median()?, other.median()?);
    if ours <= 0.0 || other <= 0.0 {
        return None;
    }
    Some(match better {
        Better::Higher => ours / other,
        Better::Lower => other / ours,
    })
}

/// Whether two sets of runs are apart beyond their spread: every run of one is above every run
/// of the other.
pub fn clearly_apart(a: &Runs, b: &Runs) -> bool {
    match (a.range(), b.range()) {
        (Some((a_low, a_high)), Some((b_low, b_high))) => a_low > b_high || b_low > a_high,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(values: &[f64]) -> Runs {
        values.iter().copied().collect()
    }

    #[test]
    fn collected_figures_are_the_pushed_ones() {
        let mut pushed = Runs::new();
        for v in [3.0, 1.0, 2.0] {
            pushed.push(v);
        }
        let collected: Runs = [3.0, 1.0, 2.0].into_iter().collect();
        assert_eq!(collected.len(), 3);
        assert_eq!(collected.median(), pushed.median());
        assert_eq!(collected.range(), pushed.range());
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(runs(&[5.0, 1.0, 3.0]).median(), Some(3.0));
        assert_eq!(runs(&[4.0, 1.0, 3.0, 2.0]).median(), Some(2.5));
        assert_eq!(Runs::new().median(), None);
    }

    #[test]
    fn figure_prints_median_and_range() {
        let figure = Figure::new(runs(&[12_000.0, 12_500.0, 11_900.0]), Unit::PerSecond);
        assert_eq!(figure.to_string(), "12.0k (11.9k–12.5k)");
        let latency = Figure::new(runs(&[1.5, 1.25, 2.0]), Unit::Millis);
        assert_eq!(latency.to_string(), "1.50 ms (1.25–2.00)");
        let count = Figure::new(runs(&[9.0, 9.0]), Unit::Count);
        assert_eq!(count.to_string(), "9");
        let uneven = Figure::new(runs(&[2.5, 3.5]), Unit::Count);
        assert_eq!(uneven.to_string(), "3 (2.5–3.5)");
    }

    #[test]
    fn advantage_inverts_for_latency() {
        let (fast, slow) = (runs(&[2.0]), runs(&[1.0]));
        assert_eq!(advantage(&fast, &slow, Better::Higher), Some(2.0));
        assert_eq!(advantage(&slow, &fast, Better::Lower), Some(2.0));
    }

    #[test]
    fn overlapping_runs_are_not_clearly_apart() {
        assert!(!clearly_apart(&runs(&[1.0, 3.0]), &runs(&[2.0, 4.0])));
        assert!(clearly_apart(&runs(&[1.0, 2.0]), &runs(&[3.0, 4.0])));
    }
}
