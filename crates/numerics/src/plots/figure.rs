//! A figure drawn twice from one description: PNG at print resolution and SVG beside it.

use super::style::{Scale, fonts};
use plotters::coord::Shift;
use plotters::prelude::*;

/// What a figure kind draws onto any backend, with sizes multiplied by the scale.
pub trait Draw {
    /// Size of the 1x (SVG) figure.
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, s: Scale) -> Result<(), String>
    where
        DB::ErrorType: 'static;
}

/// The PNG's pixels per SVG unit: 640 units wide print at 1,920 pixels, 6.4 inches at 300 dpi.
pub const PNG_SCALE: f64 = 3.0;

/// A rendered figure.
pub struct Figure {
    pub png: Vec<u8>,
    pub svg: String,
    /// The PNG's size in pixels.
    pub pixels: (u32, u32),
}

impl Figure {
    pub fn render(d: &impl Draw) -> Result<Figure, String> {
        fonts();
        let (w, h) = d.size();
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
            root.fill(&WHITE).map_err(err)?;
            d.draw(&root, Scale(1.0))?;
            root.present().map_err(err)?;
        }
        let (pw, ph) = ((w as f64 * PNG_SCALE) as u32, (h as f64 * PNG_SCALE) as u32);
        let mut rgb = vec![255u8; pw as usize * ph as usize * 3];
        {
            let root = BitMapBackend::with_buffer(&mut rgb, (pw, ph)).into_drawing_area();
            d.draw(&root, Scale(PNG_SCALE))?;
            root.present().map_err(err)?;
        }
        Ok(Figure { png: encode_png(&rgb, pw, ph)?, svg, pixels: (pw, ph) })
    }
}

/// A plotters error as text.
pub fn err(e: impl std::fmt::Display) -> String {
    format!("drawing failed: {e}")
}

fn encode_png(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    // 300 dpi in pixels per metre, so that a paper's figure comes out at its printed size.
    enc.set_pixel_dims(Some(png::PixelDimensions { xppu: 11811, yppu: 11811, unit: png::Unit::Meter }));
    let mut writer = enc.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(rgb).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(out)
}

#[cfg(test)]
pub mod testing {
    use super::Figure;

    /// The PNG decodes to the promised size and is not blank: more than a few distinct
    /// colours and a fair share of non-white pixels. The SVG is a document with text.
    ///
    /// With FLOWLINE_KEEP_FIGURES=DIR the figure is also written there as NAME.png and
    /// NAME.svg, to look at.
    pub fn assert_drawn(f: &Figure, name: &str, min_ink: f64) {
        if let Some(dir) = std::env::var_os("FLOWLINE_KEEP_FIGURES") {
            let dir = std::path::PathBuf::from(dir);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("{name}.png")), &f.png).unwrap();
            std::fs::write(dir.join(format!("{name}.svg")), &f.svg).unwrap();
        }
        let decoder = png::Decoder::new(std::io::Cursor::new(&f.png));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), f.pixels);
        // The PNG is the SVG's figure at print resolution.
        let width: f64 = f.svg.split('"').nth(1).and_then(|w| w.parse().ok()).unwrap();
        assert_eq!(f.pixels.0, (width * super::PNG_SCALE) as u32);
        let px = &buf[..info.buffer_size()];
        let ink = px.chunks(3).filter(|p| p.iter().any(|&v| v < 250)).count() as f64 / (px.len() / 3) as f64;
        assert!(ink > min_ink, "only {:.2}% of the pixels are drawn", ink * 100.0);
        let colors: std::collections::HashSet<&[u8]> = px.chunks(3).collect();
        assert!(colors.len() > 8, "{} colours", colors.len());
        assert!(f.svg.starts_with("<svg") && f.svg.contains("<text"), "svg: {}", &f.svg[..f.svg.len().min(200)]);
    }

    /// The SVG has a text element reading `s`.
    pub fn has_text(f: &Figure, s: &str) -> bool {
        f.svg.contains(&format!(">\n{s}\n</text>")) || f.svg.contains(&format!(">{s}</text>"))
    }
}
