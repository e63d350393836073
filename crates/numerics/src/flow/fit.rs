//! Training a flow (one CNF or a chain) by maximum likelihood with RNODE's regularizers:
//! loss = mean(-log p) (bits/dim for 8-bit images, dequantized per batch) + lambda_k
//! mean(kinetic) + lambda_j mean(jacobian), minibatches from a seeded shuffle, and a
//! record per iteration (the terms, the forward and backward NFE, the wall time) so that the
//! NFE-per-iteration curve of the RNODE paper can be drawn. Gradients by backprop through the
//! solver (the backward NFE is the number of evaluations differentiated) or by the adjoint
//! method (its backward solve's NFE).

use super::count::VjpCounter;
use super::image::{bits_per_dim, dequantize};
use super::model::{FlowModel, Likelihood};
use crate::nn::{OptimSpec, Optimizer};
use crate::ode::{Failure, Options, SolveError, Stats};
use crate::rng::Rng;
use candle_core::Tensor;
use std::f64::consts::LN_2;
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
    /// The data are 8-bit levels (pixel / 255): each batch is dequantized afresh.
    pub dequantize: bool,
    /// The likelihood term of the loss is bits per dimension of 8-bit data rather than nats.
    pub bits_per_dim: bool,
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

/// An iteration's loss and its terms (batch means): loss, NLL, kinetic, Jacobian.
type Terms = (Tensor, Tensor, Tensor, Tensor);

/// Trains the flow's parameters on `data` [n, d].
pub fn fit_flow<M: FlowModel + ?Sized>(
    flow: &M,
    data: &Tensor,
    cfg: &FlowFit,
    opts: &Options,
    rng: &mut Rng,
) -> Result<Vec<FlowRecord>, SolveError> {
    fit_flow_with(flow, data, cfg, opts, rng, |_, _| {})
}

/// `fit_flow`, calling `on_iter` after each iteration. A loss that is not finite stops the
/// training with `Failure::NonFinite` at that iteration's records.
pub fn fit_flow_with<M: FlowModel + ?Sized>(
    flow: &M,
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
    let mut opt = Optimizer::new(cfg.optimizer.clone(), flow.vars());
    let dims = data.dims().iter().skip(1).product::<usize>().max(1) as f64;
    // bits/dim = (nll / D + log 256) / log 2, so the likelihood term is scaled and shifted.
    let (scale, shift) =
        if cfg.bits_per_dim { (1.0 / (dims * LN_2), bits_per_dim(0.0, dims as usize)) } else { (1.0, 0.0) };
    let mut batches = crate::rng::Batches::new(n, batch);
    let mut records = Vec::with_capacity(cfg.iters);
    for _ in 0..cfg.iters {
        let start = Instant::now();
        let idx: Vec<u32> = batches.next(rng).into_iter().map(|i| i as u32).collect();
        let rows = Tensor::from_vec(idx, batch, data.device()).map_err(untimed)?;
        let mut x = data.index_select(&rows, 0).map_err(untimed)?;
        if cfg.dequantize {
            x = dequantize(&x, rng).map_err(untimed)?;
        }
        let vjps = VjpCounter::default();
        let scalar = |t: &Tensor| t.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>();
        let terms = |l: &Likelihood| -> candle_core::Result<Terms> {
            let nll = l.log_p.neg()?.mean_all()?;
            let (kin, jac) = (l.kinetic.mean_all()?, l.jacobian.mean_all()?);
            let mut loss = nll.affine(scale, shift)?;
            if cfg.kinetic != 0.0 {
                loss = (loss + (&kin * cfg.kinetic)?)?;
            }
            if cfg.jacobian != 0.0 {
                loss = (loss + (&jac * cfg.jacobian)?)?;
            }
            Ok((loss, nll, kin, jac))
        };
        let record = |l: &Likelihood, (loss, nll, kin, jac): &Terms, nfe_backward: usize| {
            Ok::<_, candle_core::Error>(FlowRecord {
                loss: scalar(loss)?,
                nll: scalar(nll)?,
                kinetic: scalar(kin)?,
                jacobian: scalar(jac)?,
                nfe_forward: l.stats.nfe,
                nfe_backward,
                seconds: 0.0,
            })
        };
        let step = if cfg.adjoint {
            let weights = (cfg.kinetic / scale, cfg.jacobian / scale);
            let (l, grads, back) = flow.adjoint_loss_gradients(&x, weights, opts, rng)?;
            let mut apply = || -> candle_core::Result<FlowRecord> {
                // A surrogate whose gradient in each parameter is the adjoint's.
                let vars = flow.vars();
                let mut surrogate = Tensor::zeros((), x.dtype(), x.device())?;
                for (v, g) in vars.iter().zip(&grads) {
                    surrogate = (surrogate + (v.as_tensor() * (g.detach() * scale)?)?.sum_all()?)?;
                }
                opt.step(&surrogate.backward()?)?;
                record(&l, &terms(&l)?, back.nfe)
            };
            apply()
        } else {
            let l = flow.log_likelihood_counted(&x, opts, rng, Some(&vjps))?;
            let mut apply = || -> candle_core::Result<FlowRecord> {
                let t = terms(&l)?;
                opt.step(&t.0.backward()?)?;
                record(&l, &t, vjps.get())
            };
            apply()
        };
        let mut r = step.map_err(untimed)?;
        r.seconds = start.elapsed().as_secs_f64();
        on_iter(records.len(), &r);
        if !r.loss.is_finite() {
            return Err(SolveError {
                failure: Failure::NonFinite,
                t: 0.0,
                stats: Stats { nfe: r.nfe_forward, ..Stats::default() },
                partial: Vec::new(),
                last: None,
            });
        }
        records.push(r);
    }
    Ok(records)
}
