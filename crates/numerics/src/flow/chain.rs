//! A flow of several pieces: CNF blocks in sequence, and FFJORD's multiscale architecture
//! for images (logit transform; per scale, blocks, a squeeze, more blocks, then half the
//! channels factored out to the base). log p(x) = sum of log N over the factored parts and
//! the final state, minus each block's log-density change, plus the logit's log-determinant.
//! The regularizer integrals are summed over blocks, as RNODE does.

use super::cnf::{Cnf, Trace, standard_normal_log_density};
use super::count::VjpCounter;
use super::field::{TangentField, TimeNet};
use super::image::{logit, logit_inverse, squeeze, unsqueeze};
use super::model::{AdjointGradients, FlowModel, Likelihood};
use crate::nn::{Activation, LayerSpec};
use crate::ode::{Failure, Options, SolveError, Stats};
use crate::rng::Rng;
use candle_core::{DType, Device, Tensor, Var};
use std::collections::HashMap;

pub enum Piece {
    /// y = logit(a + (1 - 2a) x) on data in [0, 1].
    Logit(f64),
    Block(Cnf<TimeNet>),
    /// [c, h, w] to [4c, h/2, w/2].
    Squeeze,
    /// The last half of the channels leave for the base distribution.
    FactorOut,
}

/// How a multiscale image flow is laid out: FFJORD's ODENVP (RNODE's MNIST model is
/// scales 3, blocks 2, hidden [64, 64, 64], softplus, kernel 3, alpha 1e-6), or a
/// multi-resolution flow (`Mrcnf`) with the same fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Multiscale {
    pub scales: usize,
    pub blocks: usize,
    pub hidden: Vec<usize>,
    pub act: Activation,
    pub kernel: usize,
    pub alpha: f64,
    pub t0: f64,
    pub t1: f64,
    pub trace: Trace,
}

impl Multiscale {
    /// RNODE's MNIST flow (FFJORD's): 3 scales of 2 blocks, concat_conv2d 64-64-64 with
    /// softplus, 3x3 kernels, logit alpha 1e-6.
    pub fn mnist(t1: f64, trace: Trace) -> Self {
        Multiscale {
            scales: 3,
            blocks: 2,
            hidden: vec![64, 64, 64],
            act: Activation::Softplus,
            kernel: 3,
            alpha: 1e-6,
            t0: 0.0,
            t1,
            trace,
        }
    }
}

pub struct FlowChain {
    /// The shape of one example entering the chain: [d] or [c, h, w].
    pub shape: Vec<usize>,
    pub pieces: Vec<Piece>,
}

/// A block's field over `channels`-channel images: concat_conv2d layers of the hidden
/// widths with `act` between them, back to `channels`.
pub fn conv_field_specs(channels: usize, hidden: &[usize], kernel: usize, act: Activation) -> Vec<LayerSpec> {
    let mut specs = Vec::new();
    let widths: Vec<usize> = hidden.iter().copied().chain([channels]).collect();
    for (k, out) in widths.iter().enumerate() {
        if k > 0 {
            specs.push(LayerSpec::Act(act));
        }
        specs.push(LayerSpec::ConcatConv2d { input: None, out: *out, kernel });
    }
    specs
}

/// Why images of `shape` cannot take `scales` scales, each but the last halving the image
/// (FFJORD's multiscale flow and the multi-resolution flow alike).
pub fn scales_fit(shape: &[usize], scales: usize) -> std::result::Result<(), String> {
    let [_, h, w] = shape else {
        return Err(format!("a flow of several scales needs images [channels, height, width], not shape {shape:?}"));
    };
    if scales == 0 {
        return Err("a flow of several scales needs at least one scale".into());
    }
    let halvings = scales - 1;
    let unit = 1usize << halvings;
    if h % unit != 0 || w % unit != 0 {
        return Err(format!(
            "{scales} scales halve the image {halvings} times: {h}x{w} is not divisible by {unit} (downsample or use fewer scales)"
        ));
    }
    Ok(())
}

/// The shape of an example after piece `p` of shape `s`.
fn after(p: &Piece, s: &[usize]) -> Vec<usize> {
    match p {
        Piece::Squeeze => vec![s[0] * 4, s[1] / 2, s[2] / 2],
        Piece::FactorOut => vec![kept_channels(s), s[1], s[2]],
        _ => s.to_vec(),
    }
}

