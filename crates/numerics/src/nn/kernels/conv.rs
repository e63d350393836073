//! 2-D convolution with bias by im2col and a matrix product per image, forward and backward.
//! candle's CPU convolution runs direct loops and its backward a transposed convolution
//! (measured on the MNIST convnet step: most of its time); here every pass is a gemm:
//!
//! - forward: y_i = W cols_i + b, with cols_i the image's patches ([C k k, P]);
//! - input gradient: dx_i = col2im(W^T dy_i);
//! - kernel and bias gradients: dW = sum_i dy_i cols_i^T, db = sum_i sum_p dy_i.
//!
//! Images are independent, so the passes run in parallel over them. The kernel gradient is
//! summed in fixed groups of images and then in group order, so results do not depend on
//! the number of threads.

use super::act::{ActGrad, bias_then};
use super::dense::{Mat, matmul, matmul_uninit, values, written};
use super::simd::wide_fn;
use crate::nn::Activation;
use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Images per partial sum of the kernel gradient.
pub(super) const GROUP: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Geometry {
    pub n: usize,
    c: usize,
    h: usize,
    w: usize,
    pub o: usize,
    k: (usize, usize),
    stride: usize,
    pad: usize,
    pub out: (usize, usize),
}

impl Geometry {
    pub fn new(x: &[usize], w: &[usize], stride: usize, pad: usize) -> Result<Self> {
        let ([n, c, h, wd], [o, wc, kh, kw]) = (x, w) else {
            candle_core::bail!("conv2d takes [n, c, h, w] inputs and [o, c, kh, kw] kernels, got {x:?} and {w:?}")
        };
        if c != wc || stride == 0 || h + 2 * pad < *kh || wd + 2 * pad < *kw {
            candle_core::bail!("conv2d: input {x:?} does not fit kernel {w:?} with stride {stride} and padding {pad}");
        }
        let out = ((h + 2 * pad - kh) / stride + 1, (wd + 2 * pad - kw) / stride + 1);
        Ok(Geometry { n: *n, c: *c, h: *h, w: *wd, o: *o, k: (*kh, *kw), stride, pad, out })
    }
    /// A gradient arriving for the output has the output's shape.
    fn check_grad(&self, l: &Layout) -> Result<()> {
        if l.dims() != [self.n, self.o, self.out.0, self.out.1] {
            candle_core::bail!("conv2d backward: gradient of shape {:?}", l.dims());
        }
        Ok(())
    }
    /// Rows of an image's patch matrix: C kh kw.
    pub fn ckk(&self) -> usize {
        self.c * self.k.0 * self.k.1
    }
    /// Output positions per image.
    pub fn p(&self) -> usize {
        self.out.0 * self.out.1
    }
    pub fn image(&self) -> usize {
        self.c * self.h * self.w
    }
    /// For kernel column `kj`, the output columns that read inside the image, and the input
    /// column of the first.
    fn valid_cols(&self, kj: usize) -> (usize, usize) {
        let (s, pad, ow) = (self.stride, self.pad, self.out.1);
        // ow * s + kj >= pad  and  ow * s + kj < pad + w
        let lo = if kj >= pad { 0 } else { (pad - kj).div_ceil(s) };
        let hi = if self.w + pad > kj { ((self.w + pad - kj).div_ceil(s)).min(ow) } else { 0 };
        (lo, hi.max(lo))
    }

    /// cols[(c, ki, kj), (oi, oj)] = x[c, oi s - pad + ki, oj s - pad + kj], zero outside.
    pub fn im2col(&self, x: &[f32], cols: &mut [f32]) {
        let (p, (oh, ow)) = (self.p(), self.out);
        let mut r = 0;
        for c in 0..self.c {
            let plane = &x[c * self.h * self.w..(c + 1) * self.h * self.w];
            for ki in 0..self.k.0 {
                for kj in 0..self.k.1 {
                    let row = &mut cols[r * p..(r + 1) * p];
                    let (lo, hi) = self.valid_cols(kj);
                    for oi in 0..oh {
                        let dst = &mut row[oi * ow..(oi + 1) * ow];
                        let ih = (oi * self.stride + ki) as isize - self.pad as isize;
                        if ih < 0 || ih >= self.h as isize {
                            dst.fill(0.0);
                            continue;
                        }
                        let src = &plane[ih as usize * self.w..(ih as usize + 1) * self.w];
                        dst[..lo].fill(0.0);
                        dst[hi..].fill(0.0);
                        let first = lo * self.stride + kj - self.pad;
                        if self.stride == 1 {
                            dst[lo..hi].copy_from_slice(&src[first..first + hi - lo]);
                        } else {
                            for (j, d) in dst[lo..hi].iter_mut().enumerate() {
                                *d = src[first + j * self.stride];
                            }
                        }
                    }
                    r += 1;
                }
            }
        }
    }

