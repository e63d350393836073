//! Training the potentials from samples alone, with no ODE solve.
//!
//! Data p_D, standard normal p_N, eps log H_eps[e^{f/eps}] estimated on fresh draws per point
//! as eps (logsumexp_i f(y + sqrt(eps) xi_i) / eps - ln N).
//!
//! - `Scheme::SemiDual`: each potential maximises its own concave objective, which needs no
//!   density: J(phi) = E_D[phi] - E_N[eps log H_eps e^{phi/eps}] and
//!   J(psi) = E_N[psi] - E_D[eps log H_eps e^{psi/eps}]. Setting J(phi)'s first variation to
//!   zero and eliminating psi by the second Schroedinger equation gives the first, so each
//!   alone solves the system (up to the additive constant that neither objective sees).
//! - `Scheme::Alternating`: the joint entropic dual over both potentials with the Gibbs
//!   kernel against Lebesgue measure, its double integral importance-weighted by the normal's
//!   density: J = E_D[phi] + E_N[psi] - eps E_N[exp((psi + eps log H_eps e^{phi/eps})/eps) /
//!   p_N] + eps, ascended in turn in phi (psi held) and in psi (phi held). Its optimum solves
//!   the system with c = 0, so the closed-form density is normalised there.

use super::flow::PotentialFlow;
use super::heat::HeatRule;
use crate::nn::{OptimSpec, Optimizer};
use crate::rng::Rng;
use candle_core::{DType, Result, Tensor};
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scheme {
    SemiDual,
    Alternating,
}

#[derive(Clone, Debug)]
pub struct DualFit {
    pub iters: usize,
    /// Data points per iteration, and as many normal draws.
    pub batch: usize,
    /// Draws per point for the heat operator (the paper: 100).
    pub mc_samples: usize,
    pub optimizer: OptimSpec,
    pub scheme: Scheme,
    /// Fresh Monte-Carlo draws per point (the paper's estimator, biased low by Jensen's
    /// inequality by O(1/mc_samples)), or one fixed quadrature rule for every point.
    pub quadrature: Option<HeatRule>,
}

/// One iteration's numbers: the loss minimised and each potential's objective (for the
/// alternating scheme, the joint objective at its phi step and at its psi step).
#[derive(Clone, Debug, PartialEq)]
pub struct DualRecord {
    pub loss: f64,
    pub phi: f64,
    pub psi: f64,
    pub seconds: f64,
}

/// eps log H_eps[e^{f/eps}] at each row of `at` [n, d], differentiable in the potential's
/// parameters: [n]. From `k` fresh draws per point, or through the fixed rule `rule`.
fn smoothed_on_draws(
    flow: &PotentialFlow,
    f: &super::net::Potential,
    at: &Tensor,
    k: usize,
    rule: Option<&HeatRule>,
    rng: &mut Rng,
) -> Result<Tensor> {
    let (n, d) = at.dims2()?;
    let eps = flow.eps;
    let (xi, log_w) = match rule {
        Some(r) => {
            let k = r.len();
            let nodes = Tensor::from_vec(r.nodes.clone(), (1, k, d), at.device())?.to_dtype(at.dtype())?;
            let lw = Tensor::from_vec(r.log_weights.clone(), (1, k), at.device())?.to_dtype(at.dtype())?;
            (nodes.broadcast_as((n, k, d))?, lw)
        }
        None => {
            let draws = HeatRule::monte_carlo(n * k, d, false, rng);
            let lw = Tensor::full(-(k as f64).ln(), (1, k), at.device())?.to_dtype(at.dtype())?;
            (Tensor::from_vec(draws.nodes, (n, k, d), at.device())?.to_dtype(at.dtype())?, lw)
        }
    };
    let k = xi.dim(1)?;
    let y = at.unsqueeze(1)?.broadcast_add(&(xi * eps.sqrt())?)?.reshape((n * k, d))?;
    let a = (f.value(&y)?.reshape((n, k))? / eps)?.broadcast_add(&log_w)?;
    let max = a.max_keepdim(1)?.detach();
    let lse = (a.broadcast_sub(&max)?.exp()?.sum_keepdim(1)?.log()? + max)?.squeeze(1)?;
    lse * eps
}

/// log N(y; 0, I) per row.
fn normal_log_density(y: &Tensor) -> Result<Tensor> {
    crate::flow::standard_normal_log_density(y)
}

fn scalar(t: &Tensor) -> Result<f64> {
    t.to_dtype(DType::F64)?.to_scalar::<f64>()
}

/// How far past the transport cost a dual objective may go before training stops: the
/// objectives estimate values of the order of E|x - y|^2 / 2 <= E|x|^2 + d (measured on the
/// toy sets: at most a fifth of it); ten times that is a potential exploiting the heat
/// operator's fixed nodes, not learning (measured on 8gaussians at eps = 0.1: a 5 x 5 rule
/// climbs past 3e5 in 1000 iterations, a 9 x 9 one past 100 near iteration 880).
pub const RUNAWAY: f64 = 10.0;

/// Iterations the runaway test averages over.
pub const RUNAWAY_WINDOW: usize = 20;

