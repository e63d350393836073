//! A CNF's vector field: time-dependent dense or convolutional layers with activations
//! between, built from layer specs, carrying forward tangents (with tangents t_j of the
//! input it returns J t_j beside its value), its parameters named for saving.

use super::conv_layer::ConcatConv2d;
use super::squash::{ConcatLinear, ConcatSquash, TimeLayer};
use crate::nn::kernels::{linear, tangent_linear};
use crate::nn::{Activation, LayerSpec};
use crate::rng::Rng;
use candle_core::{DType, Device, Result, Tensor, Var};

/// A vector field f(t, z) that also maps tangents through its Jacobian.
pub trait TangentField: Send + Sync {
    /// Dimension of the state.
    fn dim(&self) -> usize;
    /// f(t, z) for z [n, d].
    fn eval(&self, t: f64, z: &Tensor) -> Result<Tensor>;
    /// (f(t, z), J tangents) for tangents [n, k, d]: [n, d] and [n, k, d].
    fn eval_with_tangents(&self, t: f64, z: &Tensor, tangents: &Tensor) -> Result<(Tensor, Tensor)>;
    /// The trainable parameters.
    fn vars(&self) -> Vec<Var>;
}

/// A borrowed field is a field (a flow over a trained field it does not own).
impl<T: TangentField + ?Sized> TangentField for &T {
    fn dim(&self) -> usize {
        (**self).dim()
    }
    fn eval(&self, t: f64, z: &Tensor) -> Result<Tensor> {
        (**self).eval(t, z)
    }
    fn eval_with_tangents(&self, t: f64, z: &Tensor, tangents: &Tensor) -> Result<(Tensor, Tensor)> {
        (**self).eval_with_tangents(t, z, tangents)
    }
    fn vars(&self) -> Vec<Var> {
        (**self).vars()
    }
}

/// Time-dependent dense or convolutional layers, each followed by its activation (or none).
pub struct TimeNet {
    pub layers: Vec<TimeLayer>,
    pub acts: Vec<Option<Activation>>,
    /// The specs it was built from, and the index of each layer's spec among them (the
    /// names of its tensors).
    pub specs: Vec<LayerSpec>,
    at: Vec<usize>,
    /// The shape of one input: [d], or [c, h, w] for convolutional fields.
    pub shape: Vec<usize>,
    /// The shape of one output: the input's, or fewer channels for a field whose input
    /// also carries conditioning channels (MRCNF).
    pub out_shape: Vec<usize>,
}

/// A field's specs that cannot make a field.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// Index of the offending spec.
    pub layer: usize,
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// One time-dependent layer of a field as its specs lay it out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlannedLayer {
    /// Index of its spec.
    pub at: usize,
    pub kind: PlannedKind,
    pub act: Option<Activation>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PlannedKind {
    Squash { input: usize, out: usize },
    Linear { input: usize, out: usize },
    Conv { input: usize, out: usize, kernel: usize },
}

/// Checks a field's specs on states of shape `shape` ([d] or images [c, h, w]):
/// time-dependent layers (dense on vectors, `concat_conv2d` on images), each optionally
/// followed by one activation, mapping the state's shape back to itself.
pub fn field_plan(specs: &[LayerSpec], shape: &[usize]) -> std::result::Result<Vec<PlannedLayer>, FieldError> {
    field_plan_between(specs, shape, shape)
}

/// `field_plan` for a field from inputs `shape` to outputs `out` (a conditioned field's
/// input has the conditioning channels beside the state's).
pub fn field_plan_between(
    specs: &[LayerSpec],
    shape: &[usize],
    out: &[usize],
) -> std::result::Result<Vec<PlannedLayer>, FieldError> {
    let err = |layer: usize, message: String| FieldError { layer, message };
    let mut plan: Vec<PlannedLayer> = Vec::new();
    let mut s = shape.to_vec();
    for (i, spec) in specs.iter().enumerate() {
        let kind = match spec {
            LayerSpec::ConcatSquash { .. } | LayerSpec::ConcatLinear { .. } | LayerSpec::ConcatConv2d { .. } => {
                let next = crate::nn::infer_one(i, spec, &s).map_err(|e| err(i, e.message))?;
                let kind = match *spec {
                    LayerSpec::ConcatSquash { out, .. } => PlannedKind::Squash { input: s[0], out },
                    LayerSpec::ConcatLinear { out, .. } => PlannedKind::Linear { input: s[0], out },
                    LayerSpec::ConcatConv2d { out, kernel, .. } => PlannedKind::Conv { input: s[0], out, kernel },
                    _ => unreachable!("matched above"),
                };
                s = next;
                kind
            }
            LayerSpec::Act(a) => {
                match plan.last_mut() {
                    Some(last) if last.act.is_none() && last.at + 1 == i => last.act = Some(*a),
                    Some(_) => return Err(err(i, "one activation after each layer: two in a row".into())),
                    None => {
                        return Err(err(i, "a field starts with a time-dependent layer, not an activation".into()));
                    }
                }
                continue;
            }
            other => {
                return Err(err(
                    i,
                    format!(
                        "a CNF's field is made of `concat_squash`/`concat_linear`/`concat_conv2d` layers and activations, not {}",
                        spec_name(other)
                    ),
                ));
            }
        };
        plan.push(PlannedLayer { at: i, kind, act: None });
    }
    if plan.is_empty() {
        return Err(err(0, "the field has no layers".into()));
    }
    if s != out {
        return Err(err(specs.len() - 1, format!("the field must return the state's shape {out:?} but returns {s:?}")));
    }
    Ok(plan)
}

