//! FFJORD's `concat_squash` layer, y = (W x + b) * sigmoid(w_g t + b_g) + w_b t, and a
//! network of them with activations between, each carrying forward tangents: with tangents
//! t_j of the input, the network returns J t_j beside its value.

use crate::nn::kernels::{linear, tangent_linear};
use crate::nn::{Activation, activate};
use crate::rng::Rng;
use candle_core::{DType, Device, Result, Tensor, Var};

/// A vector field f(t, z) that also maps tangents through its Jacobian.
pub trait TangentField: Send + Sync {
    /// Dimension of the state.
    fn dim(&self) -> usize;
    /// f(t, z) for z [n, d].
    fn eval(&self, t: f64, z: &Tensor) -> Result<Tensor>;
    /// (f(t, z), J tangents) for tangents [n, k, d]: [n, d] and [n, k, d].
    fn eval_with_tangents(&self, t: f64, z: &Tensor, tangents: &Tensor) -> Result<(Tensor, Tensor)>;
    /// The trainable parameters.
    fn vars(&self) -> Vec<Var>;
}

/// One layer; parameters as PyTorch's `nn.Linear` initialises them (uniform within
/// 1/sqrt(fan-in)), the gate and the time bias from a 1-input linear map as in FFJORD.
pub struct ConcatSquash {
    pub w: Var,
    pub b: Var,
    pub wg: Var,
    pub bg: Var,
    pub wb: Var,
}

fn uniform(rng: &mut Rng, shape: &[usize], bound: f64, dtype: DType, dev: &Device) -> Result<Var> {
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n).map(|_| (2.0 * rng.uniform() - 1.0) * bound).collect();
    Var::from_tensor(&Tensor::from_vec(v, shape, dev)?.to_dtype(dtype)?)
}

impl ConcatSquash {
    pub fn new(input: usize, out: usize, rng: &mut Rng, dtype: DType, dev: &Device) -> Result<Self> {
        let k = 1.0 / (input.max(1) as f64).sqrt();
        Ok(ConcatSquash {
            w: uniform(rng, &[out, input], k, dtype, dev)?,
            b: uniform(rng, &[out], k, dtype, dev)?,
            wg: uniform(rng, &[out], 1.0, dtype, dev)?,
            bg: uniform(rng, &[out], 1.0, dtype, dev)?,
            wb: uniform(rng, &[out], 1.0, dtype, dev)?,
        })
    }
    /// sigmoid(w_g t + b_g), [out].
    fn gate(&self, t: f64) -> Result<Tensor> {
        activate(Activation::Sigmoid, &((self.wg.as_tensor() * t)? + self.bg.as_tensor())?)
    }
    /// The layer at time t as a dense one: (W x + b) g + w_b t = (g W) x + (g b + w_b t).
    /// Small [out, in] ops; gradients reach W, b and the gate's parameters through them.
    fn folded(&self, t: f64) -> Result<(Tensor, Tensor)> {
        let g = self.gate(t)?;
        let w = self.w.as_tensor().broadcast_mul(&g.unsqueeze(1)?)?;
        let b = ((self.b.as_tensor() * &g)? + (self.wb.as_tensor() * t)?)?;
        Ok((w, b))
    }
    fn vars(&self) -> Vec<Var> {
        vec![self.w.clone(), self.b.clone(), self.wg.clone(), self.bg.clone(), self.wb.clone()]
    }
}

/// concat_squash layers with `act` between them (not after the last).
pub struct SquashMlp {
    pub layers: Vec<ConcatSquash>,
    pub act: Activation,
}

impl SquashMlp {
    /// The activation after layer i: none after the last.
    fn between(&self, i: usize) -> Option<Activation> {
        (i + 1 < self.layers.len()).then_some(self.act)
    }
    /// Widths [d, h1, ..., d].
    pub fn new(widths: &[usize], act: Activation, rng: &mut Rng, dtype: DType, dev: &Device) -> Result<Self> {
        let layers =
            widths.windows(2).map(|w| ConcatSquash::new(w[0], w[1], rng, dtype, dev)).collect::<Result<_>>()?;
        Ok(SquashMlp { layers, act })
    }
}

