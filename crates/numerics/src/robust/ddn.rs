//! Decoupled Direction and Norm (Rony et al., CVPR 2019): an l2 attack that steps along
//! the normalised gradient of the cross-entropy and, separately, shrinks the radius by
//! (1 - gamma) while the point is adversarial and grows it by (1 + gamma) while it is not,
//! projecting the perturbation onto that sphere and the bounds; the closest adversarial
//! iterate is kept. The step is cosine-annealed from `alpha` to 0.01.

use super::norms::{Norm, farthest};
use super::oracle::{Oracle, softmax};
use candle_core::Result;

/// The paper's defaults: 100 steps, gamma 0.05, initial radius 1, step 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DdnConfig {
    pub steps: usize,
    pub gamma: f64,
    pub init_norm: f64,
    pub alpha: f64,
}

impl Default for DdnConfig {
    fn default() -> Self {
        DdnConfig { steps: 100, gamma: 0.05, init_norm: 1.0, alpha: 1.0 }
    }
}

pub fn ddn(oracle: &Oracle, xs: &[Vec<f64>], labels: &[usize], cfg: &DdnConfig) -> Result<Vec<Option<Vec<f64>>>> {
    let (lo, hi) = oracle.bounds;
    let crit = oracle.criterion;
    let n = xs.len();
    let mut delta: Vec<Vec<f64>> = xs.iter().map(|x| vec![0.0; x.len()]).collect();
    let mut radius = vec![cfg.init_norm; n];
    // No perturbation inside the bounds is longer than the distance to the far corner.
    let worst: Vec<f64> = xs.iter().map(|x| farthest(Norm::L2, x, oracle.bounds)).collect();
    let mut best: Vec<(f64, Option<Vec<f64>>)> = vec![(f64::INFINITY, None); n];
    for k in 0..=cfg.steps {
        let zs: Vec<Vec<f64>> =
            xs.iter().zip(&delta).map(|(x, d)| x.iter().zip(d).map(|(a, b)| a + b).collect()).collect();
        let rows: Vec<&[f64]> = zs.iter().map(Vec::as_slice).collect();
        let mut adv = vec![false; n];
        // d CE / d logits = softmax - onehot(label); the attack ascends it.
        let (_, g) = oracle.gradients(&rows, &mut |i, l| {
            adv[i] = crit.margin(l, labels[i]).0 > 0.0;
            let mut p = softmax(l);
            p[labels[i]] -= 1.0;
            p
        })?;
        for i in 0..n {
            let norm = Norm::L2.of(&delta[i]);
            if adv[i] && norm < best[i].0 {
                best[i] = (norm, Some(zs[i].clone()));
            }
        }
        if k == cfg.steps {
            break;
        }
        let alpha =
            0.01 + (cfg.alpha - 0.01) * (1.0 + (std::f64::consts::PI * k as f64 / cfg.steps as f64).cos()) / 2.0;
        for i in 0..n {
            let gn = Norm::L2.of(&g[i]);
            if gn > 0.0 {
                delta[i].iter_mut().zip(&g[i]).for_each(|(d, gv)| *d += alpha * gv / gn);
            }
            radius[i] = (radius[i] * if adv[i] { 1.0 - cfg.gamma } else { 1.0 + cfg.gamma }).min(worst[i]);
            let dn = Norm::L2.of(&delta[i]);
            if dn > 0.0 {
                let s = radius[i] / dn;
                for (d, x) in delta[i].iter_mut().zip(&xs[i]) {
                    *d = (x + *d * s).clamp(lo, hi) - x;
                }
            }
        }
    }
    Ok(best.into_iter().map(|b| b.1).collect())
}

#[cfg(test)]
mod tests {
    use super::super::linear_problem::LinearProblem;
    use super::super::oracle::Criterion;
    use super::*;

    /// On a linear two-class model DDN finds the minimum l2 distance |gap| / ||w||_2 within 1%.
    #[test]
    fn finds_the_analytic_minimum_distance_on_a_linear_classifier() {
        let mut rng = crate::rng::Rng::new(22);
        let p = LinearProblem::random(&mut rng, 8, 6, 1.0, 0.0);
        let model = |z: &candle_core::Tensor| p.model(z);
        let oracle = Oracle::new(&model, &[8], (-100.0, 100.0), Criterion { top: 1 }, &candle_core::Device::Cpu);
        let exact = p.l2();
        let adv = ddn(&oracle, &p.xs, &p.labels, &DdnConfig::default()).unwrap();
        p.assert_distances(&adv, Norm::L2, &exact, 0.01);
    }
}