    /// The adjoint of `im2col`: dx[c, ih, iw] += cols[(c, ki, kj), (oi, oj)].
    pub fn col2im(&self, cols: &[f32], dx: &mut [f32]) {
        let (p, (oh, ow)) = (self.p(), self.out);
        let mut r = 0;
        for c in 0..self.c {
            let plane = &mut dx[c * self.h * self.w..(c + 1) * self.h * self.w];
            for ki in 0..self.k.0 {
                for kj in 0..self.k.1 {
                    let row = &cols[r * p..(r + 1) * p];
                    let (lo, hi) = self.valid_cols(kj);
                    for oi in 0..oh {
                        let ih = (oi * self.stride + ki) as isize - self.pad as isize;
                        if ih < 0 || ih >= self.h as isize || lo >= hi {
                            continue;
                        }
                        let dst = &mut plane[ih as usize * self.w..(ih as usize + 1) * self.w];
                        let src = &row[oi * ow + lo..oi * ow + hi];
                        let first = lo * self.stride + kj - self.pad;
                        if self.stride == 1 {
                            add_into(&mut dst[first..first + src.len()], src);
                        } else {
                            for (j, v) in src.iter().enumerate() {
                                dst[first + j * self.stride] += v;
                            }
                        }
                    }
                    r += 1;
                }
            }
        }
    }
}

wide_fn! {
    /// dst += src, element by element.
    fn add_into(dst: &mut [f32], src: &[f32]) {
        dst.iter_mut().zip(src).for_each(|(d, v)| *d += v);
    }
}

/// Convolution of x [n, c, h, w] with kernels w [o, c, kh, kw], plus bias b [o], then the
/// activation `act` if any. With `weight_grad: false` the backward pass gives the input
/// gradient only (attacks).
#[derive(Debug, Clone, Copy)]
pub struct Conv2d {
    pub stride: usize,
    pub pad: usize,
    pub weight_grad: bool,
    pub act: Option<Activation>,
}

impl CustomOp3 for Conv2d {
    fn name(&self) -> &'static str {
        "flowline-conv2d"
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
        let g = Geometry::new(lx.dims(), lw.dims(), self.stride, self.pad)?;
        if lb.dims() != [g.o] {
            candle_core::bail!("conv2d: bias of shape {:?} for {} kernels", lb.dims(), g.o);
        }
        let (x, w, b) = (values(sx, lx)?, values(sw, lw)?, values(sb, lb)?);
        let (p, ckk) = (g.p(), g.ckk());
        // Each image's output is written by its product (not zeroed or filled first), then
        // the bias and the activation in one pass while it is in cache.
        // SAFETY: the images' chunks cover the buffer, and each chunk is initialised by its
        // product before the slice of floats over it is formed.
        let y = unsafe {
            written(g.n * g.o * p, |y| {
                y.par_chunks_mut((g.o * p).max(1)).enumerate().for_each_init(
                    || vec![0f32; ckk * p],
                    |cols, (i, yi)| {
                        g.im2col(&x[i * g.image()..(i + 1) * g.image()], cols);
                        let at = yi.as_mut_ptr().cast::<f32>();
                        matmul_uninit(g.o, p, ckk, at, Mat::rows(&w, ckk), Mat::rows(cols, p), 1);
                        let yi = std::slice::from_raw_parts_mut(at, yi.len());
                        for (row, &bias) in yi.chunks_mut(p.max(1)).zip(b.iter()) {
                            bias_then(self.act, row, bias);
                        }
                    },
                )
            })
        };
        Ok((CpuStorage::F32(y), Shape::from((g.n, g.o, g.out.0, g.out.1))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let g = Geometry::new(x.dims(), w.dims(), self.stride, self.pad)?;
        let dz = match self.act {
            Some(a) => y.apply_op2_no_bwd(dy, &ActGrad(a))?,
            None => dy.clone(),
        };
        let dy = &dz;
        // No input gradient for data (a tensor no gradient flows to): the first layer.
        let dx = if x.track_op() { Some(dy.apply_op2_no_bwd(w, &InputGrad(g))?) } else { None };
        if !self.weight_grad {
            return Ok((dx, None, None));
        }
        let dwb = x.apply_op2_no_bwd(dy, &KernelGrad(g))?;
        let ckk = g.ckk();
        let dw = dwb.narrow(1, 0, ckk)?.reshape(w.shape())?;
        let db = dwb.narrow(1, ckk, 1)?.reshape(g.o)?;
        Ok((dx, Some(dw), Some(db)))
    }
}

/// dx from (dy, w).
struct InputGrad(Geometry);

impl CustomOp2 for InputGrad {
    fn name(&self) -> &'static str {
        "flowline-conv2d-input-grad"
    }
    fn cpu_fwd(&self, sd: &CpuStorage, ld: &Layout, sw: &CpuStorage, lw: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let (p, ckk) = (g.p(), g.ckk());
        g.check_grad(ld)?;
        let (dy, w) = (values(sd, ld)?, values(sw, lw)?);
        let mut dx = vec![0f32; g.n * g.image()];
        dx.par_chunks_mut(g.image()).enumerate().for_each_init(
            || vec![0f32; ckk * p],
            |dcols, (i, dxi)| {
                let dyi = &dy[i * g.o * p..(i + 1) * g.o * p];
                matmul(ckk, p, g.o, dcols, Mat::rows(&w, ckk).t(), Mat::rows(dyi, p), false);
                g.col2im(dcols, dxi);
            },
        );
        Ok((CpuStorage::F32(dx), Shape::from((g.n, g.c, g.h, g.w))))
    }
}

