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

/// A misclassified starting point: Gaussian noise of growing size around `x` (clipped to
/// the bounds) until the model errs, then bisection on the segment back toward `x`, so
/// that the start lies close to the decision boundary.
pub fn misclassified_start(
    model: &dyn Fn(&Tensor) -> Result<Tensor>,
    x: &Tensor,
    label: usize,
    bounds: (f64, f64),
    rng: &mut crate::rng::Rng,
) -> Result<Option<Tensor>> {
    let (lo, hi) = bounds;
    let wrong = |z: &Tensor| -> Result<bool> {
        Ok(margin(&model(z)?, label)?.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()? < 0.0)
    };
    for k in 0..24 {
        let s = (hi - lo) * 0.01 * 2f64.powi(k);
        let noise: Vec<f32> = (0..x.elem_count()).map(|_| (rng.normal() * s) as f32).collect();
        let far = (x + Tensor::from_vec(noise, x.shape(), x.device())?.to_dtype(x.dtype())?)?.clamp(lo, hi)?;
        if wrong(&far)? {
            // x + t (far - x) is correct at t = 0 and wrong at t = 1.
            let (mut a, mut b) = (0.0, 1.0);
            for _ in 0..30 {
                let m = 0.5 * (a + b);
                if wrong(&(x + ((&far - x)? * m)?)?)? { b = m } else { a = m }
            }
            return Ok(Some((x + ((&far - x)? * b)?)?));
        }
    }
    Ok(None)
}

/// Random linear two-class problems, whose minimum distances to the decision boundary are
/// known in closed form: the reference every attack is tested against.
#[cfg(test)]
pub(crate) mod linear_problem {
    use crate::rng::Rng;
    use candle_core::{Device, Result, Tensor};

    pub struct LinearProblem {
        pub w: Tensor,
        pub b: Tensor,
        /// One correctly classified example, [1, d].
        pub x: Tensor,
        pub label: usize,
        /// w_other - w_label, and the logit gap at x.
        pub wd: Vec<f64>,
        pub gap: f64,
    }

    impl LinearProblem {
        pub fn random(rng: &mut Rng, d: usize, bias: [f32; 2], x_scale: f64) -> Self {
            let dev = Device::Cpu;
            let w: Vec<f32> = (0..2 * d).map(|_| rng.normal() as f32).collect();
            let w = Tensor::from_vec(w, (2, d), &dev).unwrap();
            let b = Tensor::new(&bias, &dev).unwrap();
            let x: Vec<f32> = (0..d).map(|_| (rng.normal() * x_scale) as f32).collect();
            let x = Tensor::from_vec(x, (1, d), &dev).unwrap();
            let mut p = LinearProblem { w, b, x, label: 0, wd: Vec::new(), gap: 0.0 };
            let logits = p.scores(&p.x);
            p.label = if logits[0] > logits[1] { 0 } else { 1 };
            let (w0, w1) = (p.w.get(p.label).unwrap(), p.w.get(1 - p.label).unwrap());
            p.wd = (w1 - w0).unwrap().to_vec1::<f32>().unwrap().iter().map(|v| *v as f64).collect();
            p.gap = ((logits[p.label] - logits[1 - p.label]) as f64).abs();
            p
        }

        pub fn model(&self, z: &Tensor) -> Result<Tensor> {
            z.matmul(&self.w.t()?)?.broadcast_add(&self.b)
        }

        fn scores(&self, z: &Tensor) -> Vec<f32> {
            self.model(z).unwrap().flatten_all().unwrap().to_vec1().unwrap()
        }

        pub fn misclassified(&self, z: &Tensor) -> bool {
            let s = self.scores(z);
            s[1 - self.label] > s[self.label]
        }

        /// The minimum distance in l2, linf and l1 (dual norms of w in the denominator).
        pub fn l2(&self) -> f64 {
            self.gap / self.wd.iter().map(|v| v * v).sum::<f64>().sqrt()
        }
        pub fn linf(&self) -> f64 {
            self.gap / self.wd.iter().map(|v| v.abs()).sum::<f64>()
        }
        pub fn l1(&self) -> f64 {
            self.gap / self.wd.iter().fold(0.0f64, |m, v| m.max(v.abs()))
        }
    }
}
