//! A flow as the stages hold it: a chain of pieces (one CNF, blocks in sequence, FFJORD's
//! multiscale flow) or a multi-resolution flow, behind one set of operations.

use super::chain::FlowChain;
use super::count::VjpCounter;
use super::model::{AdjointGradients, FlowModel, Likelihood};
use super::mrcnf::Mrcnf;
use crate::ode::{Options, SolveError, Stats};
use crate::rng::Rng;
use candle_core::{DType, Device, Tensor, Var};
use std::collections::HashMap;

pub enum BuiltFlow {
    Chain(FlowChain),
    Multires(Mrcnf),
}

impl BuiltFlow {
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        match self {
            BuiltFlow::Chain(c) => c.named_tensors(),
            BuiltFlow::Multires(m) => m.named_tensors(),
        }
    }

    pub fn set_tensors(&self, tensors: &HashMap<String, Tensor>) -> Result<(), String> {
        match self {
            BuiltFlow::Chain(c) => c.set_tensors(tensors),
            BuiltFlow::Multires(m) => m.set_tensors(tensors),
        }
    }

    pub fn parameter_count(&self) -> usize {
        self.vars().iter().map(|v| v.elem_count()).sum()
    }

    /// The dimension of one example.
    pub fn dim(&self) -> usize {
        match self {
            BuiltFlow::Chain(c) => c.dim(),
            BuiltFlow::Multires(m) => m.dim(),
        }
    }

    /// log p(x) with the exact trace, outside the graph.
    pub fn exact_log_density(&self, x: &Tensor, opts: &Options) -> Result<(Tensor, Stats), SolveError> {
        match self {
            BuiltFlow::Chain(c) => c.exact_log_density(x, opts),
            BuiltFlow::Multires(m) => {
                let l = m.log_density(x, opts, &mut Rng::new(0), true)?.likelihood;
                Ok((l.log_p, l.stats))
            }
        }
    }

    /// log p(x) outside the graph in the flow's parts, which add up to it: one for a chain,
    /// the coarsest image's term and each finer resolution's details' term (coarse to
    /// fine) for a multi-resolution flow. With the exact trace or each block's own
    /// estimator (draws from `rng`).
    pub fn log_density_parts(
        &self,
        x: &Tensor,
        opts: &Options,
        rng: &mut Rng,
        exact: bool,
    ) -> Result<(Vec<Tensor>, Stats), SolveError> {
        match self {
            BuiltFlow::Chain(c) => {
                let (log_p, stats) =
                    if exact { c.exact_log_density(x, opts)? } else { c.estimated_log_density(x, opts, rng)? };
                Ok((vec![log_p], stats))
            }
            BuiltFlow::Multires(m) => {
                let t = m.log_density(x, opts, rng, exact)?;
                Ok((t.per_scale, t.likelihood.stats))
            }
        }
    }

    /// n samples at every resolution the flow has, coarsest first (one for a chain).
    pub fn sample(
        &self,
        n: usize,
        opts: &Options,
        rng: &mut Rng,
        dtype: DType,
        dev: &Device,
    ) -> Result<(Vec<Tensor>, Stats), SolveError> {
        match self {
            BuiltFlow::Chain(c) => c.sample(n, opts, rng, dtype, dev).map(|(x, s)| (vec![x], s)),
            BuiltFlow::Multires(m) => m.sample(n, opts, rng, dtype, dev),
        }
    }

    /// Data from base points [n, D] laid out as a likelihood pass's `z` (the finest
    /// resolution of a multi-resolution flow).
    pub fn decode(&self, base: &Tensor, opts: &Options) -> Result<(Tensor, Stats), SolveError> {
        match self {
            BuiltFlow::Chain(c) => c.decode(base, opts),
            BuiltFlow::Multires(m) => {
                let (mut images, stats) = m.decode(base, opts)?;
                Ok((images.pop().expect("one scale at least"), stats))
            }
        }
    }

    /// The shapes `sample` returns, coarsest first: [c, h, w] each, or the vector's [d].
    pub fn sample_shapes(&self) -> Vec<Vec<usize>> {
        match self {
            BuiltFlow::Chain(c) => vec![c.shape.clone()],
            BuiltFlow::Multires(m) => m.resolutions().iter().map(|s| s.to_vec()).collect(),
        }
    }
}

impl FlowModel for BuiltFlow {
    fn vars(&self) -> Vec<Var> {
        match self {
            BuiltFlow::Chain(c) => c.vars(),
            BuiltFlow::Multires(m) => m.vars(),
        }
    }
    fn log_likelihood_counted(
        &self,
        x: &Tensor,
        opts: &Options,
        rng: &mut Rng,
        vjps: Option<&VjpCounter>,
    ) -> Result<Likelihood, SolveError> {
        match self {
            BuiltFlow::Chain(c) => c.log_likelihood_counted(x, opts, rng, vjps),
            BuiltFlow::Multires(m) => m.log_likelihood_counted(x, opts, rng, vjps),
        }
    }
    fn adjoint_loss_gradients(
        &self,
        x: &Tensor,
        weights: (f64, f64),
        opts: &Options,
        rng: &mut Rng,
    ) -> Result<AdjointGradients, SolveError> {
        match self {
            BuiltFlow::Chain(c) => c.adjoint_loss_gradients(x, weights, opts, rng),
            BuiltFlow::Multires(m) => m.adjoint_loss_gradients(x, weights, opts, rng),
        }
    }
}