/// Trains the flow's potentials on `data` [n, d]; `on_iter` after each iteration. Stops
/// with an error message at the first iteration whose loss is not finite, or (semi-duals)
/// whose objectives run away past `RUNAWAY` times the transport cost's scale.
pub fn fit_dual(
    flow: &PotentialFlow,
    data: &Tensor,
    cfg: &DualFit,
    rng: &mut Rng,
    mut on_iter: impl FnMut(usize, &DualRecord),
) -> std::result::Result<Vec<DualRecord>, (String, Vec<DualRecord>)> {
    let fail = |e: candle_core::Error, records: &[DualRecord]| (e.to_string(), records.to_vec());
    let n = data.dim(0).map_err(|e| fail(e, &[]))?;
    let d = flow.dim();
    let second_moment = data
        .to_dtype(DType::F64)
        .and_then(|x| x.sqr()?.sum_keepdim(1)?.mean_all()?.to_scalar::<f64>())
        .map_err(|e| fail(e, &[]))?;
    let cost_scale = second_moment + d as f64 + 1.0;
    let batch = cfg.batch.clamp(1, n.max(1));
    let k = cfg.mc_samples.max(1);
    let eps = flow.eps;
    let mut phi_opt = Optimizer::new(cfg.optimizer.clone(), flow.phi.vars());
    let mut psi_opt = Optimizer::new(cfg.optimizer.clone(), flow.psi.vars());
    let mut batches = crate::rng::Batches::new(n, batch);
    let mut records = Vec::with_capacity(cfg.iters);
    for _ in 0..cfg.iters {
        let start = Instant::now();
        let idx: Vec<u32> = batches.next(rng).into_iter().map(|i| i as u32).collect();
        let mut step = || -> Result<DualRecord> {
            let rows = Tensor::from_vec(idx.clone(), batch, data.device())?;
            let x = data.index_select(&rows, 0)?;
            let y: Vec<f32> = (0..batch * d).map(|_| rng.normal() as f32).collect();
            let y = Tensor::from_vec(y, (batch, d), data.device())?.to_dtype(data.dtype())?;
            match cfg.scheme {
                Scheme::SemiDual => {
                    let j_phi = (flow.phi.value(&x)?.mean_all()?
                        - smoothed_on_draws(flow, &flow.phi, &y, k, cfg.quadrature.as_ref(), rng)?.mean_all()?)?;
                    let j_psi = (flow.psi.value(&y)?.mean_all()?
                        - smoothed_on_draws(flow, &flow.psi, &x, k, cfg.quadrature.as_ref(), rng)?.mean_all()?)?;
                    let loss = (j_phi.neg()? - &j_psi)?;
                    let grads = loss.backward()?;
                    phi_opt.step(&grads)?;
                    psi_opt.step(&grads)?;
                    Ok(DualRecord { loss: scalar(&loss)?, phi: scalar(&j_phi)?, psi: scalar(&j_psi)?, seconds: 0.0 })
                }
                Scheme::Alternating => {
                    // The coupling term eps E_N[exp((psi + eps log H e^{phi/eps})/eps - log p_N)].
                    let coupling = |rng: &mut Rng, detach_phi: bool| -> Result<Tensor> {
                        let mut h = smoothed_on_draws(flow, &flow.phi, &y, k, cfg.quadrature.as_ref(), rng)?;
                        let mut p = flow.psi.value(&y)?;
                        if detach_phi {
                            h = h.detach();
                        } else {
                            p = p.detach();
                        }
                        let log = (((p + h)? / eps)? - normal_log_density(&y)?)?;
                        log.exp()?.mean_all()? * eps
                    };
                    let j_phi = ((flow.phi.value(&x)?.mean_all()? + flow.psi.value(&y)?.detach().mean_all()?)?
                        - coupling(rng, false)?)?;
                    phi_opt.step(&j_phi.neg()?.backward()?)?;
                    let j_psi = ((flow.phi.value(&x)?.detach().mean_all()? + flow.psi.value(&y)?.mean_all()?)?
                        - coupling(rng, true)?)?;
                    psi_opt.step(&j_psi.neg()?.backward()?)?;
                    let (a, b) = (scalar(&j_phi)? + eps, scalar(&j_psi)? + eps);
                    Ok(DualRecord { loss: -b, phi: a, psi: b, seconds: 0.0 })
                }
            }
        };
        let mut r = step().map_err(|e| fail(e, &records))?;
        r.seconds = start.elapsed().as_secs_f64();
        on_iter(records.len(), &r);
        if !r.loss.is_finite() {
            return Err((format!("the dual objective became {} at iteration {}", r.loss, records.len() + 1), records));
        }
        // The median over a window, so that one batch's outlier (the joint dual's exponential
        // term has them) is not taken for a runaway.
        let window = &records[records.len().saturating_sub(RUNAWAY_WINDOW - 1)..];
        let mut sizes: Vec<f64> = window.iter().chain([&r]).map(|w| w.phi.abs().max(w.psi.abs())).collect();
        sizes.sort_by(f64::total_cmp);
        let runaway = sizes[sizes.len() / 2];
        // The semi-duals only: the joint dual's values carry its coupling integral, whose
        // size at the start depends on the initial potentials, not on the transport cost.
        let semi = matches!(cfg.scheme, Scheme::SemiDual);
        if semi && window.len() + 1 == RUNAWAY_WINDOW && runaway > RUNAWAY * cost_scale {
            return Err((
                format!(
                    "the dual objective's median over the {RUNAWAY_WINDOW} iterations to {} is {runaway:.4e}, {RUNAWAY} \
                     times past the transport cost's scale ({cost_scale:.3}): the potentials exploit the heat \
                     operator's nodes instead of learning",
                    records.len() + 1
                ),
                records,
            ));
        }
        records.push(r);
    }
    Ok(records)
}
