//! flowline's own CPU kernels, as candle custom ops with their backward passes: where
//! candle's CPU implementation is slow (convolutions run as direct loops, their backward as
//! a transposed convolution) or wrong (max-pool gradient). Every op checks its arguments and
//! is tested against candle's composed ops and against central differences.

mod act;
mod adam;
mod conv;
mod conv_pool;
mod dense;
mod dropout;
mod linear;
mod pool;
mod simd;
mod tangent;
#[cfg(test)]
mod testing;

use candle_core::{DType, Tensor};
use std::sync::atomic::{AtomicBool, Ordering};

pub use act::{Act, ActGrad, exp};
pub use adam::{AdamStep, adam_step};
pub use conv::{Conv2d, conv2d};
pub use conv_pool::{ConvPool, conv_pool, conv_pool_fits};
pub use dense::all_finite;
pub use dropout::{dropout, dropout_mask};
pub use linear::{Linear, flatten_linear, linear};
pub use pool::MaxPool;
pub use tangent::{TangentLinear, slope_of, tangent_linear};

static COMPOSED: AtomicBool = AtomicBool::new(false);

/// The kernels apply: float32 on the CPU. Elsewhere candle's ops run.
pub fn own(t: &Tensor) -> bool {
    t.device().is_cpu() && t.dtype() == DType::F32 && !COMPOSED.load(Ordering::Relaxed)
}

