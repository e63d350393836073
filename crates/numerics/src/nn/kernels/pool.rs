//! Max pooling over k x k windows with stride k (all flowline allows), optionally fused with
//! the ReLU that follows it (max commutes with ReLU, so the pair is max(window max, 0)).
//! The backward pass routes the whole gradient to each window's first maximum: candle 0.11
//! multiplies it by (maxima in the window) / k^2, a quarter of the true gradient for 2x2
//! windows. Planes (one channel of one image) are independent and run in parallel.

use super::dense::values;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MaxPool {
    pub size: usize,
    /// max(., 0) of the result: the ReLU after the pooling, fused.
    pub relu: bool,
}

/// (planes, h, w) of an [n, c, h, w] input the window divides.
fn planes(dims: &[usize], k: usize) -> Result<(usize, usize, usize)> {
    match dims {
        [n, c, h, w] if k > 0 && h % k == 0 && w % k == 0 => Ok((n * c, *h, *w)),
        _ => candle_core::bail!("max pooling by {k} takes [n, c, h, w] inputs whose sides {k} divides, got {dims:?}"),
    }
}

impl MaxPool {
    /// Each window's maximum of one plane and, in `at`, its position in the plane.
    fn plane(&self, x: &[f32], w: usize, out: &mut [f32], mut at: Option<&mut [u32]>) {
        if self.size == 2 {
            return self.plane2(x, w, out, at);
        }
        let k = self.size;
        let ow = w / k;
        for (o, v) in out.iter_mut().enumerate() {
            let (i, j) = (o / ow, o % ow);
            let mut best = (f32::NEG_INFINITY, (i * k * w + j * k) as u32);
            for di in 0..k {
                let row = (i * k + di) * w + j * k;
                for (dj, &x) in x[row..row + k].iter().enumerate() {
                    if x > best.0 {
                        best = (x, (row + dj) as u32);
                    }
                }
            }
            *v = if self.relu { best.0.max(0.0) } else { best.0 };
            if let Some(at) = at.as_deref_mut() {
                at[o] = best.1;
            }
        }
    }
}

impl MaxPool {
    /// `plane` for 2 x 2 windows, the common case, with fixed indexing: the same maximum
    /// and the same first position (row-major order, strict comparisons, NaN skipped).
    fn plane2(&self, x: &[f32], w: usize, out: &mut [f32], mut at: Option<&mut [u32]>) {
        let ow = w / 2;
        for (i, row) in out.chunks_mut(ow).enumerate() {
            let (top, bottom) = (&x[2 * i * w..2 * i * w + w], &x[(2 * i + 1) * w..(2 * i + 1) * w + w]);
            for (j, v) in row.iter_mut().enumerate() {
                let c = [top[2 * j], top[2 * j + 1], bottom[2 * j], bottom[2 * j + 1]];
                let mut best = (f32::NEG_INFINITY, 0usize);
                for (q, &value) in c.iter().enumerate() {
                    if value > best.0 {
                        best = (value, q);
                    }
                }
                *v = if self.relu { best.0.max(0.0) } else { best.0 };
                if let Some(at) = at.as_deref_mut() {
                    at[i * ow + j] = ((2 * i + best.1 / 2) * w + 2 * j + best.1 % 2) as u32;
                }
            }
        }
    }
}

impl CustomOp1 for MaxPool {
    fn name(&self) -> &'static str {
        "flowline-maxpool2d"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (np, h, w) = planes(l.dims(), self.size)?;
        let x = values(s, l)?;
        let k = self.size;
        let mut y = vec![0f32; np * (h / k) * (w / k)];
        y.par_chunks_mut((h / k) * (w / k)).zip(x.par_chunks(h * w)).for_each(|(yo, xp)| self.plane(xp, w, yo, None));
        let d = l.dims();
        Ok((CpuStorage::F32(y), Shape::from((d[0], d[1], h / k, w / k))))
    }
    fn bwd(&self, x: &Tensor, _res: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(x.apply_op2_no_bwd(dy, &MaxPoolGrad(*self))?))
    }
}

/// dx from (x, dy): each window's gradient to its first maximum (nothing where the fused
/// ReLU cut the maximum to 0).
struct MaxPoolGrad(MaxPool);

