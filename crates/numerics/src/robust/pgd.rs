//! Projected gradient descent on the classification margin (Madry et al. 2018) in l2 and
//! linf, with a random start and restarts, and the minimum-distance version used as a
//! baseline for minimum-norm attacks: bisection over the radius epsilon, per image.

use super::norms::{Norm, distance};
use super::oracle::{Oracle, Space, margin_and_dlogits};
use crate::rng::Rng;
use candle_core::Result;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PgdConfig {
    pub norm: Norm,
    pub steps: usize,
    pub restarts: usize,
    /// Largest radius tried; bisection works below it. `None`: the diameter of the
    /// oracle's bounds in the attack's norm.
    pub eps_max: Option<f64>,
    pub bisections: usize,
}

impl PgdConfig {
    /// The minimum-norm baseline's defaults: 40 steps, one try per radius, 10 halvings of
    /// the radius interval below `eps_max`.
    pub fn baseline(norm: Norm, eps_max: Option<f64>) -> Self {
        PgdConfig { norm, steps: 40, restarts: 1, eps_max, bisections: 10 }
    }
}

/// PGD at radius `eps[i]` for every input: a misclassified point within the ball, if found.
/// The first try starts at the input itself, restarts at a uniform point of the box.
pub fn pgd(
    oracle: &Oracle,
    xs: &[Vec<f64>],
    labels: &[usize],
    eps: &[f64],
    cfg: &PgdConfig,
    rng: &mut Rng,
) -> Result<Vec<Option<Vec<f64>>>> {
    let crit = oracle.criterion;
    let mut out: Vec<Option<Vec<f64>>> = vec![None; xs.len()];
    for restart in 0..cfg.restarts.max(1) {
        let mut active: Vec<usize> = (0..xs.len()).filter(|&i| out[i].is_none() && eps[i] > 0.0).collect();
        let mut z: Vec<Vec<f64>> = active
            .iter()
            .map(|&i| {
                let mut d: Vec<f64> = (0..xs[i].len())
                    .map(|_| if restart == 0 { 0.0 } else { (rng.uniform() * 2.0 - 1.0) * eps[i] })
                    .collect();
                cfg.norm.project(&mut d, eps[i]);
                xs[i].iter().zip(&d).map(|(x, d)| oracle.clamp(x + d)).collect()
            })
            .collect();
        for step in 0..=cfg.steps {
            if active.is_empty() {
                break;
            }
            let rows: Vec<&[f64]> = z.iter().map(Vec::as_slice).collect();
            let mut won = vec![false; active.len()];
            let (_, g) = oracle.gradients(&rows, &mut |r, l| {
                let (c, d) = margin_and_dlogits(l, labels[active[r]], crit, Space::Logits);
                won[r] = c > 0.0;
                d
            })?;
            let mut keep_i = Vec::new();
            let mut keep_z = Vec::new();
            for (r, &i) in active.iter().enumerate() {
                if won[r] {
                    out[i] = Some(std::mem::take(&mut z[r]));
                    continue;
                }
                if step == cfg.steps {
                    continue;
                }
                let alpha = 2.5 * eps[i] / cfg.steps.max(1) as f64;
                let dir: Vec<f64> = match cfg.norm {
                    Norm::L2 => {
                        let n = Norm::L2.of(&g[r]).max(1e-12);
                        g[r].iter().map(|v| v / n).collect()
                    }
                    _ => g[r].iter().map(|v| v.signum()).collect(),
                };
                // Ascend the margin (it is positive once misclassified).
                let mut d: Vec<f64> = z[r].iter().zip(&dir).zip(&xs[i]).map(|((z, s), x)| z + alpha * s - x).collect();
                cfg.norm.project(&mut d, eps[i]);
                keep_z.push(xs[i].iter().zip(&d).map(|(x, d)| oracle.clamp(x + d)).collect());
                keep_i.push(i);
            }
            active = keep_i;
            z = keep_z;
        }
    }
    Ok(out)
}

/// The smallest radius PGD succeeds at, per input, by bisection on [0, eps_max]: the
/// adversarial point found at the smallest successful radius.
pub fn pgd_min_distance(
    oracle: &Oracle,
    xs: &[Vec<f64>],
    labels: &[usize],
    cfg: &PgdConfig,
    rng: &mut Rng,
) -> Result<Vec<Option<Vec<f64>>>> {
    let eps_max = cfg.eps_max.unwrap_or_else(|| diameter(oracle, cfg.norm));
    let mut best = pgd(oracle, xs, labels, &vec![eps_max; xs.len()], cfg, rng)?;
    let mut lo = vec![0.0; xs.len()];
    let mut hi: Vec<f64> =
        (0..xs.len()).map(|i| best[i].as_ref().map_or(0.0, |b| distance(cfg.norm, b, &xs[i]).min(eps_max))).collect();
    for _ in 0..cfg.bisections {
        // Inputs PGD never broke keep eps 0, which `pgd` skips.
        let mid: Vec<f64> =
            (0..xs.len()).map(|i| if best[i].is_some() { 0.5 * (lo[i] + hi[i]) } else { 0.0 }).collect();
        let found = pgd(oracle, xs, labels, &mid, cfg, rng)?;
        for (i, f) in found.into_iter().enumerate() {
            if best[i].is_none() {
                continue;
            }
            match f {
                Some(adv) => {
                    hi[i] = distance(cfg.norm, &adv, &xs[i]).min(mid[i]);
                    best[i] = Some(adv);
                }
                None => lo[i] = mid[i],
            }
        }
    }
    Ok(best)
}

/// The largest distance between two points of the oracle's box in `norm` (infinite for
/// unbounded inputs).
pub fn diameter(oracle: &Oracle, norm: Norm) -> f64 {
    let width = oracle.bounds.1 - oracle.bounds.0;
    if norm == Norm::Linf { width } else { width * (oracle.dim() as f64).sqrt() }
}

#[cfg(test)]
mod tests {
    use super::super::linear_problem::LinearProblem;
    use super::super::oracle::Criterion;
    use super::*;

    /// On a linear two-class model the minimum distance is |gap| / ||w||_2 in l2 and
    /// |gap| / ||w||_1 in linf; PGD with bisection finds both within 1%.
    #[test]
    fn bisection_finds_the_analytic_minimum_distance_on_a_linear_classifier() {
        let mut rng = Rng::new(8);
        let p = LinearProblem::random(&mut rng, 8, 6, 1.0, 0.0);
        let model = |z: &candle_core::Tensor| p.model(z);
        let oracle = Oracle::new(&model, &[8], (-100.0, 100.0), Criterion { top: 1 }, &candle_core::Device::Cpu);
        for (norm, exact) in [(Norm::L2, p.l2()), (Norm::Linf, p.linf())] {
            let cfg = PgdConfig { norm, steps: 100, restarts: 1, eps_max: Some(10.0), bisections: 24 };
            let adv = pgd_min_distance(&oracle, &p.xs, &p.labels, &cfg, &mut rng).unwrap();
            p.assert_distances(&adv, norm, &exact, 0.01);
        }
    }
}
