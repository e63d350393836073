//! Randomized smoothing (Cohen, Rosenfeld & Kolter 2019): the smoothed classifier
//! g(x) = argmax_c P(f(x + sigma Z) = c), its PREDICT (abstaining by a binomial test) and
//! CERTIFY (selection draws, estimation draws, a Clopper-Pearson lower bound p_A and the
//! l2 radius sigma Phi^-1(p_A)).

use super::noise::{chunks, noisy_copies};
use super::stats::{binomial_test_half, clopper_pearson_lower, normal_quantile};
use crate::rng::Rng;
use candle_core::{Device, Result, Tensor};

/// The base classifier: the predicted class of every input of a batch.
pub type Classify<'a> = dyn FnMut(&Tensor) -> Result<Vec<u32>> + 'a;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Smoothing {
    pub sigma: f64,
    /// Draws that pick the candidate class.
    pub n0: usize,
    /// Draws that estimate its probability.
    pub n: usize,
    /// The certificate fails with probability at most alpha.
    pub alpha: f64,
    /// Noisy copies per model call.
    pub batch: usize,
}

impl Smoothing {
    /// The paper's settings: n0 = 100, n = 100,000, alpha = 0.001.
    pub fn cohen(sigma: f64) -> Self {
        Smoothing { sigma, n0: 100, n: 100_000, alpha: 0.001, batch: 1000 }
    }
}

/// One input's certificate: the class (None: abstain), the certified l2 radius (0 when
/// abstaining), the lower bound on p_A and the model evaluations it took.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Certificate {
    pub class: Option<usize>,
    pub radius: f64,
    pub p_lower: f64,
    pub evaluations: usize,
}

/// How often the base classifier predicts each class on `draws` noisy copies of `x`.
#[allow(clippy::too_many_arguments)]
pub fn noise_counts(
    classify: &mut Classify,
    x: &[f32],
    shape: &[usize],
    classes: usize,
    draws: usize,
    s: &Smoothing,
    rng: &mut Rng,
    device: &Device,
) -> Result<Vec<u64>> {
    let mut counts = vec![0u64; classes];
    for size in chunks(draws, s.batch) {
        let batch = noisy_copies(x, shape, size, s.sigma, rng, device)?;
        for c in classify(&batch)? {
            if let Some(slot) = counts.get_mut(c as usize) {
                *slot += 1;
            }
        }
    }
    Ok(counts)
}

/// The most frequent class and its count (the lowest index among ties).
fn top(counts: &[u64]) -> (usize, u64) {
    counts.iter().enumerate().fold((0, 0), |best, (c, &k)| if k > best.1 { (c, k) } else { best })
}

impl Smoothing {
    /// CERTIFY: with probability at least 1 - alpha, g predicts the returned class within
    /// the returned radius of `x`.
    pub fn certify(
        &self,
        classify: &mut Classify,
        x: &[f32],
        shape: &[usize],
        classes: usize,
        rng: &mut Rng,
        device: &Device,
    ) -> Result<Certificate> {
        let selection = noise_counts(classify, x, shape, classes, self.n0, self, rng, device)?;
        let (candidate, _) = top(&selection);
        let estimation = noise_counts(classify, x, shape, classes, self.n, self, rng, device)?;
        let p_lower = clopper_pearson_lower(estimation[candidate], self.n as u64, self.alpha);
        let evaluations = self.n0 + self.n;
        if p_lower < 0.5 {
            return Ok(Certificate { class: None, radius: 0.0, p_lower, evaluations });
        }
        Ok(Certificate { class: Some(candidate), radius: self.sigma * normal_quantile(p_lower), p_lower, evaluations })
    }

    /// PREDICT on `draws` noisy copies: the top class, or None (abstain) when the binomial
    /// test cannot tell the top two apart at level alpha.
    #[allow(clippy::too_many_arguments)]
    pub fn predict(
        &self,
        classify: &mut Classify,
        x: &[f32],
        shape: &[usize],
        classes: usize,
        draws: usize,
        rng: &mut Rng,
        device: &Device,
    ) -> Result<Option<usize>> {
        let counts = noise_counts(classify, x, shape, classes, draws, self, rng, device)?;
        let (first, n_a) = top(&counts);
        let n_b = counts.iter().enumerate().filter(|(c, _)| *c != first).map(|(_, &k)| k).max().unwrap_or(0);
        Ok((binomial_test_half(n_a, n_a + n_b) <= self.alpha).then_some(first))
    }
}
