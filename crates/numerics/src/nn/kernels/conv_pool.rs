//! Convolution, 2 x 2 max pooling and an activation as one op: act(pool(conv(x) + b)).
//!
//! The convolution's output is the largest tensor of a convnet (4.7M floats a step for the
//! example network's second layer). As separate ops it is written, read by the pooling,
//! and in the backward pass its gradient is written by the pooling's backward, added by
//! candle into a zeroed buffer of its size, and read twice by the convolution's backward.
//! Here each image's convolution output stays in a per-thread buffer (in cache) from the
//! product to the pooling, and the backward pass rebuilds each image's gradient from the
//! pooled gradient and the window positions kept at the forward pass, then runs both
//! products of the convolution's backward on it while it is in cache.
//!
//! The activation may sit before or after the pooling: every activation flowline has is
//! non-decreasing, so max and act commute. Where float32 saturates an activation (tanh of
//! large values), the written order would tie and pick the window's first element, this one
//! the true maximum; the slope there is zero to float32 precision, so gradients agree.
//! Values and gradients are those of the separate kernels, bit for bit without an activation
//! or with ReLU (tested).

use super::act::{activate, slope};
use super::conv::{GROUP, Geometry, sum_groups};
use super::dense::{Mat, cpu_values, matmul, values, written};
use super::simd::wide_fn;
use crate::nn::Activation;
use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;
use std::mem::MaybeUninit;
use std::sync::Mutex;

/// The op; one per application, as it keeps the windows' maxima positions for its backward.
#[derive(Debug)]
pub struct ConvPool {
    pub stride: usize,
    pub pad: usize,
    pub weight_grad: bool,
    pub act: Option<Activation>,
    /// Per pooled value, the position of its window's maximum (0..4, row-major).
    at: Mutex<Vec<u8>>,
}

impl ConvPool {
    fn geometry(&self, x: &[usize], w: &[usize]) -> Result<Geometry> {
        let g = Geometry::new(x, w, self.stride, self.pad)?;
        if !pools_evenly(&g) {
            candle_core::bail!("max pooling by 2 of a {} x {} convolution output", g.out.0, g.out.1);
        }
        Ok(g)
    }
}

wide_fn! {
    /// 2 x 2 maxima of consecutive planes with rows of `w` values, then `act`, with the
    /// position of each window's first maximum (row-major).
    fn pool2(y: &[f32], w: usize, act: Option<Activation>, out: &mut [MaybeUninit<f32>], at: &mut [u8]) {
        let rows = y.chunks_exact(2 * w).zip(out.chunks_exact_mut(w / 2)).zip(at.chunks_exact_mut(w / 2));
        for ((pair, orow), arow) in rows {
            let (top, bottom) = pair.split_at(w);
            let windows = top.chunks_exact(2).zip(bottom.chunks_exact(2));
            for (((t, b), o), a) in windows.zip(orow.iter_mut()).zip(arow.iter_mut()) {
                let m = t[0].max(t[1]).max(b[0].max(b[1]));
                // The first maximum's position as a count of the elements before it that are
                // not the maximum: branch-free, so that the loop vectorises.
                let (n0, n1, n2) = ((t[0] != m) as u8, (t[1] != m) as u8, (b[0] != m) as u8);
                *a = n0 + n0 * n1 + n0 * n1 * n2;
                o.write(activate(act, m));
            }
        }
    }
}

wide_fn! {
    /// The gradient of the convolution's output (planes with rows of `w` values) from the
    /// pooled values `y`, their gradient `dy` and the maxima positions: each window's
    /// gradient, times the activation's slope, to its maximum; every element written.
    fn unpool2(y: &[f32], dy: &[f32], at: &[u8], w: usize, act: Option<Activation>, dz: &mut [f32]) {
        let ow = w / 2;
        let rows = dz.chunks_exact_mut(2 * w).zip(y.chunks_exact(ow)).zip(dy.chunks_exact(ow).zip(at.chunks_exact(ow)));
        for ((pair, yr), (gr, ar)) in rows {
            let (top, bottom) = pair.split_at_mut(w);
            let windows = top.chunks_exact_mut(2).zip(bottom.chunks_exact_mut(2));
            for ((t, b), ((&v, &g), &a)) in windows.zip(yr.iter().zip(gr).zip(ar)) {
                let g = g * slope(act, v);
                t[0] = if a == 0 { g } else { 0.0 };
                t[1] = if a == 1 { g } else { 0.0 };
                b[0] = if a == 2 { g } else { 0.0 };
                b[1] = if a == 3 { g } else { 0.0 };
            }
        }
    }
}

