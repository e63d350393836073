//! What the kernels' tests share: random tensors and their values.

use crate::rng::Rng;
use candle_core::{Device, Tensor, Var};

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

/// A three-argument op's gradients (by its backward pass) against central differences of
/// the op itself: random arguments of the given shapes, the scalar sum(op(x, w, b) * probe)
/// for a random probe, every third entry.
pub fn assert_op_gradients(shapes: [&[usize]; 3], seed: u64, op: impl Fn(&Tensor, &Tensor, &Tensor) -> Tensor) {
    let mut rng = Rng::new(seed);
    let args = shapes.map(|s| random(s, &mut rng));
    let vars = args.clone().map(|a| Var::from_tensor(&a).unwrap());
    let y = op(vars[0].as_tensor(), vars[1].as_tensor(), vars[2].as_tensor());
    let probe = random(y.dims(), &mut rng);
    let probed = |y: Tensor| y.mul(&probe).unwrap().sum_all().unwrap();
    let grads = probed(y).backward().unwrap();
    let grads = vars.map(|v| flat(grads.get(&v).unwrap()));
    let value = |x: &Tensor, w: &Tensor, b: &Tensor| probed(op(x, w, b)).to_scalar::<f32>().unwrap() as f64;
    assert_central_differences([&args[0], &args[1], &args[2]], grads, value, 3);
}