impl CustomOp2 for MaxPoolGrad {
    fn name(&self) -> &'static str {
        "flowline-maxpool2d-grad"
    }
    fn cpu_fwd(&self, sx: &CpuStorage, lx: &Layout, sd: &CpuStorage, ld: &Layout) -> Result<(CpuStorage, Shape)> {
        let op = self.0;
        let k = op.size;
        let (np, h, w) = planes(lx.dims(), k)?;
        let per = (h / k) * (w / k);
        if ld.shape().elem_count() != np * per {
            candle_core::bail!("max pooling backward: gradient of shape {:?} for input {:?}", ld.dims(), lx.dims());
        }
        let (x, dy) = (values(sx, lx)?, values(sd, ld)?);
        let mut dx = vec![0f32; np * h * w];
        dx.par_chunks_mut(h * w).zip(x.par_chunks(h * w)).zip(dy.par_chunks(per)).for_each_init(
            || (vec![0f32; per], vec![0u32; per]),
            |(vals, at), ((dxp, xp), dyp)| {
                op.plane(xp, w, vals, Some(at));
                for ((g, &p), v) in dyp.iter().zip(at.iter()).zip(vals.iter()) {
                    if !op.relu || *v > 0.0 {
                        dxp[p as usize] += g;
                    }
                }
            },
        );
        Ok((CpuStorage::F32(dx), lx.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::kernels::testing::{flat, random};
    use crate::rng::Rng;
    use candle_core::{Device, Var};

    /// The composed pooling other devices use gives the same values and gradients as the
    /// kernel (random inputs: every window's maximum is unique).
    #[test]
    fn the_composed_pooling_of_other_devices_matches_the_kernel() {
        let mut rng = Rng::new(12);
        let x0 = random(&[2, 3, 8, 6], &mut rng);
        let probe = random(&[2, 3, 4, 3], &mut rng);
        let x = Var::from_tensor(&x0).unwrap();
        let ours = x.as_tensor().apply_op1(MaxPool { size: 2, relu: false }).unwrap();
        let composed = crate::nn::max_pool_composed(x.as_tensor(), 2).unwrap();
        assert_eq!(flat(&ours), flat(&composed));
        let g = |y: &Tensor| flat(y.mul(&probe).unwrap().sum_all().unwrap().backward().unwrap().get(&x).unwrap());
        assert_eq!(g(&ours), g(&composed));
    }

    /// Values against candle's max pooling (and ReLU); gradients against central
    /// differences (exact for a step that keeps every window's maximum and sign).
    #[test]
    fn pooling_matches_candle_and_its_gradient_matches_central_differences() {
        let mut rng = Rng::new(3);
        for relu in [false, true] {
            for k in [2, 3] {
                let x0 = random(&[2, 3, 6, 6], &mut rng);
                let op = MaxPool { size: k, relu };
                let y = x0.apply_op1(op).unwrap();
                let mut want = x0.max_pool2d(k).unwrap();
                if relu {
                    want = want.relu().unwrap();
                }
                assert_eq!(flat(&y), flat(&want), "k {k} relu {relu}");
                let probe = random(y.dims(), &mut rng);
                let x = Var::from_tensor(&x0).unwrap();
                let g =
                    x.as_tensor().apply_op1(op).unwrap().mul(&probe).unwrap().sum_all().unwrap().backward().unwrap();
                let g = flat(g.get(&x).unwrap());
                let value = |t: &Tensor| {
                    t.apply_op1(op).unwrap().mul(&probe).unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() as f64
                };
                let base = flat(&x0);
                let h = 1e-3f32;
                for i in 0..base.len() {
                    let at = |s: f32| {
                        let mut v = base.clone();
                        v[i] += s;
                        value(&Tensor::from_vec(v, x0.shape(), &Device::Cpu).unwrap())
                    };
                    let fd = (at(h) - at(-h)) / (2.0 * h as f64);
                    assert!(
                        (fd - g[i] as f64).abs() < 1e-3 * (1.0 + fd.abs()),
                        "k {k} relu {relu} entry {i}: {fd} vs {}",
                        g[i]
                    );
                }
            }
        }
    }
}