impl CustomOp3 for ConvPool {
    fn name(&self) -> &'static str {
        "flowline-conv2d-maxpool2"
    }

    fn cpu_fwd(
        &self,
        sx: &CpuStorage,
        lx: &Layout,
        sw: &CpuStorage,
        lw: &Layout,
        sb: &CpuStorage,
        lb: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = self.geometry(lx.dims(), lw.dims())?;
        if lb.dims() != [g.o] {
            candle_core::bail!("conv2d: bias of shape {:?} for {} kernels", lb.dims(), g.o);
        }
        let (x, w, b) = (values(sx, lx)?, values(sw, lw)?, values(sb, lb)?);
        let (p, ckk, pooled) = (g.p(), g.ckk(), g.o * g.p() / 4);
        let mut at = vec![0u8; g.n * pooled];
        // SAFETY: pool2 writes every pooled value of each image (the output sides are even).
        let y = unsafe {
            written(g.n * pooled, |out| {
                out.par_chunks_mut(pooled.max(1)).zip(at.par_chunks_mut(pooled.max(1))).enumerate().for_each_init(
                    || (vec![0f32; ckk * p], vec![0f32; g.o * p]),
                    |(cols, z), (i, (oi, ai))| {
                        g.im2col(&x[i * g.image()..(i + 1) * g.image()], cols);
                        matmul(g.o, p, ckk, z, Mat::rows(&w, ckk), Mat::rows(cols, p), false);
                        for (row, &bias) in z.chunks_mut(p.max(1)).zip(b.iter()) {
                            row.iter_mut().for_each(|v| *v += bias);
                        }
                        pool2(z, g.out.1, self.act, oi, ai);
                    },
                )
            })
        };
        *self.at.lock().map_err(|_| candle_core::Error::Msg("conv2d-maxpool2: poisoned lock".into()))? = at;
        Ok((CpuStorage::F32(y), Shape::from((g.n, g.o, g.out.0 / 2, g.out.1 / 2))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let g = self.geometry(x.dims(), w.dims())?;
        if dy.dims() != y.dims() {
            candle_core::bail!("conv2d-maxpool2 backward: gradient of shape {:?} for {:?}", dy.dims(), y.dims());
        }
        // No input gradient for data (a tensor no gradient flows to): the first layer.
        let input = x.track_op();
        if !input && !self.weight_grad {
            return Ok((None, None, None));
        }
        let at = self.at.lock().map_err(|_| candle_core::Error::Msg("conv2d-maxpool2: poisoned lock".into()))?;
        let held = [x, w, y, dy].map(|t| t.storage_and_layout());
        let [xv, wv, yv, dyv] = [0, 1, 2, 3].map(|k| cpu_values(&held[k].0, held[k].1));
        let (xv, wv, yv, dyv) = (xv?, wv?, yv?, dyv?);
        let (p, ckk, o, pooled) = (g.p(), g.ckk(), g.o, g.o * g.p() / 4);
        // Images per task: fixed groups when summing the kernel gradient (the same sum
        // whatever the number of threads), one image otherwise.
        let per = if self.weight_grad { GROUP } else { 1 };
        let group = |grp: usize, mut dx: Option<&mut [f32]>, s: &mut (Vec<f32>, Vec<f32>)| {
            let (z, cols) = s;
            let (mut dw, mut db) =
                if self.weight_grad { (vec![0f32; o * ckk], vec![0f32; o]) } else { (vec![], vec![]) };
            for (k, i) in (grp * per..((grp + 1) * per).min(g.n)).enumerate() {
                unpool2(
                    &yv[i * pooled..(i + 1) * pooled],
                    &dyv[i * pooled..(i + 1) * pooled],
                    &at[i * pooled..(i + 1) * pooled],
                    g.out.1,
                    self.act,
                    z,
                );
                if self.weight_grad {
                    g.im2col(&xv[i * g.image()..(i + 1) * g.image()], cols);
                    matmul(o, ckk, p, &mut dw, Mat::rows(z, p), Mat::rows(cols, p).t(), true);
                    for (acc, row) in db.iter_mut().zip(z.chunks(p.max(1))) {
                        *acc += row.iter().sum::<f32>();
                    }
                }
                if let Some(dx) = dx.as_deref_mut() {
                    matmul(ckk, p, o, cols, Mat::rows(&wv, ckk).t(), Mat::rows(z, p), false);
                    g.col2im(cols, &mut dx[k * g.image()..(k + 1) * g.image()]);
                }
            }
            (dw, db)
        };
        let scratch = || (vec![0f32; o * p], vec![0f32; ckk * p]);
        let mut dx = if input { vec![0f32; g.n * g.image()] } else { vec![] };
        let partials: Vec<(Vec<f32>, Vec<f32>)> = if input {
            let chunks = dx.par_chunks_mut((per * g.image()).max(1)).enumerate();
            chunks.map_init(scratch, |s, (grp, dxg)| group(grp, Some(dxg), s)).collect()
        } else {
            (0..g.n.div_ceil(per)).into_par_iter().map_init(scratch, |s, grp| group(grp, None, s)).collect()
        };
        let dx = if input { Some(Tensor::from_vec(dx, x.shape(), x.device())?) } else { None };
        if !self.weight_grad {
            return Ok((dx, None, None));
        }
        let dwb = Tensor::from_vec(sum_groups(partials, o, ckk), (o, ckk + 1), x.device())?;
        let dw = dwb.narrow(1, 0, ckk)?.reshape(w.shape())?;
        let db = dwb.narrow(1, ckk, 1)?.reshape(o)?;
        Ok((dx, Some(dw), Some(db)))
    }
}

/// act(maxpool2(conv2d(x, w) + b)) in one op (float32 on the CPU); `weight_grad: false`
/// gives the input gradient only (attacks).
/// Whether `conv_pool` takes inputs and kernels of these shapes: the convolution's output
/// has even sides.
pub fn conv_pool_fits(x: &[usize], w: &[usize], stride: usize, pad: usize) -> bool {
    Geometry::new(x, w, stride, pad).is_ok_and(|g| pools_evenly(&g))
}

/// 2 x 2 windows tile the convolution's output.
fn pools_evenly(g: &Geometry) -> bool {
    g.out.0.is_multiple_of(2) && g.out.1.is_multiple_of(2)
}

pub fn conv_pool(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    stride: usize,
    pad: usize,
    weight_grad: bool,
    act: Option<Activation>,
) -> Result<Tensor> {
    let (w, b) = if weight_grad { (w.clone(), b.clone()) } else { (w.detach(), b.detach()) };
    x.apply_op3(&w, &b, ConvPool { stride, pad, weight_grad, act, at: Mutex::new(Vec::new()) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::kernels::testing::{assert_op_gradients, flat, random};
    use crate::nn::kernels::{MaxPool, conv2d};
    use crate::rng::Rng;
    use candle_core::Var;

    /// The separate kernels in the written order: conv (with act) then pool, or conv, pool
    /// (with a fused ReLU, or act after it).
    fn separate(
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        s: usize,
        p: usize,
        act: Option<Activation>,
        before: bool,
    ) -> Tensor {
        if before {
            let z = conv2d(x, w, b, s, p, true, act).unwrap();
            return z.apply_op1(MaxPool { size: 2, relu: false }).unwrap();
        }
        let z = conv2d(x, w, b, s, p, true, None).unwrap();
        match act {
            Some(Activation::Relu) => z.apply_op1(MaxPool { size: 2, relu: true }).unwrap(),
            Some(a) => crate::nn::activate(a, &z.apply_op1(MaxPool { size: 2, relu: false }).unwrap()).unwrap(),
            None => z.apply_op1(MaxPool { size: 2, relu: false }).unwrap(),
        }
    }

    /// Values and all three gradients bit for bit against the separate kernels for ReLU and
    /// no activation (the same arithmetic in the same order), to rounding for the smooth
    /// activations (the separate op's vectorised loop rounds differently); over strides, paddings, batch sizes
    /// that do and do not fill a group, with and without an input gradient.
    #[test]
    fn values_and_gradients_match_the_separate_kernels() {
        let mut rng = Rng::new(21);
        let acts = [None, Some(Activation::Relu), Some(Activation::Tanh), Some(Activation::Softplus)];
        for &(n, c, h, wd, o, k, s, p) in
            &[(3, 2, 8, 8, 4, 3, 1, 1), (9, 1, 10, 6, 3, 3, 1, 0), (2, 3, 11, 7, 2, 3, 2, 1), (17, 2, 5, 5, 3, 2, 1, 0)]
        {
            for act in acts {
                for before in [false, true] {
                    for input in [false, true] {
                        let case =
                            format!("n{n} c{c} {h}x{wd} o{o} k{k} s{s} p{p} {act:?} before {before} input {input}");
                        let x0 = random(&[n, c, h, wd], &mut rng);
                        let x = Var::from_tensor(&x0).unwrap();
                        let xt = if input { x.as_tensor().clone() } else { x0.clone() };
                        let wt = Var::from_tensor(&random(&[o, c, k, k], &mut rng)).unwrap();
                        let b = Var::from_tensor(&random(&[o], &mut rng)).unwrap();
                        let ours = conv_pool(&xt, wt.as_tensor(), b.as_tensor(), s, p, true, act).unwrap();
                        let want = separate(&xt, wt.as_tensor(), b.as_tensor(), s, p, act, before);
                        assert_eq!(ours.dims(), want.dims(), "{case}");
                        let exact = matches!(act, None | Some(Activation::Relu));
                        let tol = if exact { 0.0 } else { 1e-5 };
                        let close = |a: &[f32], e: &[f32], what: &str| {
                            let scale = e.iter().fold(1f32, |m, v| m.max(v.abs()));
                            for (i, (u, v)) in a.iter().zip(e).enumerate() {
                                assert!((u - v).abs() <= tol * scale, "{case}: {what}[{i}] {u} vs {v}");
                            }
                        };
                        close(&flat(&ours), &flat(&want), "values");
                        let probe = random(want.dims(), &mut rng);
                        let grads = |y: &Tensor| y.mul(&probe).unwrap().sum_all().unwrap().backward().unwrap();
                        let (g0, g1) = (grads(&want), grads(&ours));
                        for (v, what) in [(&wt, "kernel"), (&b, "bias")] {
                            close(&flat(g1.get(v).unwrap()), &flat(g0.get(v).unwrap()), what);
                        }
                        match (g1.get(&x), g0.get(&x)) {
                            (Some(a), Some(e)) => close(&flat(a), &flat(e), "input"),
                            (None, None) => assert!(!input, "{case}: no input gradient"),
                            _ => panic!("{case}: input gradient on one side only"),
                        }
                    }
                }
            }
        }
    }

    /// Gradients against central differences of the op itself (tanh: smooth, and a step
    /// that keeps every window's maximum).
    #[test]
    fn gradients_match_central_differences() {
        assert_op_gradients([&[2, 2, 6, 8], &[3, 2, 3, 3], &[3]], 8, |x, w, b| {
            conv_pool(x, w, b, 1, 1, true, Some(Activation::Tanh)).unwrap()
        });
    }

    /// The kernel and bias gradients are the same whatever the number of threads.
    #[test]
    fn gradients_do_not_depend_on_the_thread_count() {
        let mut rng = Rng::new(13);
        let x = random(&[37, 3, 8, 8], &mut rng);
        let (w, b) = (
            Var::from_tensor(&random(&[4, 3, 3, 3], &mut rng)).unwrap(),
            Var::from_tensor(&random(&[4], &mut rng)).unwrap(),
        );
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let y = conv_pool(&x, w.as_tensor(), b.as_tensor(), 1, 1, true, Some(Activation::Relu)).unwrap();
                let g = y.sqr().unwrap().sum_all().unwrap().backward().unwrap();
                (flat(g.get(&w).unwrap()), flat(g.get(&b).unwrap()))
            })
        };
        assert_eq!(run(1), run(3));
    }

    /// The input-only op (attacks) gives the training op's input gradient, and an odd
    /// convolution output is an error, not a silently cropped pooling.
    #[test]
    fn input_only_gradients_and_odd_outputs() {
        let mut rng = Rng::new(4);
        let (w, b) = (random(&[3, 2, 3, 3], &mut rng), random(&[3], &mut rng));
        let x = Var::from_tensor(&random(&[5, 2, 6, 6], &mut rng)).unwrap();
        let act = Some(Activation::Relu);
        let g = |weights: bool| {
            let y = conv_pool(x.as_tensor(), &w, &b, 1, 1, weights, act).unwrap();
            flat(y.sum_all().unwrap().backward().unwrap().get(&x).unwrap())
        };
        assert_eq!(g(false), g(true));
        let odd = conv_pool(&random(&[1, 2, 7, 6], &mut rng), &w, &b, 1, 1, true, act).unwrap_err();
        assert!(odd.to_string().contains("max pooling by 2 of a 7 x 6"), "{odd}");
    }
}
