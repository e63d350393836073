//! Scatter, decision-region and line plots with labelled axes.

use super::canvas::{BLACK, Canvas, GREY, class_color, lighten};

const W: usize = 640;
const H: usize = 560;
const LEFT: i64 = 70;
const RIGHT: i64 = 24;
const TOP: i64 = 40;
const BOTTOM: i64 = 56;

/// Maps data coordinates into the plot area and draws the frame around it.
struct Frame {
    x: (f64, f64),
    y: (f64, f64),
}

impl Frame {
    fn new(x: (f64, f64), y: (f64, f64)) -> Self {
        let widen = |(lo, hi): (f64, f64)| {
            if (hi - lo).abs() < 1e-12 { (lo - 1.0, hi + 1.0) } else { (lo, hi) }
        };
        Frame { x: widen(x), y: widen(y) }
    }
    fn px(&self, x: f64) -> f64 {
        LEFT as f64 + (x - self.x.0) / (self.x.1 - self.x.0) * (W as i64 - LEFT - RIGHT) as f64
    }
    fn py(&self, y: f64) -> f64 {
        (H as i64 - BOTTOM) as f64 - (y - self.y.0) / (self.y.1 - self.y.0) * (H as i64 - TOP - BOTTOM) as f64
    }
    fn inside(&self, px: f64, py: f64) -> bool {
        px >= LEFT as f64 && px <= (W as i64 - RIGHT) as f64 && py >= TOP as f64 && py <= (H as i64 - BOTTOM) as f64
    }

    fn axes(&self, c: &mut Canvas, title: &str, xlabel: &str, ylabel: &str) {
        let (l, r, t, b) = (LEFT, W as i64 - RIGHT, TOP, H as i64 - BOTTOM);
        for tick in nice_ticks(self.x.0, self.x.1) {
            let x = self.px(tick).round() as i64;
            c.line(x as f64, b as f64, x as f64, (b + 5) as f64, BLACK, 1.0);
            let s = fmt_tick(tick);
            c.text(x - Canvas::text_width(&s, 1) / 2, b + 9, &s, BLACK, 1);
        }
        for tick in nice_ticks(self.y.0, self.y.1) {
            let y = self.py(tick).round() as i64;
            c.line((l - 5) as f64, y as f64, l as f64, y as f64, BLACK, 1.0);
            let s = fmt_tick(tick);
            c.text(l - 8 - Canvas::text_width(&s, 1), y - 4, &s, BLACK, 1);
        }
        for (x0, y0, x1, y1) in [(l, t, r, t), (l, b, r, b), (l, t, l, b), (r, t, r, b)] {
            c.line(x0 as f64, y0 as f64, x1 as f64, y1 as f64, BLACK, 1.0);
        }
        c.text((W as i64 - Canvas::text_width(title, 2)) / 2, 10, title, BLACK, 2);
        c.text((l + r - Canvas::text_width(xlabel, 1)) / 2, H as i64 - 22, xlabel, BLACK, 1);
        c.text_vertical(10, (t + b + Canvas::text_width(ylabel, 1)) / 2, ylabel, BLACK);
    }
}

/// Round tick positions (1, 2, 5 times a power of ten) covering [lo, hi].
fn nice_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = hi - lo;
    if !span.is_finite() || span <= 0.0 {
        return vec![];
    }
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * mag).find(|s| span / s <= 6.0).unwrap_or(10.0 * mag);
    let mut t = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while t <= hi + step * 1e-9 && out.len() < 20 {
        out.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        t += step;
    }
    out
}

