//! Gaussian copies of one input, drawn from the project's RNG (candle's CPU RNG cannot be
//! seeded), batched so the model sees many at once.

use crate::rng::Rng;
use candle_core::{Device, Result, Tensor};

/// `count` copies of `x` (one input of `shape`) with N(0, sigma^2 I) noise added, as one
/// batch `[count, ...shape]`. Noise is in input space and not clipped (Cohen et al.).
pub fn noisy_copies(
    x: &[f32],
    shape: &[usize],
    count: usize,
    sigma: f64,
    rng: &mut Rng,
    device: &Device,
) -> Result<Tensor> {
    let mut v = Vec::with_capacity(count * x.len());
    for _ in 0..count {
        v.extend(x.iter().map(|&xi| xi + (sigma * rng.normal()) as f32));
    }
    let mut dims = vec![count];
    dims.extend_from_slice(shape);
    Tensor::from_vec(v, dims, device)
}

/// Draws in chunks of at most `batch`: the sizes that add up to `draws`.
pub fn chunks(draws: usize, batch: usize) -> impl Iterator<Item = usize> {
    let batch = batch.max(1);
    (0..draws.div_ceil(batch)).map(move |k| batch.min(draws - k * batch))
}
