//! Max pooling over k x k windows with stride k (all flowline allows), optionally fused with
//! the ReLU that follows it (max commutes with ReLU, so the pair is max(window max, 0)).
//! The backward pass routes the whole gradient to each window's first maximum: candle 0.11
//! multiplies it by (maxima in the window) / k^2, a quarter of the true gradient for 2x2
//! windows. Planes (one channel of one image) are independent and run in parallel. 2 x 2
//! windows, the common case, have vectorised loops that keep no positions: the backward pass
//! finds each window's first element equal to its result.

use super::dense::{values, written};
use super::simd::wide_fn;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;
use std::mem::MaybeUninit;

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

impl CustomOp1 for MaxPool {
    fn name(&self) -> &'static str {
        "flowline-maxpool2d"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (np, h, w) = planes(l.dims(), self.size)?;
        let x = values(s, l)?;
        let k = self.size;
        let mut y = vec![0f32; np * (h / k) * (w / k)];
        let per = (h / k) * (w / k);
        if k == 2 {
            // Several planes per task: a 14 x 14 plane is too little work to hand out alone.
            let group = (PLANES_PER_TASK_ELEMENTS / (h * w)).max(1);
            y.par_chunks_mut(per * group)
                .zip(x.par_chunks(h * w * group))
                .for_each(|(yo, xp)| max2(xp, w, yo, self.relu));
        } else {
            y.par_chunks_mut(per).zip(x.par_chunks(h * w)).for_each(|(yo, xp)| self.plane(xp, w, yo, None));
        }
        let d = l.dims();
        Ok((CpuStorage::F32(y), Shape::from((d[0], d[1], h / k, w / k))))
    }
    fn bwd(&self, x: &Tensor, res: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        if self.size == 2 {
            return Ok(Some(x.apply_op3_no_bwd(res, dy, &MaxPool2Grad { relu: self.relu })?));
        }
        Ok(Some(x.apply_op2_no_bwd(dy, &MaxPoolGrad(*self))?))
    }
}

/// Input elements per parallel task of the 2 x 2 kernels (whole planes).
const PLANES_PER_TASK_ELEMENTS: usize = 1 << 14;

wide_fn! {
    /// 2 x 2 maxima of consecutive planes with rows of `w` values (then max(., 0) with
    /// `relu`): vectorisable, no positions kept; the backward pass finds them again.
    fn max2(x: &[f32], w: usize, out: &mut [f32], relu: bool) {
        let floor = if relu { 0.0 } else { f32::NEG_INFINITY };
        for (pair, row) in x.chunks_exact(2 * w).zip(out.chunks_exact_mut(w / 2)) {
            let (top, bottom) = pair.split_at(w);
            for ((t, b), v) in top.chunks_exact(2).zip(bottom.chunks_exact(2)).zip(row.iter_mut()) {
                *v = t[0].max(t[1]).max(b[0].max(b[1])).max(floor);
            }
        }
    }
}

