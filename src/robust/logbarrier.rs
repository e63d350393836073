//! The LogBarrier attack in l2 (Finlay, Pooladian, Oberman, ICCV 2019): from a
//! misclassified starting point, minimise ||z - x||_2 - lambda log(c(z)), where
//! c(z) = max_{j != y} f_j(z) - f_y(z) > 0 means "misclassified", for a decreasing barrier
//! weight lambda_k = lambda_0 beta^k. Steps are projected to the input bounds and
//! backtracked toward the previous iterate whenever they land on a correctly classified
//! point (or do not decrease the objective); the best (closest) adversarial iterate is kept.

use super::margin::{margin, misclassified_start};
use crate::rng::Rng;
use candle_core::{Result, Tensor, Var};

#[derive(Debug, Clone, Copy)]
pub struct LogBarrierConfig {
    pub lambda0: f64,
    pub beta: f64,
    pub outer: usize,
    pub inner: usize,
    /// Initial gradient step, relative to the width of the input bounds.
    pub step: f64,
    pub bounds: (f64, f64),
}

impl Default for LogBarrierConfig {
    fn default() -> Self {
        LogBarrierConfig { lambda0: 0.1, beta: 0.75, outer: 30, inner: 50, step: 0.1, bounds: (0.0, 1.0) }
    }
}

/// The attack on one example `x` ([1, ...]) of class `label`. Returns the closest
/// adversarial point found (verified misclassified by the model), or `None`.
pub fn log_barrier_l2(
    model: &dyn Fn(&Tensor) -> Result<Tensor>,
    x: &Tensor,
    label: usize,
    cfg: &LogBarrierConfig,
    rng: &mut Rng,
) -> Result<Option<Tensor>> {
    let (lo, hi) = cfg.bounds;
    let width = hi - lo;
    let c = |z: &Tensor| -> Result<f64> {
        Ok(-margin(&model(z)?, label)?.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?)
    };
    let dist = |z: &Tensor| -> Result<f64> {
        (z - x)?.sqr()?.sum_all()?.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>().map(f64::sqrt)
    };
    let Some(mut z) = misclassified_start(model, x, label, cfg.bounds, rng)? else { return Ok(None) };
    let mut best = (dist(&z)?, z.clone());
    let mut lambda = cfg.lambda0;
    for _ in 0..cfg.outer {
        let phi = |z: &Tensor, lambda: f64| -> Result<f64> {
            let cz = c(z)?;
            Ok(if cz > 0.0 { dist(z)? - lambda * cz.ln() } else { f64::INFINITY })
        };
        let mut h = cfg.step * width;
        for _ in 0..cfg.inner {
            let v = Var::from_tensor(&z.detach())?;
            let cz = margin(&model(v.as_tensor())?, label)?.neg()?;
            let d = (v.as_tensor() - x)?.sqr()?.sum_all()?.sqrt()?;
            let objective = (d - (cz.log()? * lambda)?)?;
            let grads = objective.backward()?;
            let Some(g) = grads.get(v.as_tensor()) else { break };
            let current = phi(&z, lambda)?;
            let mut accepted = false;
            let mut trial = h;
            for _ in 0..30 {
                let cand = (&z - (g * trial)?)?.clamp(lo, hi)?;
                if phi(&cand, lambda)? < current {
                    z = cand;
                    accepted = true;
                    break;
                }
                trial *= 0.5;
            }
            if !accepted {
                break;
            }
            // Grow the step again after a success, so progress does not stall.
            h = (trial * 2.0).min(cfg.step * width);
            let dz = dist(&z)?;
            if dz < best.0 && c(&z)? > 0.0 {
                best = (dz, z.clone());
            }
        }
        lambda *= cfg.beta;
    }
    Ok(Some(best.1))
}

#[cfg(test)]
mod tests {
    use super::super::margin::linear_problem::LinearProblem;
    use super::*;

    /// On a linear two-class model the minimum l2 distance to the boundary is
    /// |margin| / ||w_1 - w_0||; the attack must find it within 1%.
    #[test]
    fn finds_the_analytic_minimum_distance_on_a_linear_classifier() {
        let mut rng = Rng::new(3);
        for trial in 0..5 {
            let p = LinearProblem::random(&mut rng, 10, [0.3, -0.2], 1.0);
            let model = |z: &Tensor| p.model(z);
            let cfg = LogBarrierConfig { bounds: (-100.0, 100.0), ..LogBarrierConfig::default() };
            let adv = log_barrier_l2(&model, &p.x, p.label, &cfg, &mut rng).unwrap().expect("an adversarial point");
            let found =
                (&adv - &p.x).unwrap().sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap().sqrt() as f64;
            assert!(p.misclassified(&adv), "trial {trial}: the returned point is misclassified");
            assert!((found / p.l2() - 1.0).abs() < 0.01, "trial {trial}: found {found}, exact {}", p.l2());
        }
    }
}
