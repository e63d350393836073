//! Losses from primitive ops (candle's fused softmax drops gradients).

use candle_core::{D, DType, Result, Tensor};

pub fn log_softmax(logits: &Tensor) -> Result<Tensor> {
    let m = logits.max_keepdim(D::Minus1)?.detach();
    let shifted = logits.broadcast_sub(&m)?;
    let lse = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
    shifted.broadcast_sub(&lse)
}

/// A classifier's training objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Objective {
    CrossEntropy,
    Mse,
}

impl Objective {
    /// Each example's loss, `[n]`.
    pub fn each(self, out: &Tensor, labels: &[u32]) -> Result<Tensor> {
        match self {
            Objective::CrossEntropy => cross_entropy_each(out, labels),
            Objective::Mse => mse_onehot_each(out, labels),
        }
    }

    /// The batch's mean loss.
    pub fn mean(self, out: &Tensor, labels: &[u32]) -> Result<Tensor> {
        self.each(out, labels)?.mean_all()
    }
}

/// One-hot rows `[n, classes]` on the logits' device.
pub(super) fn one_hot(labels: &[u32], classes: usize, like: &Tensor) -> Result<Tensor> {
    let mut v = vec![0f32; labels.len() * classes];
    for (i, &l) in labels.iter().enumerate() {
        if (l as usize) < classes {
            v[i * classes + l as usize] = 1.0;
        }
    }
    Tensor::from_vec(v, (labels.len(), classes), like.device())
}

/// Mean negative log-likelihood of the labels under softmax(logits).
pub fn cross_entropy(logits: &Tensor, labels: &[u32]) -> Result<Tensor> {
    cross_entropy_each(logits, labels)?.mean_all()
}

/// Each example's negative log-likelihood, `[n]`.
pub fn cross_entropy_each(logits: &Tensor, labels: &[u32]) -> Result<Tensor> {
    let classes = logits.dim(D::Minus1)?;
    let oh = one_hot(labels, classes, logits)?;
    (log_softmax(logits)? * oh)?.sum(D::Minus1)?.neg()
}

/// Mean squared error against one-hot targets, averaged over entries as PyTorch does.
pub fn mse_onehot(outputs: &Tensor, labels: &[u32]) -> Result<Tensor> {
    mse_onehot_each(outputs, labels)?.mean_all()
}

/// Each example's squared error averaged over its outputs, `[n]`: their mean is `mse_onehot`.
pub fn mse_onehot_each(outputs: &Tensor, labels: &[u32]) -> Result<Tensor> {
    let classes = outputs.dim(D::Minus1)?;
    let oh = one_hot(labels, classes, outputs)?;
    (outputs - oh)?.sqr()?.mean(D::Minus1)
}

/// Fraction of rows whose largest logit is the label.
pub fn accuracy(logits: &Tensor, labels: &[u32]) -> Result<f64> {
    let pred: Vec<u32> = logits.argmax(D::Minus1)?.to_dtype(DType::U32)?.to_vec1()?;
    let hits = pred.iter().zip(labels).filter(|(p, l)| p == l).count();
    Ok(hits as f64 / labels.len().max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn cross_entropy_matches_a_hand_computation() {
        let logits = Tensor::new(&[[1.0f32, 2.0, 0.5], [0.0, 0.0, 3.0]], &Device::Cpu).unwrap();
        let got: f32 = cross_entropy(&logits, &[1, 0]).unwrap().to_scalar().unwrap();
        let lse = |r: [f64; 3]| r.iter().map(|x| x.exp()).sum::<f64>().ln();
        let want = ((lse([1.0, 2.0, 0.5]) - 2.0) + (lse([0.0, 0.0, 3.0]) - 0.0)) / 2.0;
        assert!((got as f64 - want).abs() < 1e-5, "{got} vs {want}");
        assert_eq!(accuracy(&logits, &[1, 0]).unwrap(), 0.5);
    }

    #[test]
    fn log_softmax_passes_gradients() {
        let v = candle_core::Var::new(&[[0.5f32, -1.0]], &Device::Cpu).unwrap();
        let l = cross_entropy(v.as_tensor(), &[0]).unwrap();
        let g: Vec<Vec<f32>> = l.backward().unwrap().get(v.as_tensor()).unwrap().to_vec2().unwrap();
        // d/dz CE = softmax(z) - onehot
        let p0 = 1.0 / (1.0 + (-1.5f32).exp());
        assert!((g[0][0] - (p0 - 1.0)).abs() < 1e-5);
        assert!((g[0][1] - (1.0 - p0)).abs() < 1e-5);
    }
}
