//! A dense layer that carries forward tangents: for a state x and k directions t_1..t_k in
//! its space, y = act(x W^T + b) and the directional derivatives ty_j = J t_j =
//! act'(z) (t_j W^T), in one op whose backward pass differentiates both. Chained through a
//! network it gives Jacobian-vector products of the whole field in the forward pass: a CNF's
//! exact divergence from D basis tangents (tr J = sum_i (J e_i)_i), RNODE's Frobenius
//! penalty |J eps|^2 from random ones, and their gradients for training in one backward pass
//! (no second-order autograd, which flowline's other kernels do not support).
//!
//! Layout: the state and its tangents stacked, [n, 1 + k, in] (index 0 the state) to
//! [n, 1 + k, out]; one product covers all n (1 + k) rows. Backward, from the result
//! (y, ty) and its gradient (g, g_j), with s = act'(z) read from y:
//! dz = g s + act''(z) sum_j g_j (t_j W^T) = g s + c(y) sum_j g_j ty_j, c = -2y (tanh),
//! 1 - 2y (sigmoid), 1 - s (softplus), 0 (ReLU, none); d(t_j W^T) = g_j s; then the
//! products of an ordinary dense layer, the bias from the state rows alone.

use super::act::{activate, slope};
use super::dense::{Mat, matmul_new, values};
use super::linear::{InputGrad, WeightGrad, threads};
use super::simd::wide_fn;
use crate::nn::Activation;
use candle_core::{CpuStorage, CustomOp2, CustomOp3, D, Layout, Result, Shape, Tensor};

/// c(y) with act''(z) = c(y) act'(z), from y = act(z) and s = act'(z).
#[inline(always)]
fn curvature(act: Option<Activation>, y: f32, s: f32) -> f32 {
    match act {
        None | Some(Activation::Relu) => 0.0,
        Some(Activation::Tanh) => -2.0 * y,
        Some(Activation::Sigmoid) => 1.0 - 2.0 * y,
        Some(Activation::Softplus) => 1.0 - s,
    }
}

wide_fn! {
    /// In place on blocks of m rows of `bias.len()` values (the products): the first row
    /// becomes y = act(z + bias), each other row is multiplied by act'(z).
    fn finish(act: Option<Activation>, z: &mut [f32], bias: &[f32], m: usize) {
        let out = bias.len().max(1);
        for block in z.chunks_exact_mut(m * out) {
            let (state, tangents) = block.split_at_mut(out);
            state.iter_mut().zip(bias).for_each(|(v, b)| *v = activate(act, *v + b));
            for row in tangents.chunks_exact_mut(out) {
                row.iter_mut().zip(state.iter()).for_each(|(t, &y)| *t *= slope(act, y));
            }
        }
    }
}

wide_fn! {
    /// The gradient of the products (dz, d(t_j W^T)) from the result and its gradient, in
    /// blocks of m rows of `out` values; `acc` is scratch of `out` values.
    fn unfinish(act: Option<Activation>, y: &[f32], g: &[f32], dz: &mut [f32], m: usize, acc: &mut [f32]) {
        let out = acc.len().max(1);
        for ((yb, gb), db) in y.chunks_exact(m * out).zip(g.chunks_exact(m * out)).zip(dz.chunks_exact_mut(m * out)) {
            let (y0, ty) = yb.split_at(out);
            let (g0, gt) = gb.split_at(out);
            let (d0, dt) = db.split_at_mut(out);
            acc.fill(0.0);
            for (tr, gr) in ty.chunks_exact(out).zip(gt.chunks_exact(out)) {
                acc.iter_mut().zip(tr).zip(gr).for_each(|((a, t), g)| *a += g * t);
            }
            for (dr, gr) in dt.chunks_exact_mut(out).zip(gt.chunks_exact(out)) {
                dr.iter_mut().zip(gr).zip(y0).for_each(|((d, g), &y)| *d = g * slope(act, y));
            }
            for (((d, g), &y), a) in d0.iter_mut().zip(g0).zip(y0).zip(acc.iter()) {
                let s = slope(act, y);
                *d = g * s + curvature(act, y, s) * a;
            }
        }
    }
}

/// [n, 1 + k, in] stacked state and tangents, weights [out, in], bias [out] -> [n, 1 + k, out].
#[derive(Debug, Clone, Copy)]
pub struct TangentLinear {
    pub act: Option<Activation>,
}