fn fmt_tick(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 1e4 || v.abs() < 1e-3 {
        format!("{v:.0e}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn padded(lo: f64, hi: f64) -> (f64, f64) {
    if (hi - lo).abs() < 1e-9 {
        return (lo - 1.0, hi + 1.0);
    }
    let pad = (hi - lo).abs() * 0.05;
    (lo - pad, hi + pad)
}

fn extent(points: &[[f32; 2]]) -> ((f64, f64), (f64, f64)) {
    let mut xr = (f64::INFINITY, f64::NEG_INFINITY);
    let mut yr = (f64::INFINITY, f64::NEG_INFINITY);
    for p in points {
        xr = (xr.0.min(p[0] as f64), xr.1.max(p[0] as f64));
        yr = (yr.0.min(p[1] as f64), yr.1.max(p[1] as f64));
    }
    if points.is_empty() {
        return ((-1.0, 1.0), (-1.0, 1.0));
    }
    (padded(xr.0, xr.1), padded(yr.0, yr.1))
}

/// Points coloured by class (or one colour without labels).
pub fn scatter_plot(points: &[[f32; 2]], labels: Option<&[u32]>, title: &str) -> Canvas {
    let mut c = Canvas::new(W, H);
    let (xr, yr) = extent(points);
    let f = Frame::new(xr, yr);
    let r = if points.len() > 5000 { 1.5 } else { 2.5 };
    for (i, p) in points.iter().enumerate() {
        let color = class_color(labels.and_then(|l| l.get(i).copied()).unwrap_or(0));
        c.disc(f.px(p[0] as f64), f.py(p[1] as f64), r, color, None);
    }
    f.axes(&mut c, title, "x1", "x2");
    c
}

/// A point and where an attack moved it.
pub type Move = ([f32; 2], [f32; 2]);

/// The region each class is predicted in, with the points on top, and adversarial moves
/// (clean point -> adversarial point) drawn as segments ending in a black-ringed dot.
/// `predict` maps grid points (row-major `[k, 2]`) to classes.
pub fn decision_plot(
    points: &[[f32; 2]],
    labels: Option<&[u32]>,
    moves: &[Move],
    resolution: usize,
    title: &str,
    predict: impl FnOnce(&[f32]) -> Result<Vec<u32>, String>,
) -> Result<Canvas, String> {
    let mut c = Canvas::new(W, H);
    let (xr, yr) = extent(points);
    let f = Frame::new(xr, yr);
    let res = resolution.max(2);
    let mut grid = Vec::with_capacity(res * res * 2);
    for j in 0..res {
        for i in 0..res {
            let x = f.x.0 + (f.x.1 - f.x.0) * (i as f64 + 0.5) / res as f64;
            let y = f.y.0 + (f.y.1 - f.y.0) * (j as f64 + 0.5) / res as f64;
            grid.push(x as f32);
            grid.push(y as f32);
        }
    }
    let classes = predict(&grid)?;
    for j in 0..res {
        for i in 0..res {
            let k = classes.get(j * res + i).copied().unwrap_or(0);
            let (x0, x1) = (
                f.px(f.x.0 + (f.x.1 - f.x.0) * i as f64 / res as f64),
                f.px(f.x.0 + (f.x.1 - f.x.0) * (i + 1) as f64 / res as f64),
            );
            let (y0, y1) = (
                f.py(f.y.0 + (f.y.1 - f.y.0) * j as f64 / res as f64),
                f.py(f.y.0 + (f.y.1 - f.y.0) * (j + 1) as f64 / res as f64),
            );
            c.fill_rect(
                x0.floor() as i64,
                y1.floor() as i64,
                x1.ceil() as i64,
                y0.ceil() as i64,
                lighten(class_color(k), 0.7),
            );
        }
    }
    for (i, p) in points.iter().enumerate() {
        let (px, py) = (f.px(p[0] as f64), f.py(p[1] as f64));
        if f.inside(px, py) {
            let color = class_color(labels.and_then(|l| l.get(i).copied()).unwrap_or(0));
            c.disc(px, py, 2.5, color, Some(BLACK));
        }
    }
    for (from, to) in moves {
        let (ax, ay) = (f.px(from[0] as f64), f.py(from[1] as f64));
        let (bx, by) = (f.px(to[0] as f64), f.py(to[1] as f64));
        c.line(ax, ay, bx, by, BLACK, 1.0);
        c.disc(bx, by, 3.0, [255, 255, 255], Some(BLACK));
    }
    f.axes(&mut c, title, "x1", "x2");
    Ok(c)
}

pub struct Series<'a> {
    pub name: &'a str,
    pub values: &'a [f64],
    /// x positions; the index (step) when absent.
    pub xs: Option<&'a [f64]>,
}

impl Series<'_> {
    fn x(&self, i: usize) -> f64 {
        self.xs.and_then(|x| x.get(i).copied()).unwrap_or(i as f64)
    }
}

