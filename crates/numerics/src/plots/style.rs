//! The look shared by every figure: the font, the palette, and sizes that scale with the
//! output (the SVG at 1x, the PNG at print resolution).

use plotters::style::{FontStyle, RGBColor, TextStyle, register_font};
use std::sync::Once;

/// DejaVu Sans (Bitstream Vera licence, assets/DejaVuSans-LICENSE), embedded so that
/// figures look the same on every machine and need no system fonts.
const FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// The family name figures ask for.
pub const FAMILY: &str = "sans-serif";

/// Registers the embedded font once per process.
pub fn fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font is a valid TrueType file (tested); a failure would only mean no text.
        let _ = register_font(FAMILY, FontStyle::Normal, FONT);
    });
}

/// Okabe and Ito's colour-blind-safe palette, in their order without the black (used for
/// text and outlines), then black for a ninth series.
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(213, 94, 0),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(240, 228, 66),
    RGBColor(0, 0, 0),
];

/// The colour of class or series `k`.
pub fn color(k: usize) -> RGBColor {
    PALETTE[k % PALETTE.len()]
}

/// `c` mixed towards white by `t` in [0, 1] (decision regions under their points).
pub fn lighten(c: RGBColor, t: f64) -> RGBColor {
    let m = |v: u8| (v as f64 + (255.0 - v as f64) * t).round() as u8;
    RGBColor(m(c.0), m(c.1), m(c.2))
}

pub const TEXT: RGBColor = RGBColor(0, 0, 0);
pub const GRID: RGBColor = RGBColor(225, 225, 225);

/// Sizes in points of the 1x figure, multiplied for the output's resolution.
#[derive(Clone, Copy, Debug)]
pub struct Scale(pub f64);

impl Scale {
    /// A length in pixels of this output.
    pub fn px(self, v: f64) -> i32 {
        (v * self.0).round() as i32
    }
    /// A line width in pixels, at least 1.
    pub fn stroke(self, v: f64) -> u32 {
        ((v * self.0).round() as u32).max(1)
    }
    pub fn text(self, size: f64) -> TextStyle<'static> {
        TextStyle::from((FAMILY, size * self.0)).color(&TEXT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_font_parses() {
        assert!(register_font("flowline-test", FontStyle::Normal, FONT).is_ok());
    }
}