impl CustomOp3 for TangentLinear {
    fn name(&self) -> &'static str {
        "flowline-tangent-linear"
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
        let (&[n, m, input], &[out, win], &[bn]) = (lx.dims(), lw.dims(), lb.dims()) else {
            candle_core::bail!(
                "tangent linear takes [n, 1 + k, in], [out, in], [out]; got {:?}, {:?}, {:?}",
                lx.dims(),
                lw.dims(),
                lb.dims()
            )
        };
        if m == 0 || win != input || bn != out {
            candle_core::bail!(
                "tangent linear: input {:?} (state first, then tangents) does not fit weights {:?} and bias {:?}",
                lx.dims(),
                lw.dims(),
                lb.dims()
            );
        }
        let (x, w, b) = (values(sx, lx)?, values(sw, lw)?, values(sb, lb)?);
        let rows = n * m;
        let mut z =
            matmul_new(rows, out, input, Mat::rows(&x, input), Mat::rows(&w, input).t(), threads(rows * input * out));
        finish(self.act, &mut z, &b, m);
        Ok((CpuStorage::F32(z), Shape::from((n, m, out))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        y: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (n, m, input) = x.dims3()?;
        let out = w.dim(0)?;
        let dz = y.apply_op2_no_bwd(g, &Unfinish { act: self.act })?;
        let flat = dz.reshape((n * m, out))?;
        let dx = if x.track_op() { Some(flat.apply_op2_no_bwd(w, &InputGrad)?.reshape((n, m, input))?) } else { None };
        let dwb = flat.apply_op2_no_bwd(&x.reshape((n * m, input))?, &WeightGrad)?;
        let dw = dwb.narrow(1, 0, input)?.contiguous()?;
        // The bias reaches the state rows only.
        let db = dz.narrow(1, 0, 1)?.sum((0, 1))?;
        Ok((dx, Some(dw), Some(db)))
    }
}

/// The products' gradient from (result, its gradient).
struct Unfinish {
    act: Option<Activation>,
}

impl CustomOp2 for Unfinish {
    fn name(&self) -> &'static str {
        "flowline-tangent-linear-grad"
    }
    fn cpu_fwd(&self, sy: &CpuStorage, ly: &Layout, sg: &CpuStorage, lg: &Layout) -> Result<(CpuStorage, Shape)> {
        let &[_, m, out] = ly.dims() else {
            candle_core::bail!("tangent linear backward: result of shape {:?}", ly.dims())
        };
        if ly.dims() != lg.dims() {
            candle_core::bail!("tangent linear backward: result {:?}, gradient {:?}", ly.dims(), lg.dims());
        }
        let (y, g) = (values(sy, ly)?, values(sg, lg)?);
        let mut dz = vec![0f32; y.len()];
        unfinish(self.act, &y, &g, &mut dz, m, &mut vec![0f32; out]);
        Ok((CpuStorage::F32(dz), ly.shape().clone()))
    }
}

/// `act(x W^T + b)` and its tangents for the stacked [n, 1 + k, in] `xt`: flowline's kernel
/// for float32 on the CPU, candle's ops (and autograd) elsewhere.
pub fn tangent_linear(xt: &Tensor, w: &Tensor, b: &Tensor, act: Option<Activation>) -> Result<Tensor> {
    if super::own(xt) && xt.rank() == 3 {
        return xt.apply_op3(w, b, TangentLinear { act });
    }
    composed(xt, w, b, act)
}

/// act(z) and its derivative act'(z), from candle's differentiable ops.
pub fn slope_of(a: Activation, z: &Tensor) -> Result<(Tensor, Tensor)> {
    let y = crate::nn::activate(a, z)?;
    let s = match a {
        Activation::Relu => z.gt(0.0)?.to_dtype(z.dtype())?,
        Activation::Tanh => y.sqr()?.affine(-1.0, 1.0)?,
        Activation::Sigmoid => y.mul(&y.affine(-1.0, 1.0)?)?,
        Activation::Softplus => crate::nn::activate(Activation::Sigmoid, z)?,
    };
    Ok((y, s))
}

