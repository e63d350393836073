//! Datasets as plain arrays; the language and candle both stay outside.

mod toy2d;

pub use toy2d::{TOY2D, generate as toy2d};

#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Row-major `[n, features]`.
    pub x: Vec<f32>,
    pub n: usize,
    pub features: usize,
    /// Class labels, where the data has natural classes.
    pub y: Option<Vec<u32>>,
    pub classes: Option<usize>,
}

impl Dataset {
    pub fn row(&self, i: usize) -> &[f32] {
        &self.x[i * self.features..(i + 1) * self.features]
    }

    /// Per-feature (min, max).
    pub fn bounds(&self) -> Vec<(f32, f32)> {
        (0..self.features)
            .map(|j| {
                (0..self.n)
                    .map(|i| self.x[i * self.features + j])
                    .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)))
            })
            .collect()
    }
}
