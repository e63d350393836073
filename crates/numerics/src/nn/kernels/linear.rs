//! A dense layer y = act(x W^T + b) as one op: the product through gemm with the bias as its
//! starting value and the activation applied in place, where candle runs a matmul, a
//! broadcast add and up to seven ops for the activation, each with its own pass, allocation
//! and backward node. Backward: dz = dy act'(y), then two gemm ops: dx = dz W, and
//! [dW | db] = [dz^T x | sum dz].

use super::act::{ActGrad, rows_bias_then};
use super::dense::{Mat, matmul_new, matmul_strided, values};
use super::simd::wide_fn;
use crate::nn::Activation;
use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};

/// Threads for a product of `macs` multiply-adds: below ~8 million, the calling thread
/// alone. Waking gemm's threads costs context switches that outweigh the split: the neural
/// ODE's 512 x 64 x 64 products (2.1 million) took node_rk4 from 65 to 37 ms and
/// node_dopri5 from 15.5 to 9 ms when they stopped being split (bench/NOTES.md, change 11).
pub(super) fn threads(macs: usize) -> usize {
    if macs > 1 << 23 { rayon::current_num_threads() } else { 1 }
}

/// With `weight_grad: false` the backward pass gives the input gradient only (attacks).
#[derive(Debug, Clone, Copy)]
pub struct Linear {
    pub act: Option<Activation>,
    pub weight_grad: bool,
}

impl CustomOp3 for Linear {
    fn name(&self) -> &'static str {
        "flowline-linear"
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
        // [n, ...] inputs are read as [n, the product of the rest] (a flatten folded in).
        let (&[rows, ref rest @ ..], &[out, win], &[bn]) = (lx.dims(), lw.dims(), lb.dims()) else {
            candle_core::bail!(
                "linear takes [n, in], [out, in], [out]; got {:?}, {:?}, {:?}",
                lx.dims(),
                lw.dims(),
                lb.dims()
            )
        };
        let input: usize = rest.iter().product();
        if rest.is_empty() {
            candle_core::bail!("linear takes [n, in] inputs, got {:?}", lx.dims());
        }
        if win != input || bn != out {
            candle_core::bail!(
                "linear: input {:?} does not fit weights {:?} and bias {:?}",
                lx.dims(),
                lw.dims(),
                lb.dims()
            );
        }
        let (x, w, b) = (values(sx, lx)?, values(sw, lw)?, values(sb, lb)?);
        // The product into a fresh buffer (not zeroed first), then bias and activation in
        // one pass.
        let t = threads(rows * input * out);
        let mut y = matmul_new(rows, out, input, Mat::rows(&x, input), Mat::rows(&w, input).t(), t);
        rows_bias_then(self.act, &mut y, &b);
        Ok((CpuStorage::F32(y), Shape::from((rows, out))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (input, out) = (w.dim(1)?, w.dim(0)?);
        let x2 = x.flatten_from(1)?;
        let dz = match self.act {
            Some(a) => y.apply_op2_no_bwd(dy, &ActGrad(a))?,
            None => dy.clone(),
        };
        // No input gradient for data (a tensor no gradient flows to): the first layer.
        let dx = if x.track_op() { Some(dz.apply_op2_no_bwd(w, &InputGrad)?.reshape(x.shape())?) } else { None };
        if !self.weight_grad {
            return Ok((dx, None, None));
        }
        let dwb = dz.apply_op2_no_bwd(&x2, &WeightGrad)?;
        let dw = dwb.narrow(1, 0, input)?.contiguous()?;
        let db = dwb.narrow(1, input, 1)?.reshape(out)?;
        Ok((dx, Some(dw), Some(db)))
    }
}

/// dx [n, in] from (dz, w).
pub(super) struct InputGrad;

impl CustomOp2 for InputGrad {
    fn name(&self) -> &'static str {
        "flowline-linear-input-grad"
    }
    fn cpu_fwd(&self, sd: &CpuStorage, ld: &Layout, sw: &CpuStorage, lw: &Layout) -> Result<(CpuStorage, Shape)> {
        let (&[rows, out], &[wo, input]) = (ld.dims(), lw.dims()) else {
            candle_core::bail!("linear backward: gradient {:?}, weights {:?}", ld.dims(), lw.dims())
        };
        if wo != out {
            candle_core::bail!("linear backward: gradient {:?} for weights {:?}", ld.dims(), lw.dims());
        }
        let (dz, w) = (values(sd, ld)?, values(sw, lw)?);
        let t = threads(rows * input * out);
        let dx = matmul_new(rows, input, out, Mat::rows(&dz, out), Mat::rows(&w, input), t);
        Ok((CpuStorage::F32(dx), Shape::from((rows, input))))
    }
}

