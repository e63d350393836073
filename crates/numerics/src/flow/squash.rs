//! FFJORD's `concat_squash` layer, y = (W x + b) * sigmoid(w_g t + b_g) + w_b t, and a
//! network of them with activations between, each carrying forward tangents: with tangents
//! t_j of the input, the network returns J t_j beside its value.

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
        ((self.wg.as_tensor() * t)? + self.bg.as_tensor())?.neg()?.exp()?.affine(1.0, 1.0)?.recip()
    }
    pub fn forward(&self, t: f64, x: &Tensor) -> Result<Tensor> {
        let z = x.matmul(&self.w.as_tensor().t()?)?.broadcast_add(self.b.as_tensor())?;
        z.broadcast_mul(&self.gate(t)?)?.broadcast_add(&(self.wb.as_tensor() * t)?)
    }
    /// The tangents' image: (t_j W^T) * gate; the time terms do not depend on x.
    fn tangent(&self, t: f64, tx: &Tensor) -> Result<Tensor> {
        let (n, k, d) = tx.dims3()?;
        let out = self.w.dim(0)?;
        let ty = tx.reshape((n * k, d))?.matmul(&self.w.as_tensor().t()?)?.reshape((n, k, out))?;
        ty.broadcast_mul(&self.gate(t)?)
    }
    fn vars(&self) -> Vec<Var> {
        vec![self.w.clone(), self.b.clone(), self.wg.clone(), self.bg.clone(), self.wb.clone()]
    }
}

/// act'(z) from y = act(z).
fn slope(act: Activation, y: &Tensor) -> Result<Tensor> {
    match act {
        Activation::Relu => y.gt(0.0)?.to_dtype(y.dtype()),
        Activation::Tanh => y.sqr()?.affine(-1.0, 1.0),
        Activation::Sigmoid => y.mul(&y.affine(-1.0, 1.0)?),
        Activation::Softplus => y.neg()?.exp()?.affine(-1.0, 1.0),
    }
}

/// concat_squash layers with `act` between them (not after the last).
pub struct SquashMlp {
    pub layers: Vec<ConcatSquash>,
    pub act: Activation,
}

impl SquashMlp {
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
            h = l.forward(t, &h)?;
            if i + 1 < self.layers.len() {
                h = activate(self.act, &h)?;
            }
        }
        Ok(h)
    }
    fn eval_with_tangents(&self, t: f64, z: &Tensor, tangents: &Tensor) -> Result<(Tensor, Tensor)> {
        let (mut h, mut th) = (z.clone(), tangents.clone());
        for (i, l) in self.layers.iter().enumerate() {
            h = l.forward(t, &h)?;
            th = l.tangent(t, &th)?;
            if i + 1 < self.layers.len() {
                h = activate(self.act, &h)?;
                th = th.broadcast_mul(&slope(self.act, &h)?.unsqueeze(1)?)?;
            }
        }
        Ok((h, th))
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
}
