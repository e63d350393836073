//! An RGB raster with the primitives the figures need.

use font8x8::UnicodeFonts;

pub type Rgb = [u8; 3];

pub const WHITE: Rgb = [255, 255, 255];
pub const BLACK: Rgb = [0, 0, 0];
pub const GREY: Rgb = [200, 200, 200];

/// matplotlib's tab10, so figures look familiar.
pub const PALETTE: [Rgb; 10] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
];

pub fn class_color(k: u32) -> Rgb {
    PALETTE[k as usize % PALETTE.len()]
}

/// Mix `c` towards white by `t` in [0, 1].
pub fn lighten(c: Rgb, t: f32) -> Rgb {
    let m = |v: u8| (v as f32 + (255.0 - v as f32) * t).round() as u8;
    [m(c[0]), m(c[1]), m(c[2])]
}

pub struct Canvas {
    pub width: usize,
    pub height: usize,
    pixels: Vec<Rgb>,
}

impl Canvas {
    pub fn new(width: usize, height: usize) -> Self {
        Canvas { width, height, pixels: vec![WHITE; width * height] }
    }

    pub fn set(&mut self, x: i64, y: i64, c: Rgb) {
        if x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height {
            self.pixels[y as usize * self.width + x as usize] = c;
        }
    }

    pub fn get(&self, x: usize, y: usize) -> Rgb {
        self.pixels[y * self.width + x]
    }

    pub fn fill_rect(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, c: Rgb) {
        for y in y0.min(y1)..y0.max(y1) {
            for x in x0.min(x1)..x0.max(x1) {
                self.set(x, y, c);
            }
        }
    }

    pub fn disc(&mut self, cx: f64, cy: f64, r: f64, fill: Rgb, outline: Option<Rgb>) {
        let ri = r.ceil() as i64 + 1;
        for dy in -ri..=ri {
            for dx in -ri..=ri {
                let d = ((dx * dx + dy * dy) as f64).sqrt();
                let (x, y) = (cx.round() as i64 + dx, cy.round() as i64 + dy);
                if d <= r - 0.8 {
                    self.set(x, y, fill);
                } else if d <= r + 0.2 {
                    self.set(x, y, outline.unwrap_or(fill));
                }
            }
        }
    }

    /// A line of the given thickness in pixels.
    pub fn line(&mut self, x0: f64, y0: f64, x1: f64, y1: f64, c: Rgb, thickness: f64) {
        let len = ((x1 - x0).powi(2) + (y1 - y0).powi(2)).sqrt();
        let steps = (len * 2.0).ceil().max(1.0) as usize;
        let half = (thickness / 2.0).max(0.5);
        for i in 0..=steps {
            let t = i as f64 / steps as f64;
            let (x, y) = (x0 + (x1 - x0) * t, y0 + (y1 - y0) * t);
            if thickness <= 1.0 {
                self.set(x.round() as i64, y.round() as i64, c);
            } else {
                self.disc(x, y, half, c, None);
            }
        }
    }

    /// Text with its top-left corner at (x, y); `scale` multiplies the 8x8 glyphs.
    pub fn text(&mut self, x: i64, y: i64, s: &str, c: Rgb, scale: i64) {
        for (i, ch) in s.chars().enumerate() {
            let glyph = font8x8::BASIC_FONTS.get(ch).or_else(|| font8x8::BASIC_FONTS.get('?')).unwrap_or([0; 8]);
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..8 {
                    if bits & (1 << col) != 0 {
                        let px = x + (i as i64 * 8 + col) * scale;
                        let py = y + row as i64 * scale;
                        self.fill_rect(px, py, px + scale, py + scale, c);
                    }
                }
            }
        }
    }

    pub fn text_width(s: &str, scale: i64) -> i64 {
        s.chars().count() as i64 * 8 * scale
    }

    /// Text rotated a quarter turn counter-clockwise, reading bottom to top.
    pub fn text_vertical(&mut self, x: i64, y_bottom: i64, s: &str, c: Rgb) {
        for (i, ch) in s.chars().enumerate() {
            let glyph = font8x8::BASIC_FONTS.get(ch).unwrap_or([0; 8]);
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..8 {
                    if bits & (1 << col) != 0 {
                        self.set(x + row as i64, y_bottom - (i as i64 * 8 + col), c);
                    }
                }
            }
        }
    }

    pub fn to_png(&self) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, self.width as u32, self.height as u32);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let mut w = enc.write_header().map_err(|e| e.to_string())?;
            let bytes: Vec<u8> = self.pixels.iter().flatten().copied().collect();
            w.write_image_data(&bytes).map_err(|e| e.to_string())?;
        }
        Ok(out)
    }
}
