//! What a flow over 8-bit images needs around the CNF: uniform dequantization (a density
//! over [0, 1]^D from pixels), the logit transform with its log-determinant, squeezing
//! (2x2 blocks to channels, the multiscale architecture's reshaping) and bits per dimension.
//! Conventions as FFJORD's: x = (pixel + u) / 256 with u ~ U[0, 1); y = logit(a + (1 - 2a) x).

use crate::rng::Rng;
use candle_core::{D, Device, Result, Tensor};

/// x in [0, 1] holding pixel / 255 of 8-bit images, to (pixel + u) / 256 with fresh u.
pub fn dequantize(x: &Tensor, rng: &mut Rng) -> Result<Tensor> {
    let n = x.elem_count();
    let u: Vec<f32> = (0..n).map(|_| rng.uniform() as f32).collect();
    let u = Tensor::from_vec(u, x.shape(), &Device::Cpu)?.to_dtype(x.dtype())?.to_device(x.device())?;
    ((x * 255.0)?.round()? + u)? / 256.0
}

/// y = logit(a + (1 - 2a) x) per element of x [n, D], and per row the log-determinant of
/// its Jacobian, sum_i log(1 - 2a) - log s_i - log(1 - s_i) with s = a + (1 - 2a) x.
pub fn logit(x: &Tensor, alpha: f64) -> Result<(Tensor, Tensor)> {
    let s = x.affine(1.0 - 2.0 * alpha, alpha)?;
    let log_s = s.log()?;
    let log_1s = s.affine(-1.0, 1.0)?.log()?;
    let y = (&log_s - &log_1s)?;
    let d = x.dim(D::Minus1)? as f64;
    let logdet = ((log_s + log_1s)?.sum(D::Minus1)?.neg()? + d * (1.0 - 2.0 * alpha).ln())?;
    Ok((y, logdet))
}

/// The inverse of `logit`: (sigmoid(y) - a) / (1 - 2a).
pub fn logit_inverse(y: &Tensor, alpha: f64) -> Result<Tensor> {
    let s = (y.neg()?.exp()? + 1.0)?.recip()?;
    s.affine(1.0 / (1.0 - 2.0 * alpha), -alpha / (1.0 - 2.0 * alpha))
}

/// Bits per dimension of 8-bit data from log p(x) of the dequantized x in [0, 1]^D:
/// -(log p / D - log 256) / log 2.
pub fn bits_per_dim(log_p: f64, dims: usize) -> f64 {
    -(log_p / dims as f64 - 256f64.ln()) / std::f64::consts::LN_2
}

/// Rows [n, c h w] of images [c, h, w] to rows [n, 4c (h/2) (w/2)]: each 2x2 block of a
/// channel becomes four channels (channel-major, then row and column within the block).
pub fn squeeze(x: &Tensor, shape: [usize; 3]) -> Result<Tensor> {
    let [c, h, w] = shape;
    let n = x.dim(0)?;
    x.reshape((n * c, h / 2, 2, w / 2, 2))?
        .permute((0, 2, 4, 1, 3))?
        .contiguous()?
        .reshape((n, c * 4 * (h / 2) * (w / 2)))
}

/// The inverse of `squeeze`: rows of [4c, h/2, w/2] images back to [c, h, w] (`shape`).
pub fn unsqueeze(x: &Tensor, shape: [usize; 3]) -> Result<Tensor> {
    let [c, h, w] = shape;
    let n = x.dim(0)?;
    x.reshape((n * c, 2, 2, h / 2, w / 2))?.permute((0, 3, 1, 4, 2))?.contiguous()?.reshape((n, c * h * w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::DType;

    fn data(v: Vec<f64>, shape: &[usize]) -> Tensor {
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    /// The log-determinant against the log of the derivative by central differences, and
    /// the inverse.
    #[test]
    fn logit_log_determinant_is_the_sum_of_log_slopes() {
        let alpha = 0.05;
        let xs = vec![0.0, 0.1, 0.5, 0.93, 0.999, 0.3];
        let x = data(xs.clone(), &[2, 3]);
        let (y, logdet) = logit(&x, alpha).unwrap();
        let f = |v: f64| {
            let s = alpha + (1.0 - 2.0 * alpha) * v;
            (s / (1.0 - s)).ln()
        };
        let h = 1e-6;
        let logdet = logdet.to_vec1::<f64>().unwrap();
        for r in 0..2 {
            let want: f64 = (0..3).map(|i| ((f(xs[r * 3 + i] + h) - f(xs[r * 3 + i] - h)) / (2.0 * h)).ln()).sum();
            assert!((logdet[r] - want).abs() < 1e-6, "row {r}: {} vs {want}", logdet[r]);
        }
        let back = logit_inverse(&y, alpha).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
        for (a, b) in back.iter().zip(&xs) {
            assert!((a - b).abs() < 1e-12);
        }
    }

    /// Dequantized values stay in the pixel's bin [p/256, (p+1)/256).
    #[test]
    fn dequantized_values_stay_in_their_bins() {
        let pixels: Vec<f64> = (0..256).map(|p| p as f64).collect();
        let x = data(pixels.iter().map(|p| p / 255.0).collect(), &[1, 256]).to_dtype(DType::F32).unwrap();
        let d = dequantize(&x, &mut Rng::new(1)).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for (p, v) in pixels.iter().zip(&d) {
            let v = *v as f64 * 256.0;
            assert!(v >= *p && v < p + 1.0, "pixel {p}: {v}");
        }
    }

    /// Uniform noise on [0, 1]^D has density 1: log p = 0 is 8 bits per dimension; a
    /// density twice as high everywhere saves one bit per dimension.
    #[test]
    fn bits_per_dim_of_known_densities() {
        assert!((bits_per_dim(0.0, 784) - 8.0).abs() < 1e-12);
        assert!((bits_per_dim(784.0 * 2f64.ln(), 784) - 7.0).abs() < 1e-12);
    }

    /// Squeezing moves each 2x2 block into four channels and back.
    #[test]
    fn squeeze_moves_blocks_into_channels_and_back() {
        let x = data((0..32).map(|v| v as f64).collect(), &[1, 32]);
        let s = squeeze(&x, [2, 4, 4]).unwrap();
        let v = s.reshape((8, 2, 2)).unwrap().to_vec3::<f64>().unwrap();
        // Channel 0's top-left block is pixels 0, 1, 4, 5: channels 0..4 at position (0, 0).
        assert_eq!([v[0][0][0], v[1][0][0], v[2][0][0], v[3][0][0]], [0.0, 1.0, 4.0, 5.0]);
        // Channel 1's block at (1, 1) holds its pixels 10, 11, 14, 15 (plus 16).
        assert_eq!([v[4][1][1], v[5][1][1], v[6][1][1], v[7][1][1]], [26.0, 27.0, 30.0, 31.0]);
        assert_eq!(unsqueeze(&s, [2, 4, 4]).unwrap().to_vec2::<f64>().unwrap(), x.to_vec2::<f64>().unwrap());
    }
}
