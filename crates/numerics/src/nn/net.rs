//! A model: a chain of layers built from `LayerSpec`s, with candle `Var`s as parameters.

use super::kernels;
use super::spec::{Activation, Aggregate, LayerSpec, infer_one, infer_shapes};
use crate::rng::Rng;
use candle_core::{D, DType, Device, Result, Tensor, Var};
use std::collections::HashMap;
use std::sync::Arc;

const BN_EPS: f64 = 1e-5;
const BN_MOMENTUM: f64 = 0.1;

pub(super) enum Built {
    Linear { w: Var, b: Var },
    Conv { w: Var, b: Var, stride: usize, pad: usize },
    MaxPool { kernel: usize, stride: usize },
    AvgPool { kernel: usize, stride: usize },
    GlobalAvgPool,
    Flatten,
    Dropout { p: f64 },
    BatchNorm { gamma: Var, beta: Var, mean: Var, var: Var },
    Normalize { mean: Tensor, std: Tensor },
    Act(Activation),
    Residual { body: Vec<Built>, farkas: Option<(Aggregate, Var)> },
    NeuralOde { field: Arc<Vec<Built>>, params: Vec<Var>, t1: f64, opts: crate::ode::Options, adjoint: bool },
    FarkasLinear { w: Var, b: Var, last: Var, agg: Aggregate },
    FarkasConv { w: Var, b: Var, last: Var, agg: Aggregate, stride: usize, pad: usize },
}

impl Built {
    /// What the layer is, for messages.
    pub(super) fn name(&self) -> &'static str {
        match self {
            Built::Linear { .. } => "dense",
            Built::Conv { .. } => "convolution",
            Built::MaxPool { .. } => "max-pooling",
            Built::AvgPool { .. } => "average-pooling",
            Built::GlobalAvgPool => "global average-pooling",
            Built::Flatten => "flatten",
            Built::Dropout { .. } => "dropout",
            Built::BatchNorm { .. } => "batch-norm",
            Built::Normalize { .. } => "normalize",
            Built::Act(_) => "activation",
            Built::Residual { farkas: None, .. } => "residual",
            Built::Residual { .. } => "Farkas residual",
            Built::NeuralOde { .. } => "neural ODE",
            Built::FarkasLinear { .. } => "Farkas dense",
            Built::FarkasConv { .. } => "Farkas convolution",
        }
    }
}

fn loaded(map: &HashMap<String, Tensor>, name: &str, shape: &[usize], device: &Device) -> Result<Tensor> {
    let t = map.get(name).ok_or_else(|| candle_core::Error::Msg(format!("missing tensor `{name}`")))?;
    if t.dims() != shape {
        return Err(candle_core::Error::Msg(format!(
            "tensor `{name}` has shape {:?}, the model needs {shape:?}",
            t.dims()
        )));
    }
    t.to_dtype(DType::F32)?.to_device(device)
}

/// Where parameters come from: fresh initialisation or saved tensors.
enum Source<'a> {
    Init(&'a mut Rng),
    Load(&'a HashMap<String, Tensor>),
}

struct Builder<'a> {
    source: Source<'a>,
    device: Device,
    /// Every parameter and buffer by name, in creation order.
    named: Vec<(String, Var, bool)>,
}

