//! Per-image lower bounds on the adversarial distance (Finlay & Oberman 2019, section 2).
//! A misclassified image has p_y <= 1/2, so its cross-entropy loss is at least ln 2; the
//! loss must climb from l(x) to ln 2:
//! - with L a Lipschitz constant of the loss: eps >= (ln 2 - l(x)) / L (the "L-bound");
//! - with the local gradient g and C a bound on the loss's curvature:
//!   eps >= (-|g| + sqrt(|g|^2 + 2 C (ln 2 - l(x)))) / C.
//!
//! L and C are estimated from data (the largest gradient norm and the largest Hessian
//! eigenvalue found on the images), so these are estimates, not certificates. A certificate
//! comes from a true global Lipschitz constant of the logits: eps >= min over j != y of
//! (z_y - z_j) / Lip(z_y - z_j). linf distances use the dual norms: |g|_1 for the
//! gradient, sqrt(N) for the curvature's norm change, and |d|_2 <= sqrt(N) |d|_inf for the
//! certificate.

use super::norms::Norm;
use super::oracle::{Oracle, softmax};
use crate::rng::Rng;
use candle_core::Result;

/// What the bounds need to know about each image.
#[derive(Debug, Clone, PartialEq)]
pub struct Local {
    /// Cross-entropy loss at the image.
    pub loss: f64,
    /// |grad_x loss|_2 and |grad_x loss|_1.
    pub grad_l2: f64,
    pub grad_l1: f64,
    /// The largest |eigenvalue| of the loss's input Hessian found by power iteration.
    pub curvature: f64,
    pub logits: Vec<f64>,
}

/// Loss, input gradient and curvature of every image. The Hessian-vector products are
/// finite differences of gradients, (g(x + h v) - g(x)) / h, so nothing is differentiated
/// twice; `iters` power-iteration steps from a random direction.
pub fn local_facts(
    oracle: &Oracle,
    xs: &[Vec<f64>],
    labels: &[usize],
    iters: usize,
    h: f64,
    rng: &mut Rng,
) -> Result<Vec<Local>> {
    let rows: Vec<&[f64]> = xs.iter().map(Vec::as_slice).collect();
    let dloss = |labels: &[usize]| {
        let labels = labels.to_vec();
        move |i: usize, l: &[f64]| {
            let mut p = softmax(l);
            p[labels[i]] -= 1.0;
            p
        }
    };
    let (logits, grads) = oracle.gradients(&rows, &mut dloss(labels))?;
    let dim = oracle.dim();
    let mut v: Vec<Vec<f64>> = (0..xs.len()).map(|_| unit((0..dim).map(|_| rng.normal()).collect())).collect();
    let mut curvature = vec![0.0; xs.len()];
    for _ in 0..iters {
        let moved: Vec<Vec<f64>> =
            xs.iter().zip(&v).map(|(x, v)| x.iter().zip(v).map(|(a, b)| a + h * b).collect()).collect();
        let refs: Vec<&[f64]> = moved.iter().map(Vec::as_slice).collect();
        let (_, g2) = oracle.gradients(&refs, &mut dloss(labels))?;
        for i in 0..xs.len() {
            let hv: Vec<f64> = g2[i].iter().zip(&grads[i]).map(|(a, b)| (a - b) / h).collect();
            curvature[i] = Norm::L2.of(&hv);
            v[i] = if curvature[i] > 0.0 { unit(hv) } else { v[i].clone() };
        }
    }
    Ok((0..xs.len())
        .map(|i| {
            let p = softmax(&logits[i]);
            Local {
                loss: -p[labels[i]].max(1e-300).ln(),
                grad_l2: Norm::L2.of(&grads[i]),
                grad_l1: Norm::L1.of(&grads[i]),
                curvature: curvature[i],
                logits: logits[i].clone(),
            }
        })
        .collect())
}

fn unit(v: Vec<f64>) -> Vec<f64> {
    let n = Norm::L2.of(&v).max(1e-300);
    v.into_iter().map(|a| a / n).collect()
}

/// The loss's distance to the misclassification level ln 2 (0 where it is already above).
pub fn loss_gap(loss: f64) -> f64 {
    (std::f64::consts::LN_2 - loss).max(0.0)
}

/// The L-bound: (ln 2 - l) / L.
pub fn lipschitz_bound(loss: f64, lipschitz: f64) -> f64 {
    if lipschitz > 0.0 { loss_gap(loss) / lipschitz } else { f64::INFINITY }
}

/// The gradient-and-curvature bound: the smallest eps with |g| eps + C eps^2 / 2 = ln 2 - l.
pub fn curvature_bound(loss: f64, grad: f64, curvature: f64) -> f64 {
    let gap = loss_gap(loss);
    if curvature <= 0.0 {
        return if grad > 0.0 { gap / grad } else { f64::INFINITY };
    }
    // Written without cancellation: 2 gap / (|g| + sqrt(|g|^2 + 2 C gap)).
    2.0 * gap / (grad + (grad * grad + 2.0 * curvature * gap).sqrt())
}

