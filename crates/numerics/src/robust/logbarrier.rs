//! The LogBarrier attack (Finlay, Pooladian, Oberman, ICCV 2019). From a misclassified
//! start, minimise dist(z, x) - lambda log c(z), where c(z) is the misclassification
//! margin in softmax probabilities (positive off the top-k), for lambda_k = lambda_0 beta^k.
//! In l2 the step is on ||z - x||^2 / 2; in linf on the smooth surrogate
//! sum_i softmax(T |z - x|)_i |z - x|_i. Steps are projected to the bounds; a step that lands
//! on a correctly classified point is pulled back toward the previous iterate
//! (z <- (1 - gamma) z + gamma z_old) until it is adversarial again. An image stops its
//! inner loop once its step is below `tol`; the closest adversarial iterate is kept.

use super::norms::{Norm, distance};
use super::oracle::{Oracle, Space, margin_and_dlogits};
use super::start::{barrier_starts, pull_back_until_adversarial};
use crate::rng::Rng;
use candle_core::Result;

/// The start is brought toward the boundary only roughly: a start on the boundary itself
/// has a vanishing margin, so the barrier's first gradients are huge and every step is
/// pulled back.
const START_BISECTIONS: usize = 8;

/// The defaults of the paper's reference code.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogBarrierConfig {
    pub norm: Norm,
    pub lambda0: f64,
    pub beta: f64,
    pub gamma: f64,
    pub step: f64,
    pub outer: usize,
    pub inner: usize,
    pub tol: f64,
    /// Softmax temperature of the linf surrogate.
    pub temperature: f64,
}

impl LogBarrierConfig {
    pub fn paper(norm: Norm) -> Self {
        LogBarrierConfig {
            norm,
            lambda0: 0.1,
            beta: 0.75,
            gamma: 0.5,
            step: 0.01,
            outer: 15,
            inner: 500,
            tol: 1e-6,
            temperature: 500.0,
        }
    }
}

/// Gradient of sum_i softmax(T a)_i a_i, a = |d|, with respect to d.
fn smooth_linf_gradient(d: &[f64], t: f64) -> Vec<f64> {
    let a: Vec<f64> = d.iter().map(|v| v.abs()).collect();
    let m = a.iter().copied().fold(0.0, f64::max);
    let e: Vec<f64> = a.iter().map(|v| (t * (v - m)).exp()).collect();
    let s: f64 = e.iter().sum();
    let w: Vec<f64> = e.iter().map(|v| v / s).collect();
    let ex: f64 = w.iter().zip(&a).map(|(w, a)| w * a).sum();
    d.iter().zip(w.iter().zip(&a)).map(|(di, (wi, ai))| di.signum() * wi * (1.0 + t * (ai - ex))).collect()
}

