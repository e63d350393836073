//! The classification margin every attack here works with.

use candle_core::{D, Result, Tensor};

/// f_y(z) - max_{j != y} f_j(z) for one example (`logits` is [1, k]), as a scalar tensor:
/// negative exactly when the example is misclassified.
pub fn margin(logits: &Tensor, label: usize) -> Result<Tensor> {
    let k = logits.dim(D::Minus1)?;
    let own = logits.narrow(1, label, 1)?;
    let mut mask = vec![0f32; k];
    mask[label] = -1e9;
    let others = logits.broadcast_add(&Tensor::from_vec(mask, (1, k), logits.device())?.to_dtype(logits.dtype())?)?;
    own.sub(&others.max_keepdim(D::Minus1)?)?.sum_all()
}

/// A misclassified starting point: Gaussian noise of growing size around `x` (clipped to
/// the bounds) until the model errs, then bisection on the segment back toward `x`, so
/// that the start lies close to the decision boundary.
pub fn misclassified_start(
    model: &dyn Fn(&Tensor) -> Result<Tensor>,
    x: &Tensor,
    label: usize,
    bounds: (f64, f64),
    rng: &mut crate::rng::Rng,
) -> Result<Option<Tensor>> {
    let (lo, hi) = bounds;
    let wrong = |z: &Tensor| -> Result<bool> {
        Ok(margin(&model(z)?, label)?.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()? < 0.0)
    };
    for k in 0..24 {
        let s = (hi - lo) * 0.01 * 2f64.powi(k);
        let noise: Vec<f32> = (0..x.elem_count()).map(|_| (rng.normal() * s) as f32).collect();
        let far = (x + Tensor::from_vec(noise, x.shape(), x.device())?.to_dtype(x.dtype())?)?.clamp(lo, hi)?;
        if wrong(&far)? {
            // x + t (far - x) is correct at t = 0 and wrong at t = 1.
            let (mut a, mut b) = (0.0, 1.0);
            for _ in 0..30 {
                let m = 0.5 * (a + b);
                if wrong(&(x + ((&far - x)? * m)?)?)? { b = m } else { a = m }
            }
            return Ok(Some((x + ((&far - x)? * b)?)?));
        }
    }
    Ok(None)
}