impl Builder<'_> {
    /// A trainable tensor, PyTorch-initialised uniform in +-1/sqrt(fan_in).
    fn uniform(&mut self, name: &str, shape: &[usize], fan_in: usize) -> Result<Var> {
        let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
        let t = match &mut self.source {
            Source::Init(rng) => {
                let n: usize = shape.iter().product();
                let v: Vec<f32> = (0..n).map(|_| ((rng.uniform() * 2.0 - 1.0) * bound) as f32).collect();
                Tensor::from_vec(v, shape, &self.device)?
            }
            Source::Load(map) => loaded(map, name, shape, &self.device)?,
        };
        self.register(name, t, true)
    }

    fn constant(&mut self, name: &str, shape: &[usize], value: f32, trainable: bool) -> Result<Var> {
        let t = match &self.source {
            Source::Init(_) => Tensor::full(value, shape, &self.device)?,
            Source::Load(map) => loaded(map, name, shape, &self.device)?,
        };
        self.register(name, t, trainable)
    }

    fn register(&mut self, name: &str, t: Tensor, trainable: bool) -> Result<Var> {
        // A fresh copy even of another model's variable: optimizers update parameters in
        // place, and another model's must not move with this one's.
        let v = Var::from_tensor(&t.detach())?;
        self.named.push((name.to_string(), v.clone(), trainable));
        Ok(v)
    }

    fn chain(&mut self, prefix: &str, specs: &[LayerSpec], input: &[usize]) -> Result<Vec<Built>> {
        let mut shape = input.to_vec();
        let mut out = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            let name = format!("{prefix}{i}");
            out.push(self.layer(&name, spec, &shape)?);
            shape = infer_one(i, spec, &shape).map_err(|e| candle_core::Error::Msg(e.message))?;
        }
        Ok(out)
    }

    fn layer(&mut self, name: &str, spec: &LayerSpec, s: &[usize]) -> Result<Built> {
        let p = |what: &str| format!("{name}.{what}");
        Ok(match spec {
            LayerSpec::Linear { out, .. } => {
                let fan = s[0];
                Built::Linear {
                    w: self.uniform(&p("weight"), &[*out, fan], fan)?,
                    b: self.uniform(&p("bias"), &[*out], fan)?,
                }
            }
            LayerSpec::Conv2d { out, kernel, stride, pad, .. } => {
                let fan = s[0] * kernel * kernel;
                Built::Conv {
                    w: self.uniform(&p("weight"), &[*out, s[0], *kernel, *kernel], fan)?,
                    b: self.uniform(&p("bias"), &[*out], fan)?,
                    stride: *stride,
                    pad: *pad,
                }
            }
            LayerSpec::MaxPool { kernel, stride } => Built::MaxPool { kernel: *kernel, stride: *stride },
            LayerSpec::AvgPool { kernel, stride } => Built::AvgPool { kernel: *kernel, stride: *stride },
            LayerSpec::GlobalAvgPool => Built::GlobalAvgPool,
            LayerSpec::Flatten => Built::Flatten,
            LayerSpec::Dropout { p } => Built::Dropout { p: *p },
            LayerSpec::BatchNorm => {
                let c = s[0];
                Built::BatchNorm {
                    gamma: self.constant(&p("weight"), &[c], 1.0, true)?,
                    beta: self.constant(&p("bias"), &[c], 0.0, true)?,
                    mean: self.constant(&p("running_mean"), &[c], 0.0, false)?,
                    var: self.constant(&p("running_var"), &[c], 1.0, false)?,
                }
            }
            LayerSpec::Normalize { mean, std } => {
                let shape: Vec<usize> = if s.len() == 3 { vec![1, mean.len(), 1, 1] } else { vec![1, mean.len()] };
                let m: Vec<f32> = mean.iter().map(|v| *v as f32).collect();
                let d: Vec<f32> = std.iter().map(|v| *v as f32).collect();
                let shape_std: Vec<usize> = if s.len() == 3 { vec![1, std.len(), 1, 1] } else { vec![1, std.len()] };
                Built::Normalize {
                    mean: Tensor::from_vec(m, shape, &self.device)?,
                    std: Tensor::from_vec(d, shape_std, &self.device)?,
                }
            }
            LayerSpec::Act(a) => Built::Act(*a),
            LayerSpec::ConcatSquash { .. } | LayerSpec::ConcatLinear { .. } | LayerSpec::ConcatConv2d { .. } => {
                return Err(candle_core::Error::Msg(format!(
                    "layer {name} depends on time: it runs only inside a `cnf`'s field"
                )));
            }
            LayerSpec::NeuralOde {
                field,
                t1,
                method,
                step,
                rtol,
                atol,
                max_steps,
                first_step,
                min_step,
                max_step,
                adjoint,
            } => {
                let before = self.named.len();
                let inner = self.chain(&format!("{name}.field."), field, s)?;
                let params: Vec<Var> =
                    self.named[before..].iter().filter(|(_, _, t)| *t).map(|(_, v, _)| v.clone()).collect();
                let mut opts = crate::ode::Options::new(*method);
                opts.step = *step;
                opts.rtol = *rtol;
                opts.atol = *atol;
                opts.max_steps = *max_steps;
                opts.first_step = *first_step;
                opts.min_step = *min_step;
                opts.max_step = max_step.unwrap_or(f64::INFINITY);
                Built::NeuralOde { field: Arc::new(inner), params, t1: *t1, opts, adjoint: *adjoint }
            }
            LayerSpec::Residual { body, farkas } => {
                let inner = self.chain(&format!("{name}.body."), body, s)?;
                let farkas = match farkas {
                    Some(agg) => Some((*agg, self.constant(&p("last_bias"), &[1], 0.0, true)?)),
                    None => None,
                };
                Built::Residual { body: inner, farkas }
            }
            LayerSpec::FarkasLinear { out, agg, .. } => {
                let fan = s[0];
                let m = out.saturating_sub(1).max(1);
                Built::FarkasLinear {
                    w: self.uniform(&p("weight"), &[m, fan], fan)?,
                    b: self.uniform(&p("bias"), &[m], fan)?,
                    last: self.uniform(&p("last_bias"), &[1], fan)?,
                    agg: *agg,
                }
            }
            LayerSpec::FarkasConv2d { out, kernel, stride, pad, agg, .. } => {
                let fan = s[0] * kernel * kernel;
                let m = out.saturating_sub(1).max(1);
                Built::FarkasConv {
                    w: self.uniform(&p("weight"), &[m, s[0], *kernel, *kernel], fan)?,
                    b: self.uniform(&p("bias"), &[m], fan)?,
                    last: self.uniform(&p("last_bias"), &[1], fan)?,
                    agg: *agg,
                    stride: *stride,
                    pad: *pad,
                }
            }
        })
    }
}

pub struct Net {
    layers: Vec<Built>,
    named: Vec<(String, Var, bool)>,
    pub specs: Vec<LayerSpec>,
    /// Per-example input shape.
    pub input: Vec<usize>,
    /// Per-example output shape.
    pub output: Vec<usize>,
}