/// The attack on every input `xs[i]` of label `labels[i]`, from `given[i]` where that
/// holds an adversarial point (a warm start) and from noise elsewhere: the closest
/// adversarial point found, or `None` where no misclassified start was found.
pub fn log_barrier(
    oracle: &Oracle,
    xs: &[Vec<f64>],
    labels: &[usize],
    cfg: &LogBarrierConfig,
    given: Option<&[Option<Vec<f64>>]>,
    rng: &mut Rng,
) -> Result<Vec<Option<Vec<f64>>>> {
    let starts = barrier_starts(oracle, xs, labels, given, START_BISECTIONS, rng)?;
    let live: Vec<usize> = (0..xs.len()).filter(|&i| starts[i].is_some()).collect();
    let start = |i: usize| starts[i].clone().unwrap_or_default();
    let mut z: Vec<Vec<f64>> = live.iter().map(|&i| start(i).0).collect();
    let x: Vec<&Vec<f64>> = live.iter().map(|&i| &xs[i]).collect();
    let y: Vec<usize> = live.iter().map(|&i| labels[i]).collect();
    let mut best: Vec<(f64, Vec<f64>)> =
        live.iter().zip(&x).map(|(&i, x)| (distance(cfg.norm, &start(i).1, x), start(i).1)).collect();
    let crit = oracle.criterion;
    for k in 0..cfg.outer {
        let lambda = cfg.lambda0 * cfg.beta.powi(k as i32);
        let mut active: Vec<usize> = (0..live.len()).collect();
        for _ in 0..cfg.inner {
            if active.is_empty() {
                break;
            }
            let rows: Vec<&[f64]> = active.iter().map(|&a| z[a].as_slice()).collect();
            // d/dlogits of -lambda log c = -lambda c'/c.
            let (_, g) = oracle.gradients(&rows, &mut |r, l| {
                let (c, d) = margin_and_dlogits(l, y[active[r]], crit, Space::Softmax);
                d.into_iter().map(|v| -lambda * v / c.max(1e-30)).collect()
            })?;
            let old: Vec<Vec<f64>> = active.iter().map(|&a| z[a].clone()).collect();
            let mut cand: Vec<Vec<f64>> = Vec::with_capacity(active.len());
            for (r, &a) in active.iter().enumerate() {
                let d: Vec<f64> = z[a].iter().zip(x[a].iter()).map(|(p, q)| p - q).collect();
                let dist_grad = match cfg.norm {
                    Norm::Linf => smooth_linf_gradient(&d, cfg.temperature),
                    _ => d,
                };
                cand.push(
                    z[a].iter()
                        .zip(dist_grad.iter().zip(&g[r]))
                        .map(|(zi, (dg, gb))| oracle.clamp(zi - cfg.step * (dg + gb)))
                        .collect(),
                );
            }
            // Pull steps that lost the misclassification back toward the previous iterate.
            let ys: Vec<usize> = active.iter().map(|&a| y[a]).collect();
            pull_back_until_adversarial(oracle, &mut cand, &old, &ys, 1.0 - cfg.gamma)?;
            let mut next = Vec::new();
            for (r, &a) in active.iter().enumerate() {
                let moved = distance(cfg.norm, &cand[r], &old[r]);
                z[a] = std::mem::take(&mut cand[r]);
                let dz = distance(cfg.norm, &z[a], x[a]);
                if dz <= best[a].0 {
                    best[a] = (dz, z[a].clone());
                }
                if moved > cfg.tol {
                    next.push(a);
                }
            }
            active = next;
        }
    }
    let mut out = vec![None; xs.len()];
    for (a, &i) in live.iter().enumerate() {
        out[i] = Some(std::mem::take(&mut best[a].1));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::linear_problem::LinearProblem;
    use super::super::oracle::Criterion;
    use super::*;

    /// On a linear two-class model the minimum distance to the boundary is
    /// |gap| / ||w||_2 in l2 and |gap| / ||w||_1 in linf. With the paper's defaults (and
    /// the final pull toward the input every attack gets) l2 is found to 1e-4; linf only to
    /// 2%: the smooth surrogate's own minimiser sits up to log(d)/T above the true max, and
    /// the last barrier weight adds about lambda_14 = 0.0018 (measured 0.04% to 1.5% here).
    #[test]
    fn finds_the_analytic_minimum_distances_on_a_linear_classifier() {
        let mut rng = Rng::new(3);
        let p = LinearProblem::random(&mut rng, 6, 6, 1.0, 0.3);
        let model = |z: &candle_core::Tensor| p.model(z);
        let oracle = Oracle::new(&model, &[6], (-100.0, 100.0), Criterion { top: 1 }, &candle_core::Device::Cpu);
        for (norm, exact, tol) in [(Norm::L2, p.l2(), 1e-4), (Norm::Linf, p.linf(), 0.02)] {
            let attack = super::super::attack::Attack::LogBarrier(LogBarrierConfig::paper(norm));
            let adv = attack.run(&oracle, &p.xs, &p.labels, &mut rng).unwrap();
            p.assert_distances(&adv, norm, &exact, tol);
        }
    }

    #[test]
    fn the_smooth_linf_gradient_matches_finite_differences() {
        let d = [0.3, -0.29, 0.1, -0.05];
        let f = |d: &[f64]| {
            let a: Vec<f64> = d.iter().map(|v| v.abs()).collect();
            let e: Vec<f64> = a.iter().map(|v| (50.0 * v).exp()).collect();
            let s: f64 = e.iter().sum();
            a.iter().zip(&e).map(|(a, e)| a * e / s).sum::<f64>()
        };
        let g = smooth_linf_gradient(&d, 50.0);
        for k in 0..d.len() {
            let (mut a, mut b) = (d, d);
            a[k] += 1e-6;
            b[k] -= 1e-6;
            let fd = (f(&a) - f(&b)) / 2e-6;
            assert!((fd - g[k]).abs() < 1e-5, "component {k}: {fd} vs {}", g[k]);
        }
    }
}
