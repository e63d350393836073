//! 2-D data: points coloured by class, and a classifier's decision regions under them with
//! adversarial moves drawn as arrows from the clean point.

use super::axis::{Axis, Scaling};
use super::figure::{Draw, Figure, err};
use super::frame::chart;
use super::legend::{emptiest_corner, legend};
use super::style::{Scale, TEXT, color, lighten};
use plotters::coord::Shift;
use plotters::prelude::*;

/// A point and where an attack moved it: (clean, adversarial).
pub type Move = ([f32; 2], [f32; 2]);

/// Points with optional class labels and class names (`class k` where none).
pub struct Points<'a> {
    pub title: &'a str,
    pub points: &'a [[f32; 2]],
    pub labels: Option<&'a [u32]>,
    pub names: Option<&'a [String]>,
}

impl Points<'_> {
    fn class(&self, i: usize) -> usize {
        self.labels.and_then(|l| l.get(i)).map_or(0, |&c| c as usize)
    }
    fn classes(&self) -> usize {
        self.labels.map_or(0, |l| l.iter().max().map_or(0, |&m| m as usize + 1))
    }
    fn name(&self, k: usize) -> String {
        self.names.and_then(|n| n.get(k).cloned()).unwrap_or_else(|| format!("class {k}"))
    }
    fn extent(&self) -> ((f64, f64), (f64, f64)) {
        let axis = Axis::new("", Scaling::Linear);
        (
            axis.range(self.points.iter().map(|p| p[0] as f64), 0.05),
            axis.range(self.points.iter().map(|p| p[1] as f64), 0.05),
        )
    }
    pub fn scatter(&self) -> Result<Figure, String> {
        Figure::render(&Decision { points: self, regions: None, moves: &[] })
    }
    /// With the regions `predict` assigns (row-major `[k, 2]` grid points to classes) on a
    /// `resolution` x `resolution` grid, and the moves.
    pub fn decision(
        &self,
        moves: &[Move],
        resolution: usize,
        predict: impl FnOnce(&[f32]) -> Result<Vec<u32>, String>,
    ) -> Result<Figure, String> {
        let (xr, yr) = self.extent();
        let res = resolution.max(2);
        let cell = ((xr.1 - xr.0) / res as f64, (yr.1 - yr.0) / res as f64);
        let mut grid = Vec::with_capacity(res * res * 2);
        for j in 0..res {
            for i in 0..res {
                grid.push((xr.0 + cell.0 * (i as f64 + 0.5)) as f32);
                grid.push((yr.0 + cell.1 * (j as f64 + 0.5)) as f32);
            }
        }
        let classes = predict(&grid)?;
        if classes.len() != res * res {
            return Err(format!("{} predictions for {} grid points", classes.len(), res * res));
        }
        Figure::render(&Decision { points: self, regions: Some((res, classes)), moves })
    }
}

struct Decision<'a> {
    points: &'a Points<'a>,
    /// (resolution, class of each grid cell, row-major from the bottom left).
    regions: Option<(usize, Vec<u32>)>,
    moves: &'a [Move],
}

impl Draw for Decision<'_> {
    fn size(&self) -> (u32, u32) {
        (600, 560)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, s: Scale) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        let p = self.points;
        let (xr, yr) = p.extent();
        let (x, y) = (Axis::new("x1", Scaling::Linear), Axis::new("x2", Scaling::Linear));
        let mut chart = chart(root, p.title, (&x, xr), (&y, yr), s)?;
        if let Some((res, classes)) = &self.regions {
            let cell = ((xr.1 - xr.0) / *res as f64, (yr.1 - yr.0) / *res as f64);
            let rects = classes.iter().enumerate().map(|(k, &c)| {
                let (i, j) = ((k % res) as f64, (k / res) as f64);
                let corners =
                    [(xr.0 + cell.0 * i, yr.0 + cell.1 * j), (xr.0 + cell.0 * (i + 1.0), yr.0 + cell.1 * (j + 1.0))];
                Rectangle::new(corners, lighten(color(c as usize), 0.72).filled())
            });
            chart.draw_series(rects).map_err(err)?;
        }
        let r = if p.points.len() > 5000 { s.px(1.6) } else { s.px(3.0) };
        let outline = self.regions.is_some();
        let classes = p.classes().max(1);
        for k in 0..classes {
            let members = p.points.iter().enumerate().filter(|(i, _)| p.class(*i) == k);
            let style = color(k).filled();
            let ring = TEXT.stroke_width(s.stroke(0.6));
            let dots = members.map(|(_, q)| {
                let at = (q[0] as f64, q[1] as f64);
                EmptyElement::at(at)
                    + Circle::new((0, 0), r, style)
                    + Circle::new((0, 0), r, if outline { ring } else { style })
            });
            let drawn = chart.draw_series(dots).map_err(err)?;
            if p.labels.is_some() {
                drawn.label(p.name(k)).legend(move |(x, y)| Circle::new((x + r, y), r, style));
            }
        }
        if !self.moves.is_empty() {
            let style = TEXT.stroke_width(s.stroke(1.2));
            let head = s.px(7.0) as f64;
            let arrows: Vec<_> = self
                .moves
                .iter()
                .map(|(from, to)| {
                    let (a, b) = ((from[0] as f64, from[1] as f64), (to[0] as f64, to[1] as f64));
                    arrow(&chart, (xr, yr), a, b, head, style)
                })
                .collect();
            let start = |(from, _): &Move| Circle::new((from[0] as f64, from[1] as f64), s.px(2.2), TEXT.filled());
            chart.draw_series(self.moves.iter().map(start)).map_err(err)?;
            let h = s.px(5.0);
            chart.draw_series(arrows).map_err(err)?.label("adversarial move").legend(move |(x, y)| {
                PathElement::new(
                    vec![(x, y), (x + 3 * h, y), (x + 2 * h, y - h), (x + 3 * h, y), (x + 2 * h, y + h)],
                    style,
                )
            });
        }
        if p.labels.is_some() || !self.moves.is_empty() {
            let pts = p.points.iter().map(|q| (q[0] as f64, q[1] as f64));
            legend(&mut chart, emptiest_corner(pts, xr, yr), s)?;
        }
        Ok(())
    }
}