impl Net {
    fn build(specs: &[LayerSpec], input: &[usize], source: Source, device: &Device) -> Result<Self> {
        let shapes = infer_shapes(specs, input)
            .map_err(|e| candle_core::Error::Msg(format!("layer {}: {}", e.layer, e.message)))?;
        let mut b = Builder { source, device: device.clone(), named: Vec::new() };
        let layers = b.chain("layers.", specs, input)?;
        let output = shapes.last().cloned().unwrap_or_else(|| input.to_vec());
        Ok(Net { layers, named: b.named, specs: specs.to_vec(), input: input.to_vec(), output })
    }

    /// PyTorch's default initialisation: weights and biases uniform in +-1/sqrt(fan_in);
    /// batch norm starts at scale 1, shift 0.
    pub fn init(specs: &[LayerSpec], input: &[usize], rng: &mut Rng, device: &Device) -> Result<Self> {
        Self::build(specs, input, Source::Init(rng), device)
    }

    /// Rebuild from named tensors (`layers.{i}.weight`, `layers.{i}.body.{j}.bias`, ...).
    pub fn from_tensors(
        specs: &[LayerSpec],
        input: &[usize],
        tensors: &HashMap<String, Tensor>,
        device: &Device,
    ) -> Result<Self> {
        Self::build(specs, input, Source::Load(tensors), device)
    }

    /// Evaluation mode: dropout off, batch norm with running statistics.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        run_chain(&self.layers, x, &mut None)
    }

    /// Evaluation mode for input gradients (attacks): on the CPU, convolutions and dense
    /// layers backpropagate to their input only; the values are those of `forward`.
    pub fn forward_input_grad(&self, x: &Tensor) -> Result<Tensor> {
        run_chain_with(&self.layers, x, &mut None, true)
    }

    /// Training mode: dropout masks from `rng`, batch norm with batch statistics (and
    /// running statistics updated).
    pub fn forward_train(&self, x: &Tensor, rng: &mut Rng) -> Result<Tensor> {
        run_chain(&self.layers, x, &mut Some(rng))
    }

    /// Training mode with a forward-mode tangent: the outputs and the Jacobian-vector
    /// product J t, both from first-order differentiable ops, so that a loss built from J t
    /// (an exact input-gradient penalty) trains without differentiating a gradient.
    pub fn forward_train_tangent(&self, x: &Tensor, t: &Tensor, rng: &mut Rng) -> Result<(Tensor, Tensor)> {
        super::jvp::chain(&self.layers, x, t, rng)
    }

    /// A global l2 Lipschitz constant (evaluation mode), its head kept apart; an error for
    /// layers without one (neural ODEs, Farkas layers).
    pub fn lipschitz(&self) -> Result<super::lipschitz::Lipschitz> {
        super::lipschitz::of_chain(&self.layers, &self.specs, &self.input)
    }

    /// Trainable parameters.
    pub fn vars(&self) -> Vec<Var> {
        self.named.iter().filter(|(_, _, t)| *t).map(|(_, v, _)| v.clone()).collect()
    }

    /// Parameters and buffers, for checkpoints.
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        self.named.iter().map(|(n, v, _)| (n.clone(), v.as_tensor().clone())).collect()
    }

    /// Overwrite parameters and buffers from named tensors (a kept best model).
    pub fn restore(&self, tensors: &[(String, Tensor)]) -> Result<()> {
        for (name, t) in tensors {
            if let Some((_, v, _)) = self.named.iter().find(|(n, _, _)| n == name) {
                v.set(t)?;
            }
        }
        Ok(())
    }

    pub fn parameter_count(&self) -> usize {
        self.vars().iter().map(|v| v.elem_count()).sum()
    }

    /// Number of input features per example.
    pub fn input_features(&self) -> usize {
        self.input.iter().product()
    }
}

pub(super) fn run_field(layers: &[Built], x: &Tensor) -> Result<Tensor> {
    run_chain(layers, x, &mut None)
}

fn run_chain(layers: &[Built], x: &Tensor, rng: &mut Option<&mut Rng>) -> Result<Tensor> {
    run_chain_with(layers, x, rng, false)
}

