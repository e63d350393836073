//! Fast Minimum-Norm attack (Pintor, Roli, Brendel, Biggio, NeurIPS 2021) in l0, l1, l2
//! and linf. Each step ascends the logit margin along its l2-normalised gradient and then
//! projects the perturbation onto an lp ball of radius eps that adapts: while the point is
//! adversarial eps shrinks by (1 - gamma) (never above the best norm found), while it is
//! not eps grows by (1 + gamma), or, before the first success, jumps to the current norm
//! plus the linearised distance to the boundary, |margin| / ||grad||_q (q the dual
//! exponent), overshot by (1 + gamma). In l0 eps counts entries: it moves by at least one per step. Step size and
//! gamma are cosine-annealed; the closest adversarial iterate is kept.
//!
//! The projection is the exact Euclidean one in every norm (`Norm::project`): l1 by
//! Duchi et al.'s sort, l0 by keeping the largest entries, then the box.

use super::norms::{Norm, diff, farthest};
use super::oracle::{Oracle, Space, margin_and_dlogits};
use candle_core::Result;

/// The reference code's defaults (step 1 annealed to 1/100 of it, gamma 0.05 to 0.001)
/// with the paper's evaluation budget of a few hundred steps cut to DDN's 100.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FmnConfig {
    pub norm: Norm,
    pub steps: usize,
    pub alpha_init: f64,
    pub alpha_final: f64,
    pub gamma_init: f64,
    pub gamma_final: f64,
}

impl FmnConfig {
    pub fn paper(norm: Norm) -> Self {
        FmnConfig { norm, steps: 100, alpha_init: 1.0, alpha_final: 0.01, gamma_init: 0.05, gamma_final: 0.001 }
    }
}

/// The attack on every input, from the input itself or, where `starts` holds one, from
/// that adversarial point: the closest adversarial iterate, or `None`.
pub fn fmn(
    oracle: &Oracle,
    xs: &[Vec<f64>],
    labels: &[usize],
    cfg: &FmnConfig,
    starts: Option<&[Option<Vec<f64>>]>,
) -> Result<Vec<Option<Vec<f64>>>> {
    let (lo, hi) = oracle.bounds;
    let crit = oracle.criterion;
    let norm = cfg.norm;
    let n = xs.len();
    let start = |i: usize| starts.and_then(|s| s.get(i).cloned().flatten());
    let mut delta: Vec<Vec<f64>> =
        (0..n).map(|i| start(i).map_or_else(|| vec![0.0; xs[i].len()], |s| diff(&s, &xs[i]))).collect();
    // No perturbation inside the bounds is longer than the one to the far corner.
    let worst: Vec<f64> = xs.iter().map(|x| farthest(norm, x, oracle.bounds)).collect();
    let mut eps: Vec<f64> = (0..n)
        .map(|i| match (start(i), norm) {
            (Some(_), _) => norm.of(&delta[i]),
            (None, Norm::L0) => 1.0,
            (None, _) => f64::INFINITY,
        })
        .collect();
    let mut found = vec![false; n];
    let mut best: Vec<(f64, Option<Vec<f64>>)> = vec![(f64::INFINITY, None); n];
    for k in 0..=cfg.steps {
        let zs: Vec<Vec<f64>> =
            xs.iter().zip(&delta).map(|(x, d)| x.iter().zip(d).map(|(a, b)| a + b).collect()).collect();
        let rows: Vec<&[f64]> = zs.iter().map(Vec::as_slice).collect();
        let mut margin = vec![0.0; n];
        let last = k == cfg.steps;
        let g = if last {
            for (i, l) in oracle.logits(&rows)?.iter().enumerate() {
                margin[i] = crit.margin(l, labels[i]).0;
            }
            Vec::new()
        } else {
            oracle
                .gradients(&rows, &mut |i, l| {
                    let (c, d) = margin_and_dlogits(l, labels[i], crit, Space::Logits);
                    margin[i] = c;
                    d
                })?
                .1
        };
        let sizes: Vec<f64> = delta.iter().map(|d| norm.of(d)).collect();
        for i in 0..n {
            let adv = margin[i] > 0.0;
            if adv && sizes[i] < best[i].0 {
                best[i] = (sizes[i], Some(zs[i].clone()));
            }
            found[i] |= adv;
        }
        if last {
            break;
        }
        let cosine = (1.0 + (std::f64::consts::PI * k as f64 / cfg.steps as f64).cos()) / 2.0;
        let alpha = cfg.alpha_final + (cfg.alpha_init - cfg.alpha_final) * cosine;
        let gamma = cfg.gamma_final + (cfg.gamma_init - cfg.gamma_final) * cosine;
        for i in 0..n {
            let adv = margin[i] > 0.0;
            eps[i] = if norm == Norm::L0 {
                if adv {
                    (eps[i] - 1.0).min((eps[i] * (1.0 - gamma)).floor()).min(best[i].0).max(0.0)
                } else {
                    (eps[i] + 1.0).max((eps[i] * (1.0 + gamma)).floor())
                }
            } else if adv {
                (eps[i] * (1.0 - gamma)).min(best[i].0)
            } else if found[i] {
                eps[i] * (1.0 + gamma)
            } else {
                // Beyond the linearised boundary by gamma: on a locally linear model (a
                // ReLU network is piecewise linear) the estimate itself lands on the
                // boundary, never strictly past it, step after step.
                (sizes[i] + margin[i].abs() / norm.dual().of(&g[i]).max(1e-12)) * (1.0 + gamma)
            };
            eps[i] = eps[i].min(worst[i]);
            let gn = Norm::L2.of(&g[i]).max(1e-12);
            delta[i].iter_mut().zip(&g[i]).for_each(|(d, gv)| *d += alpha * gv / gn);
            norm.project(&mut delta[i], eps[i]);
            for (d, x) in delta[i].iter_mut().zip(&xs[i]) {
                *d = (x + *d).clamp(lo, hi) - x;
            }
        }
    }
    Ok(best.into_iter().map(|b| b.1).collect())
}

