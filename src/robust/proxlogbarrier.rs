//! ProxLogBarrier (Pooladian, Finlay, Hoheisel, Oberman, AISTATS 2020): minimise
//! mu ||delta|| - lambda log(c(x + delta)) by proximal gradient steps, the gradient on the
//! log barrier of the misclassification margin c and the proximal operator on the
//! dissimilarity (l0, l1, l2 or linf), for lambda_k = lambda_0 beta^k; steps that lose the
//! misclassification are backtracked; the best iterate is kept.

use super::margin::{margin, misclassified_start};
use super::prox::{prox_l0, prox_l1, prox_l2, prox_linf};
use crate::rng::Rng;
use candle_core::{DType, Result, Tensor, Var};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dissimilarity {
    L0,
    L1,
    L2,
    Linf,
}

impl Dissimilarity {
    pub fn of(self, d: &[f64]) -> f64 {
        match self {
            Dissimilarity::L0 => d.iter().filter(|v| v.abs() > 1e-12).count() as f64,
            Dissimilarity::L1 => d.iter().map(|v| v.abs()).sum(),
            Dissimilarity::L2 => d.iter().map(|v| v * v).sum::<f64>().sqrt(),
            Dissimilarity::Linf => d.iter().fold(0.0, |m, v| m.max(v.abs())),
        }
    }

    fn prox(self, v: &[f64], t: f64) -> Vec<f64> {
        match self {
            Dissimilarity::L0 => prox_l0(v, t),
            Dissimilarity::L1 => prox_l1(v, t),
            Dissimilarity::L2 => prox_l2(v, t),
            Dissimilarity::Linf => prox_linf(v, t),
        }
    }
}

/// The paper's defaults: lambda_0 = 0.1, beta = 0.75, step 0.1, mu = 1, 30 x 30 iterations.
#[derive(Debug, Clone, Copy)]
pub struct ProxConfig {
    pub norm: Dissimilarity,
    pub lambda0: f64,
    pub beta: f64,
    pub step: f64,
    pub mu: f64,
    pub outer: usize,
    pub inner: usize,
    pub bounds: (f64, f64),
}

impl ProxConfig {
    pub fn paper(norm: Dissimilarity) -> Self {
        ProxConfig { norm, lambda0: 0.1, beta: 0.75, step: 0.1, mu: 1.0, outer: 30, inner: 30, bounds: (0.0, 1.0) }
    }
}

fn to_vec(t: &Tensor) -> Result<Vec<f64>> {
    t.to_dtype(DType::F64)?.flatten_all()?.to_vec1()
}

/// The attack on one example `x` ([1, ...]) of class `label`: the best adversarial point
/// found (misclassified by the model), or `None` if no misclassified start was found.
pub fn prox_log_barrier(
    model: &dyn Fn(&Tensor) -> Result<Tensor>,
    x: &Tensor,
    label: usize,
    cfg: &ProxConfig,
    rng: &mut Rng,
) -> Result<Option<Tensor>> {
    let (lo, hi) = cfg.bounds;
    let xv = to_vec(x)?;
    let make = |d: &[f64]| -> Result<Tensor> {
        let z: Vec<f32> = xv.iter().zip(d).map(|(a, b)| (a + b).clamp(lo, hi) as f32).collect();
        Tensor::from_vec(z, x.shape(), x.device())?.to_dtype(x.dtype())
    };
    let c = |z: &Tensor| -> Result<f64> { Ok(-margin(&model(z)?, label)?.to_dtype(DType::F64)?.to_scalar::<f64>()?) };
    let Some(start) = misclassified_start(model, x, label, cfg.bounds, rng)? else { return Ok(None) };
    let mut delta: Vec<f64> = to_vec(&start)?.iter().zip(&xv).map(|(a, b)| a - b).collect();
    let mut best = (cfg.norm.of(&delta), delta.clone());
    let mut lambda = cfg.lambda0;
    // The step carries over between iterations: it doubles after a success (up to ten
    // times the configured step) and halves while a trial fails.
    let mut h = cfg.step;
    for _ in 0..cfg.outer {
        if h < 1e-6 * cfg.step {
            h = cfg.step;
        }
        for _ in 0..cfg.inner {
            let z = make(&delta)?;
            let v = Var::from_tensor(&z)?;
            let barrier = (margin(&model(v.as_tensor())?, label)?.neg()?.log()? * -lambda)?;
            let grads = barrier.backward()?;
            let Some(g) = grads.get(v.as_tensor()) else { break };
            let g = to_vec(g)?;
            // The objective a step must decrease; it is infinite off the feasible set.
            let objective =
                |d: &[f64], cz: f64| if cz > 0.0 { cfg.mu * cfg.norm.of(d) - lambda * cz.ln() } else { f64::INFINITY };
            let current = objective(&delta, c(&z)?);
            let mut moved = false;
            for _ in 0..30 {
                let v: Vec<f64> = delta.iter().zip(&g).map(|(d, gi)| d - h * gi).collect();
                let cand = cfg.norm.prox(&v, h * cfg.mu);
                let zc = make(&cand)?;
                if objective(&cand, c(&zc)?) < current {
                    // Record the perturbation actually applied (after the bounds).
                    delta = to_vec(&zc)?.iter().zip(&xv).map(|(a, b)| a - b).collect();
                    moved = true;
                    h = (2.0 * h).min(10.0 * cfg.step);
                    break;
                }
                h *= 0.5;
            }
            if !moved {
                break;
            }
            let n = cfg.norm.of(&delta);
            if n < best.0 {
                best = (n, delta.clone());
            }
        }
        lambda *= cfg.beta;
    }
    Ok(Some(make(&best.1)?))
}

#[cfg(test)]
mod tests {
    use super::super::margin::linear_problem::LinearProblem;
    use super::*;

    /// On a linear two-class model (w the difference of the class weights, gap the logit
    /// gap) the minimum distances are gap/||w||_2 (l2), gap/||w||_1 (linf) and
    /// gap/||w||_inf (l1); ProxLogBarrier with the paper's defaults finds them within 1%.
    #[test]
    fn finds_the_analytic_minimum_distances_on_a_linear_classifier() {
        let mut rng = Rng::new(12);
        for trial in 0..3 {
            let p = LinearProblem::random(&mut rng, 8, [0.1, -0.1], 0.5);
            let model = |z: &Tensor| p.model(z);
            for (norm, exact) in
                [(Dissimilarity::L2, p.l2()), (Dissimilarity::Linf, p.linf()), (Dissimilarity::L1, p.l1())]
            {
                let cfg = ProxConfig { bounds: (-100.0, 100.0), ..ProxConfig::paper(norm) };
                let adv =
                    prox_log_barrier(&model, &p.x, p.label, &cfg, &mut rng).unwrap().expect("an adversarial point");
                let found = norm.of(&to_vec(&(&adv - &p.x).unwrap()).unwrap());
                assert!(p.misclassified(&adv), "trial {trial} {norm:?}: misclassified");
                assert!((found / exact - 1.0).abs() < 0.01, "trial {trial} {norm:?}: found {found}, exact {exact}");
            }
        }
    }
}
