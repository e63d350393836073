//! Line plots: curves with a legend, optional markers and per-point labels, on linear,
//! whole-number or log axes.

use super::axis::Axis;
use super::figure::{Draw, Figure, err};
use super::frame::chart;
use super::legend::{emptiest_corner, legend};
use super::style::{Scale, TEXT, color};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

pub struct Series<'a> {
    pub name: &'a str,
    pub values: &'a [f64],
    /// x positions; the index (step) when absent.
    pub xs: Option<&'a [f64]>,
    /// Text beside each point (a solver's tolerance); markers are drawn.
    pub labels: Option<&'a [String]>,
}

impl<'a> Series<'a> {
    /// A curve over its index (steps).
    pub fn steps(name: &'a str, values: &'a [f64]) -> Self {
        Series { name, values, xs: None, labels: None }
    }
    /// A curve through (xs, values).
    pub fn xy(name: &'a str, xs: &'a [f64], values: &'a [f64]) -> Self {
        Series { name, values, xs: Some(xs), labels: None }
    }
    fn x(&self, i: usize) -> f64 {
        self.xs.and_then(|x| x.get(i).copied()).unwrap_or(i as f64)
    }
}

pub struct LinePlot<'a> {
    pub title: &'a str,
    pub x: Axis,
    pub y: Axis,
    pub series: Vec<Series<'a>>,
}

impl LinePlot<'_> {
    pub fn render(&self) -> Result<Figure, String> {
        Figure::render(self)
    }
    /// Each series' plotted points (mapped to the axes' scales) with their index.
    fn points(&self) -> Vec<Vec<(f64, f64, usize)>> {
        self.series
            .iter()
            .map(|s| {
                (0..s.values.len()).filter_map(|i| Some((self.x.map(s.x(i))?, self.y.map(s.values[i])?, i))).collect()
            })
            .collect()
    }
}

impl Draw for LinePlot<'_> {
    fn size(&self) -> (u32, u32) {
        (640, 460)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, s: Scale) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        let pts = self.points();
        let all = || pts.iter().flatten();
        let labelled = self.series.iter().any(|s| s.labels.is_some());
        let xr = self.x.range(all().map(|p| p.0), if labelled { 0.08 } else { 0.02 });
        let yr = self.y.range(all().map(|p| p.1), 0.06);
        let mut chart = chart(root, self.title, (&self.x, xr), (&self.y, yr), s)?;
        for (k, (series, p)) in self.series.iter().zip(&pts).enumerate() {
            let style = color(k).stroke_width(s.stroke(2.0));
            let line = LineSeries::new(p.iter().map(|&(x, y, _)| (x, y)), style);
            let (w, r) = (s.px(22.0), s.px(3.5));
            chart
                .draw_series(line)
                .map_err(err)?
                .label(series.name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + w, y)], style));
            // Markers where the points are few enough to be read one by one (validation
            // points, a work-precision curve), not on dense or step curves.
            if series.xs.is_some() && p.len() <= 12 || series.labels.is_some() {
                let dot = |&(x, y, _): &(f64, f64, usize)| Circle::new((x, y), r, color(k).filled());
                chart.draw_series(p.iter().map(dot)).map_err(err)?;
                let ring = |&(x, y, _): &(f64, f64, usize)| Circle::new((x, y), r, TEXT.stroke_width(s.stroke(0.8)));
                chart.draw_series(p.iter().map(ring)).map_err(err)?;
            }
            if let Some(labels) = series.labels {
                // Beside the point, on its left near the right edge so that it stays inside.
                let text = |&(x, y, i): &(f64, f64, usize)| {
                    let label = labels.get(i).cloned().unwrap_or_default();
                    let right = (x - xr.0) / (xr.1 - xr.0) > 0.8;
                    let (dx, h) = if right { (-s.px(6.0), HPos::Right) } else { (s.px(6.0), HPos::Left) };
                    let style = s.text(10.0).pos(Pos::new(h, VPos::Top));
                    EmptyElement::at((x, y)) + Text::new(label, (dx, -s.px(14.0)), style)
                };
                chart.draw_series(p.iter().map(text)).map_err(err)?;
            }
        }
        let corner = emptiest_corner(all().map(|p| (p.0, p.1)), xr, yr);
        legend(&mut chart, corner, s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plots::axis::Scaling;
    use crate::plots::figure::testing::{assert_drawn, has_text};

    #[test]
    fn curves_with_steps_and_log_axes_are_drawn() {
        let loss: Vec<f64> = (0..200).map(|i| 2.0 * (-(i as f64) / 50.0).exp() + 0.1).collect();
        let plot = LinePlot {
            title: "Training loss",
            x: Axis::new("step", Scaling::Integer),
            y: Axis::new("loss", Scaling::Linear),
            series: vec![Series::steps("train", &loss)],
        };
        assert_drawn(&plot.render().unwrap(), "loss", 0.01);
        let nfe = [20.0, 80.0, 320.0, 1280.0];
        let error = [1e-2, 1e-5, 1e-8, 1e-11];
        let tols: Vec<String> = ["1e-3", "1e-6", "1e-9", "1e-12"].map(String::from).to_vec();
        let plot = LinePlot {
            title: "Work-precision",
            x: Axis::new("function evaluations", Scaling::Log),
            y: Axis::new("error", Scaling::Log),
            series: vec![Series { name: "dopri5", values: &error, xs: Some(&nfe), labels: Some(&tols) }],
        };
        let f = plot.render().unwrap();
        assert_drawn(&f, "work_precision", 0.01);
        for label in ["1e-6", "1e-12", "1e-8", "100"] {
            assert!(has_text(&f, label), "no {label} in the svg");
        }
    }
}
