//! The Carlini-Wagner l2 attack (Carlini and Wagner 2017): in tanh space, so the bounds
//! always hold, minimise ||z - x||_2^2 + c max(-m(z), -kappa), m the misclassification
//! margin on the logits, with Adam; a binary search over c per image (x10 until the first
//! success, then bisection); the closest adversarial iterate is kept.

use super::norms::Norm;
use super::oracle::{Oracle, Space, margin_and_dlogits};
use candle_core::Result;

/// The defaults of Carlini and Wagner's code: 9 binary steps, 10,000 iterations, Adam at
/// 0.01, c starting at 1e-3, kappa 0, early abort.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CwConfig {
    pub steps: usize,
    pub binary_steps: usize,
    pub lr: f64,
    pub c0: f64,
    pub kappa: f64,
}

impl Default for CwConfig {
    fn default() -> Self {
        CwConfig { steps: 10_000, binary_steps: 9, lr: 0.01, c0: 1e-3, kappa: 0.0 }
    }
}

struct Adam {
    m: Vec<f64>,
    v: Vec<f64>,
    t: i32,
}

impl Adam {
    fn new(n: usize) -> Self {
        Adam { m: vec![0.0; n], v: vec![0.0; n], t: 0 }
    }
    fn step(&mut self, w: &mut [f64], g: &[f64], lr: f64) {
        self.t += 1;
        let (b1, b2) = (0.9f64, 0.999f64);
        let (c1, c2) = (1.0 - b1.powi(self.t), 1.0 - b2.powi(self.t));
        for k in 0..w.len() {
            self.m[k] = b1 * self.m[k] + (1.0 - b1) * g[k];
            self.v[k] = b2 * self.v[k] + (1.0 - b2) * g[k] * g[k];
            w[k] -= lr * (self.m[k] / c1) / ((self.v[k] / c2).sqrt() + 1e-8);
        }
    }
}

pub fn carlini_wagner(
    oracle: &Oracle,
    xs: &[Vec<f64>],
    labels: &[usize],
    cfg: &CwConfig,
) -> Result<Vec<Option<Vec<f64>>>> {
    let (lo, hi) = oracle.bounds;
    let half = 0.5 * (hi - lo);
    let crit = oracle.criterion;
    let to_w = |v: f64| (((v - lo) / half - 1.0) * 0.999_999).atanh();
    let to_z = |w: f64| lo + half * (w.tanh() + 1.0);
    let n = xs.len();
    let mut best: Vec<(f64, Option<Vec<f64>>)> = vec![(f64::INFINITY, None); n];
    let mut c = vec![cfg.c0; n];
    let (mut lower, mut upper) = (vec![0.0f64; n], vec![1e10f64; n]);
    for _ in 0..cfg.binary_steps {
        let mut w: Vec<Vec<f64>> = xs.iter().map(|x| x.iter().map(|&v| to_w(v)).collect()).collect();
        let mut adam: Vec<Adam> = xs.iter().map(|x| Adam::new(x.len())).collect();
        let mut succeeded = vec![false; n];
        let mut active: Vec<usize> = (0..n).collect();
        let mut previous = vec![f64::INFINITY; n];
        let check_every = (cfg.steps / 10).max(1);
        for step in 0..cfg.steps {
            if active.is_empty() {
                break;
            }
            let zs: Vec<Vec<f64>> = active.iter().map(|&i| w[i].iter().map(|&v| to_z(v)).collect()).collect();
            let rows: Vec<&[f64]> = zs.iter().map(Vec::as_slice).collect();
            let mut hinge = vec![0.0; active.len()];
            let (_, g) = oracle.gradients(&rows, &mut |r, l| {
                let i = active[r];
                let (m, d) = margin_and_dlogits(l, labels[i], crit, Space::Logits);
                if m > 0.0 {
                    succeeded[i] = true;
                    let dist = Norm::L2.of(&super::norms::diff(&zs[r], &xs[i]));
                    if dist < best[i].0 {
                        best[i] = (dist, Some(zs[r].clone()));
                    }
                }
                // Loss term c max(-m, -kappa): active while m < kappa.
                if m < cfg.kappa {
                    hinge[r] = -m;
                    d.into_iter().map(|v| -c[i] * v).collect()
                } else {
                    hinge[r] = -cfg.kappa;
                    vec![0.0; l.len()]
                }
            })?;
            let mut next = Vec::new();
            for (r, &i) in active.iter().enumerate() {
                let dz: Vec<f64> = zs[r].iter().zip(&xs[i]).map(|(z, x)| z - x).collect();
                let loss = dz.iter().map(|v| v * v).sum::<f64>() + c[i] * hinge[r];
                let gw: Vec<f64> = dz
                    .iter()
                    .zip(&g[r])
                    .zip(&w[i])
                    .map(|((d, gm), wv)| (2.0 * d + gm) * half * (1.0 - wv.tanh().powi(2)))
                    .collect();
                adam[i].step(&mut w[i], &gw, cfg.lr);
                // Early abort: no progress over a tenth of the steps.
                if (step + 1) % check_every == 0 {
                    if loss > previous[i] * 0.9999 {
                        continue;
                    }
                    previous[i] = loss;
                }
                next.push(i);
            }
            active = next;
        }
        for i in 0..n {
            if succeeded[i] {
                upper[i] = upper[i].min(c[i]);
                c[i] = 0.5 * (lower[i] + upper[i]);
            } else {
                lower[i] = lower[i].max(c[i]);
                c[i] = if upper[i] < 1e9 { 0.5 * (lower[i] + upper[i]) } else { c[i] * 10.0 };
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

    /// On a linear two-class model CW (1,000 steps, and the final pull toward the input
    /// every attack gets) finds the minimum l2 distance |gap| / ||w||_2 within 1%.
    #[test]
    fn finds_the_analytic_minimum_distance_on_a_linear_classifier() {
        let mut rng = crate::rng::Rng::new(21);
        let p = LinearProblem::random(&mut rng, 8, 6, 0.5, 0.1);
        let model = |z: &candle_core::Tensor| p.model(z);
        let oracle = Oracle::new(&model, &[8], (-3.0, 3.0), Criterion { top: 1 }, &candle_core::Device::Cpu);
        let exact = p.l2();
        let attack = super::super::attack::Attack::CarliniWagner(CwConfig { steps: 1000, ..CwConfig::default() });
        let adv = attack.run(&oracle, &p.xs, &p.labels, &mut rng).unwrap();
        p.assert_distances(&adv, Norm::L2, &exact, 0.01);
    }
}