fn run_chain_with(layers: &[Built], x: &Tensor, rng: &mut Option<&mut Rng>, input_grad: bool) -> Result<Tensor> {
    let mut h = x.clone();
    let mut i = 0;
    while i < layers.len() {
        if let (Built::Flatten, Some(Built::Linear { w, b })) = (&layers[i], layers.get(i + 1))
            && kernels::own(&h)
        {
            let then = match layers.get(i + 2) {
                Some(Built::Act(a)) => Some(*a),
                _ => None,
            };
            h = kernels::flatten_linear(&h, w.as_tensor(), b.as_tensor(), then, !input_grad)?;
            i += if then.is_some() { 3 } else { 2 };
            continue;
        }
        // Convolution and 2 x 2 max pooling, with an activation before or after the pooling
        // or none: one op (the convolution's output never leaves the cache).
        if let Some((act, len)) = conv_pool_pattern(&layers[i..])
            && kernels::own(&h)
            && let Built::Conv { w, b, stride, pad } = &layers[i]
            && kernels::conv_pool_fits(h.dims(), w.dims(), *stride, *pad)
        {
            h = kernels::conv_pool(&h, w.as_tensor(), b.as_tensor(), *stride, *pad, !input_grad, act)?;
            i += len;
            continue;
        }
        // Convolution, ReLU, max pooling: the ReLU moves after the pooling (they commute),
        // where the pooling applies it itself; the convolution's backward then has no
        // activation gradient to form, a pass over its whole output.
        if let (Built::Conv { .. }, Some(Built::Act(Activation::Relu)), Some(Built::MaxPool { kernel, stride })) =
            (&layers[i], layers.get(i + 1), layers.get(i + 2))
            && kernel == stride
            && kernels::own(&h)
        {
            let (z, _) = run_layer(&layers[i], &h, rng, None, !input_grad)?;
            h = pooled_part(&z, *kernel)?.apply_op1(kernels::MaxPool { size: *kernel, relu: true })?;
            i += 3;
            continue;
        }
        let then = match layers.get(i + 1) {
            Some(Built::Act(a)) if kernels::own(&h) => Some(*a),
            _ => None,
        };
        let (out, fused) = run_layer(&layers[i], &h, rng, then, !input_grad)?;
        h = out;
        i += if fused { 2 } else { 1 };
    }
    Ok(h)
}

/// The rows and columns of images x [n, c, h, w] that k x k windows of stride k cover:
/// the last h mod k rows and w mod k columns are dropped, as PyTorch's pooling (and the
/// shape checker) floor the output size.
pub(super) fn pooled_part(x: &Tensor, k: usize) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    if h % k == 0 && w % k == 0 {
        return Ok(x.clone());
    }
    x.narrow(2, 0, h / k * k)?.narrow(3, 0, w / k * k)?.contiguous()
}

/// A convolution followed by 2 x 2 max pooling, with an activation between or after them:
/// the activation and the number of layers. Activations are non-decreasing, so they commute
/// with the maximum.
fn conv_pool_pattern(layers: &[Built]) -> Option<(Option<Activation>, usize)> {
    let pool2 = |l: Option<&Built>| matches!(l, Some(Built::MaxPool { kernel: 2, stride: 2 }));
    let act = |l: Option<&Built>| match l {
        Some(Built::Act(a)) => Some(*a),
        _ => None,
    };
    if !matches!(layers.first(), Some(Built::Conv { .. })) {
        return None;
    }
    match (act(layers.get(1)), pool2(layers.get(1)), pool2(layers.get(2)), act(layers.get(2))) {
        (Some(a), _, true, _) => Some((Some(a), 3)),
        (None, true, _, Some(a)) => Some((Some(a), 3)),
        (None, true, _, None) => Some((None, 2)),
        _ => None,
    }
}

/// Max pooling over k x k windows with stride k as a reshape and a max reduction: on any
/// device, with the true gradient where each window's maximum is unique (candle's max
/// backward marks every element equal to the maximum).
pub fn max_pool_composed(x: &Tensor, k: usize) -> Result<Tensor> {
    pool_windows(x, k)?.max(D::Minus1)
}

/// Images x [n, c, h, w] as their k x k windows of stride k, [n, c, h/k, w/k, k k] (each
/// window row-major), the rows and columns no window covers dropped (`pooled_part`).
pub(super) fn pool_windows(x: &Tensor, k: usize) -> Result<Tensor> {
    let x = pooled_part(x, k)?;
    let (n, c, h, w) = x.dims4()?;
    x.reshape((n, c, h / k, k, w / k, k))?.permute((0, 1, 2, 4, 3, 5))?.reshape((n, c, h / k, w / k, k * k))
}

fn channel_shape(x: &Tensor) -> Vec<usize> {
    let mut s = vec![1; x.rank()];
    s[1] = x.dim(1).unwrap_or(1);
    s
}

fn aggregate(t: &Tensor, agg: Aggregate) -> Result<Tensor> {
    match agg {
        Aggregate::Sum => t.sum_keepdim(1),
        Aggregate::Mean => t.mean_keepdim(1),
    }
}

/// `max(-Agg(b), b_m)`: the appended unit's bias, large enough that the unit is positive
/// whenever all the others are not.
fn farkas_bias(b: &Tensor, last: &Var, agg: Aggregate) -> Result<Tensor> {
    let bagg = match agg {
        Aggregate::Sum => b.sum_all()?,
        Aggregate::Mean => b.mean_all()?,
    };
    bagg.neg()?.reshape(1)?.maximum(last.as_tensor())
}

