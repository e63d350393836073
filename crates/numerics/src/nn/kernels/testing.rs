//! What the kernels' tests share: random tensors and their values.

use crate::rng::Rng;
use candle_core::{Device, Tensor};

/// A CPU float32 tensor of standard normal draws.
pub fn random(shape: &[usize], rng: &mut Rng) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec((0..n).map(|_| rng.normal() as f32).collect::<Vec<_>>(), shape, &Device::Cpu).unwrap()
}

/// The tensor's values, row-major.
pub fn flat(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// Central differences (step 1e-2) of `value` in each entry of each of its three arguments
/// (every `every`-th entry), against the gradients `grads` the op's backward gave.
pub fn assert_central_differences(
    args: [&Tensor; 3],
    grads: [Vec<f32>; 3],
    value: impl Fn(&Tensor, &Tensor, &Tensor) -> f64,
    every: usize,
) {
    let h = 1e-2f32;
    for (arg, g) in grads.iter().enumerate() {
        let base = flat(args[arg]);
        for i in (0..base.len()).step_by(every) {
            let at = |s: f32| {
                let mut v = base.clone();
                v[i] += s;
                let t = Tensor::from_vec(v, args[arg].shape(), &Device::Cpu).unwrap();
                match arg {
                    0 => value(&t, args[1], args[2]),
                    1 => value(args[0], &t, args[2]),
                    _ => value(args[0], args[1], &t),
                }
            };
            let fd = (at(h) - at(-h)) / (2.0 * h as f64);
            assert!((fd - g[i] as f64).abs() < 2e-3 * (1.0 + fd.abs()), "argument {arg}, entry {i}: {fd} vs {}", g[i]);
        }
    }
}
