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
