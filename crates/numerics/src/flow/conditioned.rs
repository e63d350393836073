//! A field conditioned on an image: the conditioning channels are concatenated to the
//! state's as extra input channels of the net (MRCNF's finer scales see the coarse image
//! this way, as the reference code's `concat_var`). Only the state moves, so the tangents
//! of the conditioning channels are zero.

use super::field::{TangentField, TimeNet};
use candle_core::{Result, Tensor, Var};

pub struct Conditioned<'a> {
    /// From [state + conditioning channels] to [state channels].
    pub net: &'a TimeNet,
    /// The conditioning rows, [n, channels h w], one per example of the solve.
    pub cond: Tensor,
}

impl Conditioned<'_> {
    fn input(&self, z: &Tensor) -> Result<Tensor> {
        Tensor::cat(&[z, &self.cond], 1)
    }
}

impl TangentField for Conditioned<'_> {
    fn dim(&self) -> usize {
        self.net.dim()
    }
    fn eval(&self, t: f64, z: &Tensor) -> Result<Tensor> {
        self.net.eval(t, &self.input(z)?)
    }
    fn eval_with_tangents(&self, t: f64, z: &Tensor, tangents: &Tensor) -> Result<(Tensor, Tensor)> {
        let (n, k) = (tangents.dim(0)?, tangents.dim(1)?);
        let still = Tensor::zeros((n, k, self.cond.dim(1)?), tangents.dtype(), tangents.device())?;
        self.net.eval_with_tangents(t, &self.input(z)?, &Tensor::cat(&[tangents, &still], 2)?)
    }
    fn vars(&self) -> Vec<Var> {
        self.net.vars()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::conv_field_specs;
    use crate::nn::Activation;
    use crate::rng::Rng;
    use candle_core::{DType, Device};

    /// J t of the state alone, against central differences that hold the conditioning
    /// image fixed; and the output depends on the conditioning image.
    #[test]
    fn tangents_move_the_state_only() {
        let dev = Device::Cpu;
        let mut rng = Rng::new(4);
        let specs = conv_field_specs(3, &[4], 3, Activation::Softplus);
        let net = TimeNet::init_between(&specs, &[4, 2, 2], &[3, 2, 2], &mut rng, DType::F64, &dev).unwrap();
        let mut draw = |n: usize| (0..n).map(|_| rng.normal()).collect::<Vec<f64>>();
        let (z, cond, dir) = (draw(24), draw(8), draw(24));
        let t = |v: &Vec<f64>, s: &[usize]| Tensor::from_vec(v.clone(), s, &dev).unwrap();
        let field = Conditioned { net: &net, cond: t(&cond, &[2, 4]) };
        assert_eq!(field.dim(), 12);
        let (y, jt) = field.eval_with_tangents(0.4, &t(&z, &[2, 12]), &t(&dir, &[2, 1, 12])).unwrap();
        assert_eq!(y.dims(), &[2, 12]);
        let h = 1e-6;
        let shifted = |s: f64| {
            let zz: Vec<f64> = z.iter().zip(&dir).map(|(a, b)| a + s * b).collect();
            field.eval(0.4, &t(&zz, &[2, 12])).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap()
        };
        let (p, m) = (shifted(h), shifted(-h));
        let got = jt.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        for (i, g) in got.iter().enumerate() {
            let fd = (p[i] - m[i]) / (2.0 * h);
            assert!((g - fd).abs() < 1e-7, "{g} vs {fd}");
        }
        let other = Conditioned { net: &net, cond: t(&cond.iter().map(|v| v + 1.0).collect(), &[2, 4]) };
        let y2 = other.eval(0.4, &t(&z, &[2, 12])).unwrap();
        let diff = (y - y2).unwrap().abs().unwrap().sum_all().unwrap().to_scalar::<f64>().unwrap();
        assert!(diff > 1e-3, "the conditioning image changes nothing: {diff}");
    }
}
