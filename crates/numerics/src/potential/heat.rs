//! The heat operator H_s[f](y) = E f(y + sqrt(s) xi), xi ~ N(0, I), as a weighted rule of
//! nodes: Monte-Carlo draws (equal weights, optionally in antithetic pairs) or a
//! tensor-product Gauss-Hermite rule. Through a rule, eps log H_s[e^{f/eps}] is a weighted
//! log-sum-exp, its gradient a softmax-weighted mean of gradients and its Laplacian that
//! mean plus the weighted spread of the gradients over eps.

use super::net::{Potential, Want};
use crate::rng::Rng;
use candle_core::{D, DType, Device, Result, Tensor};

/// Nodes xi_i [k, d] with log-weights (summing to one in probability).
#[derive(Clone, Debug)]
pub struct HeatRule {
    /// Row-major [k, d].
    pub nodes: Vec<f32>,
    pub log_weights: Vec<f32>,
    pub dim: usize,
}

/// eps log H_s[e^{f/eps}] at the points, with its gradient and Laplacian when asked.
pub struct Smoothed {
    /// [n]
    pub value: Tensor,
    /// [n, d]
    pub grad: Option<Tensor>,
    /// [n]
    pub laplacian: Option<Tensor>,
}

/// Rows of potential evaluations per chunk: bounds the memory of one smoothing.
const ROWS: usize = 1 << 17;

impl HeatRule {
    /// `k` draws of N(0, I) in dimension `dim`; with `antithetic`, k/2 draws and their
    /// negatives (k rounded up to even), so the rule's odd moments vanish exactly.
    pub fn monte_carlo(k: usize, dim: usize, antithetic: bool, rng: &mut Rng) -> Self {
        let k = k.max(1);
        let mut nodes: Vec<f32> = Vec::with_capacity(k * dim);
        if antithetic {
            let half = k.div_ceil(2);
            let draws: Vec<f32> = (0..half * dim).map(|_| rng.normal() as f32).collect();
            nodes.extend(&draws);
            nodes.extend(draws.iter().map(|v| -v));
        } else {
            nodes.extend((0..k * dim).map(|_| rng.normal() as f32));
        }
        let count = nodes.len() / dim.max(1);
        HeatRule { nodes, log_weights: vec![-(count as f32).ln(); count], dim }
    }

    /// The tensor product of `k`-point Gauss-Hermite rules for N(0, 1): exact for
    /// polynomials of degree 2k - 1 in each coordinate.
    pub fn gauss_hermite(k: usize, dim: usize) -> Self {
        let (x, w) = gauss_hermite_1d(k);
        let mut nodes = Vec::new();
        let mut log_weights = Vec::new();
        let total = k.pow(dim as u32);
        for i in 0..total {
            let mut rest = i;
            let mut lw = 0.0;
            for _ in 0..dim {
                nodes.push(x[rest % k] as f32);
                lw += w[rest % k].ln();
                rest /= k;
            }
            log_weights.push(lw as f32);
        }
        HeatRule { nodes, log_weights, dim }
    }

    /// A rule with the given nodes [k * dim] and equal weights.
    pub fn from_nodes(nodes: Vec<f32>, dim: usize) -> Self {
        let count = nodes.len() / dim.max(1);
        HeatRule { nodes, log_weights: vec![-(count as f32).ln(); count], dim }
    }

    pub fn len(&self) -> usize {
        self.log_weights.len()
    }

    pub fn is_empty(&self) -> bool {
        self.log_weights.is_empty()
    }

    fn tensors(&self, dtype: DType, dev: &Device) -> Result<(Tensor, Tensor)> {
        let nodes = Tensor::from_vec(self.nodes.clone(), (self.len(), self.dim), dev)?.to_dtype(dtype)?;
        let lw = Tensor::from_vec(self.log_weights.clone(), self.len(), dev)?.to_dtype(dtype)?;
        Ok((nodes, lw))
    }