/// A segment from a to b (data coordinates) with an arrowhead of `head` pixels at b, as
/// a path in data coordinates: the head's sides are placed in pixels, then mapped back
/// through the axes' linear maps (the plot spans `xr` x `yr`).
fn arrow<DB: DrawingBackend, X, Y>(
    chart: &ChartContext<DB, Cartesian2d<X, Y>>,
    (xr, yr): ((f64, f64), (f64, f64)),
    a: (f64, f64),
    b: (f64, f64),
    head: f64,
    style: ShapeStyle,
) -> PathElement<(f64, f64)>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let (c0, c1) = (chart.backend_coord(&(xr.0, yr.0)), chart.backend_coord(&(xr.1, yr.1)));
    let per = ((xr.1 - xr.0) / (c1.0 - c0.0) as f64, (yr.1 - yr.0) / (c1.1 - c0.1) as f64);
    let (pa, pb) = (chart.backend_coord(&a), chart.backend_coord(&b));
    let (dx, dy) = ((pb.0 - pa.0) as f64, (pb.1 - pa.1) as f64);
    let len = (dx * dx + dy * dy).sqrt();
    if len < 1.0 || !per.0.is_finite() || !per.1.is_finite() {
        return PathElement::new(vec![a, b], style);
    }
    let (ux, uy) = (dx / len, dy / len);
    let h = head.min(len * 0.6);
    // A side of the head, h back along the segment and 0.45 h across it, in data units.
    let side =
        |sgn: f64| (b.0 + (-h * ux + sgn * 0.45 * h * uy) * per.0, b.1 + (-h * uy - sgn * 0.45 * h * ux) * per.1);
    PathElement::new(vec![a, b, side(1.0), b, side(-1.0)], style)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plots::figure::testing::{assert_drawn, has_text};

    fn two_blobs() -> (Vec<[f32; 2]>, Vec<u32>) {
        let mut rng = crate::rng::Rng::new(1);
        let pts: Vec<[f32; 2]> = (0..200)
            .map(|i| {
                let c = if i % 2 == 0 { -1.0 } else { 1.0 };
                [c + 0.4 * rng.normal() as f32, 0.4 * rng.normal() as f32]
            })
            .collect();
        (pts, (0..200).map(|i| (i % 2) as u32).collect())
    }

    #[test]
    fn scatter_has_a_legend_of_classes() {
        let (pts, y) = two_blobs();
        let f = Points { title: "Two blobs", points: &pts, labels: Some(&y), names: None }.scatter().unwrap();
        assert_drawn(&f, "scatter", 0.01);
        assert!(has_text(&f, "class 0") && has_text(&f, "class 1"));
    }

    /// Regions are painted with the predicted class (sampled in the PNG), and moves are
    /// in the legend.
    #[test]
    fn decision_regions_are_painted_with_the_predicted_class() {
        let (pts, y) = two_blobs();
        let names = vec!["left".to_string(), "right".to_string()];
        let p = Points { title: "Regions", points: &pts, labels: Some(&y), names: Some(&names) };
        let moves = [([-1.0f32, 0.0], [0.1f32, 0.0])];
        let f = p.decision(&moves, 50, |g| Ok(g.chunks(2).map(|q| (q[0] > 0.0) as u32).collect())).unwrap();
        assert_drawn(&f, "decision", 0.3);
        assert!(has_text(&f, "adversarial move") && has_text(&f, "left"));
        let img = png_pixels(&f.png);
        let (w, h) = (f.pixels.0 as usize, f.pixels.1 as usize);
        let count = |c: RGBColor| img.chunks(3).filter(|p| p == &[c.0, c.1, c.2]).count();
        let (left, right) = (count(lighten(color(0), 0.72)), count(lighten(color(1), 0.72)));
        assert!(left > w * h / 20 && right > w * h / 20, "{left} and {right} region pixels");
    }

    fn png_pixels(png: &[u8]) -> Vec<u8> {
        let mut reader = png::Decoder::new(std::io::Cursor::new(png)).read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        buf
    }
}