#[cfg(test)]
mod tests {
    use super::super::attack::Attack;
    use super::super::linear_problem::LinearProblem;
    use super::super::norms::distance;
    use super::super::oracle::Criterion;
    use super::*;
    use crate::rng::Rng;

    /// On a linear two-class model the minimum distances are gap/||w||_2 (l2),
    /// gap/||w||_1 (linf) and gap/||w||_inf (l1); FMN with its defaults finds them within 1%.
    #[test]
    fn finds_the_analytic_minimum_distances_on_a_linear_classifier() {
        let mut rng = Rng::new(41);
        let p = LinearProblem::random(&mut rng, 8, 6, 1.0, 0.0);
        let model = |z: &candle_core::Tensor| p.model(z);
        let oracle = Oracle::new(&model, &[8], (-100.0, 100.0), Criterion { top: 1 }, &candle_core::Device::Cpu);
        for (norm, exact) in [(Norm::L2, p.l2()), (Norm::Linf, p.linf()), (Norm::L1, p.l1())] {
            let adv = Attack::Fmn(FmnConfig::paper(norm)).run(&oracle, &p.xs, &p.labels, &mut rng).unwrap();
            p.assert_distances(&adv, norm, &exact, 0.01);
        }
    }

    /// In l0 inside a box the fewest coordinates are known (largest contributions first);
    /// FMN is a local method on a combinatorial problem: within 3 of the optimum, and sparse.
    #[test]
    fn l0_finds_few_coordinates_on_a_linear_classifier() {
        let mut rng = Rng::new(5);
        let bounds = (-1.0, 1.0);
        let p = LinearProblem::random(&mut rng, 20, 6, 0.3, 0.08);
        let model = |z: &candle_core::Tensor| p.model(z);
        let oracle = Oracle::new(&model, &[20], bounds, Criterion { top: 1 }, &candle_core::Device::Cpu);
        let exact = p.l0(bounds);
        let adv = Attack::Fmn(FmnConfig::paper(Norm::L0)).run(&oracle, &p.xs, &p.labels, &mut rng).unwrap();
        for (i, a) in adv.iter().enumerate() {
            let a = a.as_ref().expect("an adversarial point");
            let found = distance(Norm::L0, a, &p.xs[i]);
            assert!(p.misclassified(a, i), "image {i}: misclassified");
            assert!(
                found >= exact[i] && found <= exact[i] + 3.0,
                "image {i}: {found} coordinates, optimum {}",
                exact[i]
            );
        }
    }

    /// From an adversarial start twice as far as needed, FMN comes back to the minimum.
    #[test]
    fn a_warm_start_is_refined_to_the_minimum() {
        let mut rng = Rng::new(43);
        let p = LinearProblem::random(&mut rng, 8, 4, 1.0, 0.0);
        let model = |z: &candle_core::Tensor| p.model(z);
        let oracle = Oracle::new(&model, &[8], (-100.0, 100.0), Criterion { top: 1 }, &candle_core::Device::Cpu);
        let starts: Vec<Option<Vec<f64>>> = Attack::Fmn(FmnConfig::paper(Norm::L2))
            .run(&oracle, &p.xs, &p.labels, &mut rng)
            .unwrap()
            .into_iter()
            .zip(&p.xs)
            .map(|(a, x)| a.map(|a| a.iter().zip(x).map(|(a, x)| x + 2.0 * (a - x)).collect()))
            .collect();
        let cfg = FmnConfig { steps: 50, ..FmnConfig::paper(Norm::L2) };
        let adv = fmn(&oracle, &p.xs, &p.labels, &cfg, Some(&starts)).unwrap();
        p.assert_distances(&adv, Norm::L2, &p.l2(), 0.01);
    }
}