fn spec_name(s: &LayerSpec) -> String {
    let debug = format!("{s:?}");
    let name = debug.split([' ', '(', '{']).next().unwrap_or("a layer").to_string();
    format!("`{name}`")
}

impl TimeNet {
    /// Fresh parameters (PyTorch's initialisation) for states of shape `shape` ([d] or
    /// images [c, h, w], held as rows of c h w values).
    pub fn init(
        specs: &[LayerSpec],
        shape: &[usize],
        rng: &mut Rng,
        dtype: DType,
        dev: &Device,
    ) -> std::result::Result<Self, String> {
        Self::init_between(specs, shape, shape, rng, dtype, dev)
    }

    /// `init` for a field from inputs `shape` to outputs `out` (see `field_plan_between`).
    pub fn init_between(
        specs: &[LayerSpec],
        shape: &[usize],
        out: &[usize],
        rng: &mut Rng,
        dtype: DType,
        dev: &Device,
    ) -> std::result::Result<Self, String> {
        let plan = field_plan_between(specs, shape, out).map_err(|e| e.message)?;
        let mut layers = Vec::with_capacity(plan.len());
        for p in &plan {
            let layer = match p.kind {
                PlannedKind::Squash { input, out } => {
                    ConcatSquash::new(input, out, rng, dtype, dev).map(TimeLayer::Squash)
                }
                PlannedKind::Linear { input, out } => {
                    ConcatLinear::new(input, out, rng, dtype, dev).map(TimeLayer::Linear)
                }
                PlannedKind::Conv { input, out, kernel } => {
                    ConcatConv2d::new(input, out, kernel, rng, dtype, dev).map(TimeLayer::Conv)
                }
            };
            layers.push(layer.map_err(|e| e.to_string())?);
        }
        Ok(TimeNet {
            layers,
            acts: plan.iter().map(|p| p.act).collect(),
            at: plan.iter().map(|p| p.at).collect(),
            specs: specs.to_vec(),
            shape: shape.to_vec(),
            out_shape: out.to_vec(),
        })
    }

    /// concat_squash layers of the given widths [d, h1, ..., d], `act` between them.
    pub fn squash_mlp(widths: &[usize], act: Activation, rng: &mut Rng, dtype: DType, dev: &Device) -> Result<Self> {
        let mut specs = Vec::new();
        for (k, w) in widths.windows(2).enumerate() {
            if k > 0 {
                specs.push(LayerSpec::Act(act));
            }
            specs.push(LayerSpec::ConcatSquash { input: Some(w[0]), out: w[1] });
        }
        Self::init(&specs, &[widths[0]], rng, dtype, dev).map_err(candle_core::Error::Msg)
    }

    /// Every parameter by name: `field.<spec index>.<weight|bias|gate_weight|...>`.
    pub fn named_vars(&self) -> Vec<(String, Var)> {
        let mut out = Vec::new();
        for (l, at) in self.layers.iter().zip(&self.at) {
            for (n, v) in l.named() {
                out.push((format!("field.{at}.{n}"), v.clone()));
            }
        }
        out
    }

    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        self.named_vars().into_iter().map(|(n, v)| (n, v.as_tensor().clone())).collect()
    }

    /// Rows [n, D] as the layers take them: [n, c, h, w] for convolutional fields.
    fn unflatten(&self, x: &Tensor, stacked: Option<usize>) -> Result<Tensor> {
        if self.shape.len() != 3 {
            return Ok(x.clone());
        }
        let mut dims = vec![x.dim(0)?];
        dims.extend(stacked);
        dims.extend(&self.shape);
        x.reshape(dims)
    }
}

