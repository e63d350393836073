//! A grid of images with a caption under each (samples, misclassified examples, clean /
//! adversarial / perturbation triples), optionally with column headings.

use super::figure::{Draw, Figure, err};
use super::style::Scale;
use plotters::coord::Shift;
use plotters::prelude::*;

/// Side of each image in the 1x figure (a 28 x 28 image at 3 units a pixel).
const CELL: f64 = 84.0;
const GAP: f64 = 12.0;
const CAPTION: f64 = 20.0;
const TITLE: f64 = 40.0;
const HEADING: f64 = 20.0;

pub struct ImageGrid<'a> {
    pub title: &'a str,
    /// Examples of `shape` [1 or 3, h, w], values in [0, 1] (clamped).
    pub images: &'a [&'a [f32]],
    pub shape: &'a [usize],
    pub captions: &'a [String],
    /// Columns; square-ish when absent.
    pub columns: Option<usize>,
    /// A heading over each column.
    pub headings: &'a [&'a str],
}

impl ImageGrid<'_> {
    pub fn render(&self) -> Result<Figure, String> {
        Figure::render(self)
    }
    fn cols(&self) -> usize {
        self.columns.unwrap_or_else(|| (self.images.len() as f64).sqrt().ceil() as usize).max(1)
    }
    fn dims(&self) -> (usize, usize, usize) {
        match self.shape {
            [c, h, w] => (*c, *h, *w),
            _ => (1, 1, self.shape.iter().product()),
        }
    }
    fn top(&self) -> f64 {
        TITLE + if self.headings.is_empty() { 0.0 } else { HEADING }
    }
    /// Image `k` scaled by nearest neighbour to `side` x `side` pixels, RGB.
    fn pixels(&self, k: usize, side: u32) -> Vec<u8> {
        let (c, h, w) = self.dims();
        let img = self.images[k];
        let side = side as usize;
        let mut out = Vec::with_capacity(side * side * 3);
        for y in 0..side {
            for x in 0..side {
                let (sy, sx) = (y * h / side, x * w / side);
                let at = |ch: usize| {
                    (img.get(ch * h * w + sy * w + sx).copied().unwrap_or(0.0).clamp(0.0, 1.0) * 255.0).round() as u8
                };
                if c >= 3 {
                    out.extend([at(0), at(1), at(2)]);
                } else {
                    out.extend([at(0); 3]);
                }
            }
        }
        out
    }
}

impl Draw for ImageGrid<'_> {
    fn size(&self) -> (u32, u32) {
        let cols = self.cols();
        let rows = self.images.len().div_ceil(cols).max(1);
        // About 9 units a character of the 16-point title.
        let width = (cols as f64 * (CELL + GAP) + GAP).max(self.title.chars().count() as f64 * 9.0 + 2.0 * GAP);
        (width as u32, (self.top() + rows as f64 * (CELL + CAPTION + GAP) + GAP) as u32)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, s: Scale) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        let cols = self.cols();
        root.draw(&Text::new(self.title.to_string(), (s.px(GAP), s.px(12.0)), s.text(16.0))).map_err(err)?;
        for (j, heading) in self.headings.iter().take(cols).enumerate() {
            let x = s.px(GAP + j as f64 * (CELL + GAP));
            root.draw(&Text::new(heading.to_string(), (x, s.px(TITLE)), s.text(12.0))).map_err(err)?;
        }
        let side = s.px(CELL) as u32;
        for k in 0..self.images.len() {
            let (x, y) =
                (GAP + (k % cols) as f64 * (CELL + GAP), self.top() + (k / cols) as f64 * (CELL + CAPTION + GAP));
            let at = (s.px(x), s.px(y));
            let bitmap = BitMapElement::with_owned_buffer(at, (side, side), self.pixels(k, side))
                .ok_or_else(|| "an image buffer of the wrong size".to_string())?;
            root.draw(&bitmap).map_err(err)?;
            if let Some(cap) = self.captions.get(k) {
                root.draw(&Text::new(cap.clone(), (s.px(x), s.px(y + CELL + 4.0)), s.text(11.0))).map_err(err)?;
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
    fn grids_of_grey_and_colour_images_are_drawn_with_captions() {
        let grey: Vec<Vec<f32>> =
            (0..5).map(|k| (0..28 * 28).map(|i| ((i * (k + 1)) % 29) as f32 / 28.0).collect()).collect();
        let refs: Vec<&[f32]> = grey.iter().map(Vec::as_slice).collect();
        let captions: Vec<String> = ["seven", "two", "one", "zero", "four"].map(String::from).to_vec();
        let g = ImageGrid {
            title: "Five digits",
            images: &refs,
            shape: &[1, 28, 28],
            captions: &captions,
            columns: None,
            headings: &[],
        };
        let f = g.render().unwrap();
        assert_drawn(&f, "grid_grey", 0.05);
        assert!(has_text(&f, "seven") && f.svg.contains("<image"));
        let colour: Vec<f32> = (0..3 * 32 * 32).map(|i| (i % 7) as f32 / 6.0).collect();
        let refs = [colour.as_slice(); 3];
        let g = ImageGrid {
            title: "Clean / adversarial / perturbation",
            images: &refs,
            shape: &[3, 32, 32],
            captions: &captions[..3],
            columns: Some(3),
            headings: &["clean", "adversarial", "perturbation"],
        };
        let f = g.render().unwrap();
        assert_drawn(&f, "grid_colour", 0.05);
        assert!(has_text(&f, "perturbation"));
    }
}
