//! A chain of dense layers and activations with candle `Var`s as parameters.

use super::shapes::{Activation, LayerSpec, infer_widths};
use crate::rng::Rng;
use candle_core::{DType, Device, Result, Tensor, Var};
use std::collections::HashMap;

enum Built {
    Linear { w: Var, b: Var },
    Act(Activation),
}

pub struct Mlp {
    layers: Vec<Built>,
    pub specs: Vec<LayerSpec>,
    pub input: usize,
    pub output: usize,
}

impl Mlp {
    /// PyTorch's default initialisation: weights and biases uniform in +-1/sqrt(fan_in).
    pub fn init(specs: &[LayerSpec], input: usize, rng: &mut Rng, device: &Device) -> Result<Self> {
        let widths = infer_widths(specs, input).map_err(|e| {
            candle_core::Error::Msg(format!("layer {}: expects width {}, gets {}", e.layer, e.expected, e.got))
        })?;
        let mut layers = Vec::new();
        let mut width = input;
        for (spec, &w_out) in specs.iter().zip(&widths) {
            layers.push(match spec {
                LayerSpec::Linear { out, .. } => {
                    let bound = 1.0 / (width as f64).sqrt();
                    let mut draw = |n: usize| -> Vec<f32> {
                        (0..n).map(|_| ((rng.uniform() * 2.0 - 1.0) * bound) as f32).collect()
                    };
                    let w = Tensor::from_vec(draw(out * width), (*out, width), device)?;
                    let b = Tensor::from_vec(draw(*out), *out, device)?;
                    Built::Linear { w: Var::from_tensor(&w)?, b: Var::from_tensor(&b)? }
                }
                LayerSpec::Act(a) => Built::Act(*a),
            });
            width = w_out;
        }
        Ok(Mlp { layers, specs: specs.to_vec(), input, output: width })
    }

    /// Rebuild from named tensors (`layers.{i}.weight`, `layers.{i}.bias`).
    pub fn from_tensors(
        specs: &[LayerSpec],
        input: usize,
        tensors: &HashMap<String, Tensor>,
        device: &Device,
    ) -> Result<Self> {
        let widths = infer_widths(specs, input).map_err(|e| {
            candle_core::Error::Msg(format!("layer {}: expects width {}, gets {}", e.layer, e.expected, e.got))
        })?;
        let mut layers = Vec::new();
        let mut width = input;
        for (i, (spec, &w_out)) in specs.iter().zip(&widths).enumerate() {
            layers.push(match spec {
                LayerSpec::Linear { out, .. } => {
                    let get = |n: &str| {
                        tensors
                            .get(&format!("layers.{i}.{n}"))
                            .ok_or_else(|| candle_core::Error::Msg(format!("missing tensor layers.{i}.{n}")))
                            .and_then(|t| t.to_dtype(DType::F32)?.to_device(device))
                    };
                    let (w, b) = (get("weight")?, get("bias")?);
                    if w.dims() != [*out, width] || b.dims() != [*out] {
                        return Err(candle_core::Error::Msg(format!(
                            "layers.{i}: expected weight [{out}, {width}] and bias [{out}], found {:?} and {:?}",
                            w.dims(),
                            b.dims()
                        )));
                    }
                    Built::Linear { w: Var::from_tensor(&w)?, b: Var::from_tensor(&b)? }
                }
                LayerSpec::Act(a) => Built::Act(*a),
            });
            width = w_out;
        }
        Ok(Mlp { layers, specs: specs.to_vec(), input, output: width })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        for l in &self.layers {
            h = match l {
                Built::Linear { w, b } => h.matmul(&w.as_tensor().t()?)?.broadcast_add(b.as_tensor())?,
                Built::Act(a) => activate(*a, &h)?,
            };
        }
        Ok(h)
    }

    pub fn vars(&self) -> Vec<Var> {
        self.layers
            .iter()
            .flat_map(|l| match l {
                Built::Linear { w, b } => vec![w.clone(), b.clone()],
                Built::Act(_) => vec![],
            })
            .collect()
    }

    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            if let Built::Linear { w, b } = l {
                out.push((format!("layers.{i}.weight"), w.as_tensor().clone()));
                out.push((format!("layers.{i}.bias"), b.as_tensor().clone()));
            }
        }
        out
    }

    pub fn parameter_count(&self) -> usize {
        self.vars().iter().map(|v| v.elem_count()).sum()
    }
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
        let m = Mlp::init(&specs, 2, &mut Rng::new(4), &dev).unwrap();
        let x = Tensor::new(&[[0.3f32, -1.2], [1.5, 0.4]], &dev).unwrap();
        let loss = |m: &Mlp| m.forward(&x).unwrap().sqr().unwrap().sum_all().unwrap();
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
}