/// One layer. `then` is the activation that follows it, which convolutions, dense layers and
/// max pooling (a ReLU) apply themselves, in one op: the result says whether it did.
/// `weights`: gradients reach the weights (off for attacks' input gradients).
fn run_layer(
    l: &Built,
    x: &Tensor,
    rng: &mut Option<&mut Rng>,
    then: Option<Activation>,
    weights: bool,
) -> Result<(Tensor, bool)> {
    let y = match l {
        Built::Conv { w, b, stride, pad } => {
            let y = kernels::conv2d(x, w.as_tensor(), b.as_tensor(), *stride, *pad, weights, then)?;
            return Ok((y, then.is_some()));
        }
        Built::Linear { w, b } if x.rank() == 2 => {
            return Ok((kernels::linear(x, w.as_tensor(), b.as_tensor(), then, weights)?, then.is_some()));
        }
        Built::Linear { w, b } => x.matmul(&w.as_tensor().t()?)?.broadcast_add(b.as_tensor()),
        // candle's own max-pool backward scales the gradient by (maxima in the window) / k^2
        // instead of 1 / (maxima): a quarter of the true gradient for 2x2 windows.
        Built::MaxPool { kernel, stride } if kernel == stride && kernels::own(x) => {
            let relu = then == Some(Activation::Relu);
            return Ok((pooled_part(x, *kernel)?.apply_op1(kernels::MaxPool { size: *kernel, relu })?, relu));
        }
        // Elsewhere (CUDA) the same from candle's reductions, whose backward routes the
        // gradient to the maximum, instead of candle's pooling op and its scaled gradient.
        Built::MaxPool { kernel, stride } if kernel == stride => max_pool_composed(x, *kernel),
        Built::MaxPool { kernel, stride } => x.max_pool2d_with_stride(*kernel, *stride),
        Built::AvgPool { kernel, stride } => x.avg_pool2d_with_stride(*kernel, *stride),
        Built::GlobalAvgPool => x.mean(D::Minus1)?.mean(D::Minus1),
        Built::Flatten => x.flatten_from(1),
        Built::Dropout { p } => match rng {
            Some(r) if *p > 0.0 => kernels::dropout(x, *p, r),
            _ => Ok(x.clone()),
        },
        Built::BatchNorm { gamma, beta, mean, var } => {
            let cs = channel_shape(x);
            let dims: Vec<usize> = (0..x.rank()).filter(|&d| d != 1).collect();
            let (m, v) = if rng.is_some() {
                let m = x.mean_keepdim(dims.as_slice())?;
                let centered = x.broadcast_sub(&m)?;
                let v = centered.sqr()?.mean_keepdim(dims.as_slice())?;
                let count = x.elem_count() / x.dim(1)?;
                let unbiased = (v.detach().flatten_all()? * (count as f64 / (count.max(2) - 1) as f64))?;
                mean.set(&((mean.as_tensor() * (1.0 - BN_MOMENTUM))? + (m.detach().flatten_all()? * BN_MOMENTUM)?)?)?;
                var.set(&((var.as_tensor() * (1.0 - BN_MOMENTUM))? + (unbiased * BN_MOMENTUM)?)?)?;
                (m, v)
            } else {
                (mean.as_tensor().reshape(cs.as_slice())?, var.as_tensor().reshape(cs.as_slice())?)
            };
            let xhat = x.broadcast_sub(&m)?.broadcast_div(&(v + BN_EPS)?.sqrt()?)?;
            xhat.broadcast_mul(&gamma.as_tensor().reshape(cs.as_slice())?)?
                .broadcast_add(&beta.as_tensor().reshape(cs.as_slice())?)
        }
        Built::Normalize { mean, std } => x.broadcast_sub(mean)?.broadcast_div(std),
        Built::Act(a) if kernels::own(x) => x.apply_op1(kernels::Act(*a)),
        Built::Act(a) => activate(*a, x),
        Built::NeuralOde { field, params, t1, opts, adjoint: true } => {
            let f = |_t: f64, y: &[Tensor]| Ok(vec![run_chain(field, &y[0], &mut None)?.detach()]);
            let y1 = match crate::ode::solve(&f, &[x.detach()], &[0.0, *t1], opts) {
                Ok(sol) => sol.ys[1][0].detach(),
                Err(e) => {
                    return Err(candle_core::Error::Msg(format!(
                        "neural ODE solve stopped at t = {}: {}",
                        e.t, e.failure
                    )));
                }
            };
            let flat: Vec<Tensor> = params.iter().map(|v| v.as_tensor().flatten_all()).collect::<Result<_>>()?;
            let carrier = Tensor::cat(&flat, 0)?;
            x.apply_op2(
                &carrier,
                super::adjoint_op::AdjointOp {
                    field: field.clone(),
                    params: params.clone(),
                    t1: *t1,
                    opts: opts.clone(),
                    y1,
                },
            )
        }
        Built::NeuralOde { field, t1, opts, .. } => {
            let f = |_t: f64, y: &[Tensor]| Ok(vec![run_chain(field, &y[0], &mut None)?]);
            match crate::ode::solve(&f, std::slice::from_ref(x), &[0.0, *t1], opts) {
                Ok(sol) => Ok(sol.ys[1][0].clone()),
                Err(e) => Err(candle_core::Error::Msg(format!(
                    "neural ODE solve stopped at t = {}: {} ({} evaluations)",
                    e.t, e.failure, e.stats.nfe
                ))),
            }
        }
        Built::Residual { body, farkas } => {
            let fx = run_chain(body, x, rng)?;
            match farkas {
                None => x + fx,
                Some((agg, last)) => {
                    let c = fx.dim(1)?;
                    let h = (x.narrow(1, 0, c)? + fx)?;
                    let bias = last.as_tensor().relu()?;
                    let mut shape = channel_shape(&h);
                    shape[1] = 1;
                    let extra = aggregate(&h, *agg)?.neg()?.broadcast_add(&bias.reshape(shape.as_slice())?)?;
                    Tensor::cat(&[&h, &extra], 1)
                }
            }
        }
        Built::FarkasLinear { w, b, last, agg } => {
            let u = x.matmul(&w.as_tensor().t()?)?;
            let z = u.broadcast_add(b.as_tensor())?;
            let extra = aggregate(&u, *agg)?.neg()?.broadcast_add(&farkas_bias(b.as_tensor(), last, *agg)?)?;
            Tensor::cat(&[&z, &extra], 1)
        }
        Built::FarkasConv { w, b, last, agg, stride, pad } => {
            let zero = Tensor::zeros(w.dim(0)?, w.dtype(), w.device())?;
            let u = kernels::conv2d(x, w.as_tensor(), &zero, *stride, *pad, true, None)?;
            let z = u.broadcast_add(&b.as_tensor().reshape((1, (), 1, 1))?)?;
            let bias = farkas_bias(b.as_tensor(), last, *agg)?.reshape((1, 1, 1, 1))?;
            let extra = aggregate(&u, *agg)?.neg()?.broadcast_add(&bias)?;
            Tensor::cat(&[&z, &extra], 1)
        }
    }?;
    Ok((y, false))
}