/// Channels that stay in the flow at a factor-out of images `s` (the first half).
fn kept_channels(s: &[usize]) -> usize {
    s[0] / 2
}

/// The shape entering each piece, then the final one.
fn block_shapes(shape: &[usize], pieces: &[Piece]) -> Vec<Vec<usize>> {
    let mut out = vec![shape.to_vec()];
    for p in pieces {
        let next = after(p, out.last().map_or(shape, Vec::as_slice));
        out.push(next);
    }
    out
}

fn image(shape: &[usize]) -> [usize; 3] {
    [shape[0], shape[1], shape[2]]
}

impl FlowChain {
    /// `blocks` CNF blocks in sequence, each with a field of `specs` over `shape`; images
    /// ([c, h, w], values in [0, 1]) go through the logit transform with `alpha` first.
    #[allow(clippy::too_many_arguments)]
    pub fn blocks_of(
        specs: &[LayerSpec],
        shape: &[usize],
        blocks: usize,
        (t0, t1): (f64, f64),
        trace: Trace,
        alpha: f64,
        rng: &mut Rng,
        dev: &Device,
    ) -> std::result::Result<Self, String> {
        let mut pieces = Vec::new();
        if shape.len() == 3 {
            pieces.push(Piece::Logit(alpha));
        }
        for _ in 0..blocks.max(1) {
            let field = TimeNet::init(specs, shape, rng, DType::F32, dev)?;
            pieces.push(Piece::Block(Cnf { field, t0, t1, trace }));
        }
        Ok(FlowChain { shape: shape.to_vec(), pieces })
    }

    /// FFJORD's multiscale flow over images `shape`, fresh parameters.
    pub fn multiscale(
        shape: &[usize],
        m: &Multiscale,
        rng: &mut Rng,
        dtype: DType,
        dev: &Device,
    ) -> std::result::Result<Self, String> {
        scales_fit(shape, m.scales)?;
        let mut pieces = vec![Piece::Logit(m.alpha)];
        let mut s = shape.to_vec();
        let block = |s: &[usize], rng: &mut Rng| -> std::result::Result<Piece, String> {
            let specs = conv_field_specs(s[0], &m.hidden, m.kernel, m.act);
            let field = TimeNet::init(&specs, s, rng, dtype, dev)?;
            Ok(Piece::Block(Cnf { field, t0: m.t0, t1: m.t1, trace: m.trace }))
        };
        for scale in 0..m.scales {
            for _ in 0..m.blocks {
                pieces.push(block(&s, rng)?);
            }
            if scale + 1 < m.scales {
                s = after(&Piece::Squeeze, &s);
                pieces.push(Piece::Squeeze);
                for _ in 0..m.blocks {
                    pieces.push(block(&s, rng)?);
                }
                s = after(&Piece::FactorOut, &s);
                pieces.push(Piece::FactorOut);
            }
        }
        Ok(FlowChain { shape: shape.to_vec(), pieces })
    }

