//! Activations in one pass over the data, forward and backward, vectorisable: candle composes
//! tanh as 7 ops and sigmoid as 4, each a pass and an allocation, and its CPU tanh costs
//! ~16 ns an element. The derivatives are read from the result (y), so the backward pass
//! needs no copy of the input: relu' = [y > 0], sigmoid' = y (1 - y), tanh' = 1 - y^2,
//! softplus' = sigmoid(x) = 1 - e^-y.

use super::dense::{values, written};
use super::simd::wide_fn;
use crate::nn::Activation;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Elements per parallel chunk; smaller tensors run on the calling thread.
const CHUNK: usize = 1 << 15;

/// e^x in float32 to about 2 ulp, branch-free so that loops over it vectorise: x = n ln 2 + r
/// with |r| <= ln 2 / 2, e^r by its degree-7 Taylor polynomial, 2^n through the exponent bits.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // Round to nearest with the 1.5 * 2^23 trick: k's low mantissa bits hold n, read as an
    // integer without a float-to-int conversion, so the loop vectorises.
    let k = x * std::f32::consts::LOG2_E + 12_582_912.0;
    let n = k - 12_582_912.0;
    let r = (x - n * 0.693_145_75) - n * 1.428_606_8e-6;
    let p = 1.0
        + r * (1.0
            + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r / 5040.0))))));
    let scale = f32::from_bits(k.to_bits().wrapping_sub(0x4B40_0000).wrapping_add(127) << 23);
    scale * p
}

/// tanh, accurate near 0 (a series there) and saturating cleanly.
#[inline(always)]
fn tanh(x: f32) -> f32 {
    let a = x.abs();
    let e = exp(-2.0 * a);
    let far = (1.0 - e) / (1.0 + e);
    let x2 = a * a;
    let near = a * (1.0 - x2 * (1.0 / 3.0 - x2 * (2.0 / 15.0 - x2 * (17.0 / 315.0))));
    let t = if a < 0.125 { near } else { far };
    t.copysign(x)
}

#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// ln(1 + e) for e in [0, 1], branch-free (libm's ln_1p is a call the loop cannot
/// vectorise): 2 atanh(s) with s = e / (2 + e) <= 1/3, whose odd series to s^15 is within
/// 5e-9 relative, and exact to first order for tiny e.
#[inline(always)]
fn ln_1p_unit(e: f32) -> f32 {
    let s = e / (2.0 + e);
    let q = s * s;
    let series = 1.0
        + q * (1.0 / 3.0
            + q * (1.0 / 5.0 + q * (1.0 / 7.0 + q * (1.0 / 9.0 + q * (1.0 / 11.0 + q * (1.0 / 13.0 + q / 15.0))))));
    2.0 * s * series
}

#[inline(always)]
fn softplus(x: f32) -> f32 {
    x.max(0.0) + ln_1p_unit(exp(-x.abs()))
}

wide_fn! {
    fn apply_here(act: Activation, c: &mut [f32]) {
        match act {
            Activation::Relu => c.iter_mut().for_each(|x| *x = x.max(0.0)),
            Activation::Tanh => c.iter_mut().for_each(|x| *x = tanh(*x)),
            Activation::Sigmoid => c.iter_mut().for_each(|x| *x = sigmoid(*x)),
            Activation::Softplus => c.iter_mut().for_each(|x| *x = softplus(*x)),
        }
    }
}

wide_fn! {
    /// v <- act(v + bias) in place (just v + bias without an activation).
    pub fn bias_then(act: Option<Activation>, v: &mut [f32], bias: f32) {
        match act {
            None => v.iter_mut().for_each(|x| *x += bias),
            Some(Activation::Relu) => v.iter_mut().for_each(|x| *x = (*x + bias).max(0.0)),
            Some(Activation::Tanh) => v.iter_mut().for_each(|x| *x = tanh(*x + bias)),
            Some(Activation::Sigmoid) => v.iter_mut().for_each(|x| *x = sigmoid(*x + bias)),
            Some(Activation::Softplus) => v.iter_mut().for_each(|x| *x = softplus(*x + bias)),
        }
    }
}

