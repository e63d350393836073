//! Datasets as plain arrays; the language and candle both stay outside.

pub mod cifar;
pub mod digits;
pub mod fetch;
pub mod files;
pub mod functions;
pub mod idx;
pub mod outliers;
mod toy2d;
mod transform;

pub use files::DataError;
pub use toy2d::{TOY2D, generate as toy2d};
pub use transform::{dequantize, downsample, logit, split};

#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Row-major `[n, ...shape]`.
    pub x: Vec<f32>,
    pub n: usize,
    /// Shape of one example: `[d]` or `[channels, height, width]`.
    pub shape: Vec<usize>,
    /// Class labels, where the data has natural classes.
    pub y: Option<Vec<u32>>,
    pub classes: Option<usize>,
    /// The classes' names where they are not their numbers (CIFAR-10's `cat`), for figures.
    pub names: Option<Vec<String>>,
}

impl Dataset {
    /// Values per example.
    pub fn features(&self) -> usize {
        self.shape.iter().product()
    }

    /// Class `k`'s name: its name where the data has names, else its number.
    pub fn class_name(&self, k: u32) -> String {
        self.names.as_ref().and_then(|n| n.get(k as usize).cloned()).unwrap_or_else(|| k.to_string())
    }

    pub fn row(&self, i: usize) -> &[f32] {
        let f = self.features();
        &self.x[i * f..(i + 1) * f]
    }

    /// The examples at `idx`, in that order.
    pub fn subset(&self, idx: &[usize]) -> Dataset {
        let x = idx.iter().flat_map(|&i| self.row(i).iter().copied()).collect();
        let y = self.y.as_ref().map(|y| idx.iter().map(|&i| y[i]).collect());
        Dataset { x, n: idx.len(), shape: self.shape.clone(), y, classes: self.classes, names: self.names.clone() }
    }

    /// Per-feature (min, max).
    pub fn bounds(&self) -> Vec<(f32, f32)> {
        (0..self.features())
            .map(|j| {
                (0..self.n)
                    .map(|i| self.x[i * self.features() + j])
                    .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)))
            })
            .collect()
    }
}
