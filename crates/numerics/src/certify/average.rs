//! The Gaussian average of a model's outputs, E[f(x + sigma Z)], by Monte Carlo, and the
//! certificate a deterministic average gives from one evaluation.

use super::noise::{chunks, noisy_copies};
use crate::rng::Rng;
use candle_core::{DType, Device, Result, Tensor};

/// The certified l2 radius of the Gaussian average v of a [0, 1]-valued classifier, from
/// its top class and the gap to the runner-up: sigma sqrt(pi/2) (v_(1) - v_(2)). Each
/// difference v_i - v_j of such an average is sqrt(2/pi)/sigma-Lipschitz, so the top class
/// cannot change within that distance. Exact only when v is that average.
pub fn gap_radius(v: &[f64], sigma: f64) -> (usize, f64) {
    let (first, gap) = top_gap(v);
    (first, radius_of_gap(gap, sigma))
}

/// The top output (the lowest index among ties) and its lead over the runner-up, v_(1) - v_(2).
pub fn top_gap(v: &[f64]) -> (usize, f64) {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&a, &b| v[b].total_cmp(&v[a]).then(a.cmp(&b)));
    let first = order.first().copied().unwrap_or(0);
    let gap = match order.as_slice() {
        [a, b, ..] => v[*a] - v[*b],
        _ => 0.0,
    };
    (first, gap)
}

/// sigma sqrt(pi/2) times a (non-negative) top-two gap.
pub fn radius_of_gap(gap: f64, sigma: f64) -> f64 {
    sigma * (std::f64::consts::PI / 2.0).sqrt() * gap.max(0.0)
}

/// E[out(x + sigma Z)] per output by `draws` Monte-Carlo draws, with the standard error of
/// each mean: (mean, standard error).
#[allow(clippy::too_many_arguments)]
pub fn monte_carlo_average(
    out: &dyn Fn(&Tensor) -> Result<Tensor>,
    x: &[f32],
    shape: &[usize],
    draws: usize,
    sigma: f64,
    batch: usize,
    rng: &mut Rng,
    device: &Device,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let mut sum: Vec<f64> = Vec::new();
    let mut sq: Vec<f64> = Vec::new();
    for size in chunks(draws, batch) {
        let y = out(&noisy_copies(x, shape, size, sigma, rng, device)?)?.to_dtype(DType::F64)?;
        let rows: Vec<Vec<f64>> = y.reshape((size, ()))?.to_vec2()?;
        for r in rows {
            if sum.is_empty() {
                sum = vec![0.0; r.len()];
                sq = vec![0.0; r.len()];
            }
            for (k, v) in r.iter().enumerate() {
                sum[k] += v;
                sq[k] += v * v;
            }
        }
    }
    let n = draws.max(1) as f64;
    let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
    let se = sq.iter().zip(&mean).map(|(q, m)| ((q / n - m * m).max(0.0) / (n - 1.0).max(1.0)).sqrt()).collect();
    Ok((mean, se))
}
