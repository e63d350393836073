//! The project's one random number generator. candle's CPU RNG cannot be seeded, so every
//! random draw (data, init, shuffling, noise) comes from here, derived from the global seed.

use rand::{Rng as _, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use sha2::{Digest, Sha256};

/// Cloning replays the same draws: a training step that evaluates the model twice gives
/// both passes the same dropout masks.
#[derive(Clone)]
pub struct Rng(ChaCha8Rng);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(ChaCha8Rng::seed_from_u64(seed))
    }

    /// An independent stream for one consumer (a stage), so that adding or caching one
    /// stage never shifts the draws of another.
    pub fn derive(seed: u64, label: &str) -> Self {
        let mut h = Sha256::new();
        h.update(seed.to_le_bytes());
        h.update(label.as_bytes());
        let digest = h.finalize();
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(&digest);
        Rng(ChaCha8Rng::from_seed(bytes))
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        self.0.random::<f64>()
    }

    pub fn normal(&mut self) -> f64 {
        StandardNormal.sample(&mut self.0)
    }

    /// Fills `out` with uniform 32-bit integers, in bulk (far cheaper per value than
    /// `uniform`, for masks over whole activations).
    pub fn fill_u32(&mut self, out: &mut [u32]) {
        self.0.fill(out);
    }

    /// Uniform integer in [0, n).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { self.0.random_range(0..n) }
    }

    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        // Fisher-Yates, written out so the permutation depends only on this generator.
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }

    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut p: Vec<usize> = (0..n).collect();
        self.shuffle(&mut p);
        p
    }
}

/// Minibatches of row indices without replacement: a fresh permutation whenever fewer than
/// a batch remain (the rest of the old one is dropped, as a `drop_last` loader does).
pub struct Batches {
    n: usize,
    batch: usize,
    order: Vec<usize>,
}

impl Batches {
    pub fn new(n: usize, batch: usize) -> Self {
        Batches { n, batch: batch.clamp(1, n.max(1)), order: Vec::new() }
    }

    pub fn batch(&self) -> usize {
        self.batch
    }

    pub fn next(&mut self, rng: &mut Rng) -> Vec<usize> {
        if self.order.len() < self.batch {
            self.order = rng.permutation(self.n);
        }
        self.order.drain(..self.batch.min(self.order.len())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_derived_streams_differ() {
        let a: Vec<f64> = (0..5)
            .map({
                let mut r = Rng::new(3);
                move |_| r.uniform()
            })
            .collect();
        let b: Vec<f64> = (0..5)
            .map({
                let mut r = Rng::new(3);
                move |_| r.uniform()
            })
            .collect();
        assert_eq!(a, b);
        let mut x = Rng::derive(3, "data");
        let mut y = Rng::derive(3, "fit");
        assert_ne!(x.uniform(), y.uniform());
    }

    #[test]
    fn normal_draws_have_unit_variance() {
        let mut r = Rng::new(1);
        let xs: Vec<f64> = (0..20000).map(|_| r.normal()).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "var {var}");
    }
}
