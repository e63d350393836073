//! A scalar potential: dense layers with pointwise activations between them, one value out.
//! Its value is differentiable in the parameters (training by the dual objective); its
//! input gradient and Laplacian are written out layer by layer as ordinary ops, so the
//! recovered flow's velocity and divergence need no second-order autograd (which candle
//! gets wrong, ../shared/DESIGN.md section 4).

use crate::nn::{Activation, LayerSpec, Net, infer_shapes};
use crate::rng::Rng;
use candle_core::{D, DType, Device, Result, Tensor, Var};
use std::collections::HashMap;

pub struct Potential {
    net: Net,
    /// Per dense layer: its index in `net.specs` and the activation that follows it (none
    /// after the last).
    dense: Vec<(usize, Option<Activation>)>,
}

/// A potential's value at each point, with its input gradient and Laplacian when asked.
pub struct Derivatives {
    /// [m]
    pub value: Tensor,
    /// [m, d]
    pub grad: Option<Tensor>,
    /// [m], the trace of the Hessian.
    pub laplacian: Option<Tensor>,
}

/// What an evaluation computes beyond the value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Want {
    Value,
    Gradient,
    Laplacian,
}

/// Why layers cannot make a potential.
pub fn check_layers(specs: &[LayerSpec], dim: usize) -> std::result::Result<(), String> {
    dense_plan(specs)?;
    let shapes = infer_shapes(specs, &[dim]).map_err(|e| format!("layer {}: {}", e.layer + 1, e.message))?;
    match shapes.last() {
        Some(s) if s.as_slice() == [1] => Ok(()),
        Some(s) => Err(format!("a potential ends in one value, these layers end in {s:?}: finish with `linear(1)`")),
        None => Err("a potential needs at least one `linear` layer".into()),
    }
}

/// The dense layers and the activation after each; an error for any other layer or for two
/// activations in a row.
fn dense_plan(specs: &[LayerSpec]) -> std::result::Result<Vec<(usize, Option<Activation>)>, String> {
    let mut plan: Vec<(usize, Option<Activation>)> = Vec::new();
    for (i, s) in specs.iter().enumerate() {
        match s {
            LayerSpec::Linear { .. } => plan.push((i, None)),
            LayerSpec::Act(a) => match plan.last_mut() {
                Some((_, slot @ None)) => *slot = Some(*a),
                Some(_) => return Err(format!("layer {}: two activations in a row", i + 1)),
                None => return Err(format!("layer {}: a potential starts with a `linear` layer", i + 1)),
            },
            other => {
                return Err(format!(
                    "layer {}: a potential is `linear` layers with activations between them, not {other:?}",
                    i + 1
                ));
            }
        }
    }
    if let Some((_, Some(_))) = plan.last() {
        return Err("a potential's last layer is `linear(1)`, without an activation after it".into());
    }
    Ok(plan)
}

/// sigma'(z) and sigma''(z) of an activation.
fn slopes(a: Activation, z: &Tensor) -> Result<(Tensor, Tensor)> {
    let sigmoid = |x: &Tensor| (x.neg()?.exp()? + 1.0)?.recip();
    match a {
        Activation::Relu => Ok((z.gt(0.0)?.to_dtype(z.dtype())?, z.zeros_like()?)),
        Activation::Softplus => {
            let s = sigmoid(z)?;
            let second = (&s * (1.0 - &s)?)?;
            Ok((s, second))
        }
        Activation::Sigmoid => {
            let s = sigmoid(z)?;
            let first = (&s * (1.0 - &s)?)?;
            let second = (&first * (1.0 - (&s * 2.0)?)?)?;
            Ok((first, second))
        }
        Activation::Tanh => {
            let a = ((sigmoid(&(z * 2.0)?)? * 2.0)? - 1.0)?;
            let first = (1.0 - a.sqr()?)?;
            let second = ((&a * &first)? * -2.0)?;
            Ok((first, second))
        }
    }
}

impl Potential {
    /// Fresh parameters (PyTorch's initialisation) for points of dimension `dim`.
    pub fn new(specs: &[LayerSpec], dim: usize, rng: &mut Rng, dev: &Device) -> std::result::Result<Self, String> {
        check_layers(specs, dim)?;
        let dense = dense_plan(specs)?;
        let net = Net::init(specs, &[dim], rng, dev).map_err(|e| e.to_string())?;
        Ok(Potential { net, dense })
    }

