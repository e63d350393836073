//! Training a CNF by maximum likelihood with RNODE's regularizers: loss = mean(-log p) +
//! lambda_k mean(kinetic) + lambda_j mean(jacobian), minibatches from a seeded shuffle, and a
//! record per iteration (the terms, the forward and backward NFE, the wall time) so that the
//! NFE-per-iteration curve of the RNODE paper can be drawn. Gradients by backprop through the
//! solver (the backward NFE is the number of evaluations differentiated) or by the adjoint
//! method (its backward solve's NFE).

use super::cnf::{Cnf, Likelihood};
use super::count::VjpCounter;
use super::field::TangentField;
use crate::nn::{OptimSpec, Optimizer};
use crate::ode::{Failure, Options, SolveError, Stats};
use crate::rng::Rng;
use candle_core::Tensor;
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct FlowFit {
    pub iters: usize,
    pub batch: usize,
    pub optimizer: OptimSpec,
    /// lambda of the kinetic-energy integral (0: not used).
    pub kinetic: f64,
    /// lambda of the Jacobian-Frobenius integral (0: not used).
    pub jacobian: f64,
    /// Gradients by the adjoint method instead of backprop through the solver.
    pub adjoint: bool,
}

/// One iteration's numbers (batch means).
#[derive(Debug, Clone, PartialEq)]
pub struct FlowRecord {
    pub loss: f64,
    pub nll: f64,
    pub kinetic: f64,
    pub jacobian: f64,
    pub nfe_forward: usize,
    pub nfe_backward: usize,
    pub seconds: f64,
}

/// Trains the flow's field on `data` [n, d].
pub fn fit_flow<F: TangentField>(
    flow: &Cnf<F>,
    data: &Tensor,
    cfg: &FlowFit,
    opts: &Options,
    rng: &mut Rng,
) -> Result<Vec<FlowRecord>, SolveError> {
    fit_flow_with(flow, data, cfg, opts, rng, |_, _| {})
}

/// `fit_flow`, calling `on_iter` after each iteration. A loss that is not finite stops the
/// training with `Failure::NonFinite` at that iteration's records.
pub fn fit_flow_with<F: TangentField>(
    flow: &Cnf<F>,
    data: &Tensor,
    cfg: &FlowFit,
    opts: &Options,
    rng: &mut Rng,
    mut on_iter: impl FnMut(usize, &FlowRecord),
) -> Result<Vec<FlowRecord>, SolveError> {
    // Failures around the solves (batching, the loss) belong to no time of the flow.
    let untimed = |e| SolveError::tensor(e, 0.0);
    let n = data.dim(0).map_err(untimed)?;
    let batch = cfg.batch.clamp(1, n.max(1));
    let mut opt = Optimizer::new(cfg.optimizer.clone(), flow.field.vars());
    let mut order: Vec<usize> = Vec::new();
    let mut records = Vec::with_capacity(cfg.iters);
    for _ in 0..cfg.iters {
        let start = Instant::now();
        if order.len() < batch {
            order = rng.permutation(n);
        }
        let idx: Vec<u32> = order.drain(..batch).map(|i| i as u32).collect();
        let rows = Tensor::from_vec(idx, batch, data.device()).map_err(untimed)?;
        let x = data.index_select(&rows, 0).map_err(untimed)?;
        let vjps = VjpCounter::default();
        let scalar = |t: &Tensor| t.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>();
        let terms = |l: &Likelihood| -> candle_core::Result<(Tensor, Tensor, Tensor, Tensor)> {
            let nll = l.log_p.neg()?.mean_all()?;
            let (kin, jac) = (l.kinetic.mean_all()?, l.jacobian.mean_all()?);
            let mut loss = nll.clone();
            if cfg.kinetic != 0.0 {
                loss = (loss + (&kin * cfg.kinetic)?)?;
            }
            if cfg.jacobian != 0.0 {
                loss = (loss + (&jac * cfg.jacobian)?)?;
            }
            Ok((loss, nll, kin, jac))
        };
        let record = |l: &Likelihood, nfe_backward: usize| -> candle_core::Result<FlowRecord> {
            let (loss, nll, kin, jac) = terms(l)?;
            Ok(FlowRecord {
                loss: scalar(&loss)?,
                nll: scalar(&nll)?,
                kinetic: scalar(&kin)?,
                jacobian: scalar(&jac)?,
                nfe_forward: l.stats.nfe,
                nfe_backward,
                seconds: 0.0,
            })
        };
        let step = if cfg.adjoint {
            let (l, grads, back) = flow.adjoint_loss_gradients(&x, (cfg.kinetic, cfg.jacobian), opts, rng)?;
            let mut apply = || -> candle_core::Result<FlowRecord> {
                // A surrogate whose gradient in each parameter is the adjoint's.
                let vars = flow.field.vars();
                let mut surrogate = Tensor::zeros((), x.dtype(), x.device())?;
                for (v, g) in vars.iter().zip(&grads) {
                    surrogate = (surrogate + (v.as_tensor() * g.detach())?.sum_all()?)?;
                }
                opt.step(&surrogate.backward()?)?;
                record(&l, back.nfe)
            };
            apply()
        } else {
            let l = flow.log_likelihood_counted(&x, opts, rng, Some(&vjps))?;
            let mut apply = || -> candle_core::Result<FlowRecord> {
                let (loss, ..) = terms(&l)?;
                opt.step(&loss.backward()?)?;
                record(&l, vjps.get())
            };
            apply()
        };
        let mut r = step.map_err(untimed)?;
        r.seconds = start.elapsed().as_secs_f64();
        on_iter(records.len(), &r);
        if !r.loss.is_finite() {
            return Err(SolveError {
                failure: Failure::NonFinite,
                t: flow.t0,
                stats: Stats { nfe: r.nfe_forward, ..Stats::default() },
                partial: Vec::new(),
                last: None,
            });
        }
        records.push(r);
    }
    Ok(records)
}
