//! Forward-mode tangents through a classifier: every layer maps (x, t) to (f(x), f'(x) t)
//! with ordinary differentiable ops. candle's second backward through a gradient is silently
//! wrong (docs/DESIGN, "Second-order autograd"), and flowline's kernels have first-order
//! backward passes only; a Jacobian-vector product built this way needs neither.

use super::kernels;
use super::net::{Built, pool_windows};
use super::spec::LayerSpec;
use crate::rng::Rng;
use candle_core::{D, Result, Tensor};

/// The first layer a tangent cannot pass, named, before anything is built.
pub fn without_tangent(specs: &[LayerSpec]) -> Option<&'static str> {
    specs.iter().find_map(|s| match s {
        LayerSpec::BatchNorm => Some("batch-norm"),
        LayerSpec::MaxPool { kernel, stride } if kernel != stride => Some("overlapping max-pooling"),
        LayerSpec::Residual { body, farkas: None } => without_tangent(body),
        LayerSpec::Residual { .. } => Some("Farkas residual"),
        LayerSpec::FarkasLinear { .. } => Some("Farkas dense"),
        LayerSpec::FarkasConv2d { .. } => Some("Farkas convolution"),
        LayerSpec::NeuralOde { .. } => Some("neural ODE"),
        LayerSpec::ConcatSquash { .. } | LayerSpec::ConcatLinear { .. } | LayerSpec::ConcatConv2d { .. } => {
            Some("time-dependent")
        }
        _ => None,
    })
}

/// The layers' outputs and the tangent J t, in training mode (dropout masks from `rng`).
pub(super) fn chain(layers: &[Built], x: &Tensor, t: &Tensor, rng: &mut Rng) -> Result<(Tensor, Tensor)> {
    let (mut h, mut th) = (x.clone(), t.clone());
    for l in layers {
        (h, th) = layer(l, &h, &th, rng)?;
    }
    Ok((h, th))
}

fn layer(l: &Built, x: &Tensor, t: &Tensor, rng: &mut Rng) -> Result<(Tensor, Tensor)> {
    Ok(match l {
        Built::Linear { w, b } => {
            let wt = w.as_tensor().t()?;
            let y = if x.rank() == 2 {
                kernels::linear(x, w.as_tensor(), b.as_tensor(), None, true)?
            } else {
                x.broadcast_matmul(&wt)?.broadcast_add(b.as_tensor())?
            };
            (y, t.broadcast_matmul(&wt)?)
        }
        Built::Conv { w, b, stride, pad } => {
            let zero = b.as_tensor().zeros_like()?;
            let y = kernels::conv2d(x, w.as_tensor(), b.as_tensor(), *stride, *pad, true, None)?;
            (y, kernels::conv2d(t, w.as_tensor(), &zero, *stride, *pad, true, None)?)
        }
        Built::MaxPool { kernel, stride } if kernel == stride => {
            // The tangent of a window's maximum is the tangent at its (first) arg-max.
            let k = *kernel;
            let windows = pool_windows(x, k)?;
            let at = windows.argmax_keepdim(D::Minus1)?;
            let positions = Tensor::arange(0u32, (k * k) as u32, x.device())?;
            let pick = at.broadcast_eq(&positions.reshape((1, 1, 1, 1, k * k))?)?.to_dtype(x.dtype())?;
            (windows.max(D::Minus1)?, (pool_windows(t, k)? * pick)?.sum(D::Minus1)?)
        }
        Built::AvgPool { kernel, stride } => {
            (x.avg_pool2d_with_stride(*kernel, *stride)?, t.avg_pool2d_with_stride(*kernel, *stride)?)
        }
        Built::GlobalAvgPool => (x.mean(D::Minus1)?.mean(D::Minus1)?, t.mean(D::Minus1)?.mean(D::Minus1)?),
        Built::Flatten => (x.flatten_from(1)?, t.flatten_from(1)?),
        Built::Dropout { p } if *p > 0.0 => {
            let mask = kernels::dropout_mask(x, *p, rng)?;
            ((x * &mask)?, (t * &mask)?)
        }
        Built::Dropout { .. } => (x.clone(), t.clone()),
        Built::Normalize { mean, std } => (x.broadcast_sub(mean)?.broadcast_div(std)?, t.broadcast_div(std)?),
        Built::Act(a) => {
            let (y, slope) = kernels::slope_of(*a, x)?;
            (y, (t * slope)?)
        }
        Built::Residual { body, farkas: None } => {
            let (y, ty) = chain(body, x, t, rng)?;
            ((x + y)?, (t + ty)?)
        }
        other => {
            return Err(candle_core::Error::Msg(format!(
                "no forward-mode tangent through a {} layer: the exact input-gradient penalty takes dense, \
                 convolution, pooling, activation, dropout, normalize and plain residual layers \
                 (use the finite-difference penalty, `exact: false`)",
                other.name()
            )));
        }
    })
}