/// With `true`, candle's composed ops run on the CPU too: what other devices (CUDA) run,
/// so that their path is tested against the kernels on a machine without a GPU. Process-wide.
pub fn use_composed_ops(on: bool) {
    COMPOSED.store(on, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use crate::nn::{Activation, LayerSpec, Net};
    use crate::rng::Rng;
    use candle_core::{Device, Tensor, Var};

    fn net(specs: Vec<LayerSpec>, input: &[usize]) -> Net {
        Net::init(&specs, input, &mut Rng::new(1), &Device::Cpu).unwrap()
    }

    fn input(shape: (usize, usize, usize, usize), seed: u64) -> Tensor {
        let mut rng = Rng::new(seed);
        let n = shape.0 * shape.1 * shape.2 * shape.3;
        Tensor::from_vec((0..n).map(|_| rng.normal() as f32).collect::<Vec<_>>(), shape, &Device::Cpu).unwrap()
    }

    fn grad(net: &Net, x: &Tensor, fast: bool) -> (Vec<f32>, Vec<f32>) {
        let v = Var::from_tensor(x).unwrap();
        let y = if fast { net.forward_input_grad(v.as_tensor()) } else { net.forward(v.as_tensor()) }.unwrap();
        let w = Tensor::arange(0f32, y.dim(1).unwrap() as f32, &Device::Cpu).unwrap().affine(0.7, -0.9).unwrap();
        let g = y.broadcast_mul(&w).unwrap().sum_all().unwrap().backward().unwrap();
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        (flat(&y), flat(g.get(&v).unwrap()))
    }

    /// The input-only convolution of attacks (`forward_input_grad`) against the training
    /// path, for stride 1 and 2, with and without padding: same values, same input
    /// gradients.
    #[test]
    fn input_only_convolutions_match_the_training_path() {
        let conv = |out, stride, pad| LayerSpec::Conv2d { input: None, out, kernel: 3, stride, pad };
        let specs = vec![
            conv(6, 1, 1),
            LayerSpec::Act(Activation::Tanh),
            conv(5, 2, 0),
            LayerSpec::Act(Activation::Tanh),
            conv(4, 1, 0),
            LayerSpec::Flatten,
            LayerSpec::Linear { input: None, out: 3 },
        ];
        let net = net(specs, &[2, 14, 14]);
        let x = input((3, 2, 14, 14), 2);
        let ((y0, g0), (y1, g1)) = (grad(&net, &x, false), grad(&net, &x, true));
        for (a, b) in y0.iter().zip(&y1) {
            assert!((a - b).abs() < 1e-5, "values {a} vs {b}");
        }
        let scale = g0.iter().fold(0f32, |m, v| m.max(v.abs()));
        for (a, b) in g0.iter().zip(&g1) {
            assert!((a - b).abs() < 1e-5 * scale.max(1.0), "gradients {a} vs {b}");
        }
    }

    /// Convolution, ReLU, max pooling (run as convolution, then pooling with the ReLU):
    /// the same values and gradients as the three applied in their written order by the
    /// kernels one at a time.
    #[test]
    fn relu_before_pooling_is_the_same_network() {
        let specs = vec![
            LayerSpec::Conv2d { input: None, out: 3, kernel: 3, stride: 1, pad: 1 },
            LayerSpec::Act(Activation::Relu),
            LayerSpec::MaxPool { kernel: 2, stride: 2 },
            LayerSpec::Flatten,
            LayerSpec::Linear { input: None, out: 4 },
        ];
        let net = net(specs, &[2, 6, 6]);
        let x = input((2, 2, 6, 6), 5);
        let (y, g) = grad(&net, &x, false);
        let named: std::collections::HashMap<String, Tensor> = net.named_tensors().into_iter().collect();
        let (wc, bc) = (&named["layers.0.weight"], &named["layers.0.bias"]);
        let (wl, bl) = (&named["layers.4.weight"], &named["layers.4.bias"]);
        let v = Var::from_tensor(&x).unwrap();
        let h = super::conv2d(v.as_tensor(), wc, bc, 1, 1, true, Some(Activation::Relu)).unwrap();
        let h = h.apply_op1(super::MaxPool { size: 2, relu: false }).unwrap();
        let out = super::linear(&h.flatten_from(1).unwrap(), wl, bl, None, true).unwrap();
        let w = Tensor::arange(0f32, 4.0, &Device::Cpu).unwrap().affine(0.7, -0.9).unwrap();
        let gs = out.broadcast_mul(&w).unwrap().sum_all().unwrap().backward().unwrap();
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(y, flat(&out));
        assert_eq!(g, flat(gs.get(&v).unwrap()));
    }

    /// Max pooling's input gradient in a network, with and without the fused ReLU, against
    /// central differences: the networks are piecewise linear, so a small step that keeps
    /// each window's maximum is exact.
    #[test]
    fn max_pool_gradients_match_finite_differences() {
        for relu in [false, true] {
            let mut specs = vec![
                LayerSpec::Conv2d { input: None, out: 3, kernel: 3, stride: 1, pad: 1 },
                LayerSpec::MaxPool { kernel: 2, stride: 2 },
            ];
            if relu {
                specs.push(LayerSpec::Act(Activation::Relu));
            }
            specs.extend([LayerSpec::Flatten, LayerSpec::Linear { input: None, out: 4 }]);
            let net = net(specs, &[1, 6, 6]);
            let x = input((1, 1, 6, 6), 3);
            let (_, g) = grad(&net, &x, false);
            let value = |x: &Tensor| {
                let y = net.forward(x).unwrap();
                let w = Tensor::arange(0f32, 4.0, &Device::Cpu).unwrap().affine(0.7, -0.9).unwrap();
                y.broadcast_mul(&w).unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() as f64
            };
            let base = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let h = 1e-3f32;
            for k in 0..base.len() {
                let shifted = |s: f32| {
                    let mut v = base.clone();
                    v[k] += s;
                    Tensor::from_vec(v, (1, 1, 6, 6), &Device::Cpu).unwrap()
                };
                let fd = (value(&shifted(h)) - value(&shifted(-h))) / (2.0 * h as f64);
                assert!((fd - g[k] as f64).abs() < 2e-3 * (1.0 + fd.abs()), "relu {relu}, input {k}: {fd} vs {}", g[k]);
            }
        }
    }
}
