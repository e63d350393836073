//! The dissimilarities attacks minimise, on flattened perturbations.

use super::prox::{project_l1_ball, prox_l0, prox_l1, prox_l2, prox_linf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Norm {
    L0,
    L1,
    L2,
    Linf,
}

impl Norm {
    pub const ALL: [Norm; 4] = [Norm::L0, Norm::L1, Norm::L2, Norm::Linf];

    pub fn parse(s: &str) -> Option<Norm> {
        Some(match s {
            "l0" => Norm::L0,
            "l1" => Norm::L1,
            "l2" => Norm::L2,
            "linf" => Norm::Linf,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Norm::L0 => "l0",
            Norm::L1 => "l1",
            Norm::L2 => "l2",
            Norm::Linf => "linf",
        }
    }

    /// l0 counts entries that moved by more than float32 resolution of an input.
    pub fn of(self, d: &[f64]) -> f64 {
        match self {
            Norm::L0 => d.iter().filter(|v| v.abs() > 1e-6).count() as f64,
            Norm::L1 => d.iter().map(|v| v.abs()).sum(),
            Norm::L2 => d.iter().map(|v| v * v).sum::<f64>().sqrt(),
            Norm::Linf => d.iter().fold(0.0, |m, v| m.max(v.abs())),
        }
    }

    /// The dual norm's exponent's norm: ||g||_* with 1/p + 1/q = 1 (l0 has none; its
    /// callers take l2).
    pub fn dual(self) -> Norm {
        match self {
            Norm::L1 => Norm::Linf,
            Norm::L0 | Norm::L2 => Norm::L2,
            Norm::Linf => Norm::L1,
        }
    }

    /// The Euclidean projection of v onto the ball {d : ||d|| <= r}. l0: the floor(r)
    /// largest entries in magnitude kept (ties by position), which is the closest point
    /// with at most floor(r) non-zeros; l1: Duchi et al.'s sort-based projection; l2:
    /// scaling; linf: clipping.
    pub fn project(self, v: &mut [f64], r: f64) {
        match self {
            Norm::L0 => {
                let keep = if r.is_finite() { r.max(0.0).floor() as usize } else { v.len() };
                if keep >= v.len() {
                    return;
                }
                let mut order: Vec<usize> = (0..v.len()).collect();
                order.sort_by(|&a, &b| v[b].abs().total_cmp(&v[a].abs()));
                for &i in &order[keep..] {
                    v[i] = 0.0;
                }
            }
            Norm::L1 => {
                if r.is_finite() {
                    let p = project_l1_ball(v, r.max(0.0));
                    v.copy_from_slice(&p);
                }
            }
            Norm::L2 => {
                let n = Norm::L2.of(v);
                if n > r {
                    let s = r.max(0.0) / n;
                    v.iter_mut().for_each(|x| *x *= s);
                }
            }
            Norm::Linf => {
                let r = r.max(0.0);
                v.iter_mut().for_each(|x| *x = x.clamp(-r, r));
            }
        }
    }

    /// prox_{t ||.||}(v).
    pub fn prox(self, v: &[f64], t: f64) -> Vec<f64> {
        match self {
            Norm::L0 => prox_l0(v, t),
            Norm::L1 => prox_l1(v, t),
            Norm::L2 => prox_l2(v, t),
            Norm::Linf => prox_linf(v, t),
        }
    }
}

/// a - b, elementwise.
pub fn diff(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(p, q)| p - q).collect()
}

/// The largest perturbation of `x` inside the box (lo, hi) in `norm`: the one to the
/// farthest corner.
pub fn farthest(norm: Norm, x: &[f64], (lo, hi): (f64, f64)) -> f64 {
    norm.of(&x.iter().map(|v| (v - lo).max(hi - v)).collect::<Vec<_>>())
}

/// The distance between two inputs in `norm`.
pub fn distance(norm: Norm, a: &[f64], b: &[f64]) -> f64 {
    norm.of(&diff(a, b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// Each projection lands in the ball and no point of the ball sampled nearby is closer
    /// to v (the projection is the nearest point), in every norm; l0 against brute force
    /// over all supports.
    #[test]
    fn ball_projections_are_the_nearest_points_of_the_ball() {
        let mut rng = Rng::new(31);
        for norm in [Norm::L1, Norm::L2, Norm::Linf] {
            for _ in 0..50 {
                let v: Vec<f64> = (0..5).map(|_| rng.normal() * 2.0).collect();
                let r = rng.uniform() * 3.0;
                let mut p = v.clone();
                norm.project(&mut p, r);
                assert!(norm.of(&p) <= r + 1e-9, "{norm:?}: {} > {r}", norm.of(&p));
                let d = Norm::L2.of(&diff(&p, &v));
                for _ in 0..200 {
                    // A random point of the ball near the projection.
                    let mut q: Vec<f64> = p.iter().map(|x| x + rng.normal() * 0.3).collect();
                    norm.project(&mut q, r);
                    let scale = r / norm.of(&q).max(r);
                    q.iter_mut().for_each(|x| *x *= scale);
                    assert!(Norm::L2.of(&diff(&q, &v)) >= d - 1e-9, "{norm:?}: a closer point of the ball");
                }
            }
        }
        for _ in 0..50 {
            let v: Vec<f64> = (0..6).map(|_| rng.normal()).collect();
            let k = rng.below(7);
            let mut p = v.clone();
            Norm::L0.project(&mut p, k as f64 + 0.7);
            assert!(Norm::L0.of(&p) <= k as f64);
            // The best support of size k: the loss is the energy of what is dropped.
            let best = (0u32..64)
                .filter(|m| m.count_ones() as usize <= k)
                .map(|m| (0..6).filter(|i| m & (1 << i) == 0).map(|i| v[i] * v[i]).sum::<f64>())
                .fold(f64::INFINITY, f64::min);
            let loss: f64 = v.iter().zip(&p).map(|(a, b)| (a - b) * (a - b)).sum();
            assert!((loss - best).abs() < 1e-12, "l0 keep {k}: {loss} vs {best}");
        }
    }
}
