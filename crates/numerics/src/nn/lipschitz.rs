//! A global l2 Lipschitz constant of a classifier, as the product of its layers' constants
//! (spectral norms of the dense and convolution layers, exact constants of the others),
//! for certified lower bounds on the adversarial distance. The last dense layer is kept
//! apart: the margin z_y - z_j changes at most |w_y - w_j|_2 times the rest's constant.

use super::net::Built;
use super::spec::{Activation, LayerSpec, infer_one};
use candle_core::{DType, Device, Result, Tensor};

const BN_EPS: f64 = 1e-5;
/// Power iteration stops when the estimate changes by less than this, relatively.
const TOLERANCE: f64 = 1e-9;
const MAX_ITERS: usize = 3000;

/// The constant of the layers before the head, and the head's rows (one per class) when
/// the model ends with a dense layer.
#[derive(Debug, Clone)]
pub struct Lipschitz {
    pub body: f64,
    pub head: Option<Vec<Vec<f64>>>,
}

impl Lipschitz {
    /// The l2 Lipschitz constant of z_y - z_j.
    pub fn margin(&self, y: usize, j: usize) -> f64 {
        match &self.head {
            Some(rows) => {
                let d: f64 = rows[y].iter().zip(&rows[j]).map(|(a, b)| (a - b) * (a - b)).sum();
                d.sqrt() * self.body
            }
            None => std::f64::consts::SQRT_2 * self.body,
        }
    }

    /// The whole model's constant (logits).
    pub fn total(&self) -> f64 {
        match &self.head {
            Some(rows) => dense_norm(rows) * self.body,
            None => self.body,
        }
    }
}

pub(super) fn of_chain(layers: &[Built], specs: &[LayerSpec], input: &[usize]) -> Result<Lipschitz> {
    let (body, head) = match (layers.last(), specs.last()) {
        (Some(Built::Linear { w, .. }), Some(_)) => {
            (&layers[..layers.len() - 1], Some(w.as_tensor().to_dtype(DType::F64)?.to_vec2::<f64>()?))
        }
        _ => (layers, None),
    };
    Ok(Lipschitz { body: chain(body, specs, input)?, head })
}

fn chain(layers: &[Built], specs: &[LayerSpec], input: &[usize]) -> Result<f64> {
    let mut shape = input.to_vec();
    let mut lip = 1.0;
    for (i, (l, spec)) in layers.iter().zip(specs).enumerate() {
        lip *= layer(l, spec, &shape)?;
        shape = infer_one(i, spec, &shape).map_err(|e| candle_core::Error::Msg(e.message))?;
    }
    Ok(lip)
}

fn layer(l: &Built, spec: &LayerSpec, shape: &[usize]) -> Result<f64> {
    Ok(match l {
        Built::Linear { w, .. } => dense_norm(&w.as_tensor().to_dtype(DType::F64)?.to_vec2::<f64>()?),
        Built::Conv { w, stride, pad, .. } => conv_norm(w.as_tensor(), shape, *stride, *pad)?,
        // Each input lies in at most ceil(k/s)^2 windows; a window's maximum moves by at most
        // the largest change inside it.
        Built::MaxPool { kernel, stride } => kernel.div_ceil(*stride) as f64,
        Built::AvgPool { kernel, stride } => kernel.div_ceil(*stride) as f64 / *kernel as f64,
        Built::GlobalAvgPool => 1.0 / ((shape[1] * shape[2]) as f64).sqrt(),
        Built::Flatten | Built::Dropout { .. } => 1.0,
        Built::Act(Activation::Sigmoid) => 0.25,
        Built::Act(_) => 1.0,
        Built::Normalize { std, .. } => {
            std.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?.iter().fold(0.0, |m, s| m.max(1.0 / s.abs()))
        }
        Built::BatchNorm { gamma, var, .. } => {
            let g = gamma.as_tensor().to_dtype(DType::F64)?.to_vec1::<f64>()?;
            let v = var.as_tensor().to_dtype(DType::F64)?.to_vec1::<f64>()?;
            g.iter().zip(&v).fold(0.0, |m, (g, v)| m.max(g.abs() / (v + BN_EPS).sqrt()))
        }
        Built::Residual { body, farkas: None } => {
            let LayerSpec::Residual { body: specs, .. } = spec else {
                candle_core::bail!("a residual layer without its specification")
            };
            1.0 + chain(body, specs, shape)?
        }
        other => candle_core::bail!(
            "no Lipschitz constant for a {} layer: certified bounds take dense, convolution, pooling, \
             activation, dropout, normalize, batch-norm and plain residual layers",
            other.name()
        ),
    })
}

