//! The layout of figures made of square panels in rows, each with a heading: where panel k
//! goes and how large the figure is.

use super::figure::err;
use super::style::Scale;
use plotters::coord::Shift;
use plotters::prelude::*;

pub(super) const GAP: f64 = 12.0;
const TITLE: f64 = 40.0;
pub(super) const HEADING: f64 = 18.0;

/// `count` panels of `side` units, `columns` to a row.
pub(super) struct PanelGrid {
    pub side: f64,
    pub count: usize,
    pub columns: usize,
}

impl PanelGrid {
    pub fn cols(&self) -> usize {
        self.columns.clamp(1, self.count.max(1))
    }

    /// The figure's size with `title` above the panels.
    pub fn size(&self, title: &str) -> (u32, u32) {
        let cols = self.cols();
        let rows = self.count.div_ceil(cols).max(1);
        let width = (cols as f64 * (self.side + GAP) + GAP).max(title.chars().count() as f64 * 9.0 + 2.0 * GAP);
        (width as u32, (TITLE + rows as f64 * (HEADING + self.side + GAP) + GAP) as u32)
    }

    /// The top-left corner of panel k itself (its heading sits above it).
    pub fn corner(&self, k: usize) -> (f64, f64) {
        let cols = self.cols();
        (GAP + (k % cols) as f64 * (self.side + GAP), TITLE + (k / cols) as f64 * (HEADING + self.side + GAP) + HEADING)
    }

    /// The title, and panel k's heading.
    pub fn title<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, s: Scale, title: &str) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        root.draw(&Text::new(title.to_string(), (s.px(GAP), s.px(12.0)), s.text(16.0))).map_err(err)?;
        Ok(())
    }

    pub fn heading<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        s: Scale,
        k: usize,
        heading: &str,
    ) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        let (x, y) = self.corner(k);
        root.draw(&Text::new(heading.to_string(), (s.px(x), s.px(y - HEADING)), s.text(self.heading_size(heading))))
            .map_err(err)?;
        Ok(())
    }

    /// 12 points, smaller (down to 8) for a heading that would run into the next panel.
    pub fn heading_size(&self, heading: &str) -> f64 {
        // DejaVu Sans averages about 0.6 em per character.
        let wide = heading.chars().count() as f64 * 0.6 * 12.0;
        if wide <= self.side + GAP * 0.5 { 12.0 } else { (12.0 * (self.side + GAP * 0.5) / wide).max(8.0) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_headings_get_a_smaller_font_so_that_they_stay_over_their_panel() {
        let g = PanelGrid { side: 170.0, count: 3, columns: 3 };
        assert_eq!(g.heading_size("moons: data (20000)"), 12.0);
        let long = "checkerboard: density (closed form)";
        let size = g.heading_size(long);
        assert!((8.0..12.0).contains(&size), "{size}");
        assert!(long.chars().count() as f64 * 0.6 * size <= 170.0 + GAP, "{size}");
    }
}
