//! A sweep's results: one panel per metric, the metric against the swept value, one line
//! per setting of the other swept parameters. Where several seeds were run, the line goes
//! through their mean, a bar spans their range and a dot marks each run, so that the spread
//! between seeds is seen beside the effect of the parameter.

use super::axis::Axis;
use super::figure::{Draw, Figure, err};
use super::frame::chart;
use super::legend::{emptiest_corner, legend};
use super::style::{Scale, color};
use plotters::coord::Shift;
use plotters::prelude::*;

const PANEL: (f64, f64) = (340.0, 270.0);

pub struct SweepLine {
    pub name: String,
    /// At each x position, the value of every run there (one per seed); empty where none
    /// has a result.
    pub values: Vec<Vec<f64>>,
}

pub struct SweepPanel {
    pub metric: String,
    pub lines: Vec<SweepLine>,
}

pub struct SweepPlot<'a> {
    /// The swept parameter (categorical, log or linear).
    pub x: Axis,
    /// Where each position is plotted, in the axis' data units (0, 1, ... for categories).
    pub xs: Vec<f64>,
    pub panels: &'a [SweepPanel],
    pub columns: usize,
}

impl SweepPlot<'_> {
    pub fn render(&self) -> Result<Figure, String> {
        if self.panels.is_empty() || self.xs.is_empty() {
            return Err("a sweep plot needs a metric and a swept value".into());
        }
        if self.panels.iter().flat_map(|p| &p.lines).any(|l| l.values.len() != self.xs.len()) {
            return Err("a sweep line needs values at every position".into());
        }
        Figure::render(self)
    }

    fn cols(&self) -> usize {
        self.columns.clamp(1, self.panels.len())
    }
}

/// Mean, low and high of some runs' values.
fn summary(v: &[f64]) -> Option<(f64, f64, f64)> {
    let finite: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if finite.is_empty() {
        return None;
    }
    let mean = finite.iter().sum::<f64>() / finite.len() as f64;
    let lo = finite.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some((mean, lo, hi))
}

impl Draw for SweepPlot<'_> {
    fn size(&self) -> (u32, u32) {
        let cols = self.cols();
        let rows = self.panels.len().div_ceil(cols);
        ((PANEL.0 * cols as f64) as u32, (PANEL.1 * rows as f64) as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, s: Scale) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        let cols = self.cols();
        let rows = self.panels.len().div_ceil(cols);
        let areas = root.split_evenly((rows, cols));
        let xs: Vec<f64> = self.xs.iter().map(|&x| self.x.map(x).unwrap_or(f64::NAN)).collect();
        for (panel, area) in self.panels.iter().zip(&areas) {
            // The title names the metric; the axis says how the runs at a position combine.
            let pooled = panel.lines.iter().any(|l| l.values.iter().any(|v| v.len() > 1));
            let y = Axis::new(if pooled { "mean (line), range (bar) over seeds" } else { "" }, Default::default());
            let values = panel.lines.iter().flat_map(|l| l.values.iter().flatten().copied());
            let xr = self.x.range(xs.iter().copied(), 0.08);
            let yr = y.range(values, 0.08);
            let mut chart = chart(area, &panel.metric, (&self.x, xr), (&y, yr), s)?;
            let mut plotted = Vec::new();
            for (k, line) in panel.lines.iter().enumerate() {
                let style = color(k).stroke_width(s.stroke(2.0));
                let means: Vec<(f64, f64)> = xs
                    .iter()
                    .zip(&line.values)
                    .filter_map(|(&x, v)| Some((x, summary(v)?.0)))
                    .filter(|(x, _)| x.is_finite())
                    .collect();
                plotted.extend(means.iter().copied());
                let w = s.px(22.0);
                let drawn = chart.draw_series(LineSeries::new(means.iter().copied(), style)).map_err(err)?;
                if panel.lines.len() > 1 {
                    drawn
                        .label(line.name.as_str())
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + w, y)], style));
                }
                for (&x, v) in xs.iter().zip(&line.values) {
                    let Some((_, lo, hi)) = summary(v).filter(|_| x.is_finite()) else { continue };
                    if hi > lo {
                        let bar = PathElement::new(vec![(x, lo), (x, hi)], color(k).stroke_width(s.stroke(1.2)));
                        chart.draw_series(std::iter::once(bar)).map_err(err)?;
                    }
                    let dots =
                        v.iter().filter(|y| y.is_finite()).map(|&y| Circle::new((x, y), s.px(2.5), color(k).filled()));
                    chart.draw_series(dots).map_err(err)?;
                }
            }
            if panel.lines.len() > 1 {
                legend(&mut chart, emptiest_corner(plotted.into_iter(), xr, yr), s)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plots::axis::Scaling;
    use crate::plots::figure::testing::{assert_drawn, has_text};

    #[test]
    fn a_sweep_with_seeds_is_drawn_with_named_positions() {
        let panels = vec![
            SweepPanel {
                metric: "accuracy".into(),
                lines: vec![SweepLine {
                    name: "all".into(),
                    values: vec![vec![0.9, 0.92], vec![0.95, 0.96], vec![0.8]],
                }],
            },
            SweepPanel {
                metric: "loss".into(),
                lines: vec![
                    SweepLine { name: "hidden=16".into(), values: vec![vec![0.3], vec![0.2], vec![]] },
                    SweepLine { name: "hidden=64".into(), values: vec![vec![0.25], vec![0.1], vec![0.4]] },
                ],
            },
        ];
        let names = vec!["0".to_string(), "0.001".into(), "0.01".into()];
        let plot =
            SweepPlot { x: Axis::categories("lam", names), xs: vec![0.0, 1.0, 2.0], panels: &panels, columns: 3 };
        let f = plot.render().unwrap();
        assert_drawn(&f, "sweep", 0.01);
        for text in ["0.001", "accuracy", "hidden=64", "lam"] {
            assert!(has_text(&f, text), "no {text} in the svg");
        }
        let log =
            SweepPlot { x: Axis::new("lr", Scaling::Log), xs: vec![1e-4, 1e-3, 1e-2], panels: &panels, columns: 1 };
        assert_drawn(&log.render().unwrap(), "sweep_log", 0.01);
        let short =
            [SweepPanel { metric: "m".into(), lines: vec![SweepLine { name: "a".into(), values: vec![vec![1.0]] }] }];
        let bad = SweepPlot { x: Axis::new("lr", Scaling::Log), xs: vec![1e-4, 1e-3], panels: &short, columns: 1 };
        assert!(bad.render().is_err(), "a line without a value per position is refused");
    }
}
