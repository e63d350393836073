//! Panels of a 2-D vector field drawn as arrows on a grid, optionally over a scalar field
//! (a density at the same time): a flow's velocity at several times. Arrow lengths share
//! one scale per row of panels (one flow at its times), the longest nine tenths of the
//! grid spacing, so that a row shows the field speeding up or slowing down.

use super::figure::{Draw, Figure, err};
use super::heatmap::pixels;
use super::panels::PanelGrid;
use super::style::Scale;
use plotters::coord::Shift;
use plotters::prelude::*;

const PANEL: f64 = 170.0;

/// One panel: arrows (x, y, dx, dy) in data units over the square [lo, hi]^2, and an
/// optional background of `side` x `side` values (row-major, top row first).
pub struct ArrowPanel {
    pub heading: String,
    pub arrows: Vec<[f64; 4]>,
    pub background: Option<(Vec<f64>, usize)>,
    pub lo: f64,
    pub hi: f64,
    /// The spacing of the arrows' grid in data units (the longest arrow of a row spans 0.9 of it).
    pub spacing: f64,
}

pub struct ArrowPanels<'a> {
    pub title: &'a str,
    pub panels: &'a [ArrowPanel],
    pub columns: usize,
}

impl ArrowPanels<'_> {
    pub fn render(&self) -> Result<Figure, String> {
        if self.panels.iter().any(|p| p.hi <= p.lo || p.spacing.is_nan() || p.spacing <= 0.0) {
            return Err("an arrow panel needs lo < hi and a positive spacing".into());
        }
        Figure::render(self)
    }
    fn grid(&self) -> PanelGrid {
        PanelGrid { side: PANEL, count: self.panels.len(), columns: self.columns }
    }
    /// Data units per unit of velocity for panel k's row.
    fn scale(&self, k: usize) -> f64 {
        let cols = self.grid().cols();
        let row = k / cols;
        let panels = &self.panels[row * cols..((row + 1) * cols).min(self.panels.len())];
        let longest = panels
            .iter()
            .flat_map(|p| p.arrows.iter().map(|a| a[2].hypot(a[3])))
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max);
        if longest > 0.0 { 0.9 * self.panels[k].spacing / longest } else { 0.0 }
    }
}

impl Draw for ArrowPanels<'_> {
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
            let (x0, y0) = grid.corner(k);
            let color = match &p.background {
                Some((values, n)) => {
                    let bitmap = BitMapElement::with_owned_buffer(
                        (s.px(x0), s.px(y0)),
                        (side, side),
                        pixels(values, *n, side as usize),
                    )
                    .ok_or_else(|| "a background buffer of the wrong size".to_string())?;
                    root.draw(&bitmap).map_err(err)?;
                    RGBColor(255, 255, 255)
                }
                None => {
                    let frame = [(s.px(x0), s.px(y0)), (s.px(x0 + PANEL), s.px(y0 + PANEL))];
                    root.draw(&Rectangle::new(
                        frame,
                        ShapeStyle::from(&RGBColor(160, 160, 160)).stroke_width(s.stroke(0.8)),
                    ))
                    .map_err(err)?;
                    RGBColor(40, 40, 40)
                }
            };
            let scale = self.scale(k);
            let span = p.hi - p.lo;
            let at = |x: f64, y: f64| (s.px(x0 + (x - p.lo) / span * PANEL), s.px(y0 + (p.hi - y) / span * PANEL));
            let style = ShapeStyle::from(&color).stroke_width(s.stroke(0.9));
            for a in &p.arrows {
                let (dx, dy) = (a[2] * scale, a[3] * scale);
                if !(dx.is_finite() && dy.is_finite()) {
                    continue;
                }
                let (tx, ty) = (a[0] + dx, a[1] + dy);
                root.draw(&PathElement::new(vec![at(a[0], a[1]), at(tx, ty)], style)).map_err(err)?;
                let len = dx.hypot(dy);
                if len <= 0.0 {
                    continue;
                }
                // The head: two strokes a third of the arrow long (at most a third of the
                // spacing), 25 degrees either side of the shaft.
                let head = (len / 3.0).min(p.spacing / 3.0);
                let (ux, uy) = (dx / len, dy / len);
                for side in [-1.0f64, 1.0] {
                    let (c, sn) = (25f64.to_radians().cos(), side * 25f64.to_radians().sin());
                    let (bx, by) = (-(ux * c - uy * sn), -(ux * sn + uy * c));
                    root.draw(&PathElement::new(vec![at(tx, ty), at(tx + head * bx, ty + head * by)], style))
                        .map_err(err)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plots::figure::testing::{assert_drawn, has_text};

    #[test]
    fn a_rotating_field_is_drawn_over_its_background() {
        let grid: Vec<f64> = (0..9).map(|i| -2.0 + 0.5 * i as f64).collect();
        let arrows = |speed: f64| -> Vec<[f64; 4]> {
            grid.iter().flat_map(|&x| grid.iter().map(move |&y| [x, y, -y * speed, x * speed])).collect()
        };
        let bump: Vec<f64> = (0..400)
            .map(|i| (-(((i % 20) as f64 - 10.0).powi(2) + ((i / 20) as f64 - 10.0).powi(2)) / 20.0).exp())
            .collect();
        let panels = [
            ArrowPanel {
                heading: "t = 0".into(),
                arrows: arrows(1.0),
                background: Some((bump, 20)),
                lo: -2.5,
                hi: 2.5,
                spacing: 0.5,
            },
            ArrowPanel {
                heading: "t = 1".into(),
                arrows: arrows(0.2),
                background: None,
                lo: -2.5,
                hi: 2.5,
                spacing: 0.5,
            },
        ];
        let f = ArrowPanels { title: "A rotation slowing down", panels: &panels, columns: 2 }.render().unwrap();
        assert_drawn(&f, "arrows", 0.2);
        assert!(has_text(&f, "t = 1") && has_text(&f, "A rotation slowing down"));
        // One scale per row: the slow panel's longest arrow is a fifth of the fast one's.
        let figure = ArrowPanels { title: "", panels: &panels, columns: 2 };
        assert!((figure.scale(0) - figure.scale(1)).abs() < 1e-12);
        let bad =
            [ArrowPanel { heading: String::new(), arrows: vec![], background: None, lo: 1.0, hi: 1.0, spacing: 0.5 }];
        assert!(ArrowPanels { title: "", panels: &bad, columns: 1 }.render().is_err());
    }
}