    /// The blocks in order.
    pub fn blocks(&self) -> impl Iterator<Item = &Cnf<TimeNet>> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Block(c) => Some(c),
            _ => None,
        })
    }

    /// Every parameter by name: `field.<spec>.<name>` for a single block (a plain CNF's
    /// names), else `block.<k>.field.<spec>.<name>`.
    pub fn named_vars(&self) -> Vec<(String, Var)> {
        let single = self.blocks().count() == 1;
        let mut out = Vec::new();
        for (k, b) in self.blocks().enumerate() {
            for (n, t) in b.field.named_vars() {
                out.push((if single { n } else { format!("block.{k}.{n}") }, t));
            }
        }
        out
    }

    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        self.named_vars().into_iter().map(|(n, v)| (n, v.as_tensor().clone())).collect()
    }

    /// Sets every parameter from `tensors` (as `named_tensors` names them).
    pub fn set_tensors(&self, tensors: &HashMap<String, Tensor>) -> std::result::Result<(), String> {
        set_named(&self.named_vars(), tensors)
    }

    /// The dimension of one example.
    pub fn dim(&self) -> usize {
        self.shape.iter().product()
    }

    /// log p(x) with every block's exact trace whatever it trains with, outside the graph.
    pub fn exact_log_density(&self, x: &Tensor, opts: &Options) -> std::result::Result<(Tensor, Stats), SolveError> {
        let l = self.walk(&x.detach(), |cnf, z| cnf.log_density(z, opts, &mut Rng::new(0), true))?;
        Ok((l.log_p, l.stats))
    }

    /// log p(x) with each block's own trace estimator (draws from `rng`), outside the graph:
    /// evaluation in high dimension (Hutchinson's is unbiased for log p, the trajectory not
    /// depending on the draw).
    pub fn estimated_log_density(
        &self,
        x: &Tensor,
        opts: &Options,
        rng: &mut Rng,
    ) -> std::result::Result<(Tensor, Stats), SolveError> {
        let l = self.walk(&x.detach(), |cnf, z| cnf.log_density(z, opts, rng, false))?;
        Ok((l.log_p, l.stats))
    }

    /// x through the pieces, each block's likelihood from `block`: log p(x), the
    /// regularizer integrals summed over blocks, the summed stats; `z` is x's image in the
    /// base, [n, D] (the factored parts in the order they left, then the final state: what
    /// `decode` takes), `end` empty.
    fn walk(
        &self,
        x: &Tensor,
        mut block: impl FnMut(&Cnf<TimeNet>, &Tensor) -> std::result::Result<Likelihood, SolveError>,
    ) -> std::result::Result<Likelihood, SolveError> {
        let shapes = block_shapes(&self.shape, &self.pieces);
        let fail = |e| SolveError::tensor(e, 0.0);
        let n = x.dim(0).map_err(fail)?;
        let mut log_p = Tensor::zeros(n, x.dtype(), x.device()).map_err(fail)?;
        let mut sums = BlockSums::new(&log_p);
        let mut z = x.clone();
        let mut parts = Vec::new();
        for (p, shape) in self.pieces.iter().zip(&shapes) {
            match p {
                Piece::Logit(a) => {
                    let (y, logdet) = logit(&z, *a).map_err(fail)?;
                    z = y;
                    log_p = (log_p + logdet).map_err(fail)?;
                }
                Piece::Block(cnf) => z = sums.add(&mut log_p, block(cnf, &z)?, cnf.t1)?,
                Piece::Squeeze => z = squeeze(&z, image(shape)).map_err(fail)?,
                Piece::FactorOut => {
                    let d = z.dim(1).map_err(fail)?;
                    let keep = kept_channels(shape) * shape[1] * shape[2];
                    parts.push(z.narrow(1, keep, d - keep).map_err(fail)?);
                    z = z.narrow(1, 0, keep).map_err(fail)?;
                }
            }
        }
        parts.push(z);
        let z = Tensor::cat(&parts, 1).map_err(fail)?;
        log_p = (log_p + standard_normal_log_density(&z).map_err(fail)?).map_err(fail)?;
        Ok(sums.likelihood(log_p, z))
    }

    /// n samples: base draws decoded.
    pub fn sample(
        &self,
        n: usize,
        opts: &Options,
        rng: &mut Rng,
        dtype: DType,
        dev: &Device,
    ) -> std::result::Result<(Tensor, Stats), SolveError> {
        self.decode(&base_draws(n, self.dim(), rng, dtype, dev)?, opts)
    }

    /// Data from base points [n, D] laid out as `log_likelihood_counted`'s `z`: the pieces
    /// taken backwards, blocks integrated from t1 to t0.
    pub fn decode(&self, base: &Tensor, opts: &Options) -> std::result::Result<(Tensor, Stats), SolveError> {
        let shapes = block_shapes(&self.shape, &self.pieces);
        let fail = |e| SolveError::tensor(e, 0.0);
        let last: usize = shapes.last().map_or(0, |s| s.iter().product());
        let mut end = base.dim(1).map_err(fail)?;
        let mut z = base.narrow(1, end - last, last).map_err(fail)?;
        end -= last;
        let mut stats = Stats::default();
        for (p, shape) in self.pieces.iter().zip(&shapes).rev() {
            match p {
                Piece::Logit(a) => z = logit_inverse(&z, *a).map_err(fail)?,
                Piece::Block(cnf) => {
                    let (x, s) = cnf.sample(&z, opts)?;
                    add_stats(&mut stats, &s);
                    z = x;
                }
                Piece::Squeeze => z = unsqueeze(&z, image(shape)).map_err(fail)?,
                Piece::FactorOut => {
                    let total: usize = shape.iter().product();
                    let size = total - kept_channels(shape) * shape[1] * shape[2];
                    let part = base.narrow(1, end - size, size).map_err(fail)?;
                    end -= size;
                    z = Tensor::cat(&[&z, &part], 1).map_err(fail)?;
                }
            }
        }
        Ok((z, stats))
    }
}