wide_fn! {
    /// Each row r of the row-major `v` (rows of `bias.len()` values) <- act(r + bias).
    pub fn rows_bias_then(act: Option<Activation>, v: &mut [f32], bias: &[f32]) {
        for row in v.chunks_exact_mut(bias.len().max(1)) {
            let it = row.iter_mut().zip(bias);
            match act {
                None => it.for_each(|(x, b)| *x += b),
                Some(Activation::Relu) => it.for_each(|(x, b)| *x = (*x + b).max(0.0)),
                Some(Activation::Tanh) => it.for_each(|(x, b)| *x = tanh(*x + b)),
                Some(Activation::Sigmoid) => it.for_each(|(x, b)| *x = sigmoid(*x + b)),
                Some(Activation::Softplus) => it.for_each(|(x, b)| *x = softplus(*x + b)),
            }
        }
    }
}

/// act(z), or z without an activation.
#[inline(always)]
pub(super) fn activate(act: Option<Activation>, z: f32) -> f32 {
    match act {
        None => z,
        Some(Activation::Relu) => z.max(0.0),
        Some(Activation::Tanh) => tanh(z),
        Some(Activation::Sigmoid) => sigmoid(z),
        Some(Activation::Softplus) => softplus(z),
    }
}

/// act'(z) from y = act(z) (as `grad` forms it; softplus' = 1 - e^-y, through expm1 so
/// that small slopes keep their relative precision).
#[inline(always)]
pub(super) fn slope(act: Option<Activation>, y: f32) -> f32 {
    match act {
        None => 1.0,
        Some(Activation::Relu) => {
            if y > 0.0 {
                1.0
            } else {
                0.0
            }
        }
        Some(Activation::Tanh) => 1.0 - y * y,
        Some(Activation::Sigmoid) => y * (1.0 - y),
        Some(Activation::Softplus) => -(-y).exp_m1(),
    }
}

/// Apply `act` in place.
pub fn apply(act: Activation, v: &mut [f32]) {
    if v.len() > CHUNK { v.par_chunks_mut(CHUNK).for_each(|c| apply_here(act, c)) } else { apply_here(act, v) }
}

wide_fn! {
    /// dz = dy * act'(z), read from y = act(z); writes every element of dz.
    fn grad(act: Activation, y: &[f32], dy: &[f32], dz: &mut [MaybeUninit<f32>]) {
        let it = dz.iter_mut().zip(y).zip(dy);
        match act {
            Activation::Relu => it.for_each(|((d, y), g)| {
                d.write(if *y > 0.0 { *g } else { 0.0 });
            }),
            Activation::Tanh => it.for_each(|((d, y), g)| {
                d.write(g * (1.0 - y * y));
            }),
            Activation::Sigmoid => it.for_each(|((d, y), g)| {
                d.write(g * y * (1.0 - y));
            }),
            Activation::Softplus => it.for_each(|((d, y), g)| {
                d.write(-g * (-y).exp_m1());
            }),
        }
    }
}

/// `act(x)`.
#[derive(Debug, Clone, Copy)]
pub struct Act(pub Activation);

impl CustomOp1 for Act {
    fn name(&self) -> &'static str {
        "flowline-activation"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let mut v = values(s, l)?.into_owned();
        apply(self.0, &mut v);
        Ok((CpuStorage::F32(v), l.shape().clone()))
    }
    fn bwd(&self, _x: &Tensor, y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(y.apply_op2_no_bwd(dy, &ActGrad(self.0))?))
    }
}

/// dz from (y, dy), for ops that end in an activation.
#[derive(Debug, Clone, Copy)]
pub struct ActGrad(pub Activation);

