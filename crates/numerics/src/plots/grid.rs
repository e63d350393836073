//! A grid of images with a caption under each (samples, misclassified examples).

use super::canvas::{BLACK, Canvas};

/// `images`: examples of `shape` [1 or 3, h, w] with values in [0, 1] (clamped), in a
/// square-ish grid.
pub fn image_grid(images: &[&[f32]], shape: &[usize], captions: &[String], title: &str) -> Canvas {
    let cols = (images.len() as f64).sqrt().ceil().max(1.0) as usize;
    image_grid_columns(images, shape, captions, title, cols)
}

/// The same with a fixed number of columns (clean / adversarial / perturbation triples).
pub fn image_grid_columns(images: &[&[f32]], shape: &[usize], captions: &[String], title: &str, cols: usize) -> Canvas {
    let cols = cols.max(1);
    let (c, h, w) = match shape {
        [c, h, w] => (*c, *h, *w),
        _ => (1, 1, shape.iter().product()),
    };
    let scale = (96 / h.max(w)).clamp(1, 8);
    let (cell_w, cell_h) = (w * scale + 8, h * scale + 20);
    let rows = images.len().div_ceil(cols).max(1);
    let width = (cols * cell_w + 16).max(Canvas::text_width(title, 2) as usize + 16);
    let mut canvas = Canvas::new(width, rows * cell_h + 40);
    canvas.text(8, 8, title, BLACK, 2);
    for (k, img) in images.iter().enumerate() {
        let (x0, y0) = (8 + (k % cols) * cell_w, 32 + (k / cols) * cell_h);
        for y in 0..h * scale {
            for x in 0..w * scale {
                let (sy, sx) = (y / scale, x / scale);
                let at = |ch: usize| {
                    (img.get(ch * h * w + sy * w + sx).copied().unwrap_or(0.0).clamp(0.0, 1.0) * 255.0) as u8
                };
                let px = if c >= 3 { [at(0), at(1), at(2)] } else { [at(0); 3] };
                canvas.set((x0 + x) as i64, (y0 + y) as i64, px);
            }
        }
        if let Some(cap) = captions.get(k) {
            canvas.text(x0 as i64, (y0 + h * scale + 4) as i64, cap, BLACK, 1);
        }
    }
    canvas
}
