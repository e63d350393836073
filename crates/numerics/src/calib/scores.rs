//! Uncertainty scores of a classifier's predictions, larger meaning less certain: from the
//! softmax alone (-log p_max, entropy, -log of the top-k mass), from the input gradient of
//! the predicted class's loss, and from MC dropout (Gal & Ghahramani 2016: the spread of the
//! softmax over passes with dropout on).

pub use crate::robust::oracle::softmax;

use crate::nn::{GradNorm, Net, log_softmax};
use crate::rng::Rng;
use candle_core::{D, DType, Result, Tensor, Var};

/// Classes by decreasing probability.
pub fn ranking(p: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&a, &b| p[b].total_cmp(&p[a]).then(a.cmp(&b)));
    order
}

/// Whether the label is among the k most probable classes.
pub fn in_top(p: &[f64], label: usize, k: usize) -> bool {
    ranking(p).iter().take(k).any(|&c| c == label)
}

pub fn neg_log_pmax(p: &[f64]) -> f64 {
    -p.iter().copied().fold(0.0, f64::max).max(f64::MIN_POSITIVE).ln()
}

pub fn entropy(p: &[f64]) -> f64 {
    -p.iter().filter(|v| **v > 0.0).map(|v| v * v.ln()).sum::<f64>()
}

/// -log of the probability mass of the k most probable classes.
pub fn neg_log_top_mass(p: &[f64], k: usize) -> f64 {
    let mass: f64 = ranking(p).iter().take(k).map(|&c| p[c]).sum();
    -mass.clamp(f64::MIN_POSITIVE, 1.0).ln()
}

/// Evaluation-mode logits of a batch `[n, ...]`, as f64 rows.
pub fn logits(net: &Net, x: &Tensor) -> Result<Vec<Vec<f64>>> {
    let n = x.dim(0)?;
    net.forward(x)?.to_dtype(DType::F64)?.reshape((n, ()))?.to_vec2()
}

/// |grad_x (-log p_c(x))|_2 per example, c its predicted class.
pub fn gradient_norms(net: &Net, x: &Tensor) -> Result<Vec<f64>> {
    let v = Var::from_tensor(&x.detach())?;
    let out = net.forward_input_grad(v.as_tensor())?;
    let pred = out.argmax_keepdim(D::Minus1)?;
    let picked = log_softmax(&out)?.gather(&pred, D::Minus1)?;
    let grads = picked.neg()?.sum_all()?.backward()?;
    let n = x.dim(0)?;
    match grads.get(v.as_tensor()) {
        Some(g) => crate::nn::gradient_norms(g, GradNorm::L2),
        None => Ok(vec![0.0; n]),
    }
}

/// MC dropout over `passes` training-mode evaluations (dropout on): each example's mean
/// probabilities and the total variance of its probabilities, sum over classes of Var_t p_c.
pub fn mc_dropout(net: &Net, x: &Tensor, passes: usize, rng: &mut Rng) -> Result<(Vec<Vec<f64>>, Vec<f64>)> {
    let n = x.dim(0)?;
    let mut sum: Vec<Vec<f64>> = Vec::new();
    let mut sq: Vec<Vec<f64>> = Vec::new();
    for _ in 0..passes.max(1) {
        let rows: Vec<Vec<f64>> = net.forward_train(x, rng)?.to_dtype(DType::F64)?.reshape((n, ()))?.to_vec2()?;
        for (i, r) in rows.iter().enumerate() {
            let p = softmax(r);
            if sum.len() <= i {
                sum.push(vec![0.0; p.len()]);
                sq.push(vec![0.0; p.len()]);
            }
            for (c, v) in p.iter().enumerate() {
                sum[i][c] += v;
                sq[i][c] += v * v;
            }
        }
    }
    let t = passes.max(1) as f64;
    let mean: Vec<Vec<f64>> = sum.iter().map(|s| s.iter().map(|v| v / t).collect()).collect();
    let var = mean.iter().zip(&sq).map(|(m, q)| m.iter().zip(q).map(|(m, q)| (q / t - m * m).max(0.0)).sum()).collect();
    Ok((mean, var))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_scores_follow_their_definitions() {
        let p = [0.5, 0.3, 0.2];
        assert!((neg_log_pmax(&p) - 2f64.ln()).abs() < 1e-12);
        let h = -(0.5f64 * 0.5f64.ln() + 0.3 * 0.3f64.ln() + 0.2 * 0.2f64.ln());
        assert!((entropy(&p) - h).abs() < 1e-12);
        assert!((neg_log_top_mass(&p, 2) + 0.8f64.ln()).abs() < 1e-12);
        assert_eq!(neg_log_top_mass(&p, 3), 0.0);
        assert!(in_top(&p, 1, 2) && !in_top(&p, 2, 2));
        assert_eq!(ranking(&[0.2, 0.5, 0.3]), vec![1, 2, 0]);
    }
}
