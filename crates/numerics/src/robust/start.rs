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
        let s = oracle.scale * 0.01 * 2f64.powi(k);
        let propose = |i: usize| xs[i].iter().map(|v| (v + rng.normal() * s).clamp(lo, hi)).collect();
        if !adopt_adversarial(oracle, labels, &mut far, propose)? {
            break;
        }
    }
    // Where noise never fools the model (it may call every noisy image one class), another
    // input of the batch that the model puts elsewhere is a misclassified point too.
    for shift in 1..xs.len().min(16) {
        if !adopt_adversarial(oracle, labels, &mut far, |i| xs[(i + shift) % xs.len()].clone())? {
            break;
        }
    }
    pull_toward_inputs(oracle, xs, labels, &far, bisections)
}

/// Share of the way beyond a given start, away from its input, that a barrier attack
/// starts at: a point on the decision boundary has a vanishing margin, and the barrier's
/// first gradients there are huge.
pub const WARM_PUSH: f64 = 0.05;

/// A barrier attack's first iterate and the point it must beat.
pub type BarrierStart = (Vec<f64>, Vec<f64>);

/// Starting points for a barrier attack: where `given` holds a point (a fast attack's
/// adversarial point), that point and its push `WARM_PUSH` further from the input when the
/// push stays adversarial; elsewhere noise starts. Returns (iterate, best so far) per
/// input, so that the attack never returns worse than the point it was given.
pub fn barrier_starts(
    oracle: &Oracle,
    xs: &[Vec<f64>],
    labels: &[usize],
    given: Option<&[Option<Vec<f64>>]>,
    bisections: usize,
    rng: &mut Rng,
) -> Result<Vec<Option<BarrierStart>>> {
    let given = |i: usize| given.and_then(|g| g.get(i).cloned().flatten());
    let missing: Vec<usize> = (0..xs.len()).filter(|&i| given(i).is_none()).collect();
    let sub_x: Vec<Vec<f64>> = missing.iter().map(|&i| xs[i].clone()).collect();
    let sub_y: Vec<usize> = missing.iter().map(|&i| labels[i]).collect();
    let noise =
        if missing.is_empty() { Vec::new() } else { misclassified_starts(oracle, &sub_x, &sub_y, bisections, rng)? };
    let mut out: Vec<Option<BarrierStart>> = vec![None; xs.len()];
    for (k, &i) in missing.iter().enumerate() {
        out[i] = noise[k].clone().map(|p| (p.clone(), p));
    }
    let warm: Vec<usize> = (0..xs.len()).filter(|&i| given(i).is_some()).collect();
    let pushed: Vec<Vec<f64>> = warm
        .iter()
        .map(|&i| {
            let g = given(i).unwrap_or_default();
            xs[i].iter().zip(&g).map(|(x, a)| oracle.clamp(x + (1.0 + WARM_PUSH) * (a - x))).collect()
        })
        .collect();
    let ok = adversarial(oracle, &pushed, &warm.iter().map(|&i| labels[i]).collect::<Vec<_>>())?;
    for ((&i, p), ok) in warm.iter().zip(pushed).zip(ok) {
        let g = given(i).unwrap_or_default();
        out[i] = Some((if ok { p } else { g.clone() }, g));
    }
    Ok(out)
}

/// Propose a point for every input that has none yet and keep the adversarial ones; false
/// once every input has a point (nothing was proposed).
fn adopt_adversarial(
    oracle: &Oracle,
    labels: &[usize],
    far: &mut [Option<Vec<f64>>],
    mut propose: impl FnMut(usize) -> Vec<f64>,
) -> Result<bool> {
    let pending: Vec<usize> = (0..far.len()).filter(|&i| far[i].is_none()).collect();
    if pending.is_empty() {
        return Ok(false);
    }
    let trial: Vec<Vec<f64>> = pending.iter().map(|&i| propose(i)).collect();
    let ok = adversarial(oracle, &trial, &pending.iter().map(|&i| labels[i]).collect::<Vec<_>>())?;
    for ((&i, t), ok) in pending.iter().zip(trial).zip(ok) {
        if ok {
            far[i] = Some(t);
        }
    }
    Ok(true)
}

/// Pull every candidate that is not adversarial back toward its previous point,
/// `cand <- keep cand + (1 - keep) old`, up to 60 times; one still not adversarial then
/// stays at its previous point.
pub fn pull_back_until_adversarial(
    oracle: &Oracle,
    cand: &mut [Vec<f64>],
    old: &[Vec<f64>],
    labels: &[usize],
    keep: f64,
) -> Result<()> {
    let mut pending: Vec<usize> = (0..cand.len()).collect();
    for attempt in 0..60 {
        let trial: Vec<Vec<f64>> = pending.iter().map(|&r| cand[r].clone()).collect();
        let ys: Vec<usize> = pending.iter().map(|&r| labels[r]).collect();
        let mut still = Vec::new();
        for (&r, ok) in pending.iter().zip(adversarial(oracle, &trial, &ys)?) {
            if !ok {
                cand[r] = if attempt == 59 {
                    old[r].clone()
                } else {
                    cand[r].iter().zip(&old[r]).map(|(c, o)| keep * c + (1.0 - keep) * o).collect()
                };
                still.push(r);
            }
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
    }
    Ok(())
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