/// [dW | db] ([out, in + 1]) from (dz, x).
pub(super) struct WeightGrad;

impl CustomOp2 for WeightGrad {
    fn name(&self) -> &'static str {
        "flowline-linear-weight-grad"
    }
    fn cpu_fwd(&self, sd: &CpuStorage, ld: &Layout, sx: &CpuStorage, lx: &Layout) -> Result<(CpuStorage, Shape)> {
        let (&[rows, out], &[xr, input]) = (ld.dims(), lx.dims()) else {
            candle_core::bail!("linear backward: gradient {:?}, input {:?}", ld.dims(), lx.dims())
        };
        if xr != rows {
            candle_core::bail!("linear backward: gradient {:?} for input {:?}", ld.dims(), lx.dims());
        }
        let (dz, x) = (values(sd, ld)?, values(sx, lx)?);
        let mut packed = vec![0f32; out * (input + 1)];
        let t = threads(rows * input * out);
        matmul_strided(
            out,
            input,
            rows,
            &mut packed,
            input + 1,
            Mat::rows(&dz, out).t(),
            Mat::rows(&x, input),
            false,
            t,
        );
        let mut db = vec![0f32; out];
        column_sums(&dz, &mut db);
        for (o, v) in db.into_iter().enumerate() {
            packed[o * (input + 1) + input] = v;
        }
        Ok((CpuStorage::F32(packed), Shape::from((out, input + 1))))
    }
}

wide_fn! {
    /// sums[j] += the sum of column j of the row-major matrix `m` with `sums.len()` columns.
    fn column_sums(m: &[f32], sums: &mut [f32]) {
        for row in m.chunks_exact(sums.len().max(1)) {
            sums.iter_mut().zip(row).for_each(|(s, v)| *s += v);
        }
    }
}

/// `linear` of x [n, ...] read as [n, the product of the rest]: a flatten and the dense
/// layer after it as one op (candle's flatten is a node whose gradient it accumulates into
/// a zeroed buffer of the activation's size).
pub fn flatten_linear(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    act: Option<Activation>,
    weight_grad: bool,
) -> Result<Tensor> {
    if super::own(x) && x.rank() >= 2 {
        let (w, b) = if weight_grad { (w.clone(), b.clone()) } else { (w.detach(), b.detach()) };
        return x.apply_op3(&w, &b, Linear { act, weight_grad });
    }
    linear(&x.flatten_from(1)?, w, b, act, weight_grad)
}

