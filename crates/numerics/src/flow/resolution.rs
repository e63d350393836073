//! MRCNF's change of resolution (Voleti, Finlay, Oberman & Pal 2021): each 2x2 block
//! (x1 top-left, x2 top-right, x3 bottom-left, x4 bottom-right) becomes its mean, the
//! coarse pixel, and three detail coefficients (x1 + x2 - x3 - x4)/c, (x1 - x2 + x3 - x4)/c,
//! (x1 - x2 - x3 + x4)/c. The block's matrix is diag(1/4, 1/c, 1/c, 1/c) times a 4x4
//! Hadamard matrix (determinant 16), so c = 2^(2/3) (c^3 = 4) makes its determinant 1: the
//! log-likelihood of an image is the coarse image's plus the details' given it, with no
//! correction term.
//!
//! Rows hold images channel-major: the coarse image is [c, h/2, w/2]; the details are
//! [3c, h/2, w/2], the first coefficient of every channel, then the second, then the third.

use super::image::{squeeze, unsqueeze};
use candle_core::{Result, Tensor};

/// 2^(2/3): the detail coefficients' divisor that makes the transform volume-preserving.
pub fn detail_scale() -> f64 {
    4f64.powf(1.0 / 3.0)
}

/// The transform's signs: row k gives the coefficients of x1..x4 in the k-th output (the
/// sum, then the three details before scaling).
const SIGNS: [[f64; 4]; 4] =
    [[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, -1.0, -1.0], [1.0, -1.0, 1.0, -1.0], [1.0, -1.0, -1.0, 1.0]];

/// Rows of images `shape` [c, h, w] (h and w even) to (coarse rows [n, c h w / 4], detail
/// rows [n, 3 c h w / 4]).
pub fn split(x: &Tensor, shape: [usize; 3]) -> Result<(Tensor, Tensor)> {
    let [c, h, w] = shape;
    let n = x.dim(0)?;
    let m = (h / 2) * (w / 2);
    // [n, c, 4, m]: the four pixels of each block along the third axis, x1..x4.
    let blocks = squeeze(x, shape)?.reshape((n, c, 4, m))?;
    let pixel = |k: usize| blocks.narrow(2, k, 1);
    let (x1, x2, x3, x4) = (pixel(0)?, pixel(1)?, pixel(2)?, pixel(3)?);
    let combine = |s: [f64; 4], scale: f64| -> Result<Tensor> {
        let mut acc = (&x1 * (s[0] * scale))?;
        for (xi, si) in [(&x2, s[1]), (&x3, s[2]), (&x4, s[3])] {
            acc = (acc + (xi * (si * scale))?)?;
        }
        Ok(acc)
    };
    let coarse = combine(SIGNS[0], 0.25)?.reshape((n, c * m))?;
    let k = 1.0 / detail_scale();
    let details = [combine(SIGNS[1], k)?, combine(SIGNS[2], k)?, combine(SIGNS[3], k)?];
    // [n, c, 1, m] each -> [n, 3, c, m]: coefficient-major.
    let details = Tensor::cat(&details, 2)?.permute((0, 2, 1, 3))?.contiguous()?.reshape((n, 3 * c * m))?;
    Ok((coarse, details))
}

/// The inverse of `split`: the images `shape` [c, h, w] whose blocks have these means and
/// details.
pub fn merge(coarse: &Tensor, details: &Tensor, shape: [usize; 3]) -> Result<Tensor> {
    let [c, h, w] = shape;
    let n = coarse.dim(0)?;
    let m = (h / 2) * (w / 2);
    let mean = coarse.reshape((n, c, 1, m))?;
    let d = details.reshape((n, 3, c, m))?.permute((0, 2, 1, 3))?.contiguous()?;
    let coef = |k: usize| d.narrow(2, k, 1);
    let (d1, d2, d3) = (coef(0)?, coef(1)?, coef(2)?);
    // The Hadamard matrix is symmetric with H H = 4 I: pixel j = mean + (c/4) sum_k H[k][j] d_k.
    let k = detail_scale() / 4.0;
    let pixel = |j: usize| -> Result<Tensor> {
        let mut acc = mean.clone();
        for (dk, row) in [(&d1, 1), (&d2, 2), (&d3, 3)] {
            acc = (acc + (dk * (SIGNS[row][j] * k))?)?;
        }
        Ok(acc)
    };
    let blocks = Tensor::cat(&[pixel(0)?, pixel(1)?, pixel(2)?, pixel(3)?], 2)?.reshape((n, 4 * c * m))?;
    unsqueeze(&blocks, shape)
}