#[cfg(test)]
mod tests {
    use crate::nn::{Activation, LayerSpec, Net};
    use crate::rng::Rng;
    use candle_core::{Device, Tensor};

    fn random(shape: &[usize], rng: &mut Rng) -> Tensor {
        let n: usize = shape.iter().product();
        Tensor::from_vec((0..n).map(|_| rng.uniform() as f32).collect::<Vec<_>>(), shape, &Device::Cpu).unwrap()
    }

    /// J t against central differences of the outputs, through every layer kind a
    /// classifier convnet uses (with the same dropout masks on both sides), on 8x8 images
    /// and on 7x7 ones, whose max pooling drops the last row and column (it failed there).
    #[test]
    fn tangents_match_central_differences_of_the_outputs() {
        tangents_match_on(8);
        tangents_match_on(7);
    }

    fn tangents_match_on(side: usize) {
        let specs = vec![
            LayerSpec::Normalize { mean: vec![0.5], std: vec![0.25] },
            LayerSpec::Conv2d { input: None, out: 4, kernel: 3, stride: 1, pad: 1 },
            LayerSpec::MaxPool { kernel: 2, stride: 2 },
            LayerSpec::Act(Activation::Relu),
            LayerSpec::Residual {
                body: vec![
                    LayerSpec::Conv2d { input: None, out: 4, kernel: 3, stride: 1, pad: 1 },
                    LayerSpec::Act(Activation::Tanh),
                ],
                farkas: None,
            },
            LayerSpec::AvgPool { kernel: 2, stride: 2 },
            LayerSpec::Flatten,
            LayerSpec::Linear { input: None, out: 8 },
            LayerSpec::Act(Activation::Softplus),
            LayerSpec::Dropout { p: 0.25 },
            LayerSpec::Linear { input: None, out: 3 },
        ];
        let mut rng = Rng::new(2);
        let net = Net::init(&specs, &[1, side, side], &mut rng, &Device::Cpu).unwrap();
        let x = random(&[3, 1, side, side], &mut rng);
        let t = (random(&[3, 1, side, side], &mut rng) - 0.5).unwrap();
        let masks = Rng::new(4);
        let (y, jt) = net.forward_train_tangent(&x, &t, &mut masks.clone()).unwrap();
        let plain = net.forward_train(&x, &mut masks.clone()).unwrap();
        let s = 1e-3;
        let at = |e: f64| net.forward_train(&(&x + (&t * e).unwrap()).unwrap(), &mut masks.clone()).unwrap();
        let fd = ((at(s) - at(-s)).unwrap() / (2.0 * s)).unwrap();
        let (fd, jt): (Vec<Vec<f32>>, Vec<Vec<f32>>) = (fd.to_vec2().unwrap(), jt.to_vec2().unwrap());
        let scale = jt.iter().flatten().fold(0f32, |m, v| m.max(v.abs()));
        for (a, b) in fd.iter().flatten().zip(jt.iter().flatten()) {
            assert!((a - b).abs() < 2e-2 * scale, "fd {a} vs tangent {b}");
        }
        let diff = (y - plain).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(diff < 1e-5, "values differ from forward_train by {diff}");
    }

    #[test]
    fn an_unsupported_layer_is_an_error_naming_it() {
        assert_eq!(super::without_tangent(&[LayerSpec::Linear { input: None, out: 2 }]), None);
        let nested = LayerSpec::Residual { body: vec![LayerSpec::BatchNorm], farkas: None };
        assert_eq!(super::without_tangent(&[nested]), Some("batch-norm"));
        let specs = vec![LayerSpec::BatchNorm, LayerSpec::Linear { input: None, out: 2 }];
        let net = Net::init(&specs, &[3], &mut Rng::new(1), &Device::Cpu).unwrap();
        let x = Tensor::ones((2, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
        let e = net.forward_train_tangent(&x, &x, &mut Rng::new(1)).unwrap_err().to_string();
        assert!(e.contains("batch-norm") && e.contains("exact: false"), "{e}");
    }
}