/// The largest singular value of a dense matrix (rows), by power iteration on W^T W.
pub fn dense_norm(w: &[Vec<f64>]) -> f64 {
    let cols = w.first().map_or(0, Vec::len);
    let apply = |v: &[f64]| -> Vec<f64> {
        let u: Vec<f64> = w.iter().map(|r| r.iter().zip(v).map(|(a, b)| a * b).sum()).collect();
        let mut out = vec![0.0; cols];
        for (r, ui) in w.iter().zip(&u) {
            for (o, a) in out.iter_mut().zip(r) {
                *o += a * ui;
            }
        }
        out
    };
    power_iteration(cols, |v| Ok(apply(v))).unwrap_or(0.0)
}

/// The operator norm of a convolution (no bias) on inputs of `shape` [c, h, w]: power
/// iteration on A^T A, A^T the transposed convolution, in float64.
fn conv_norm(w: &Tensor, shape: &[usize], stride: usize, pad: usize) -> Result<f64> {
    let w = w.to_dtype(DType::F64)?.to_device(&Device::Cpu)?;
    let (c, h, wd) = (shape[0], shape[1], shape[2]);
    let k = w.dim(2)?;
    let out_pad = (h + 2 * pad - k) % stride;
    if (wd + 2 * pad - k) % stride != out_pad {
        candle_core::bail!("a strided convolution of a non-square image: no bound here");
    }
    power_iteration(c * h * wd, |v| {
        let x = Tensor::from_slice(v, (1, c, h, wd), &Device::Cpu)?;
        let y = x.conv2d(&w, pad, stride, 1, 1)?;
        y.conv_transpose2d(&w, pad, out_pad, stride, 1)?.flatten_all()?.to_vec1::<f64>()
    })
}

/// sqrt of the largest eigenvalue of the positive semi-definite map `ata`, by power
/// iteration from a fixed start until the estimate settles. It approaches from below.
fn power_iteration(n: usize, ata: impl Fn(&[f64]) -> Result<Vec<f64>>) -> Result<f64> {
    if n == 0 {
        return Ok(0.0);
    }
    // A fixed, uneven start: no symmetry of the operator can make it orthogonal to the top
    // singular vector except by measure-zero accident.
    let mut v: Vec<f64> = (0..n).map(|i| 1.0 + ((i * 7919) % 101) as f64 / 101.0).collect();
    let mut last = 0.0;
    for _ in 0..MAX_ITERS {
        let len = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        if len == 0.0 {
            return Ok(0.0);
        }
        v.iter_mut().for_each(|a| *a /= len);
        let u = ata(&v)?;
        let lambda = u.iter().map(|a| a * a).sum::<f64>().sqrt();
        v = u;
        if (lambda - last).abs() <= TOLERANCE * lambda {
            return Ok(lambda.sqrt());
        }
        last = lambda;
    }
    Ok(last.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg_reference::largest_singular_value;
    use crate::rng::Rng;

    fn random(n: usize, rng: &mut Rng) -> Vec<f64> {
        (0..n).map(|_| rng.normal()).collect()
    }

    #[test]
    fn dense_spectral_norms_match_a_dense_eigen_decomposition() {
        let mut rng = Rng::new(3);
        for (r, c) in [(5, 7), (7, 5), (1, 4), (10, 10)] {
            let w: Vec<Vec<f64>> = (0..r).map(|_| random(c, &mut rng)).collect();
            let (got, want) = (dense_norm(&w), largest_singular_value(&w));
            assert!((got - want).abs() < 1e-6 * want, "{r}x{c}: {got} vs {want}");
        }
    }

    /// A convolution's operator norm against the dense matrix of the same map, built
    /// column by column from basis images.
    #[test]
    fn convolution_norms_match_the_dense_operator() {
        let mut rng = Rng::new(4);
        for (c_in, c_out, k, stride, pad, size) in [(1, 2, 3, 1, 1, 5), (2, 3, 3, 2, 1, 5), (2, 2, 2, 2, 0, 4)] {
            let wv = random(c_out * c_in * k * k, &mut rng);
            let w = Tensor::from_vec(wv, (c_out, c_in, k, k), &Device::Cpu).unwrap();
            let n = c_in * size * size;
            let columns: Vec<Vec<f64>> = (0..n)
                .map(|i| {
                    let mut e = vec![0.0; n];
                    e[i] = 1.0;
                    let x = Tensor::from_vec(e, (1, c_in, size, size), &Device::Cpu).unwrap();
                    x.conv2d(&w, pad, stride, 1, 1).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap()
                })
                .collect();
            let rows: Vec<Vec<f64>> =
                (0..columns[0].len()).map(|r| columns.iter().map(|col| col[r]).collect()).collect();
            let want = largest_singular_value(&rows);
            let got = conv_norm(&w, &[c_in, size, size], stride, pad).unwrap();
            assert!((got - want).abs() < 1e-6 * want, "{c_in}->{c_out} k{k} s{stride} p{pad}: {got} vs {want}");
        }
    }
}