/// Activations composed from primitive ops: every one has a backward pass, and
/// `2*sigmoid(2x)-1` is several times faster than candle's CPU `tanh`.
pub fn activate(a: Activation, x: &Tensor) -> Result<Tensor> {
    match a {
        Activation::Relu => x.relu(),
        Activation::Sigmoid => sigmoid(x),
        Activation::Tanh => (sigmoid(&(x * 2.0)?)? * 2.0)? - 1.0,
        Activation::Softplus => x.relu()? + (x.abs()?.neg()?.exp()? + 1.0)?.log()?,
    }
}

fn sigmoid(x: &Tensor) -> Result<Tensor> {
    (x.neg()?.exp()? + 1.0)?.recip()
}

/// The names of tensors holding NaN or infinite values (a damaged weights file).
pub fn non_finite(tensors: &std::collections::HashMap<String, Tensor>) -> Vec<String> {
    let mut bad: Vec<String> = tensors
        .iter()
        .filter(|(_, t)| {
            let sum = t.to_dtype(candle_core::DType::F64).and_then(|t| t.abs()).and_then(|t| t.sum_all());
            !sum.and_then(|s| s.to_scalar::<f64>()).is_ok_and(f64::is_finite)
        })
        .map(|(n, _)| n.clone())
        .collect();
    bad.sort();
    bad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() < 1e-5
    }

    #[test]
    fn activations_match_their_definitions() {
        let xs = [-30.0f32, -2.0, -0.5, 0.0, 0.7, 3.0, 30.0];
        let t = Tensor::new(&xs[..], &Device::Cpu).unwrap();
        for (a, f) in [
            (Activation::Relu, (|x: f32| x.max(0.0)) as fn(f32) -> f32),
            (Activation::Sigmoid, |x: f32| 1.0 / (1.0 + (-x).exp())),
            (Activation::Tanh, |x: f32| x.tanh()),
            (Activation::Softplus, |x: f32| if x > 20.0 { x } else { x.exp().ln_1p() }),
        ] {
            let got: Vec<f32> = activate(a, &t).unwrap().to_vec1().unwrap();
            for (x, g) in xs.iter().zip(got) {
                assert!(close(g, f(*x)), "{a:?}({x}) = {g}, want {}", f(*x));
            }
        }
    }

    #[test]
    fn every_parameter_receives_a_gradient_and_matches_finite_differences() {
        let specs = vec![
            LayerSpec::Linear { input: None, out: 5 },
            LayerSpec::Act(Activation::Tanh),
            LayerSpec::Linear { input: None, out: 4 },
            LayerSpec::Act(Activation::Softplus),
            LayerSpec::Linear { input: None, out: 3 },
            LayerSpec::Act(Activation::Sigmoid),
        ];
        let dev = Device::Cpu;
        let m = Net::init(&specs, &[2], &mut Rng::new(4), &dev).unwrap();
        let x = Tensor::new(&[[0.3f32, -1.2], [1.5, 0.4]], &dev).unwrap();
        let loss = |m: &Net| m.forward(&x).unwrap().sqr().unwrap().sum_all().unwrap();
        let grads = loss(&m).backward().unwrap();
        for v in m.vars() {
            let g = grads.get(v.as_tensor()).expect("every Var gets a gradient");
            let g: Vec<f32> = g.flatten_all().unwrap().to_vec1().unwrap();
            // Central differences on the first entry of each parameter, in f32.
            let base: Vec<f32> = v.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
            let eps = 1e-2f32;
            let shifted = |d: f32| {
                let mut p = base.clone();
                p[0] += d;
                v.set(&Tensor::from_vec(p, v.shape(), &dev).unwrap()).unwrap();
                let l: f32 = loss(&m).to_scalar().unwrap();
                l
            };
            let fd = (shifted(eps) - shifted(-eps)) / (2.0 * eps);
            shifted(0.0);
            assert!((fd - g[0]).abs() < 2e-3 * (1.0 + fd.abs()), "fd {fd} vs autograd {}", g[0]);
        }
    }

    fn random_input(rng: &mut Rng, shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| (rng.normal() * 2.0) as f32).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    /// The Farkas guarantee: before the ReLU, every example has at least one positive unit
    /// (per position for convolutions), whatever the weights and inputs.
    #[test]
    fn farkas_layers_keep_one_unit_active() {
        use super::super::spec::Aggregate;
        let mut rng = Rng::new(11);
        for agg in [Aggregate::Sum, Aggregate::Mean] {
            let dense = vec![LayerSpec::FarkasLinear { input: None, out: 6, agg }];
            let conv = vec![LayerSpec::FarkasConv2d { input: None, out: 5, kernel: 3, stride: 1, pad: 1, agg }];
            let res = vec![LayerSpec::Residual {
                body: vec![LayerSpec::Conv2d { input: None, out: 3, kernel: 3, stride: 1, pad: 1 }],
                farkas: Some(agg),
            }];
            for trial in 0..5 {
                let m = Net::init(&dense, &[7], &mut rng, &Device::Cpu).unwrap();
                // Push the biases strongly negative: the appended unit must still fire.
                for (name, t) in m.named_tensors() {
                    if name.ends_with(".bias") {
                        let neg = (t.ones_like().unwrap() * -(3.0 + trial as f64)).unwrap();
                        m.named.iter().find(|(n, _, _)| *n == name).unwrap().1.set(&neg).unwrap();
                    }
                }
                let y: Vec<Vec<f32>> = m.forward(&random_input(&mut rng, &[64, 7])).unwrap().to_vec2().unwrap();
                assert!(y.iter().all(|row| row.iter().any(|&v| v > 0.0)), "dense {agg:?}");
                for (spec, input) in [(&conv, [2usize, 4, 6, 6]), (&res, [2, 4, 6, 6])] {
                    let m = Net::init(spec, &input[1..], &mut rng, &Device::Cpu).unwrap();
                    let y = m.forward(&random_input(&mut rng, &input)).unwrap();
                    // max over channels at every (example, position) is positive
                    let best: Vec<f32> = y.max(1).unwrap().flatten_all().unwrap().to_vec1().unwrap();
                    assert!(best.iter().all(|&v| v > 0.0), "{spec:?}");
                }
            }
        }
    }

    /// Pooling an odd-sized image drops its last row and column (PyTorch's floor, which the
    /// shape checker assumes): a convnet on 14x14 images pools 7x7 maps to 3x3. Each
    /// pooling path (fused with the convolution, after a ReLU, alone) against candle's own
    /// convolution and pooling, whose forward floors the same way; the weights' gradients
    /// against the same computation from candle's ops (the pooling as a reshape and a max
    /// reduction of the covered part, whose backward routes to the maximum).
    #[test]
    fn pooling_odd_sizes_drops_the_last_row_and_column() {
        let conv = |out| LayerSpec::Conv2d { input: None, out, kernel: 3, stride: 1, pad: 1 };
        let pool = LayerSpec::MaxPool { kernel: 2, stride: 2 };
        let chains = [
            vec![conv(3), pool.clone(), LayerSpec::Act(Activation::Relu)],
            vec![conv(3), LayerSpec::Act(Activation::Relu), pool.clone()],
            vec![conv(3), LayerSpec::Act(Activation::Tanh), pool.clone()],
        ];
        let dev = Device::Cpu;
        let mut rng = Rng::new(8);
        let x = random_input(&mut rng, &[2, 1, 7, 7]);
        for specs in &chains {
            let m = Net::init(specs, &[1, 7, 7], &mut rng, &dev).unwrap();
            let got = m.forward(&x).unwrap();
            assert_eq!(got.dims(), &[2, 3, 3, 3]);
            let (w, b) = (m.vars()[0].clone(), m.vars()[1].clone());
            let mut y = x.conv2d(w.as_tensor(), 1, 1, 1, 1).unwrap();
            y = y.broadcast_add(&b.as_tensor().reshape((1, 3, 1, 1)).unwrap()).unwrap();
            y = match specs[1] {
                LayerSpec::Act(Activation::Tanh) => y.tanh().unwrap(),
                _ => y.relu().unwrap(),
            };
            let want = y.max_pool2d_with_stride(2, 2).unwrap();
            let diff = (&got - &want).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(diff < 1e-5, "{specs:?}: {diff}");
            let covered = y.narrow(2, 0, 6).unwrap().narrow(3, 0, 6).unwrap();
            let reference = max_pool_composed(&covered, 2).unwrap();
            let grads = |out: &Tensor| {
                let g = out.sqr().unwrap().sum_all().unwrap().backward().unwrap();
                [&w, &b].map(|v| g.get(v.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap())
            };
            for (a, r) in grads(&got).iter().zip(grads(&reference)) {
                for (p, q) in a.iter().zip(&r) {
                    assert!((p - q).abs() < 1e-4 * (1.0 + q.abs()), "{specs:?}: {p} vs {q}");
                }
            }
        }
    }

    #[test]
    fn conv_batchnorm_pool_chain_matches_finite_differences() {
        let specs = vec![
            LayerSpec::Conv2d { input: None, out: 3, kernel: 3, stride: 1, pad: 1 },
            LayerSpec::BatchNorm,
            LayerSpec::AvgPool { kernel: 2, stride: 2 },
            LayerSpec::Act(Activation::Softplus),
            LayerSpec::Residual {
                body: vec![LayerSpec::Conv2d { input: None, out: 3, kernel: 3, stride: 1, pad: 1 }],
                farkas: None,
            },
            LayerSpec::GlobalAvgPool,
            LayerSpec::Linear { input: None, out: 2 },
        ];
        let dev = Device::Cpu;
        let mut rng = Rng::new(5);
        let m = Net::init(&specs, &[2, 4, 4], &mut rng, &dev).unwrap();
        let x = random_input(&mut rng, &[3, 2, 4, 4]);
        // Training mode uses batch statistics (and updates running ones, which do not
        // affect the training-mode output), so the loss is a pure function of the weights.
        let loss = |m: &Net| m.forward_train(&x, &mut Rng::new(0)).unwrap().sqr().unwrap().sum_all().unwrap();
        let grads = loss(&m).backward().unwrap();
        for v in m.vars() {
            let g: Vec<f32> =
                grads.get(v.as_tensor()).expect("every Var gets a gradient").flatten_all().unwrap().to_vec1().unwrap();
            let base: Vec<f32> = v.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
            let eps = 1e-2f32;
            let at = |d: f32| {
                let mut p = base.clone();
                p[0] += d;
                v.set(&Tensor::from_vec(p, v.shape(), &dev).unwrap()).unwrap();
                loss(&m).to_scalar::<f32>().unwrap()
            };
            let fd = (at(eps) - at(-eps)) / (2.0 * eps);
            at(0.0);
            assert!((fd - g[0]).abs() < 5e-3 * (1.0 + fd.abs()), "fd {fd} vs autograd {}", g[0]);
        }
    }

    #[test]
    fn saved_tensors_rebuild_the_same_model_and_modes_differ_as_they_should() {
        let specs = vec![
            LayerSpec::Flatten,
            LayerSpec::Linear { input: None, out: 8 },
            LayerSpec::BatchNorm,
            LayerSpec::Dropout { p: 0.5 },
            LayerSpec::Linear { input: None, out: 3 },
        ];
        let dev = Device::Cpu;
        let mut rng = Rng::new(9);
        let m = Net::init(&specs, &[1, 2, 2], &mut rng, &dev).unwrap();
        let x = random_input(&mut rng, &[16, 1, 2, 2]);
        let _ = m.forward_train(&x, &mut rng).unwrap(); // moves the running statistics
        let map: HashMap<String, Tensor> = m.named_tensors().into_iter().collect();
        assert!(map.contains_key("layers.2.running_mean"));
        let again = Net::from_tensors(&specs, &[1, 2, 2], &map, &dev).unwrap();
        let a: Vec<Vec<f32>> = m.forward(&x).unwrap().to_vec2().unwrap();
        let b: Vec<Vec<f32>> = again.forward(&x).unwrap().to_vec2().unwrap();
        assert_eq!(a, b, "evaluation is deterministic and reproduced from the saved tensors");
        let t1: Vec<Vec<f32>> = m.forward_train(&x, &mut Rng::new(1)).unwrap().to_vec2().unwrap();
        assert_ne!(a, t1, "training mode drops units and uses batch statistics");
        let mut wrong = map.clone();
        wrong.insert("layers.1.weight".into(), Tensor::zeros((2, 2), candle_core::DType::F32, &dev).unwrap());
        assert!(Net::from_tensors(&specs, &[1, 2, 2], &wrong, &dev).is_err());
    }

    /// A model built from another's tensors owns its parameters: training it (as `train`
    /// continuing a trained model does) leaves the other one unchanged.
    #[test]
    fn a_model_built_from_another_trains_its_own_copy() {
        let specs = vec![LayerSpec::Linear { input: None, out: 3 }];
        let dev = Device::Cpu;
        let mut rng = Rng::new(4);
        let original = Net::init(&specs, &[2], &mut rng, &dev).unwrap();
        let before: Vec<Vec<f32>> = original.named_tensors()[0].1.to_vec2().unwrap();
        let map: HashMap<String, Tensor> = original.named_tensors().into_iter().collect();
        let copy = Net::from_tensors(&specs, &[2], &map, &dev).unwrap();
        let spec = crate::nn::OptimSpec::Sgd { lr: 0.5, momentum: 0.0, weight_decay: 0.0, nesterov: false };
        let mut opt = crate::nn::Optimizer::new(spec, copy.vars());
        let x = random_input(&mut rng, &[4, 2]);
        opt.step(&copy.forward(&x).unwrap().sum_all().unwrap().backward().unwrap()).unwrap();
        let after: Vec<Vec<f32>> = original.named_tensors()[0].1.to_vec2().unwrap();
        assert_eq!(before, after, "the original's weights moved with the copy's");
        assert_ne!(before, copy.named_tensors()[0].1.to_vec2::<f32>().unwrap());
    }
}