impl CustomOp2 for ActGrad {
    fn name(&self) -> &'static str {
        "flowline-activation-grad"
    }
    fn cpu_fwd(&self, sy: &CpuStorage, ly: &Layout, sd: &CpuStorage, ld: &Layout) -> Result<(CpuStorage, Shape)> {
        if ly.shape() != ld.shape() {
            candle_core::bail!("activation backward: result {:?}, gradient {:?}", ly.dims(), ld.dims());
        }
        let (y, dy) = (values(sy, ly)?, values(sd, ld)?);
        // SAFETY: `grad` writes every element of its output; the chunks of dz, y and dy
        // line up (same shapes, checked above).
        let dz = unsafe {
            written(y.len(), |dz| {
                if y.len() > CHUNK {
                    dz.par_chunks_mut(CHUNK)
                        .zip(y.par_chunks(CHUNK).zip(dy.par_chunks(CHUNK)))
                        .for_each(|(d, (y, g))| grad(self.0, y, g, d));
                } else {
                    grad(self.0, &y, &dy, dz);
                }
            })
        };
        Ok((CpuStorage::F32(dz), ly.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use candle_core::{Device, Var};

    /// exp and the activations against float64 references over their whole useful range.
    #[test]
    fn elementwise_functions_are_accurate() {
        let mut worst = [0f64; 4];
        let mut x = -90.0f32;
        while x < 90.0 {
            let xd = x as f64;
            let rel = |a: f32, b: f64| ((a as f64 - b) / b.abs().max(1e-30)).abs();
            if xd > -87.0 && xd < 88.0 {
                worst[0] = worst[0].max(rel(exp(x), xd.exp()));
            }
            worst[1] = worst[1].max(rel(tanh(x), xd.tanh()));
            let s = 1.0 / (1.0 + (-xd).exp());
            if s > 1e-30 {
                worst[2] = worst[2].max(rel(sigmoid(x), s));
            }
            let sp = xd.max(0.0) + (-xd.abs()).exp().ln_1p();
            if sp > 1e-30 {
                worst[3] = worst[3].max(rel(softplus(x), sp));
            }
            x += 0.000_73 * (1.0 + x.abs());
        }
        for (w, name) in worst.iter().zip(["exp", "tanh", "sigmoid", "softplus"]) {
            assert!(*w < 1e-6, "{name}: worst relative error {w}");
        }
        assert_eq!(tanh(0.0), 0.0);
        assert_eq!(tanh(-30.0), -1.0);
        assert!(exp(-100.0) >= 0.0 && exp(100.0).is_finite());
    }

    /// Throughput of the activations (not a test): `cargo test --release -p
    /// flowline-numerics activation_speed -- --ignored --nocapture`, and again with
    /// FLOWLINE_NO_SIMD=1 for the baseline-x86-64 loops.
    #[test]
    #[ignore]
    fn activation_speed() {
        let mut v: Vec<f32> = (0..32768).map(|i| (i as f32 / 8192.0) - 2.0).collect();
        for act in [Activation::Relu, Activation::Tanh, Activation::Sigmoid, Activation::Softplus] {
            let t = std::time::Instant::now();
            for _ in 0..1000 {
                apply(act, &mut v);
                v.iter_mut().for_each(|x| *x = (*x - 0.5) * 3.0);
            }
            println!("{act:?}: {:.2} ns an element", t.elapsed().as_secs_f64() / 32.768e6 * 1e9);
        }
    }

    /// Each activation's values and gradients against candle's composed operations.
    #[test]
    fn activations_match_candles_ops_and_their_gradients() {
        let mut rng = Rng::new(4);
        let data: Vec<f32> = (0..5000).map(|_| (rng.normal() * 4.0) as f32).collect();
        let x0 = Tensor::from_vec(data, (50, 100), &Device::Cpu).unwrap();
        let probe =
            Tensor::from_vec((0..5000).map(|_| rng.normal() as f32).collect::<Vec<_>>(), (50, 100), &Device::Cpu)
                .unwrap();
        for act in [Activation::Relu, Activation::Tanh, Activation::Sigmoid, Activation::Softplus] {
            let x = Var::from_tensor(&x0).unwrap();
            let reference = match act {
                Activation::Relu => x.as_tensor().relu(),
                Activation::Tanh => x.as_tensor().tanh(),
                Activation::Sigmoid => candle_core::Tensor::ones_like(&x0)
                    .and_then(|one| one.broadcast_div(&(x.as_tensor().neg()?.exp()? + 1.0)?)),
                Activation::Softplus => {
                    x.as_tensor().relu().and_then(|r| r + (x.as_tensor().abs()?.neg()?.exp()? + 1.0)?.log()?)
                }
            }
            .unwrap();
            let ours = x.as_tensor().apply_op1(Act(act)).unwrap();
            let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            for (a, b) in flat(&ours).iter().zip(flat(&reference)) {
                assert!((a - b).abs() <= 2e-6 * (1.0 + b.abs()), "{act:?}: {a} vs {b}");
            }
            let g = |y: &Tensor| y.mul(&probe).unwrap().sum_all().unwrap().backward().unwrap();
            let (ga, gb) = (g(&ours), g(&reference));
            for (a, b) in flat(ga.get(&x).unwrap()).iter().zip(flat(gb.get(&x).unwrap())) {
                assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{act:?} gradient: {a} vs {b}");
            }
        }
    }
}
