//! Misclassified starting points for the barrier attacks: Gaussian noise of growing size
//! around each input (clipped to the bounds) until the model errs (failing that, another
//! input of the batch the model classifies otherwise), then bisection on the segment back
//! toward the input, so that the start lies close to the decision boundary.

use super::oracle::Oracle;
use crate::rng::Rng;
use candle_core::Result;

/// One start per input, or `None` where even noise the size of the bounds does not fool
/// the model. `bisections` halvings of the segment bring the start toward the boundary.
pub fn misclassified_starts(
    oracle: &Oracle,
    xs: &[Vec<f64>],
    labels: &[usize],
    bisections: usize,
    rng: &mut Rng,
) -> Result<Vec<Option<Vec<f64>>>> {
    let (lo, hi) = oracle.bounds;
    let mut far: Vec<Option<Vec<f64>>> = vec![None; xs.len()];
    for k in 0..24 {
        let pending: Vec<usize> = (0..xs.len()).filter(|&i| far[i].is_none()).collect();
        if pending.is_empty() {
            break;
        }
        let s = (hi - lo) * 0.01 * 2f64.powi(k);
        let trial: Vec<Vec<f64>> =
            pending.iter().map(|&i| xs[i].iter().map(|v| (v + rng.normal() * s).clamp(lo, hi)).collect()).collect();
        let ok = adversarial(oracle, &trial, &pending.iter().map(|&i| labels[i]).collect::<Vec<_>>())?;
        for ((&i, t), ok) in pending.iter().zip(trial).zip(ok) {
            if ok {
                far[i] = Some(t);
            }
        }
    }
    // Where noise never fools the model (it may call every noisy image one class), another
    // input of the batch that the model puts elsewhere is a misclassified point too.
    for shift in 1..xs.len().min(16) {
        let pending: Vec<usize> = (0..xs.len()).filter(|&i| far[i].is_none()).collect();
        if pending.is_empty() {
            break;
        }
        let trial: Vec<Vec<f64>> = pending.iter().map(|&i| xs[(i + shift) % xs.len()].clone()).collect();
        let ok = adversarial(oracle, &trial, &pending.iter().map(|&i| labels[i]).collect::<Vec<_>>())?;
        for ((&i, t), ok) in pending.iter().zip(trial).zip(ok) {
            if ok {
                far[i] = Some(t);
            }
        }
    }
    pull_toward_inputs(oracle, xs, labels, &far, bisections)
}

/// Logit margin a pulled point keeps: at the boundary itself, float32 rounding that differs
/// between batch sizes can flip the verdict when the point is re-verified.
const PULL_MARGIN: f64 = 1e-4;

/// For each adversarial point, the point closest to its input on the segment between them
/// that is still adversarial (by `PULL_MARGIN`), to `bisections` halvings of the segment:
/// every norm of the perturbation shrinks by the same factor. `None` stays `None`.
pub fn pull_toward_inputs(
    oracle: &Oracle,
    xs: &[Vec<f64>],
    labels: &[usize],
    points: &[Option<Vec<f64>>],
    bisections: usize,
) -> Result<Vec<Option<Vec<f64>>>> {
    // x + t (p - x) is taken as correct at t = 0 and is adversarial at t = 1.
    let found: Vec<usize> = (0..xs.len()).filter(|&i| points[i].is_some()).collect();
    let mut a = vec![0.0; found.len()];
    let mut b = vec![1.0; found.len()];
    let point = |i: usize, t: f64| -> Vec<f64> {
        let f = points[i].as_deref().unwrap_or(&[]);
        xs[i].iter().zip(f).map(|(x, z)| x + t * (z - x)).collect()
    };
    let ys: Vec<usize> = found.iter().map(|&i| labels[i]).collect();
    for _ in 0..bisections {
        let mids: Vec<f64> = a.iter().zip(&b).map(|(p, q)| 0.5 * (p + q)).collect();
        let trial: Vec<Vec<f64>> = found.iter().zip(&mids).map(|(&i, &m)| point(i, m)).collect();
        let refs: Vec<&[f64]> = trial.iter().map(Vec::as_slice).collect();
        for (k, ok) in oracle.adversarial_by(&refs, &ys, PULL_MARGIN)?.into_iter().enumerate() {
            if ok { b[k] = mids[k] } else { a[k] = mids[k] }
        }
    }
    let mut out = vec![None; xs.len()];
    for (k, &i) in found.iter().enumerate() {
        out[i] = Some(if b[k] == 1.0 { points[i].clone().unwrap_or_default() } else { point(i, b[k]) });
    }
    Ok(out)
}

pub fn adversarial(oracle: &Oracle, rows: &[Vec<f64>], labels: &[usize]) -> Result<Vec<bool>> {
    let refs: Vec<&[f64]> = rows.iter().map(Vec::as_slice).collect();
    oracle.adversarial(&refs, labels)
}
