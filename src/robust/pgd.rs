//! Projected gradient descent on the classification margin (Madry et al. 2018) in l2 and
//! linf, with a random start and restarts, and the minimum-distance version used as a
//! baseline for minimum-norm attacks: bisection over the radius epsilon.

use super::margin::margin;
use crate::rng::Rng;
use candle_core::{DType, Result, Tensor, Var};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Norm {
    L2,
    Linf,
}

#[derive(Debug, Clone, Copy)]
pub struct PgdConfig {
    pub norm: Norm,
    pub steps: usize,
    pub restarts: usize,
    pub bounds: (f64, f64),
}

fn norm_of(t: &Tensor, norm: Norm) -> Result<f64> {
    let t = t.to_dtype(DType::F64)?;
    match norm {
        Norm::L2 => Ok(t.sqr()?.sum_all()?.to_scalar::<f64>()?.sqrt()),
        Norm::Linf => t.abs()?.max_all()?.to_scalar::<f64>(),
    }
}

/// Project the perturbation onto the eps-ball of the norm.
fn project(delta: &Tensor, eps: f64, norm: Norm) -> Result<Tensor> {
    match norm {
        Norm::Linf => delta.clamp(-eps, eps),
        Norm::L2 => {
            let n = norm_of(delta, Norm::L2)?;
            if n > eps { delta * (eps / n) } else { Ok(delta.clone()) }
        }
    }
}

/// One PGD attack at radius `eps`: a misclassified point within the ball, if found.
pub fn pgd(
    model: &dyn Fn(&Tensor) -> Result<Tensor>,
    x: &Tensor,
    label: usize,
    eps: f64,
    cfg: &PgdConfig,
    rng: &mut Rng,
) -> Result<Option<Tensor>> {
    let (lo, hi) = cfg.bounds;
    let alpha = 2.5 * eps / cfg.steps.max(1) as f64;
    for restart in 0..cfg.restarts.max(1) {
        // A random start inside the ball (the first try starts at x itself).
        let start: Vec<f32> = (0..x.elem_count())
            .map(|_| if restart == 0 { 0.0 } else { ((rng.uniform() * 2.0 - 1.0) * eps) as f32 })
            .collect();
        let delta0 = project(&Tensor::from_vec(start, x.shape(), x.device())?.to_dtype(x.dtype())?, eps, cfg.norm)?;
        let mut z = (x + delta0)?.clamp(lo, hi)?;
        for _ in 0..cfg.steps {
            let v = Var::from_tensor(&z.detach())?;
            let m = margin(&model(v.as_tensor())?, label)?;
            if m.to_dtype(DType::F64)?.to_scalar::<f64>()? < 0.0 {
                return Ok(Some(z));
            }
            let grads = m.backward()?;
            let Some(g) = grads.get(v.as_tensor()) else { break };
            let step = match cfg.norm {
                Norm::Linf => (g.sign()? * alpha)?,
                Norm::L2 => {
                    let n = norm_of(g, Norm::L2)?.max(1e-12);
                    (g * (alpha / n))?
                }
            };
            let delta = project(&((&z - step)? - x)?, eps, cfg.norm)?;
            z = (x + delta)?.clamp(lo, hi)?;
        }
        if margin(&model(&z)?, label)?.to_dtype(DType::F64)?.to_scalar::<f64>()? < 0.0 {
            return Ok(Some(z));
        }
    }
    Ok(None)
}

/// The smallest radius PGD succeeds at, by bisection on [0, eps_max]: the adversarial
/// point at the smallest successful radius, or `None` if even `eps_max` fails.
pub fn pgd_min_distance(
    model: &dyn Fn(&Tensor) -> Result<Tensor>,
    x: &Tensor,
    label: usize,
    eps_max: f64,
    bisections: usize,
    cfg: &PgdConfig,
    rng: &mut Rng,
) -> Result<Option<Tensor>> {
    let Some(mut best) = pgd(model, x, label, eps_max, cfg, rng)? else { return Ok(None) };
    let (mut lo, mut hi) = (0.0, norm_of(&(&best - x)?, cfg.norm)?.min(eps_max));
    for _ in 0..bisections {
        let mid = 0.5 * (lo + hi);
        match pgd(model, x, label, mid, cfg, rng)? {
            Some(adv) => {
                hi = norm_of(&(&adv - x)?, cfg.norm)?.min(mid);
                best = adv;
            }
            None => lo = mid,
        }
    }
    Ok(Some(best))
}

#[cfg(test)]
mod tests {
    use super::super::margin::linear_problem::LinearProblem;
    use super::*;

    /// On a linear two-class model the minimum distance is |margin| / ||w||_2 in l2 and
    /// |margin| / ||w||_1 in linf (w the difference of the class weights); PGD with
    /// bisection finds both within 1%.
    #[test]
    fn bisection_finds_the_analytic_minimum_distance_on_a_linear_classifier() {
        let mut rng = Rng::new(8);
        for trial in 0..3 {
            let p = LinearProblem::random(&mut rng, 8, [0.2, -0.1], 1.0);
            let model = |z: &Tensor| p.model(z);
            for (norm, exact) in [(Norm::L2, p.l2()), (Norm::Linf, p.linf())] {
                let cfg = PgdConfig { norm, steps: 100, restarts: 1, bounds: (-100.0, 100.0) };
                let adv = pgd_min_distance(&model, &p.x, p.label, 10.0, 24, &cfg, &mut rng)
                    .unwrap()
                    .expect("an adversarial point");
                let found = norm_of(&(&adv - &p.x).unwrap(), norm).unwrap();
                assert!(p.misclassified(&adv), "trial {trial} {norm:?}: misclassified");
                assert!((found / exact - 1.0).abs() < 0.01, "trial {trial} {norm:?}: found {found}, exact {exact}");
            }
        }
    }
}