/// [dW | db] ([o, C k k + 1]) from (x, dy).
struct KernelGrad(Geometry);

impl CustomOp2 for KernelGrad {
    fn name(&self) -> &'static str {
        "flowline-conv2d-kernel-grad"
    }
    fn cpu_fwd(&self, sx: &CpuStorage, lx: &Layout, sd: &CpuStorage, ld: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let (p, ckk, o) = (g.p(), g.ckk(), g.o);
        g.check_grad(ld)?;
        let (x, dy) = (values(sx, lx)?, values(sd, ld)?);
        let groups: Vec<(Vec<f32>, Vec<f32>)> = (0..g.n.div_ceil(GROUP))
            .into_par_iter()
            .map(|grp| {
                let (mut dw, mut db, mut cols) = (vec![0f32; o * ckk], vec![0f32; o], vec![0f32; ckk * p]);
                for i in grp * GROUP..((grp + 1) * GROUP).min(g.n) {
                    g.im2col(&x[i * g.image()..(i + 1) * g.image()], &mut cols);
                    let dyi = &dy[i * o * p..(i + 1) * o * p];
                    matmul(o, ckk, p, &mut dw, Mat::rows(dyi, p), Mat::rows(&cols, p).t(), true);
                    for (acc, row) in db.iter_mut().zip(dyi.chunks(p)) {
                        *acc += row.iter().sum::<f32>();
                    }
                }
                (dw, db)
            })
            .collect();
        Ok((CpuStorage::F32(sum_groups(groups, o, ckk)), Shape::from((o, ckk + 1))))
    }
}

/// The groups' partial (dW [o, C k k], db [o]) summed in group order into [dW | db]
/// ([o, C k k + 1]): the same sum whatever the number of threads.
pub(super) fn sum_groups(groups: Vec<(Vec<f32>, Vec<f32>)>, o: usize, ckk: usize) -> Vec<f32> {
    let mut out = vec![0f32; o * (ckk + 1)];
    for (dw, db) in groups {
        for oo in 0..o {
            let row = &mut out[oo * (ckk + 1)..(oo + 1) * (ckk + 1)];
            for (a, v) in row[..ckk].iter_mut().zip(&dw[oo * ckk..(oo + 1) * ckk]) {
                *a += v;
            }
            row[ckk] += db[oo];
        }
    }
    out
}

