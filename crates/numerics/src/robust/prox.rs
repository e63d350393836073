//! Proximal operators of the norms ProxLogBarrier uses (Pooladian, Finlay, Hoheisel,
//! Oberman 2020), on plain vectors:
//!   prox_{t f}(v) = argmin_x f(x) + ||x - v||^2 / (2t).
//! l0: hard threshold; l1: soft threshold; l2: block soft threshold; linf: by Moreau's
//! decomposition, v - projection of v onto the l1 ball of radius t (Duchi et al. 2008).

/// l0 (count of non-zeros): keep v_i when v_i^2 > 2t.
pub fn prox_l0(v: &[f64], t: f64) -> Vec<f64> {
    v.iter().map(|&x| if x * x > 2.0 * t { x } else { 0.0 }).collect()
}

/// l1: sign(v_i) max(|v_i| - t, 0).
pub fn prox_l1(v: &[f64], t: f64) -> Vec<f64> {
    v.iter().map(|&x| x.signum() * (x.abs() - t).max(0.0)).collect()
}

/// l2 (not squared): v max(1 - t/||v||, 0).
pub fn prox_l2(v: &[f64], t: f64) -> Vec<f64> {
    let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if n <= t {
        return vec![0.0; v.len()];
    }
    let s = 1.0 - t / n;
    v.iter().map(|x| x * s).collect()
}

/// Euclidean projection onto {x : ||x||_1 <= r}, by sorting (Duchi et al. 2008, fig. 1).
pub fn project_l1_ball(v: &[f64], r: f64) -> Vec<f64> {
    let l1: f64 = v.iter().map(|x| x.abs()).sum();
    if l1 <= r {
        return v.to_vec();
    }
    if r <= 0.0 {
        return vec![0.0; v.len()];
    }
    let mut u: Vec<f64> = v.iter().map(|x| x.abs()).collect();
    u.sort_by(|a, b| b.total_cmp(a));
    let mut cumulative = 0.0;
    let mut theta = 0.0;
    for (j, &uj) in u.iter().enumerate() {
        cumulative += uj;
        let candidate = (cumulative - r) / (j + 1) as f64;
        if uj - candidate > 0.0 {
            theta = candidate;
        }
    }
    v.iter().map(|x| x.signum() * (x.abs() - theta).max(0.0)).collect()
}

/// linf: v - P_{t B_1}(v), since the dual norm of linf is l1.
pub fn prox_linf(v: &[f64], t: f64) -> Vec<f64> {
    let p = project_l1_ball(v, t);
    v.iter().zip(p).map(|(a, b)| a - b).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn objective(f: impl Fn(&[f64]) -> f64, x: &[f64], v: &[f64], t: f64) -> f64 {
        f(x) + x.iter().zip(v).map(|(a, b)| (a - b).powi(2)).sum::<f64>() / (2.0 * t)
    }

    /// Brute force over a grid in two dimensions: the prox's value is never beaten.
    fn never_beaten(prox: fn(&[f64], f64) -> Vec<f64>, f: fn(&[f64]) -> f64) {
        let mut rng = Rng::new(4);
        for _ in 0..15 {
            let v = [rng.normal() * 2.0, rng.normal() * 2.0];
            let t = 0.1 + rng.uniform() * 1.5;
            let p = prox(&v, t);
            let best = objective(f, &p, &v, t);
            let mut grid_best = f64::INFINITY;
            for i in -200..=200 {
                for j in -200..=200 {
                    let x = [i as f64 * 0.025, j as f64 * 0.025];
                    grid_best = grid_best.min(objective(f, &x, &v, t));
                }
            }
            assert!(best <= grid_best + 1e-9, "v {v:?} t {t}: prox {best} vs grid {grid_best}");
            assert!(grid_best <= best + 2e-3, "the grid comes close to the prox: {grid_best} vs {best}");
        }
    }

    #[test]
    fn prox_operators_minimise_their_objectives() {
        never_beaten(prox_l0, |x| x.iter().filter(|v| **v != 0.0).count() as f64);
        never_beaten(prox_l1, |x| x.iter().map(|v| v.abs()).sum());
        never_beaten(prox_l2, |x| x.iter().map(|v| v * v).sum::<f64>().sqrt());
        never_beaten(prox_linf, |x| x.iter().fold(0.0f64, |m, v| m.max(v.abs())));
    }

    #[test]
    fn closed_forms() {
        assert_eq!(prox_l1(&[3.0, -0.5, -2.0], 1.0), vec![2.0, 0.0, -1.0]);
        assert_eq!(prox_l0(&[3.0, -0.5, -2.0], 1.0), vec![3.0, 0.0, -2.0]);
        let p = prox_l2(&[3.0, 4.0], 1.0);
        assert!((p[0] - 2.4).abs() < 1e-12 && (p[1] - 3.2).abs() < 1e-12);
        assert_eq!(prox_l2(&[0.3, 0.4], 1.0), vec![0.0, 0.0]);
        // linf prox clips the largest entries to a common level: (3, 1) with t = 1 -> (2, 1).
        let p = prox_linf(&[3.0, 1.0], 1.0);
        assert!((p[0] - 2.0).abs() < 1e-12 && (p[1] - 1.0).abs() < 1e-12, "{p:?}");
    }

    /// The sort-based projection against a simple reference: bisection on the threshold.
    #[test]
    fn l1_ball_projection_matches_bisection() {
        let mut rng = Rng::new(9);
        for _ in 0..200 {
            let n = 1 + rng.below(12);
            let v: Vec<f64> = (0..n).map(|_| rng.normal() * 3.0).collect();
            let r = rng.uniform() * 5.0;
            let p = project_l1_ball(&v, r);
            let l1: f64 = v.iter().map(|x| x.abs()).sum();
            let reference: Vec<f64> = if l1 <= r {
                v.clone()
            } else {
                let (mut lo, mut hi) = (0.0, v.iter().fold(0.0f64, |m, x| m.max(x.abs())));
                for _ in 0..200 {
                    let mid = 0.5 * (lo + hi);
                    let s: f64 = v.iter().map(|x| (x.abs() - mid).max(0.0)).sum();
                    if s > r { lo = mid } else { hi = mid }
                }
                v.iter().map(|x| x.signum() * (x.abs() - hi).max(0.0)).collect()
            };
            for (a, b) in p.iter().zip(&reference) {
                assert!((a - b).abs() < 1e-9, "{v:?} r {r}: {p:?} vs {reference:?}");
            }
            assert!(p.iter().map(|x| x.abs()).sum::<f64>() <= r + 1e-9);
        }
    }
}
