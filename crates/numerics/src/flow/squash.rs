//! FFJORD's time-dependent dense layers, `concat_squash`, y = (W x + b) * sigmoid(w_g t +
//! b_g) + w_b t, and `concat_linear`, y = W x + b + w_t t (a linear map of [x, t]). At a
//! fixed time both are ordinary dense layers, which is how they run: folded, on the fused
//! dense kernels that also carry forward tangents.

use super::conv_layer::ConcatConv2d;
use crate::nn::{Activation, activate};
use crate::rng::Rng;
use candle_core::{DType, Device, Result, Tensor, Var};

/// One layer; parameters as PyTorch's `nn.Linear` initialises them (uniform within
/// 1/sqrt(fan-in)), the gate and the time bias from a 1-input linear map as in FFJORD.
pub struct ConcatSquash {
    pub w: Var,
    pub b: Var,
    pub wg: Var,
    pub bg: Var,
    pub wb: Var,
}

fn uniform(rng: &mut Rng, shape: &[usize], bound: f64, dtype: DType, dev: &Device) -> Result<Var> {
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n).map(|_| (2.0 * rng.uniform() - 1.0) * bound).collect();
    Var::from_tensor(&Tensor::from_vec(v, shape, dev)?.to_dtype(dtype)?)
}

impl ConcatSquash {
    pub fn new(input: usize, out: usize, rng: &mut Rng, dtype: DType, dev: &Device) -> Result<Self> {
        let k = 1.0 / (input.max(1) as f64).sqrt();
        Ok(ConcatSquash {
            w: uniform(rng, &[out, input], k, dtype, dev)?,
            b: uniform(rng, &[out], k, dtype, dev)?,
            wg: uniform(rng, &[out], 1.0, dtype, dev)?,
            bg: uniform(rng, &[out], 1.0, dtype, dev)?,
            wb: uniform(rng, &[out], 1.0, dtype, dev)?,
        })
    }
    /// sigmoid(w_g t + b_g), [out].
    fn gate(&self, t: f64) -> Result<Tensor> {
        activate(Activation::Sigmoid, &((self.wg.as_tensor() * t)? + self.bg.as_tensor())?)
    }
    /// The layer at time t as a dense one: (W x + b) g + w_b t = (g W) x + (g b + w_b t).
    /// Small [out, in] ops; gradients reach W, b and the gate's parameters through them.
    pub fn folded(&self, t: f64) -> Result<(Tensor, Tensor)> {
        let g = self.gate(t)?;
        let w = self.w.as_tensor().broadcast_mul(&g.unsqueeze(1)?)?;
        let b = ((self.b.as_tensor() * &g)? + (self.wb.as_tensor() * t)?)?;
        Ok((w, b))
    }
    pub fn named(&self) -> Vec<(&'static str, &Var)> {
        vec![
            ("weight", &self.w),
            ("bias", &self.b),
            ("gate_weight", &self.wg),
            ("gate_bias", &self.bg),
            ("time_weight", &self.wb),
        ]
    }
}

/// y = W x + b + w_t t: PyTorch's initialisation of a linear map of [x, t] (fan-in in + 1).
pub struct ConcatLinear {
    pub w: Var,
    pub b: Var,
    pub wt: Var,
}

impl ConcatLinear {
    pub fn new(input: usize, out: usize, rng: &mut Rng, dtype: DType, dev: &Device) -> Result<Self> {
        let k = 1.0 / ((input + 1) as f64).sqrt();
        Ok(ConcatLinear {
            w: uniform(rng, &[out, input], k, dtype, dev)?,
            wt: uniform(rng, &[out], k, dtype, dev)?,
            b: uniform(rng, &[out], k, dtype, dev)?,
        })
    }
    pub fn folded(&self, t: f64) -> Result<(Tensor, Tensor)> {
        Ok((self.w.as_tensor().clone(), (self.b.as_tensor() + (self.wt.as_tensor() * t)?)?))
    }
    pub fn named(&self) -> Vec<(&'static str, &Var)> {
        vec![("weight", &self.w), ("bias", &self.b), ("time_weight", &self.wt)]
    }
}

/// One time-dependent layer.
pub enum TimeLayer {
    Squash(ConcatSquash),
    Linear(ConcatLinear),
    Conv(ConcatConv2d),
}

impl TimeLayer {
    /// A dense layer at time t as a dense (weight [out, in], bias [out]).
    pub fn folded(&self, t: f64) -> Result<(Tensor, Tensor)> {
        match self {
            TimeLayer::Squash(l) => l.folded(t),
            TimeLayer::Linear(l) => l.folded(t),
            TimeLayer::Conv(_) => candle_core::bail!("a convolution does not fold into a dense layer"),
        }
    }
    /// Its parameters with their names in a checkpoint.
    pub fn named(&self) -> Vec<(&'static str, &Var)> {
        match self {
            TimeLayer::Squash(l) => l.named(),
            TimeLayer::Linear(l) => l.named(),
            TimeLayer::Conv(l) => l.named(),
        }
    }
    /// (input, output) widths, or channels.
    pub fn widths(&self) -> (usize, usize) {
        let w = match self {
            TimeLayer::Squash(l) => &l.w,
            TimeLayer::Linear(l) => &l.w,
            TimeLayer::Conv(l) => return (l.sizes().0, l.sizes().1),
        };
        (w.dims()[1], w.dims()[0])
    }
}