/// `act(x W^T + b)` for x [n, in]: flowline's kernel for float32 on the CPU, candle's ops
/// elsewhere.
pub fn linear(x: &Tensor, w: &Tensor, b: &Tensor, act: Option<Activation>, weight_grad: bool) -> Result<Tensor> {
    if super::own(x) && x.rank() == 2 {
        let (w, b) = if weight_grad { (w.clone(), b.clone()) } else { (w.detach(), b.detach()) };
        return x.apply_op3(&w, &b, Linear { act, weight_grad });
    }
    let z = x.matmul(&w.t()?)?.broadcast_add(b)?;
    match act {
        Some(a) => crate::nn::activate(a, &z),
        None => Ok(z),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::kernels::testing::{assert_central_differences, flat, random};
    use crate::rng::Rng;
    use candle_core::Var;

    /// Values and gradients against candle's matmul, add and composed activation, for small
    /// and large (parallel) products and every activation.
    #[test]
    fn dense_layers_match_candles_ops() {
        let mut rng = Rng::new(6);
        for &(n, i, o) in &[(5, 3, 4), (300, 70, 65), (1, 1, 1)] {
            for act in [
                None,
                Some(Activation::Relu),
                Some(Activation::Tanh),
                Some(Activation::Sigmoid),
                Some(Activation::Softplus),
            ] {
                let (x, w, b) = (random(&[n, i], &mut rng), random(&[o, i], &mut rng), random(&[o], &mut rng));
                let (xv, wv, bv) =
                    (Var::from_tensor(&x).unwrap(), Var::from_tensor(&w).unwrap(), Var::from_tensor(&b).unwrap());
                let z =
                    xv.as_tensor().matmul(&wv.as_tensor().t().unwrap()).unwrap().broadcast_add(bv.as_tensor()).unwrap();
                let reference = match act {
                    Some(a) => crate::nn::activate(a, &z).unwrap(),
                    None => z,
                };
                let ours = linear(xv.as_tensor(), wv.as_tensor(), bv.as_tensor(), act, true).unwrap();
                let scale = flat(&reference).iter().fold(1f32, |m, v| m.max(v.abs()));
                for (a, e) in flat(&ours).iter().zip(flat(&reference)) {
                    assert!((a - e).abs() <= 2e-5 * scale, "{n}x{i}x{o} {act:?}: {a} vs {e}");
                }
                let probe = random(&[n, o], &mut rng);
                let g = |y: &Tensor| y.mul(&probe).unwrap().sum_all().unwrap().backward().unwrap();
                let (ga, gb) = (g(&ours), g(&reference));
                for (v, what) in [(&xv, "x"), (&wv, "w"), (&bv, "b")] {
                    let e = flat(gb.get(v).unwrap());
                    let scale = e.iter().fold(1f32, |m, v| m.max(v.abs()));
                    for (a, e) in flat(ga.get(v).unwrap()).iter().zip(&e) {
                        assert!((a - e).abs() <= 1e-4 * scale, "{n}x{i}x{o} {act:?} d{what}: {a} vs {e}");
                    }
                }
            }
        }
    }

    /// A flatten folded into the dense layer: the same values and gradients as flatten, then
    /// the layer.
    #[test]
    fn flatten_then_dense_matches_the_two_steps() {
        let mut rng = Rng::new(9);
        let (x0, w0, b0) = (random(&[3, 2, 2, 3], &mut rng), random(&[4, 12], &mut rng), random(&[4], &mut rng));
        let probe = random(&[3, 4], &mut rng);
        let run = |fold: bool| {
            let (x, w, b) =
                (Var::from_tensor(&x0).unwrap(), Var::from_tensor(&w0).unwrap(), Var::from_tensor(&b0).unwrap());
            let act = Some(Activation::Tanh);
            let y = if fold {
                flatten_linear(x.as_tensor(), w.as_tensor(), b.as_tensor(), act, true)
            } else {
                linear(&x.as_tensor().flatten_from(1).unwrap(), w.as_tensor(), b.as_tensor(), act, true)
            }
            .unwrap();
            let g = y.mul(&probe).unwrap().sum_all().unwrap().backward().unwrap();
            let dx = g.get(&x).unwrap();
            assert_eq!(dx.dims(), x0.dims());
            [flat(&y), flat(dx), flat(g.get(&w).unwrap()), flat(g.get(&b).unwrap())]
        };
        assert_eq!(run(true), run(false));
    }

    /// Gradients against central differences, through tanh.
    #[test]
    fn gradients_match_central_differences() {
        let mut rng = Rng::new(8);
        let (x0, w0, b0) = (random(&[4, 3], &mut rng), random(&[2, 3], &mut rng), random(&[2], &mut rng));
        let probe = random(&[4, 2], &mut rng);
        let act = Some(Activation::Tanh);
        let value = |x: &Tensor, w: &Tensor, b: &Tensor| {
            linear(x, w, b, act, true)
                .unwrap()
                .to_dtype(candle_core::DType::F64)
                .unwrap()
                .mul(&probe.to_dtype(candle_core::DType::F64).unwrap())
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f64>()
                .unwrap()
        };
        let (x, w, b) =
            (Var::from_tensor(&x0).unwrap(), Var::from_tensor(&w0).unwrap(), Var::from_tensor(&b0).unwrap());
        let grads = linear(x.as_tensor(), w.as_tensor(), b.as_tensor(), act, true)
            .unwrap()
            .mul(&probe)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let g = |v: &Var| flat(grads.get(v).unwrap());
        assert_central_differences([&x0, &w0, &b0], [g(&x), g(&w), g(&b)], value, 1);
    }
}