    /// eps log H_s[e^{f/eps}](x) for the potential f at x [n, d], outside the graph, with
    /// what `want` asks. At s = 0 the operator is the identity.
    pub fn smooth(&self, f: &Potential, x: &Tensor, s: f64, eps: f64, want: Want) -> Result<Smoothed> {
        let (n, d) = x.dims2()?;
        if s <= 0.0 {
            let der = f.derivatives(x, want)?;
            return Ok(Smoothed { value: der.value, grad: der.grad, laplacian: der.laplacian });
        }
        let k = self.len();
        let (nodes, lw) = self.tensors(x.dtype(), x.device())?;
        let shift = (nodes * s.sqrt())?;
        let per = (ROWS / k).max(1);
        let mut parts: (Vec<Tensor>, Vec<Tensor>, Vec<Tensor>) = (Vec::new(), Vec::new(), Vec::new());
        for start in (0..n).step_by(per) {
            let c = per.min(n - start);
            let xc = x.narrow(0, start, c)?;
            let y = xc.unsqueeze(1)?.broadcast_add(&shift.unsqueeze(0)?)?.reshape((c * k, d))?;
            let der = f.derivatives(&y, want)?;
            let (value, grad, lap) = (der.value, der.grad, der.laplacian);
            let a = (value.reshape((c, k))? / eps)?.broadcast_add(&lw)?;
            let max = a.max_keepdim(1)?;
            let e = a.broadcast_sub(&max)?.exp()?;
            let sum = e.sum_keepdim(1)?;
            parts.0.push(((sum.log()? + max)?.squeeze(1)? * eps)?);
            if let Some(g) = grad {
                let w = e.broadcast_div(&sum)?;
                let g = g.reshape((c, k, d))?;
                let mean = g.broadcast_mul(&w.unsqueeze(2)?)?.sum(1)?;
                if let Some(l) = lap {
                    let spread = (g.sqr()?.sum(D::Minus1)?.mul(&w)?.sum(1)? - mean.sqr()?.sum(1)?)?;
                    let inner = l.reshape((c, k))?.mul(&w)?.sum(1)?;
                    parts.2.push((inner + (spread / eps)?)?);
                }
                parts.1.push(mean);
            }
        }
        let cat = |v: &[Tensor]| if v.is_empty() { Ok(None) } else { Tensor::cat(v, 0).map(Some) };
        Ok(Smoothed { value: Tensor::cat(&parts.0, 0)?, grad: cat(&parts.1)?, laplacian: cat(&parts.2)? })
    }
}

/// The normalised Hermite recurrence at x: (h_{k-1}(x), h_k(x)) with h_j = He_j / sqrt(j!).
fn hermite(k: usize, x: f64) -> (f64, f64) {
    let (mut prev, mut cur) = (0.0, 1.0);
    for j in 0..k {
        let next = (x * cur - (j as f64).sqrt() * prev) / ((j + 1) as f64).sqrt();
        prev = cur;
        cur = next;
    }
    (prev, cur)
}

/// Nodes and weights of the k-point Gauss-Hermite rule for the standard normal: the roots
/// of He_k (bracketed by a scan of [-sqrt(4k + 2), sqrt(4k + 2)], where they all lie, then
/// bisected) and w_i = 1 / (k h_{k-1}(x_i)^2).
pub fn gauss_hermite_1d(k: usize) -> (Vec<f64>, Vec<f64>) {
    let k = k.max(1);
    let bound = (4.0 * k as f64 + 2.0).sqrt();
    let steps = 200 * k;
    let mut roots = Vec::with_capacity(k);
    let mut prev_x = -bound;
    let mut prev_v = hermite(k, prev_x).1;
    for i in 1..=steps {
        let x = -bound + 2.0 * bound * i as f64 / steps as f64;
        let v = hermite(k, x).1;
        if v == 0.0 || (prev_v < 0.0) != (v < 0.0) {
            let (mut lo, mut hi) = (prev_x, x);
            for _ in 0..100 {
                let mid = 0.5 * (lo + hi);
                if (hermite(k, mid).1 < 0.0) == (hermite(k, lo).1 < 0.0) {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            roots.push(0.5 * (lo + hi));
        }
        prev_x = x;
        prev_v = if v == 0.0 { -prev_v } else { v };
    }
    let weights = roots.iter().map(|&x| 1.0 / (k as f64 * hermite(k, x).0.powi(2))).collect();
    (roots, weights)
}
