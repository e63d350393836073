//! Batched access to the attacked model. Attacks keep one state per image (plain vectors)
//! and ask the oracle for logits, or for the input gradient of any per-image function of
//! the logits: the derivative with respect to the logits is computed here on the host, and
//! one backward pass of sum(logits * dphi/dlogits) gives every image's input gradient at
//! once (images do not interact in an evaluation-mode model).

use candle_core::{DType, Device, Result, Tensor, Var};
use std::cell::Cell;

/// What "misclassified" means: the label is not among the `top` highest scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Criterion {
    pub top: usize,
}

impl Criterion {
    /// s_j - s_y with j the `top`-th highest of the other classes: positive exactly when the
    /// label has left the top `top`. Returns the margin and that class j.
    pub fn margin(self, scores: &[f64], label: usize) -> (f64, usize) {
        let mut others: Vec<usize> = (0..scores.len()).filter(|&j| j != label).collect();
        others.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        // A model with a single output cannot be fooled.
        let Some(&j) = others.get((self.top.max(1) - 1).min(others.len().saturating_sub(1))) else {
            return (f64::NEG_INFINITY, label);
        };
        (scores[j] - scores[label], j)
    }
}

/// Scores a barrier is put on: raw logits (ProxLogBarrier) or softmax probabilities
/// (LogBarrier).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    Logits,
    Softmax,
}

