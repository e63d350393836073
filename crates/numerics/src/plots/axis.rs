//! Axes: their range, where the ticks go and how they read. A log axis plots log10 of the
//! data with ticks at powers of ten (or 1-2-5 within a decade) labelled with their values.

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use std::ops::Range;

/// How an axis maps its data.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Scaling {
    #[default]
    Linear,
    /// log10; non-positive values are left out.
    Log,
    /// Linear with whole-number ticks only (steps, epochs, counts).
    Integer,
}

#[derive(Clone, Debug, Default)]
pub struct Axis {
    pub label: String,
    pub scaling: Scaling,
    /// Named positions 0, 1, 2, ...: the ticks are exactly these, labelled by name (the
    /// values of a sweep that no numeric scale shows well, such as 0, 0.001, 0.01).
    pub categories: Vec<String>,
}

impl Axis {
    pub fn new(label: impl Into<String>, scaling: Scaling) -> Self {
        Axis { label: label.into(), scaling, categories: Vec::new() }
    }
    /// An axis of named positions 0..n.
    pub fn categories(label: impl Into<String>, names: Vec<String>) -> Self {
        Axis { label: label.into(), scaling: Scaling::Linear, categories: names }
    }
    /// The data value where it is plotted; None where it cannot be (log of v <= 0, NaN).
    pub fn map(&self, v: f64) -> Option<f64> {
        let m = if self.scaling == Scaling::Log { if v > 0.0 { v.log10() } else { f64::NAN } } else { v };
        m.is_finite().then_some(m)
    }
    /// The range of plotted values (already `map`ped; non-finite ones left out), padded by
    /// `pad` of its span on each side so that markers and their labels stay inside the frame.
    pub fn range(&self, plotted: impl Iterator<Item = f64>, pad: f64) -> (f64, f64) {
        let (lo, hi) = plotted
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
        if !lo.is_finite() {
            return (0.0, 1.0);
        }
        if hi - lo < 1e-12 {
            let half = if self.scaling == Scaling::Log { 0.5 } else { lo.abs().max(1.0) * 0.5 };
            return (lo - half, hi + half);
        }
        let p = (hi - lo) * pad;
        (lo - p, hi + p)
    }
    /// The plotters coordinate for a plotted range, with this axis' ticks.
    pub fn coord(&self, (lo, hi): (f64, f64)) -> Ticked {
        if !self.categories.is_empty() {
            return Ticked { lo, hi, ticks: (0..self.categories.len()).map(|i| i as f64).collect() };
        }
        let ticks = match self.scaling {
            Scaling::Linear => nice_ticks(lo, hi, false),
            Scaling::Integer => nice_ticks(lo, hi, true),
            Scaling::Log => log_ticks(lo, hi),
        };
        Ticked { lo, hi, ticks }
    }
    /// A tick's label (the value, not its logarithm, on log axes).
    pub fn label(&self, v: f64) -> String {
        if !self.categories.is_empty() {
            return self.categories.get(v.round().max(0.0) as usize).cloned().unwrap_or_default();
        }
        match self.scaling {
            Scaling::Log => number(10f64.powf(v)),
            _ => number(v),
        }
    }
}

/// A linear plotters coordinate over [lo, hi] with the ticks (grid lines) given.
pub struct Ticked {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;
    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let t = (v - self.lo) / (self.hi - self.lo);
        limit.0 + (t * (limit.1 - limit.0) as f64).round() as i32
    }
    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        // No light (minor) grid lines; every tick is a labelled one.
        if hint.weight().allow_light_points() { vec![] } else { self.ticks.clone() }
    }
    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

/// Ticks at 1, 2 or 5 times a power of ten covering [lo, hi], about five; whole numbers
/// only with `integer`.
pub fn nice_ticks(lo: f64, hi: f64, integer: bool) -> Vec<f64> {
    let span = hi - lo;
    if !span.is_finite() || span <= 0.0 {
        return vec![];
    }
    let mag = 10f64.powf((span / 5.0).log10().floor());
    let mut step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * mag).find(|s| span / s <= 6.0).unwrap_or(10.0 * mag);
    if integer {
        step = step.max(1.0).round();
    }
    let mut out = Vec::new();
    let mut k = (lo / step).ceil();
    while k * step <= hi + step * 1e-9 && out.len() < 25 {
        let t = k * step;
        out.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        k += 1.0;
    }
    out
}

/// Ticks of a log10 axis over [lo, hi] (in decades): every decade, or every other one for
/// long ranges; over less than three decades, 1, 2 and 5 times powers of ten.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let decades = hi - lo;
    if !decades.is_finite() || decades <= 0.0 {
        return vec![];
    }
    if decades < 3.0 {
        let mut out = Vec::new();
        for e in (lo.floor() as i32)..=(hi.ceil() as i32) {
            for m in [1.0f64, 2.0, 5.0] {
                let t = e as f64 + m.log10();
                if t >= lo - 1e-9 && t <= hi + 1e-9 {
                    out.push(t);
                }
            }
        }
        return out;
    }
    let every = (decades / 6.0).ceil().max(1.0) as i32;
    ((lo.ceil() as i32)..=(hi.floor() as i32)).filter(|e| e.rem_euclid(every) == 0).map(f64::from).collect()
}

/// A tick value as people write it: 0.05, 1,200, 3e-6.
pub fn number(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e5).contains(&a) {
        return format!("{v:.0e}");
    }
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    if a >= 1e3 && v.fract() == 0.0 {
        let int = format!("{}", v.round() as i64);
        let (sign, digits) = int.split_at(if v < 0.0 { 1 } else { 0 });
        let mut grouped = String::new();
        for (i, ch) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(ch);
        }
        return format!("{sign}{grouped}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_ticks_are_round_and_cover_the_range() {
        assert_eq!(nice_ticks(0.0, 10.0, false), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        let t = nice_ticks(-1.3, 2.7, false);
        assert!(t[0] >= -1.3 && *t.last().unwrap() <= 2.7 && t.len() >= 3);
    }

    /// A loss curve of three steps gets ticks at whole steps, not at half steps.
    #[test]
    fn integer_axes_have_whole_ticks() {
        assert_eq!(nice_ticks(0.0, 3.0, true), vec![0.0, 1.0, 2.0, 3.0]);
        assert!(nice_ticks(0.0, 2.0, true).iter().all(|t| t.fract() == 0.0));
    }

    #[test]
    fn log_axes_tick_at_decades_and_label_values() {
        let a = Axis::new("NFE", Scaling::Log);
        assert_eq!(a.map(1000.0), Some(3.0));
        assert_eq!(a.map(0.0), None);
        assert_eq!(log_ticks(0.5, 4.2), vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(log_ticks(-12.0, 0.0), vec![-12.0, -10.0, -8.0, -6.0, -4.0, -2.0, 0.0]);
        let within = log_ticks(1.0, 2.0);
        assert_eq!(within.len(), 4, "{within:?}"); // 10, 20, 50, 100
        assert_eq!(log_ticks(1.2, 3.2).len(), 6); // 20, 50, 100, 200, 500, 1000
        assert_eq!(a.label(2.0), "100");
        assert_eq!(a.label(-6.0), "1e-6");
    }

    #[test]
    fn numbers_read_as_written() {
        assert_eq!(number(0.05), "0.05");
        assert_eq!(number(2.5), "2.5");
        assert_eq!(number(12000.0), "12,000");
        assert_eq!(number(1000.0), "1,000");
        assert_eq!(number(1234.5), "1234.5");
        assert_eq!(number(-0.0001), "-1e-4");
        assert_eq!(number(0.0), "0");
    }
}
