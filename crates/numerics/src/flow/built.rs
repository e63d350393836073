//! A flow as the stages hold it: a chain of pieces (one CNF, blocks in sequence, FFJORD's
//! multiscale flow), a multi-resolution flow, or the flow recovered from entropic
//! potentials, behind one set of operations.

use super::chain::FlowChain;
use super::model::FlowModel;
use super::mrcnf::Mrcnf;
use crate::ode::{Options, SolveError, Stats};
use crate::potential::PotentialFlow;
use crate::rng::Rng;
use candle_core::{DType, Device, Tensor, Var};
use std::collections::HashMap;

pub enum BuiltFlow {
    Chain(FlowChain),
    Multires(Mrcnf),
    Potential(Box<PotentialFlow>),
}

impl BuiltFlow {
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        match self {
            BuiltFlow::Chain(c) => c.named_tensors(),
            BuiltFlow::Multires(m) => m.named_tensors(),
            BuiltFlow::Potential(p) => p.named_tensors(),
        }
    }

    pub fn set_tensors(&mut self, tensors: &HashMap<String, Tensor>) -> Result<(), String> {
        match self {
            BuiltFlow::Chain(c) => c.set_tensors(tensors),
            BuiltFlow::Multires(m) => m.set_tensors(tensors),
            BuiltFlow::Potential(p) => p.set_tensors(tensors),
        }
    }

    /// What maximum-likelihood training needs of the flow; none for a flow trained by its
    /// potentials' dual.
    pub fn likelihood_model(&self) -> Option<&dyn FlowModel> {
        match self {
            BuiltFlow::Chain(c) => Some(c),
            BuiltFlow::Multires(m) => Some(m),
            BuiltFlow::Potential(_) => None,
        }
    }

    pub fn vars(&self) -> Vec<Var> {
        match self {
            BuiltFlow::Chain(c) => c.vars(),
            BuiltFlow::Multires(m) => m.vars(),
            BuiltFlow::Potential(p) => p.vars(),
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
            BuiltFlow::Potential(p) => p.dim(),
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
            BuiltFlow::Potential(p) => p.log_density(x, opts).map(|(log_p, _, stats)| (log_p, stats)),
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
            BuiltFlow::Potential(p) => p.log_density(x, opts).map(|(log_p, _, stats)| (vec![log_p], stats)),
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
            BuiltFlow::Potential(p) => p.sample(n, opts, rng, dtype, dev).map(|(x, s)| (vec![x], s)),
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
            BuiltFlow::Potential(p) => p.decode(base, opts),
        }
    }

    /// The velocity at points x [n, d] at the fraction `s` in [0, 1] of the way from the data
    /// to the base, per unit of s (a CNF over [t0, t1] moves (t1 - t0) times its field): for
    /// flows of one vector field (a single CNF block, a potential flow); `None` for others.
    pub fn velocity(&self, s: f64, x: &Tensor) -> Option<candle_core::Result<Tensor>> {
        match self {
            BuiltFlow::Chain(c) => match c.pieces.as_slice() {
                [super::chain::Piece::Block(cnf)] => {
                    use super::field::TangentField;
                    let t = cnf.t0 + s * (cnf.t1 - cnf.t0);
                    Some(cnf.field.eval(t, x).and_then(|v| v.detach() * (cnf.t1 - cnf.t0)))
                }
                _ => None,
            },
            BuiltFlow::Multires(_) => None,
            BuiltFlow::Potential(p) => Some(p.velocity(s, x, false).map(|v| v.v)),
        }
    }

    /// The shapes `sample` returns, coarsest first: [c, h, w] each, or the vector's [d].
    pub fn sample_shapes(&self) -> Vec<Vec<usize>> {
        match self {
            BuiltFlow::Chain(c) => vec![c.shape.clone()],
            BuiltFlow::Multires(m) => m.resolutions().iter().map(|s| s.to_vec()).collect(),
            BuiltFlow::Potential(p) => vec![vec![p.dim()]],
        }
    }
}