    pub fn vars(&self) -> Vec<Var> {
        self.net.vars()
    }

    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        self.net.named_tensors()
    }

    /// Overwrites the parameters from `tensors` (every one must be there, of its shape).
    pub fn restore(&self, tensors: &HashMap<String, Tensor>, prefix: &str) -> std::result::Result<(), String> {
        let mut found = Vec::new();
        for (name, t) in self.named_tensors() {
            let saved = tensors.get(&format!("{prefix}{name}")).ok_or(format!("no tensor `{prefix}{name}`"))?;
            if saved.dims() != t.dims() {
                return Err(format!(
                    "`{prefix}{name}` has shape {:?}, the potential needs {:?}",
                    saved.dims(),
                    t.dims()
                ));
            }
            found.push((
                name,
                saved.to_dtype(t.dtype()).and_then(|s| s.to_device(t.device())).map_err(|e| e.to_string())?,
            ));
        }
        self.net.restore(&found).map_err(|e| e.to_string())
    }

    /// The value at points x [m, d], [m], differentiable in the parameters.
    pub fn value(&self, x: &Tensor) -> Result<Tensor> {
        self.net.forward(x)?.squeeze(1)
    }

    /// The weight and bias of the dense layer at `index` of the specs, outside the graph.
    fn layer(&self, tensors: &HashMap<String, Tensor>, index: usize, dtype: DType) -> Result<(Tensor, Tensor)> {
        let get = |what: &str| {
            tensors
                .get(&format!("layers.{index}.{what}"))
                .cloned()
                .ok_or_else(|| candle_core::Error::Msg(format!("layer {index} has no {what}")))
        };
        Ok((get("weight")?.detach().to_dtype(dtype)?, get("bias")?.detach().to_dtype(dtype)?))
    }

    /// Value, and as `want` asks the input gradient and the Laplacian, at x [m, d], outside
    /// the graph, in x's dtype. The gradient is backpropagated by hand; the Laplacian is
    /// sum over hidden layers l and units j of g_lj sigma''(z_lj) |dz_lj/dx|^2, the exact
    /// Hessian trace of a chain of dense layers and pointwise activations (dz/dx carried
    /// forward as d tangents), with g_lj the value's derivative in that unit's output.
    pub fn derivatives(&self, x: &Tensor, want: Want) -> Result<Derivatives> {
        let laplacian = want == Want::Laplacian;
        let dtype = x.dtype();
        let tensors: HashMap<String, Tensor> = self.named_tensors().into_iter().collect();
        let (m, d) = x.dims2()?;
        let mut a = x.detach();
        // Per hidden layer: sigma'(z), sigma''(z), and the tangents dz/dx [m, d, h].
        let mut kept: Vec<(Tensor, Tensor, Option<Tensor>)> = Vec::new();
        let mut tangent: Option<Tensor> = None;
        let mut value = None;
        for &(index, act) in &self.dense {
            let (w, b) = self.layer(&tensors, index, dtype)?;
            let z = a.matmul(&w.t()?)?.broadcast_add(&b)?;
            let dz = if laplacian {
                let h = w.dim(0)?;
                Some(match &tangent {
                    None => w.t()?.unsqueeze(0)?.broadcast_as((m, d, h))?.contiguous()?,
                    Some(da) => da.reshape((m * d, ()))?.matmul(&w.t()?)?.reshape((m, d, h))?,
                })
            } else {
                None
            };
            match act {
                Some(act) => {
                    let (first, second) = slopes(act, &z)?;
                    a = crate::nn::activate(act, &z)?;
                    tangent = match &dz {
                        Some(dz) => Some(dz.broadcast_mul(&first.unsqueeze(1)?)?),
                        None => None,
                    };
                    kept.push((first, second, dz));
                }
                None => value = Some(z),
            }
        }
        let value =
            value.ok_or_else(|| candle_core::Error::Msg("a potential ends in a dense layer".into()))?.squeeze(1)?;
        if want == Want::Value {
            return Ok(Derivatives { value, grad: None, laplacian: None });
        }
        // Backwards: g is d value / d a_l, delta = g * sigma'(z_l).
        let mut g: Option<Tensor> = None;
        let mut lap = Tensor::zeros(m, x.dtype(), x.device())?;
        for (k, &(index, _)) in self.dense.iter().enumerate().rev() {
            let (w, _) = self.layer(&tensors, index, dtype)?;
            let delta = match (&g, kept.get(k)) {
                (None, _) => Tensor::ones((m, 1), x.dtype(), x.device())?,
                (Some(g), Some((first, second, dz))) => {
                    if let Some(dz) = dz {
                        let weight = (g * second)?;
                        lap = (lap + dz.sqr()?.sum(1)?.mul(&weight)?.sum(D::Minus1)?)?;
                    }
                    (g * first)?
                }
                (Some(_), None) => return Err(candle_core::Error::Msg("a potential's layers out of order".into())),
            };
            g = Some(delta.matmul(&w)?);
        }
        let grad = g.ok_or_else(|| candle_core::Error::Msg("a potential without layers".into()))?;
        Ok(Derivatives { value, grad: Some(grad), laplacian: laplacian.then_some(lap) })
    }

    pub fn parameter_count(&self) -> usize {
        self.net.parameter_count()
    }
}