impl TangentField for SquashMlp {
    fn dim(&self) -> usize {
        self.layers.first().map_or(0, |l| l.w.dims()[1])
    }
    fn eval(&self, t: f64, z: &Tensor) -> Result<Tensor> {
        let mut h = z.clone();
        for (i, l) in self.layers.iter().enumerate() {
            let (w, b) = l.folded(t)?;
            h = linear(&h, &w, &b, self.between(i), true)?;
        }
        Ok(h)
    }
    /// The state and the tangents stacked ([n, 1 + k, d]) through the dense layers that
    /// carry tangents, with the activations fused in (flowline's kernel on the CPU).
    fn eval_with_tangents(&self, t: f64, z: &Tensor, tangents: &Tensor) -> Result<(Tensor, Tensor)> {
        let k = tangents.dim(1)?;
        let mut h = Tensor::cat(&[&z.unsqueeze(1)?, tangents], 1)?;
        for (i, l) in self.layers.iter().enumerate() {
            let (w, b) = l.folded(t)?;
            h = tangent_linear(&h, &w, &b, self.between(i))?;
        }
        Ok((h.narrow(1, 0, 1)?.squeeze(1)?, h.narrow(1, 1, k)?))
    }
    fn vars(&self) -> Vec<Var> {
        self.layers.iter().flat_map(ConcatSquash::vars).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// J t against central differences of the field, for every activation.
    #[test]
    fn tangents_are_the_jacobian_applied() {
        let dev = Device::Cpu;
        for act in [Activation::Tanh, Activation::Softplus, Activation::Sigmoid] {
            let mut rng = Rng::new(3);
            let f = SquashMlp::new(&[3, 5, 4, 3], act, &mut rng, DType::F64, &dev).unwrap();
            let z: Vec<f64> = (0..6).map(|_| rng.normal()).collect();
            let z = Tensor::from_vec(z, (2, 3), &dev).unwrap();
            let dirs: Vec<f64> = (0..12).map(|_| rng.normal()).collect();
            let dirs = Tensor::from_vec(dirs, (2, 2, 3), &dev).unwrap();
            let (y, jt) = f.eval_with_tangents(0.3, &z, &dirs).unwrap();
            assert_eq!(y.to_vec2::<f64>().unwrap(), f.eval(0.3, &z).unwrap().to_vec2::<f64>().unwrap());
            let h = 1e-6;
            for j in 0..2 {
                let d = dirs.narrow(1, j, 1).unwrap().squeeze(1).unwrap();
                let plus = f.eval(0.3, &(&z + (&d * h).unwrap()).unwrap()).unwrap();
                let minus = f.eval(0.3, &(&z - (&d * h).unwrap()).unwrap()).unwrap();
                let fd = ((plus - minus).unwrap() / (2.0 * h)).unwrap().to_vec2::<f64>().unwrap();
                let got = jt.narrow(1, j, 1).unwrap().squeeze(1).unwrap().to_vec2::<f64>().unwrap();
                for (a, b) in fd.iter().flatten().zip(got.iter().flatten()) {
                    assert!((a - b).abs() < 1e-7, "{act:?}: {a} vs {b}");
                }
            }
        }
    }

    /// The float32 CPU path (flowline's fused dense kernels) against the float64 composed
    /// ops on the same weights: values, tangents, and the gradients of a probe of both.
    #[test]
    fn the_cpu_kernels_match_the_composed_ops() {
        let dev = Device::Cpu;
        let build = |dtype| SquashMlp::new(&[3, 8, 8, 3], Activation::Tanh, &mut Rng::new(5), dtype, &dev).unwrap();
        let (f32_net, f64_net) = (build(DType::F32), build(DType::F64));
        let mut rng = Rng::new(6);
        let mut draw = |n: usize| (0..n).map(|_| rng.normal()).collect::<Vec<f64>>();
        let (z, tang, p, q) = (draw(12), draw(36), draw(12), draw(36));
        let run = |net: &SquashMlp, dtype: DType| {
            let t = |v: &Vec<f64>, s: &[usize]| Tensor::from_vec(v.clone(), s, &dev).unwrap().to_dtype(dtype).unwrap();
            let (y, jt) = net.eval_with_tangents(0.7, &t(&z, &[4, 3]), &t(&tang, &[4, 3, 3])).unwrap();
            let probe = ((&y * t(&p, &[4, 3])).unwrap().sum_all().unwrap()
                + (&jt * t(&q, &[4, 3, 3])).unwrap().sum_all().unwrap())
            .unwrap();
            let grads = probe.backward().unwrap();
            let flat = |x: &Tensor| x.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
            let mut out = vec![flat(&y), flat(&jt)];
            out.extend(net.vars().iter().map(|v| flat(grads.get(v.as_tensor()).unwrap())));
            out
        };
        for (k, (a, b)) in run(&f32_net, DType::F32).iter().zip(run(&f64_net, DType::F64)).enumerate() {
            let scale = b.iter().fold(1f64, |m, v| m.max(v.abs()));
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() < 2e-5 * scale, "output {k}: {x} vs {y}");
            }
        }
    }
}