/// The images' shapes from the finest (`shape`) to the coarsest after `scales - 1` halvings.
pub fn pyramid_shapes(shape: [usize; 3], scales: usize) -> Vec<[usize; 3]> {
    let [c, mut h, mut w] = shape;
    let mut out = vec![shape];
    for _ in 1..scales {
        (h, w) = (h / 2, w / 2);
        out.push([c, h, w]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use candle_core::Device;

    fn rows(n: usize, d: usize, seed: u64) -> Tensor {
        let mut rng = Rng::new(seed);
        let v: Vec<f64> = (0..n * d).map(|_| rng.uniform()).collect();
        Tensor::from_vec(v, (n, d), &Device::Cpu).unwrap()
    }

    fn flat(t: &Tensor) -> Vec<f64> {
        t.flatten_all().unwrap().to_vec1::<f64>().unwrap()
    }

    /// The coarse image is the 2x2 average (computed here pixel by pixel) and each detail
    /// coefficient its signed sum over c.
    #[test]
    fn the_coarse_image_is_the_block_average() {
        let shape = [2, 4, 6];
        let x = rows(3, 48, 1);
        let (coarse, details) = split(&x, shape).unwrap();
        assert_eq!(coarse.dims(), &[3, 12]);
        assert_eq!(details.dims(), &[3, 36]);
        let (xv, cv, dv) = (flat(&x), flat(&coarse), flat(&details));
        let c = detail_scale();
        for i in 0..3 {
            for ch in 0..2 {
                for r in 0..2 {
                    for col in 0..3 {
                        let at = |dr: usize, dc: usize| xv[i * 48 + ch * 24 + (2 * r + dr) * 6 + 2 * col + dc];
                        let (x1, x2, x3, x4) = (at(0, 0), at(0, 1), at(1, 0), at(1, 1));
                        let got = cv[i * 12 + ch * 6 + r * 3 + col];
                        assert!((got - (x1 + x2 + x3 + x4) / 4.0).abs() < 1e-12);
                        let want = [(x1 + x2 - x3 - x4) / c, (x1 - x2 + x3 - x4) / c, (x1 - x2 - x3 + x4) / c];
                        for (k, w) in want.iter().enumerate() {
                            let got = dv[i * 36 + k * 12 + ch * 6 + r * 3 + col];
                            assert!((got - w).abs() < 1e-12, "detail {k}: {got} vs {w}");
                        }
                    }
                }
            }
        }
    }

    /// merge(split(x)) = x to rounding, and split(merge(a, d)) = (a, d).
    #[test]
    fn the_round_trip_is_exact() {
        let shape = [3, 8, 4];
        let x = rows(5, 96, 2);
        let (a, d) = split(&x, shape).unwrap();
        let back = merge(&a, &d, shape).unwrap();
        for (p, q) in flat(&back).iter().zip(flat(&x)) {
            assert!((p - q).abs() < 1e-14);
        }
        let (a2, d2) = split(&merge(&a, &d, shape).unwrap(), shape).unwrap();
        for (p, q) in flat(&a2).iter().chain(&flat(&d2)).zip(flat(&a).iter().chain(&flat(&d))) {
            assert!((p - q).abs() < 1e-14);
        }
    }

    /// The transform is linear: its Jacobian's columns are the images of the unit vectors.
    /// |det J| = sqrt(det J J^T), the product of the symmetric J J^T's eigenvalues (Jacobi's
    /// method), is 1 on a 1x2x2, a 1x4x4 and a 2x2x4 image.
    #[test]
    fn the_jacobian_determinant_is_one() {
        for shape in [[1, 2, 2], [1, 4, 4], [2, 2, 4]] {
            let d: usize = shape.iter().product();
            let eye = Tensor::eye(d, candle_core::DType::F64, &Device::Cpu).unwrap();
            let (a, det) = split(&eye, shape).unwrap();
            // Row i is the image of e_i: the Jacobian's transpose, same determinant.
            let jt = Tensor::cat(&[a, det], 1).unwrap();
            let gram = jt.t().unwrap().matmul(&jt).unwrap().to_vec2::<f64>().unwrap();
            let log_det: f64 =
                crate::linalg_reference::jacobi_eigenvalues(gram).iter().map(|l| l.ln()).sum::<f64>() / 2.0;
            assert!(log_det.abs() < 1e-12, "shape {shape:?}: log|det| {log_det}");
        }
    }

    #[test]
    fn pyramid_shapes_halve_each_scale() {
        assert_eq!(pyramid_shapes([1, 28, 28], 3), vec![[1, 28, 28], [1, 14, 14], [1, 7, 7]]);
        assert_eq!(pyramid_shapes([3, 8, 8], 1), vec![[3, 8, 8]]);
    }
}