impl TangentField for TimeNet {
    /// The output's dimension (the state's: a conditioned net's conditioning channels are
    /// not part of the state).
    fn dim(&self) -> usize {
        self.out_shape.iter().product()
    }
    fn eval(&self, t: f64, z: &Tensor) -> Result<Tensor> {
        let mut h = self.unflatten(z, None)?;
        for (l, act) in self.layers.iter().zip(&self.acts) {
            h = match l {
                TimeLayer::Conv(c) => c.forward(t, &h, *act)?,
                _ => {
                    let (w, b) = l.folded(t)?;
                    linear(&h, &w, &b, *act, true)?
                }
            };
        }
        h.reshape((z.dim(0)?, self.dim()))
    }
    /// The state and the tangents stacked ([n, 1 + k, ...]) through layers that carry
    /// tangents: dense ones with the activations fused in (flowline's kernel on the CPU),
    /// convolutions on flowline's convolution kernels.
    fn eval_with_tangents(&self, t: f64, z: &Tensor, tangents: &Tensor) -> Result<(Tensor, Tensor)> {
        let k = tangents.dim(1)?;
        let stacked = Tensor::cat(&[&z.unsqueeze(1)?, tangents], 1)?;
        let mut h = self.unflatten(&stacked, Some(1 + k))?;
        for (l, act) in self.layers.iter().zip(&self.acts) {
            h = match l {
                TimeLayer::Conv(c) => c.forward_tangents(t, &h, *act)?,
                _ => {
                    let (w, b) = l.folded(t)?;
                    tangent_linear(&h, &w, &b, *act)?
                }
            };
        }
        let h = h.reshape((stacked.dim(0)?, 1 + k, self.dim()))?;
        Ok((h.narrow(1, 0, 1)?.squeeze(1)?, h.narrow(1, 1, k)?))
    }
    fn vars(&self) -> Vec<Var> {
        self.layers.iter().flat_map(|l| l.named().into_iter().map(|(_, v)| v.clone())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// J t against central differences of the field, for every activation.
    #[test]
    fn tangents_are_the_jacobian_applied() {
        let dev = Device::Cpu;
        for act in [Activation::Tanh, Activation::Softplus, Activation::Sigmoid] {
            let mut rng = Rng::new(3);
            let f = TimeNet::squash_mlp(&[3, 5, 4, 3], act, &mut rng, DType::F64, &dev).unwrap();
            let z: Vec<f64> = (0..6).map(|_| rng.normal()).collect();
            let z = Tensor::from_vec(z, (2, 3), &dev).unwrap();
            let dirs: Vec<f64> = (0..12).map(|_| rng.normal()).collect();
            let dirs = Tensor::from_vec(dirs, (2, 2, 3), &dev).unwrap();
            let (y, jt) = f.eval_with_tangents(0.3, &z, &dirs).unwrap();
            assert_eq!(y.to_vec2::<f64>().unwrap(), f.eval(0.3, &z).unwrap().to_vec2::<f64>().unwrap());
            let h = 1e-6;
            for j in 0..2 {
                let d = dirs.narrow(1, j, 1).unwrap().squeeze(1).unwrap();
                let plus = f.eval(0.3, &(&z + (&d * h).unwrap()).unwrap()).unwrap();
                let minus = f.eval(0.3, &(&z - (&d * h).unwrap()).unwrap()).unwrap();
                let fd = ((plus - minus).unwrap() / (2.0 * h)).unwrap().to_vec2::<f64>().unwrap();
                let got = jt.narrow(1, j, 1).unwrap().squeeze(1).unwrap().to_vec2::<f64>().unwrap();
                for (a, b) in fd.iter().flatten().zip(got.iter().flatten()) {
                    assert!((a - b).abs() < 1e-7, "{act:?}: {a} vs {b}");
                }
            }
        }
    }

    /// The float32 CPU path (flowline's fused dense kernels) against the float64 composed
    /// ops on the same weights: values, tangents, and the gradients of a probe of both.
    #[test]
    fn the_cpu_kernels_match_the_composed_ops() {
        let dev = Device::Cpu;
        let build =
            |dtype| TimeNet::squash_mlp(&[3, 8, 8, 3], Activation::Tanh, &mut Rng::new(5), dtype, &dev).unwrap();
        let (f32_net, f64_net) = (build(DType::F32), build(DType::F64));
        let mut rng = Rng::new(6);
        let mut draw = |n: usize| (0..n).map(|_| rng.normal()).collect::<Vec<f64>>();
        let (z, tang, p, q) = (draw(12), draw(36), draw(12), draw(36));
        let run = |net: &TimeNet, dtype: DType| {
            let t = |v: &Vec<f64>, s: &[usize]| Tensor::from_vec(v.clone(), s, &dev).unwrap().to_dtype(dtype).unwrap();
            let (y, jt) = net.eval_with_tangents(0.7, &t(&z, &[4, 3]), &t(&tang, &[4, 3, 3])).unwrap();
            let probe = ((&y * t(&p, &[4, 3])).unwrap().sum_all().unwrap()
                + (&jt * t(&q, &[4, 3, 3])).unwrap().sum_all().unwrap())
            .unwrap();
            let grads = probe.backward().unwrap();
            let flat = |x: &Tensor| x.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
            let mut out = vec![flat(&y), flat(&jt)];
            out.extend(net.vars().iter().map(|v| flat(grads.get(v.as_tensor()).unwrap())));
            out
        };
        for (k, (a, b)) in run(&f32_net, DType::F32).iter().zip(run(&f64_net, DType::F64)).enumerate() {
            let scale = b.iter().fold(1f64, |m, v| m.max(v.abs()));
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() < 2e-5 * scale, "output {k}: {x} vs {y}");
            }
        }
    }
}