pub fn softmax(logits: &[f64]) -> Vec<f64> {
    let m = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = logits.iter().map(|v| (v - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.into_iter().map(|v| v / s).collect()
}

/// The margin in `space` and its derivative with respect to the logits.
pub fn margin_and_dlogits(logits: &[f64], label: usize, crit: Criterion, space: Space) -> (f64, Vec<f64>) {
    let k = logits.len();
    match space {
        Space::Logits => {
            let (c, j) = crit.margin(logits, label);
            let mut d = vec![0.0; k];
            d[j] += 1.0;
            d[label] -= 1.0;
            (c, d)
        }
        Space::Softmax => {
            let p = softmax(logits);
            let (c, j) = crit.margin(&p, label);
            // d(p_j - p_y)/dL_k = p_j (delta_jk - p_k) - p_y (delta_yk - p_k).
            let d = (0..k)
                .map(|i| {
                    let dj = if i == j { p[j] } else { 0.0 };
                    let dy = if i == label { p[label] } else { 0.0 };
                    dj - dy - (p[j] - p[label]) * p[i]
                })
                .collect();
            (c, d)
        }
    }
}

/// One vector per input.
pub type Rows = Vec<Vec<f64>>;

pub struct Oracle<'a> {
    model: &'a dyn Fn(&Tensor) -> Result<Tensor>,
    /// Shape of one input.
    pub shape: Vec<usize>,
    /// Bounds may be infinite (unbounded inputs).
    pub bounds: (f64, f64),
    /// The size of the input domain, for noise starts: the width of the bounds, or for
    /// unbounded inputs the spread of the data (`with_scale`).
    pub scale: f64,
    pub criterion: Criterion,
    device: Device,
    forwards: Cell<usize>,
    gradients: Cell<usize>,
}

impl<'a> Oracle<'a> {
    pub fn new(
        model: &'a dyn Fn(&Tensor) -> Result<Tensor>,
        shape: &[usize],
        bounds: (f64, f64),
        criterion: Criterion,
        device: &Device,
    ) -> Self {
        Oracle {
            model,
            shape: shape.to_vec(),
            bounds,
            scale: if (bounds.1 - bounds.0).is_finite() { bounds.1 - bounds.0 } else { 1.0 },
            criterion,
            device: device.clone(),
            forwards: Cell::new(0),
            gradients: Cell::new(0),
        }
    }

    pub fn with_scale(mut self, scale: f64) -> Self {
        if scale.is_finite() && scale > 0.0 {
            self.scale = scale;
        }
        self
    }

    /// Values per input.
    pub fn dim(&self) -> usize {
        self.shape.iter().product()
    }

    fn batch(&self, rows: &[&[f64]]) -> Result<Tensor> {
        let flat: Vec<f32> = rows.iter().flat_map(|r| r.iter().map(|v| *v as f32)).collect();
        let mut shape = vec![rows.len()];
        shape.extend(&self.shape);
        Tensor::from_vec(flat, shape, &self.device)
    }

    fn rows_of(t: &Tensor) -> Result<Rows> {
        let n = t.dim(0)?;
        let t = t.to_dtype(DType::F64)?.reshape((n, ()))?;
        t.to_vec2()
    }

    /// Logits of each input.
    pub fn logits(&self, rows: &[&[f64]]) -> Result<Rows> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        self.forwards.set(self.forwards.get() + rows.len());
        Self::rows_of(&(self.model)(&self.batch(rows)?)?)
    }

    /// Whether each input meets the criterion (is adversarial for its label).
    pub fn adversarial(&self, rows: &[&[f64]], labels: &[usize]) -> Result<Vec<bool>> {
        self.adversarial_by(rows, labels, 0.0)
    }

    /// Whether each input is adversarial with a logit margin above `tau`.
    pub fn adversarial_by(&self, rows: &[&[f64]], labels: &[usize], tau: f64) -> Result<Vec<bool>> {
        let l = self.logits(rows)?;
        Ok(l.iter().zip(labels).map(|(l, &y)| self.criterion.margin(l, y).0 > tau).collect())
    }

    /// The input gradient of phi_i(logits_i) for every input, with the logits: `dphi` maps
    /// (input index, logits) to dphi/dlogits.
    pub fn gradients(&self, rows: &[&[f64]], dphi: &mut dyn FnMut(usize, &[f64]) -> Vec<f64>) -> Result<(Rows, Rows)> {
        if rows.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        self.gradients.set(self.gradients.get() + rows.len());
        let v = Var::from_tensor(&self.batch(rows)?)?;
        let out = (self.model)(v.as_tensor())?;
        let logits = Self::rows_of(&out)?;
        let weights: Vec<f32> =
            logits.iter().enumerate().flat_map(|(i, l)| dphi(i, l).into_iter().map(|w| w as f32)).collect();
        let w = Tensor::from_vec(weights, out.shape(), &self.device)?.to_dtype(out.dtype())?;
        let grads = (out * w)?.sum_all()?.backward()?;
        let g = match grads.get(v.as_tensor()) {
            Some(g) => Self::rows_of(g)?,
            None => vec![vec![0.0; self.dim()]; rows.len()],
        };
        Ok((logits, g))
    }

    /// Model evaluations so far, counted per input: (forward only, forward and backward).
    pub fn evaluations(&self) -> (usize, usize) {
        (self.forwards.get(), self.gradients.get())
    }

    pub fn clamp(&self, v: f64) -> f64 {
        v.clamp(self.bounds.0, self.bounds.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The host-side logit derivatives against central differences of the margin.
    #[test]
    fn margin_derivatives_match_finite_differences() {
        let logits = [0.3, -1.2, 2.0, 0.9, 1.7];
        for space in [Space::Logits, Space::Softmax] {
            for top in [1, 2] {
                let crit = Criterion { top };
                let (_, d) = margin_and_dlogits(&logits, 2, crit, space);
                for k in 0..logits.len() {
                    let h = 1e-6;
                    let (mut a, mut b) = (logits, logits);
                    a[k] += h;
                    b[k] -= h;
                    let fd = (margin_and_dlogits(&a, 2, crit, space).0 - margin_and_dlogits(&b, 2, crit, space).0)
                        / (2.0 * h);
                    assert!((fd - d[k]).abs() < 1e-6, "{space:?} top {top} logit {k}: {fd} vs {}", d[k]);
                }
            }
        }
    }

    #[test]
    fn the_top_k_margin_is_positive_exactly_when_the_label_leaves_the_top_k() {
        let s = [0.1, 0.5, 0.3, 0.9];
        assert!(Criterion { top: 1 }.margin(&s, 2).0 > 0.0);
        assert!(Criterion { top: 2 }.margin(&s, 2).0 > 0.0);
        assert!(Criterion { top: 3 }.margin(&s, 2).0 < 0.0);
        assert!(Criterion { top: 1 }.margin(&s, 3).0 < 0.0);
    }
}