/// The same from candle's ops, differentiated by candle's autograd.
fn composed(xt: &Tensor, w: &Tensor, b: &Tensor, act: Option<Activation>) -> Result<Tensor> {
    let (n, m, input) = xt.dims3()?;
    let z = xt.reshape((n * m, input))?.matmul(&w.t()?)?.reshape((n, m, w.dim(0)?))?;
    let z0 = z.narrow(1, 0, 1)?.broadcast_add(b)?;
    let (y, s) = match act {
        None => (z0.clone(), z0.ones_like()?),
        Some(a) => slope_of(a, &z0)?,
    };
    let ty = z.narrow(1, 1, m - 1)?.broadcast_mul(&s)?;
    Tensor::cat(&[&y, &ty], D::Minus2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::kernels::testing::{assert_central_differences, flat, random};
    use crate::rng::Rng;
    use candle_core::{DType, Device, Var};

    const ACTS: [Option<Activation>; 5] =
        [None, Some(Activation::Relu), Some(Activation::Tanh), Some(Activation::Sigmoid), Some(Activation::Softplus)];

    /// The tangents are the layer's directional derivatives: against central differences of
    /// the plain dense layer along each direction (float64).
    #[test]
    fn tangents_are_directional_derivatives() {
        let mut rng = Rng::new(21);
        let (n, k, i, o) = (4, 3, 5, 6);
        let (xt, w, b) = (random(&[n, 1 + k, i], &mut rng), random(&[o, i], &mut rng), random(&[o], &mut rng));
        for act in ACTS {
            let got = flat(&tangent_linear(&xt, &w, &b, act).unwrap());
            let f64s = |t: &Tensor| t.to_dtype(DType::F64).unwrap();
            let plain = |x: &Tensor| {
                let z = x.matmul(&f64s(&w).t().unwrap()).unwrap().broadcast_add(&f64s(&b)).unwrap();
                match act {
                    Some(a) => crate::nn::activate(a, &z).unwrap(),
                    None => z,
                }
            };
            let x = f64s(&xt.narrow(1, 0, 1).unwrap().squeeze(1).unwrap());
            let y: Vec<f64> = plain(&x).flatten_all().unwrap().to_vec1().unwrap();
            for j in 1..=k {
                let t = f64s(&xt.narrow(1, j, 1).unwrap().squeeze(1).unwrap());
                let h = 1e-6;
                let fd = ((plain(&(&x + (&t * h).unwrap()).unwrap()) - plain(&(&x - (&t * h).unwrap()).unwrap()))
                    .unwrap()
                    / (2.0 * h))
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f64>()
                    .unwrap();
                for r in 0..n {
                    for c in 0..o {
                        let (ours, want) = (got[(r * (1 + k) + j) * o + c] as f64, fd[r * o + c]);
                        // ReLU's kink: a direction straddling it has no derivative.
                        if act == Some(Activation::Relu) && y[r * o + c].abs() < 1e-3 {
                            continue;
                        }
                        assert!(
                            (ours - want).abs() < 1e-4 * (1.0 + want.abs()),
                            "{act:?} tangent {j}: {ours} vs {want}"
                        );
                    }
                }
                for r in 0..n {
                    for c in 0..o {
                        let (ours, want) = (got[r * (1 + k) * o + c] as f64, y[r * o + c]);
                        assert!((ours - want).abs() < 1e-5 * (1.0 + want.abs()), "{act:?} state: {ours} vs {want}");
                    }
                }
            }
        }
    }

    /// Gradients of a loss on the state and the tangents: against central differences for
    /// every activation, and the kernel against candle's composed ops and autograd.
    #[test]
    fn gradients_match_central_differences_and_the_composed_ops() {
        let mut rng = Rng::new(22);
        let (n, k, i, o) = (3, 2, 4, 5);
        let (x0, w0, b0) = (random(&[n, 1 + k, i], &mut rng), random(&[o, i], &mut rng), random(&[o], &mut rng));
        let probe = random(&[n, 1 + k, o], &mut rng);
        for act in ACTS.into_iter().filter(|a| *a != Some(Activation::Relu)) {
            let value = |x: &Tensor, w: &Tensor, b: &Tensor| {
                let y = tangent_linear(x, w, b, act).unwrap().to_dtype(DType::F64).unwrap();
                y.mul(&probe.to_dtype(DType::F64).unwrap()).unwrap().sum_all().unwrap().to_scalar::<f64>().unwrap()
            };
            let grads = |by_candle: bool| {
                let (x, w, b) =
                    (Var::from_tensor(&x0).unwrap(), Var::from_tensor(&w0).unwrap(), Var::from_tensor(&b0).unwrap());
                let f = if by_candle { composed } else { tangent_linear };
                let y = f(x.as_tensor(), w.as_tensor(), b.as_tensor(), act).unwrap();
                let g = y.mul(&probe).unwrap().sum_all().unwrap().backward().unwrap();
                [flat(g.get(&x).unwrap()), flat(g.get(&w).unwrap()), flat(g.get(&b).unwrap())]
            };
            let ours = grads(false);
            assert_central_differences([&x0, &w0, &b0], ours.clone(), value, 1);
            for (a, c) in ours.iter().zip(grads(true)) {
                for (u, v) in a.iter().zip(&c) {
                    assert!((u - v).abs() < 1e-4 * (1.0 + v.abs()), "{act:?}: kernel {u} vs composed {v}");
                }
            }
        }
    }

    #[test]
    fn bad_shapes_are_errors() {
        let dev = Device::Cpu;
        let w = Tensor::zeros((3, 4), DType::F32, &dev).unwrap();
        let b = Tensor::zeros(3, DType::F32, &dev).unwrap();
        let x = Tensor::zeros((2, 1, 5), DType::F32, &dev).unwrap();
        assert!(tangent_linear(&x, &w, &b, None).is_err());
        let x = Tensor::zeros((2, 0, 4), DType::F32, &dev).unwrap();
        assert!(tangent_linear(&x, &w, &b, None).is_err());
    }
}
