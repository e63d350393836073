//! Random linear two-class problems, whose minimum distances to the decision boundary are
//! known in closed form: the reference every attack is tested against.

use super::norms::{Norm, distance};
use crate::rng::Rng;
use candle_core::{Device, Result, Tensor};

pub struct LinearProblem {
    w: Tensor,
    b: Tensor,
    pub xs: Vec<Vec<f64>>,
    pub labels: Vec<usize>,
    /// Per example: w_other - w_label, and the logit gap.
    wd: Vec<Vec<f64>>,
    gap: Vec<f64>,
}

impl LinearProblem {
    /// `n` examples in `d` dimensions, entries normal with scale `x_scale`, redrawn until
    /// each lies at least `min_linf` (in linf) from the boundary.
    pub fn random(rng: &mut Rng, d: usize, n: usize, x_scale: f64, min_linf: f64) -> Self {
        let dev = Device::Cpu;
        let w: Vec<f32> = (0..2 * d).map(|_| rng.normal() as f32).collect();
        let w = Tensor::from_vec(w, (2, d), &dev).unwrap();
        let b = Tensor::new(&[0.3f32, -0.2], &dev).unwrap();
        let mut p = LinearProblem { w, b, xs: Vec::new(), labels: Vec::new(), wd: Vec::new(), gap: Vec::new() };
        let rows = p.w.to_vec2::<f32>().unwrap();
        while p.xs.len() < n {
            let x: Vec<f64> = (0..d).map(|_| rng.normal() * x_scale).collect();
            let s = p.scores(&x);
            let y = if s[0] > s[1] { 0 } else { 1 };
            let wd: Vec<f64> = rows[1 - y].iter().zip(&rows[y]).map(|(a, b)| (a - b) as f64).collect();
            let gap = (s[y] - s[1 - y]).abs();
            if gap / wd.iter().map(|v| v.abs()).sum::<f64>() < min_linf {
                continue;
            }
            p.xs.push(x);
            p.labels.push(y);
            p.wd.push(wd);
            p.gap.push(gap);
        }
        p
    }

    pub fn model(&self, z: &Tensor) -> Result<Tensor> {
        z.matmul(&self.w.t()?)?.broadcast_add(&self.b)
    }

    fn scores(&self, z: &[f64]) -> Vec<f64> {
        let t = Tensor::from_vec(z.iter().map(|v| *v as f32).collect::<Vec<_>>(), (1, z.len()), &Device::Cpu).unwrap();
        self.model(&t).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().map(|v| *v as f64).collect()
    }

    pub fn misclassified(&self, z: &[f64], i: usize) -> bool {
        let s = self.scores(z);
        s[1 - self.labels[i]] > s[self.labels[i]]
    }

    /// The minimum distances in l2, linf and l1 (dual norms of w in the denominator).
    pub fn l2(&self) -> Vec<f64> {
        self.per(|w| w.iter().map(|v| v * v).sum::<f64>().sqrt())
    }
    pub fn linf(&self) -> Vec<f64> {
        self.per(|w| w.iter().map(|v| v.abs()).sum::<f64>())
    }
    pub fn l1(&self) -> Vec<f64> {
        self.per(|w| w.iter().fold(0.0f64, |m, v| m.max(v.abs())))
    }

    fn per(&self, dual: impl Fn(&[f64]) -> f64) -> Vec<f64> {
        self.wd.iter().zip(&self.gap).map(|(w, g)| g / dual(w)).collect()
    }

    /// The fewest coordinates that must move, inside `bounds`, to cross the boundary: take
    /// the largest possible contributions |w_j| * room_j first (optimal for a count).
    pub fn l0(&self, bounds: (f64, f64)) -> Vec<f64> {
        (0..self.xs.len())
            .map(|i| {
                let mut gains: Vec<f64> = self.wd[i]
                    .iter()
                    .zip(&self.xs[i])
                    .map(|(w, x)| if *w > 0.0 { w * (bounds.1 - x) } else { w * (bounds.0 - x) })
                    .collect();
                gains.sort_by(|a, b| b.total_cmp(a));
                let mut total = 0.0;
                for (k, g) in gains.iter().enumerate() {
                    total += g;
                    if total > self.gap[i] {
                        return (k + 1) as f64;
                    }
                }
                f64::INFINITY
            })
            .collect()
    }

    /// Every image has a returned point, misclassified, whose distance in `norm` is the
    /// exact one within the relative tolerance `tol`.
    pub fn assert_distances(&self, adv: &[Option<Vec<f64>>], norm: Norm, exact: &[f64], tol: f64) {
        for (i, a) in adv.iter().enumerate() {
            let a = a.as_ref().expect("an adversarial point");
            let found = distance(norm, a, &self.xs[i]);
            assert!(self.misclassified(a, i), "{norm:?} image {i}: misclassified");
            assert!((found / exact[i] - 1.0).abs() < tol, "{norm:?} image {i}: found {found}, exact {}", exact[i]);
        }
    }
}