wide_fn! {
    /// dx of 2 x 2 max pooling from (x, y, dy): each window's gradient to its first element
    /// (row-major) equal to the window's result, none where the fused ReLU cut it to 0.
    /// Computed window by window into four contiguous rows (one per window position), then
    /// interleaved into dx: the selection loop vectorises, interleaved stores do not.
    fn max2_grad(
        x: &[f32],
        y: &[f32],
        dy: &[f32],
        w: usize,
        dx: &mut [MaybeUninit<f32>],
        relu: bool,
        scratch: &mut [f32],
    ) {
        let ow = w / 2;
        let (s0, rest) = scratch.split_at_mut(ow);
        let (s1, rest) = rest.split_at_mut(ow);
        let (s2, s3) = rest.split_at_mut(ow);
        let floor = if relu { 0.0 } else { f32::NEG_INFINITY };
        for (((pair, dpair), yr), gr) in
            x.chunks_exact(2 * w).zip(dx.chunks_exact_mut(2 * w)).zip(y.chunks_exact(ow)).zip(dy.chunks_exact(ow))
        {
            let (top, bottom) = pair.split_at(w);
            let windows = top.chunks_exact(2).zip(bottom.chunks_exact(2)).zip(yr.iter().zip(gr));
            let out = s0.iter_mut().zip(s1.iter_mut()).zip(s2.iter_mut().zip(s3.iter_mut()));
            for (((t, b), (&m, &g)), ((a0, a1), (a2, a3))) in windows.zip(out) {
                let g = if m > floor || !relu { g } else { 0.0 };
                let (p, q, r, s) = (t[0] == m, t[1] == m, b[0] == m, b[1] == m);
                *a0 = if p { g } else { 0.0 };
                *a1 = if !p && q { g } else { 0.0 };
                *a2 = if !p && !q && r { g } else { 0.0 };
                *a3 = if !p && !q && !r && s { g } else { 0.0 };
            }
            let (dtop, dbottom) = dpair.split_at_mut(w);
            for ((d, a), b) in dtop.chunks_exact_mut(2).zip(s0.iter()).zip(s1.iter()) {
                d[0].write(*a);
                d[1].write(*b);
            }
            for ((d, a), b) in dbottom.chunks_exact_mut(2).zip(s2.iter()).zip(s3.iter()) {
                d[0].write(*a);
                d[1].write(*b);
            }
        }
    }
}

/// dx from (x, y, dy) for 2 x 2 windows.
struct MaxPool2Grad {
    relu: bool,
}

impl CustomOp3 for MaxPool2Grad {
    fn name(&self) -> &'static str {
        "flowline-maxpool2x2-grad"
    }
    fn cpu_fwd(
        &self,
        sx: &CpuStorage,
        lx: &Layout,
        sy: &CpuStorage,
        ly: &Layout,
        sd: &CpuStorage,
        ld: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (np, h, w) = planes(lx.dims(), 2)?;
        let per = (h / 2) * (w / 2);
        if ly.shape().elem_count() != np * per || ld.shape().elem_count() != np * per {
            candle_core::bail!(
                "max pooling backward: result {:?} and gradient {:?} for input {:?}",
                ly.dims(),
                ld.dims(),
                lx.dims()
            );
        }
        let (x, y, dy) = (values(sx, lx)?, values(sy, ly)?, values(sd, ld)?);
        let group = (PLANES_PER_TASK_ELEMENTS / (h * w)).max(1);
        // SAFETY: max2_grad writes every element of each group of planes it is given (h and
        // w are even), and the groups of dx, x, y and dy line up (shapes checked above).
        let dx = unsafe {
            written(np * h * w, |dx| {
                dx.par_chunks_mut(h * w * group)
                    .zip(x.par_chunks(h * w * group))
                    .zip(y.par_chunks(per * group).zip(dy.par_chunks(per * group)))
                    .for_each_init(
                        || vec![0f32; 2 * w],
                        |scratch, ((dxp, xp), (yp, dyp))| max2_grad(xp, yp, dyp, w, dxp, self.relu, scratch),
                    )
            })
        };
        Ok((CpuStorage::F32(dx), lx.shape().clone()))
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

    /// Ties send the whole gradient to the window's first maximum (row-major), once; with
    /// the fused ReLU, windows whose maximum is negative pass none.
    #[test]
    fn ties_and_cut_windows_get_the_gradient_once_or_not_at_all() {
        // Plane: [[1, 1, -2, -3], [1, 0, -1, -2]]: the first window ties three ways.
        let x0 = Tensor::from_vec(vec![1f32, 1., -2., -3., 1., 0., -1., -2.], (1, 1, 2, 4), &Device::Cpu).unwrap();
        for relu in [false, true] {
            let x = Var::from_tensor(&x0).unwrap();
            let y = x.as_tensor().apply_op1(MaxPool { size: 2, relu }).unwrap();
            let g = y.sum_all().unwrap().backward().unwrap();
            let want = if relu { [1., 0., 0., 0., 0., 0., 0., 0.] } else { [1., 0., 0., 0., 0., 0., 1., 0.] };
            assert_eq!(flat(g.get(&x).unwrap()), want, "relu {relu}");
        }
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
