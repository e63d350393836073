//! Panels of scalar fields on a square grid (a learned density, histograms of data and
//! samples), each scaled to its own 99.5th percentile (one crowded histogram cell would
//! otherwise darken the rest) and coloured on a perceptual map, with a heading over each
//! panel: FFJORD's figure of toy densities.

use super::figure::{Draw, Figure, err};
use super::panels::PanelGrid;
use super::style::Scale;
use plotters::coord::Shift;
use plotters::prelude::*;

const PANEL: f64 = 150.0;

/// One panel: `side` x `side` values, row-major with the first row at the top.
pub struct Heatmap {
    pub heading: String,
    pub values: Vec<f64>,
    pub side: usize,
}

pub struct Heatmaps<'a> {
    pub title: &'a str,
    pub panels: &'a [Heatmap],
    pub columns: usize,
}

/// Viridis at nine evenly spaced points (matplotlib's published table).
const VIRIDIS: [(f64, f64, f64); 9] = [
    (0.267, 0.005, 0.329),
    (0.283, 0.141, 0.458),
    (0.254, 0.265, 0.530),
    (0.207, 0.372, 0.553),
    (0.164, 0.471, 0.558),
    (0.128, 0.567, 0.551),
    (0.135, 0.659, 0.518),
    (0.267, 0.749, 0.441),
    (0.993, 0.906, 0.144),
];

/// The colour of v in [0, 1] (clamped; NaN is the lowest colour).
pub fn viridis(v: f64) -> [u8; 3] {
    let v = if v.is_nan() { 0.0 } else { v.clamp(0.0, 1.0) };
    let x = v * (VIRIDIS.len() - 1) as f64;
    let i = (x.floor() as usize).min(VIRIDIS.len() - 2);
    let f = x - i as f64;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    let mix = |p: f64, q: f64| ((p + (q - p) * f) * 255.0).round() as u8;
    [mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2)]
}

impl Heatmaps<'_> {
    pub fn render(&self) -> Result<Figure, String> {
        Figure::render(self)
    }
    fn grid(&self) -> PanelGrid {
        PanelGrid { side: PANEL, count: self.panels.len(), columns: self.columns }
    }
}

/// `side` x `side` values scaled by nearest neighbour to `px` x `px`, RGB on viridis up to
/// their 99.5th percentile.
pub(super) fn pixels(values: &[f64], side: usize, px: usize) -> Vec<u8> {
    let mut finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite() && *v > 0.0).collect();
    finite.sort_by(f64::total_cmp);
    let max = finite
        .get(((finite.len() as f64 * 0.995) as usize).min(finite.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0.0);
    let side = side.max(1);
    let mut out = Vec::with_capacity(px * px * 3);
    for y in 0..px {
        for x in 0..px {
            let v = values.get((y * side / px) * side + x * side / px).copied().unwrap_or(0.0);
            out.extend(viridis(if max > 0.0 { v / max } else { 0.0 }));
        }
    }
    out
}

impl Draw for Heatmaps<'_> {
    fn size(&self) -> (u32, u32) {
        self.grid().size(self.title)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, s: Scale) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        let grid = self.grid();
        grid.title(root, s, self.title)?;
        let side = s.px(PANEL).max(1) as u32;
        for (k, p) in self.panels.iter().enumerate() {
            grid.heading(root, s, k, &p.heading)?;
            let (x, y) = grid.corner(k);
            let bitmap = BitMapElement::with_owned_buffer(
                (s.px(x), s.px(y)),
                (side, side),
                pixels(&p.values, p.side, side as usize),
            )
            .ok_or_else(|| "a heatmap buffer of the wrong size".to_string())?;
            root.draw(&bitmap).map_err(err)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plots::figure::testing::{assert_drawn, has_text};

    #[test]
    fn the_colour_map_runs_from_dark_purple_to_yellow() {
        assert_eq!(viridis(0.0), [68, 1, 84]);
        assert_eq!(viridis(1.0), [253, 231, 37]);
        assert_eq!(viridis(f64::NAN), viridis(0.0));
        let lum = |c: [u8; 3]| 0.3 * c[0] as f64 + 0.59 * c[1] as f64 + 0.11 * c[2] as f64;
        let ramp: Vec<f64> = (0..=20).map(|i| lum(viridis(i as f64 / 20.0))).collect();
        assert!(ramp.windows(2).all(|w| w[1] > w[0]), "lightness rises monotonically: {ramp:?}");
    }

    #[test]
    fn panels_are_drawn_with_their_headings() {
        let g = 50;
        let bump = |cx: f64| -> Vec<f64> {
            (0..g * g)
                .map(|i| {
                    let (x, y) = ((i % g) as f64 / g as f64, (i / g) as f64 / g as f64);
                    (-((x - cx).powi(2) + (y - 0.5).powi(2)) * 30.0).exp()
                })
                .collect()
        };
        let panels = [
            Heatmap { heading: "data".into(), values: bump(0.3), side: g },
            Heatmap { heading: "density".into(), values: bump(0.5), side: g },
            Heatmap { heading: "samples".into(), values: bump(0.7), side: g },
        ];
        let f = Heatmaps { title: "A moving bump", panels: &panels, columns: 3 }.render().unwrap();
        assert_drawn(&f, "heatmaps", 0.3);
        assert!(has_text(&f, "density") && has_text(&f, "A moving bump"));
    }
}