impl FlowModel for FlowChain {
    fn vars(&self) -> Vec<Var> {
        self.blocks().flat_map(|b| b.field.vars()).collect()
    }
    fn log_likelihood_counted(
        &self,
        x: &Tensor,
        opts: &Options,
        rng: &mut Rng,
        vjps: Option<&VjpCounter>,
    ) -> std::result::Result<Likelihood, SolveError> {
        self.walk(x, |cnf, z| cnf.log_likelihood_counted(z, opts, rng, vjps))
    }
    /// A chain of one block is that block's adjoint. Not built for longer chains: each
    /// block's adjoint would start from the gradient the pieces after it pass back, not
    /// from the loss.
    fn adjoint_loss_gradients(
        &self,
        x: &Tensor,
        weights: (f64, f64),
        opts: &Options,
        rng: &mut Rng,
    ) -> std::result::Result<AdjointGradients, SolveError> {
        if let [Piece::Block(cnf)] = self.pieces.as_slice() {
            return cnf.adjoint_loss_gradients(x, weights, opts, rng);
        }
        Err(SolveError {
            failure: Failure::Tensor("the adjoint method is built for single CNFs, not chains of blocks".into()),
            t: 0.0,
            stats: Stats::default(),
            partial: Vec::new(),
            last: None,
        })
    }
}

/// What the CNF blocks of a walk add up: the regularizer integrals per example and the
/// solves' stats.
pub(super) struct BlockSums {
    kinetic: Tensor,
    jacobian: Tensor,
    stats: Stats,
}

impl BlockSums {
    /// Zero integrals shaped like `zeros` ([n]).
    pub(super) fn new(zeros: &Tensor) -> Self {
        BlockSums { kinetic: zeros.clone(), jacobian: zeros.clone(), stats: Stats::default() }
    }

    /// A block's likelihood `l` (ending at `t1`) taken in: its log-density change off
    /// `log_p`, its integrals and stats added; its end state returned.
    pub(super) fn add(
        &mut self,
        log_p: &mut Tensor,
        l: Likelihood,
        t1: f64,
    ) -> std::result::Result<Tensor, SolveError> {
        let fail = |e| SolveError::tensor(e, t1);
        let delta = l.end[1].squeeze(1).map_err(fail)?;
        *log_p = (&*log_p - delta).map_err(fail)?;
        self.kinetic = (&self.kinetic + l.kinetic).map_err(fail)?;
        self.jacobian = (&self.jacobian + l.jacobian).map_err(fail)?;
        add_stats(&mut self.stats, &l.stats);
        Ok(l.z)
    }

    /// The walk's likelihood: log p(x), x's base point, the sums.
    pub(super) fn likelihood(self, log_p: Tensor, z: Tensor) -> Likelihood {
        Likelihood { log_p, z, kinetic: self.kinetic, jacobian: self.jacobian, end: Vec::new(), stats: self.stats }
    }
}

/// n standard-normal draws of dimension d from `rng`, [n, d] in `dtype` on `dev`.
pub fn base_draws(
    n: usize,
    d: usize,
    rng: &mut Rng,
    dtype: DType,
    dev: &Device,
) -> std::result::Result<Tensor, SolveError> {
    let v: Vec<f32> = (0..n * d).map(|_| rng.normal() as f32).collect();
    Tensor::from_vec(v, (n, d), &Device::Cpu)
        .and_then(|t| t.to_dtype(dtype))
        .and_then(|t| t.to_device(dev))
        .map_err(|e| SolveError::tensor(e, 0.0))
}

/// Sets each named parameter from the tensor of its name.
pub(super) fn set_named(vars: &[(String, Var)], tensors: &HashMap<String, Tensor>) -> std::result::Result<(), String> {
    for (name, v) in vars {
        let t = tensors.get(name).ok_or_else(|| format!("no tensor `{name}`"))?;
        if t.dims() != v.dims() {
            return Err(format!("tensor `{name}` has shape {:?}, the flow needs {:?}", t.dims(), v.dims()));
        }
        let t = t.to_dtype(v.dtype()).and_then(|t| t.to_device(v.device())).map_err(|e| e.to_string())?;
        v.set(&t).map_err(|e| e.to_string())?;
    }
    Ok(())
}

pub(super) fn add_stats(total: &mut Stats, s: &Stats) {
    total.nfe += s.nfe;
    total.accepted += s.accepted;
    total.rejected += s.rejected;
}