/// Convolution with bias and an optional activation: flowline's kernels for float32 on the
/// CPU, candle's elsewhere.
pub fn conv2d(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    stride: usize,
    pad: usize,
    weight_grad: bool,
    act: Option<Activation>,
) -> Result<Tensor> {
    if super::own(x) {
        let (w, b) = if weight_grad { (w.clone(), b.clone()) } else { (w.detach(), b.detach()) };
        return x.apply_op3(&w, &b, Conv2d { stride, pad, weight_grad, act });
    }
    let z = x.conv2d(w, pad, stride, 1, 1)?.broadcast_add(&b.reshape((1, (), 1, 1))?)?;
    match act {
        Some(a) => crate::nn::activate(a, &z),
        None => Ok(z),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::kernels::testing::{assert_op_gradients, flat, random};
    use crate::rng::Rng;
    use candle_core::Var;

    fn close(a: &[f32], b: &[f32], tol: f32, what: &str) {
        assert_eq!(a.len(), b.len(), "{what}: lengths");
        let scale = b.iter().fold(1f32, |m, v| m.max(v.abs()));
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= tol * scale, "{what}[{i}]: {x} vs {y}");
        }
    }

    /// Values and all three gradients against candle's convolution and its backward, over
    /// kernel sizes, strides, paddings and non-square images. candle 0.11's backward fails
    /// (a shape mismatch) for strides that do not divide size + 2 pad - k: there the
    /// gradients are checked against central differences only (the next test).
    #[test]
    fn forward_and_gradients_match_candles_convolution() {
        let mut rng = Rng::new(5);
        for &(n, c, h, w, o, k, stride, pad) in &[
            (2, 1, 8, 8, 3, 3, 1, 1),
            (3, 2, 7, 9, 4, 3, 1, 0),
            (2, 3, 9, 8, 2, 3, 2, 1),
            (2, 3, 9, 9, 2, 3, 2, 1),
            (1, 2, 6, 6, 3, 1, 1, 0),
            (2, 2, 10, 7, 3, 5, 2, 2),
            (9, 2, 5, 5, 2, 3, 1, 1),
        ] {
            let case = format!("n{n} c{c} {h}x{w} o{o} k{k} s{stride} p{pad}");
            let x = Var::from_tensor(&random(&[n, c, h, w], &mut rng)).unwrap();
            let wt = Var::from_tensor(&random(&[o, c, k, k], &mut rng)).unwrap();
            let b = Var::from_tensor(&random(&[o], &mut rng)).unwrap();
            let reference = x
                .as_tensor()
                .conv2d(wt.as_tensor(), pad, stride, 1, 1)
                .and_then(|y| y.broadcast_add(&b.as_tensor().reshape((1, o, 1, 1))?))
                .unwrap();
            let ours = conv2d(x.as_tensor(), wt.as_tensor(), b.as_tensor(), stride, pad, true, None).unwrap();
            assert_eq!(ours.dims(), reference.dims(), "{case}");
            close(&flat(&ours), &flat(&reference), 1e-5, &format!("{case}: values"));
            let divides = (h + 2 * pad - k) % stride == 0 && (w + 2 * pad - k) % stride == 0;
            if !divides {
                continue;
            }
            let probe = random(reference.dims(), &mut rng);
            let grads = |y: &Tensor| y.mul(&probe).unwrap().sum_all().unwrap().backward().unwrap();
            let (g0, g1) = (grads(&reference), grads(&ours));
            for (v, what) in [(&x, "input"), (&wt, "kernel"), (&b, "bias")] {
                let (a, e) = (g1.get(v).unwrap(), g0.get(v).unwrap());
                close(&flat(a), &flat(e), 1e-4, &format!("{case}: {what} gradient"));
            }
        }
    }

    /// Gradients against central differences of the op itself (in double the accuracy of
    /// float32 allows: a step of 1e-2 on a function linear in each argument is exact up to
    /// rounding).
    #[test]
    fn gradients_match_central_differences() {
        assert_op_gradients([&[2, 2, 5, 6], &[3, 2, 3, 3], &[3]], 9, |x, w, b| {
            conv2d(x, w, b, 2, 1, true, Some(Activation::Tanh)).unwrap()
        });
    }

    /// The kernel gradient is the same whatever the number of threads.
    #[test]
    fn kernel_gradients_do_not_depend_on_the_thread_count() {
        let mut rng = Rng::new(11);
        let (x, w) = (random(&[37, 3, 9, 9], &mut rng), random(&[4, 3, 3, 3], &mut rng));
        let dy = random(&[37, 4, 9, 9], &mut rng);
        let g = Geometry::new(x.dims(), w.dims(), 1, 1).unwrap();
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| flat(&x.apply_op2_no_bwd(&dy, &KernelGrad(g)).unwrap()))
        };
        assert_eq!(run(1), run(3));
    }
}