/// Curves with a legend.
pub fn line_plot(series: &[Series], title: &str, xlabel: &str, ylabel: &str) -> Canvas {
    let mut c = Canvas::new(W, H);
    let xs = || series.iter().flat_map(|s| (0..s.values.len()).map(|i| s.x(i))).filter(|x| x.is_finite());
    let (xmin, xmax) = (xs().fold(f64::INFINITY, f64::min), xs().fold(f64::NEG_INFINITY, f64::max));
    let (xmin, xmax) = if xmin.is_finite() && xmax > xmin { (xmin, xmax) } else { (0.0, 1.0) };
    let finite = series.iter().flat_map(|s| s.values.iter().copied()).filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    let (lo, hi) = if lo.is_finite() { padded(lo, hi) } else { (0.0, 1.0) };
    let f = Frame::new((xmin, xmax), (lo, hi));
    for y in nice_ticks(lo, hi) {
        let py = f.py(y);
        c.line(LEFT as f64, py, (W as i64 - RIGHT) as f64, py, GREY, 1.0);
    }
    for (k, s) in series.iter().enumerate() {
        let color = class_color(k as u32);
        let pts: Vec<(f64, f64)> =
            s.values.iter().enumerate().filter(|(_, v)| v.is_finite()).map(|(i, v)| (f.px(s.x(i)), f.py(*v))).collect();
        for w in pts.windows(2) {
            c.line(w[0].0, w[0].1, w[1].0, w[1].1, color, 1.5);
        }
        if s.xs.is_some() && pts.len() <= 60 {
            for &(x, y) in &pts {
                c.disc(x, y, 3.0, color, Some(BLACK));
            }
        }
        // The legend sits in the top-right corner, sized to its longest entry.
        let longest = series.iter().map(|s| Canvas::text_width(s.name, 1)).max().unwrap_or(0);
        let lx = W as i64 - RIGHT - 8 - longest - 22;
        let ly = TOP + 8 + 14 * k as i64;
        c.fill_rect(lx, ly, lx + 16, ly + 8, color);
        c.text(lx + 22, ly, s.name, BLACK, 1);
    }
    f.axes(&mut c, title, xlabel, ylabel);
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(nice_ticks(0.0, 10.0), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        let t = nice_ticks(-1.3, 2.7);
        assert!(t.first().copied().unwrap() >= -1.3 && t.last().copied().unwrap() <= 2.7);
    }

    #[test]
    fn decision_regions_are_painted_with_the_predicted_class() {
        let pts = [[-1.0f32, 0.0], [1.0, 0.0]];
        let c = decision_plot(&pts, Some(&[0, 1]), &[], 20, "t", |g| {
            Ok(g.chunks(2).map(|p| (p[0] > 0.0) as u32).collect())
        })
        .unwrap();
        let f = Frame::new(extent(&pts).0, extent(&pts).1);
        let left = c.get(f.px(-0.5) as usize, f.py(0.5) as usize);
        let right = c.get(f.px(0.5) as usize, f.py(0.5) as usize);
        assert_eq!(left, lighten(class_color(0), 0.7));
        assert_eq!(right, lighten(class_color(1), 0.7));
    }
}