/// The certified l2 radius: min over j != y of (z_y - z_j) / lip(y, j); 0 for an image
/// the model already gets wrong.
pub fn certified_radius(logits: &[f64], label: usize, lip: impl Fn(usize, usize) -> f64) -> f64 {
    (0..logits.len())
        .filter(|&j| j != label)
        .map(|j| {
            let gap = logits[label] - logits[j];
            let l = lip(label, j);
            if gap <= 0.0 {
                0.0
            } else if l > 0.0 {
                gap / l
            } else {
                f64::INFINITY
            }
        })
        .fold(f64::INFINITY, f64::min)
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::oracle::Criterion;
    use crate::linalg_reference::jacobi_eigenvalues;
    use candle_core::{Device, Tensor};

    /// On a linear softmax model the loss's input Hessian is W^T (diag p - p p^T) W: the
    /// power iteration's curvature against its largest eigenvalue, the gradient against
    /// W^T (p - e_y).
    #[test]
    fn curvature_and_gradient_match_the_analytic_hessian_of_a_linear_model() {
        let mut rng = Rng::new(5);
        let (classes, dim) = (4, 6);
        let w: Vec<Vec<f64>> = (0..classes).map(|_| (0..dim).map(|_| rng.normal()).collect()).collect();
        let wt =
            Tensor::from_vec(w.iter().flatten().map(|v| *v as f32).collect::<Vec<_>>(), (classes, dim), &Device::Cpu)
                .unwrap();
        let model = |x: &Tensor| x.matmul(&wt.t()?);
        let oracle = Oracle::new(&model, &[dim], (-10.0, 10.0), Criterion { top: 1 }, &Device::Cpu);
        let xs: Vec<Vec<f64>> = (0..3).map(|_| (0..dim).map(|_| rng.normal() * 0.3).collect()).collect();
        let labels = [0, 2, 3];
        let facts = local_facts(&oracle, &xs, &labels, 60, 1e-2, &mut rng).unwrap();
        for (i, f) in facts.iter().enumerate() {
            let z: Vec<f64> = w.iter().map(|r| r.iter().zip(&xs[i]).map(|(a, b)| a * b).sum()).collect();
            let p = softmax(&z);
            let hess: Vec<Vec<f64>> = (0..dim)
                .map(|a| {
                    (0..dim)
                        .map(|b| {
                            let mut s = 0.0;
                            for j in 0..classes {
                                for k in 0..classes {
                                    let m = if j == k { p[j] } else { 0.0 } - p[j] * p[k];
                                    s += w[j][a] * m * w[k][b];
                                }
                            }
                            s
                        })
                        .collect()
                })
                .collect();
            let top = jacobi_eigenvalues(hess).into_iter().fold(0.0, f64::max);
            assert!((f.curvature - top).abs() < 0.02 * top, "image {i}: {} vs {top}", f.curvature);
            let g: Vec<f64> = (0..dim)
                .map(|a| (0..classes).map(|j| w[j][a] * (p[j] - if j == labels[i] { 1.0 } else { 0.0 })).sum())
                .collect();
            assert!((f.grad_l2 - Norm::L2.of(&g)).abs() < 1e-4 * (1.0 + Norm::L2.of(&g)));
            assert!((f.loss + p[labels[i]].ln()).abs() < 1e-5);
        }
    }

    #[test]
    fn the_bounds_follow_their_formulas() {
        let ln2 = std::f64::consts::LN_2;
        assert_eq!(loss_gap(1.0), 0.0);
        assert!((lipschitz_bound(0.1, 2.0) - (ln2 - 0.1) / 2.0).abs() < 1e-15);
        // |g| e + C e^2 / 2 = gap at the returned e.
        let (g, c, l) = (0.7, 3.0, 0.05);
        let e = curvature_bound(l, g, c);
        assert!((g * e + c * e * e / 2.0 - (ln2 - l)).abs() < 1e-12);
        // Without curvature it is the first-order estimate.
        assert!((curvature_bound(l, g, 0.0) - (ln2 - l) / g).abs() < 1e-15);
        let r = certified_radius(&[3.0, 1.0, 2.5], 0, |_, j| if j == 1 { 1.0 } else { 0.25 });
        assert!((r - 2.0).abs() < 1e-15, "{r}");
        let r = certified_radius(&[3.0, 1.0, 2.5], 0, |_, j| if j == 1 { 4.0 } else { 0.25 });
        assert!((r - 0.5).abs() < 1e-15, "{r}");
        assert_eq!(certified_radius(&[1.0, 2.0], 0, |_, _| 1.0), 0.0);
    }
}
