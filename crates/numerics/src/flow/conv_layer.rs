//! FFJORD's `concat_conv2d`: a convolution of [t, x], the time as an extra first input
//! channel, stride 1 and "same" padding so that a field keeps the image's shape. At a fixed
//! time the time channel's contribution is a fixed map (constant inside, smaller at the
//! borders the padding reaches), computed once per evaluation from a 1-channel image and
//! added with the bias; the convolution itself runs on flowline's kernels.

use crate::nn::Activation;
use crate::nn::kernels::{conv2d, slope_of};
use crate::rng::Rng;
use candle_core::{DType, Device, Result, Tensor, Var};

/// One layer; PyTorch's `nn.Conv2d(in + 1, out, k)` initialisation (uniform within
/// 1/sqrt(fan-in)).
pub struct ConcatConv2d {
    /// [out, 1 + in, k, k]; input channel 0 is the time.
    pub w: Var,
    pub b: Var,
}

impl ConcatConv2d {
    pub fn new(input: usize, out: usize, kernel: usize, rng: &mut Rng, dtype: DType, dev: &Device) -> Result<Self> {
        let fan_in = ((input + 1) * kernel * kernel) as f64;
        let bound = 1.0 / fan_in.sqrt();
        let mut draw = |shape: &[usize]| -> Result<Var> {
            let n: usize = shape.iter().product();
            let v: Vec<f64> = (0..n).map(|_| (2.0 * rng.uniform() - 1.0) * bound).collect();
            Var::from_tensor(&Tensor::from_vec(v, shape, dev)?.to_dtype(dtype)?)
        };
        let w = draw(&[out, input + 1, kernel, kernel])?;
        let b = draw(&[out])?;
        Ok(ConcatConv2d { w, b })
    }

    /// (input channels, output channels, kernel size).
    pub fn sizes(&self) -> (usize, usize, usize) {
        let d = self.w.dims();
        (d[1] - 1, d[0], d[2])
    }

    fn pad(&self) -> usize {
        self.sizes().2 / 2
    }

    /// The bias plus the time channel's contribution at time t on h x w images: [1, out, h, w].
    fn time_map(&self, t: f64, h: usize, w: usize) -> Result<Tensor> {
        let wt = self.w.as_tensor().narrow(1, 0, 1)?.contiguous()?;
        let ones = Tensor::full(t, (1, 1, h, w), &self.w.device().clone())?.to_dtype(self.w.dtype())?;
        conv2d(&ones, &wt, self.b.as_tensor(), 1, self.pad(), true, None)
    }

    /// The convolution of the image channels alone (no bias) of x [m, in, h, w].
    fn space(&self, x: &Tensor) -> Result<Tensor> {
        let input = self.sizes().0;
        let wx = self.w.as_tensor().narrow(1, 1, input)?.contiguous()?;
        let zero = Tensor::zeros(self.sizes().1, x.dtype(), x.device())?;
        conv2d(&x.contiguous()?, &wx, &zero, 1, self.pad(), true, None)
    }

    /// act(conv([t, x])) for x [m, in, h, w].
    pub fn forward(&self, t: f64, x: &Tensor, act: Option<Activation>) -> Result<Tensor> {
        let (_, _, h, w) = x.dims4()?;
        let z = self.space(x)?.broadcast_add(&self.time_map(t, h, w)?)?;
        match act {
            Some(a) => crate::nn::activate(a, &z),
            None => Ok(z),
        }
    }

    /// The state and its tangents stacked, xt [n, 1 + k, in, h, w], to [n, 1 + k, out, h, w]:
    /// the state through the layer, each tangent through its Jacobian (the convolution
    /// without bias or time, scaled by the activation's slope at the state).
    pub fn forward_tangents(&self, t: f64, xt: &Tensor, act: Option<Activation>) -> Result<Tensor> {
        let (n, m, c, h, w) = xt.dims5()?;
        let z = self.space(&xt.reshape((n * m, c, h, w))?)?;
        let out = z.dim(1)?;
        let z = z.reshape((n, m, out, h, w))?;
        let z0 = z.narrow(1, 0, 1)?.broadcast_add(&self.time_map(t, h, w)?.unsqueeze(0)?)?;
        let tangents = z.narrow(1, 1, m - 1)?;
        match act {
            None => Tensor::cat(&[&z0, &tangents], 1),
            Some(a) => {
                let (y, slope) = slope_of(a, &z0)?;
                Tensor::cat(&[&y, &tangents.broadcast_mul(&slope)?], 1)
            }
        }
    }

    pub fn named(&self) -> Vec<(&'static str, &Var)> {
        vec![("weight", &self.w), ("bias", &self.b)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layer against the convolution of the explicitly concatenated [t, x] (candle's own
    /// conv2d), and its tangents against central differences.
    #[test]
    fn matches_the_convolution_of_time_and_image_and_its_tangents_the_jacobian() {
        let dev = Device::Cpu;
        let mut rng = Rng::new(11);
        for act in [None, Some(Activation::Tanh), Some(Activation::Softplus)] {
            let layer = ConcatConv2d::new(2, 3, 3, &mut rng, DType::F64, &dev).unwrap();
            let mut draw = |shape: &[usize]| {
                let n: usize = shape.iter().product();
                Tensor::from_vec((0..n).map(|_| rng.normal()).collect::<Vec<f64>>(), shape, &dev).unwrap()
            };
            let (x, v) = (draw(&[2, 2, 5, 4]), draw(&[2, 2, 2, 5, 4]));
            let t = 0.37;
            let y = layer.forward(t, &x, act).unwrap();
            let tx = Tensor::cat(&[&Tensor::full(t, (2, 1, 5, 4), &dev).unwrap(), &x], 1).unwrap();
            let mut want = tx
                .conv2d(layer.w.as_tensor(), 1, 1, 1, 1)
                .unwrap()
                .broadcast_add(&layer.b.as_tensor().reshape((1, 3, 1, 1)).unwrap())
                .unwrap();
            if let Some(a) = act {
                want = crate::nn::activate(a, &want).unwrap();
            }
            let diff = (&y - &want).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap();
            assert!(diff < 1e-12, "{act:?}: value off by {diff}");
            let xt = Tensor::cat(&[&x.unsqueeze(1).unwrap(), &v], 1).unwrap();
            let yt = layer.forward_tangents(t, &xt, act).unwrap();
            let y0 = yt.narrow(1, 0, 1).unwrap().squeeze(1).unwrap();
            let d0 = (&y0 - &y).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap();
            assert!(d0 < 1e-12, "{act:?}: stacked value off by {d0}");
            let h = 1e-6;
            for j in 0..2 {
                let d = v.narrow(1, j, 1).unwrap().squeeze(1).unwrap();
                let plus = layer.forward(t, &(&x + (&d * h).unwrap()).unwrap(), act).unwrap();
                let minus = layer.forward(t, &(&x - (&d * h).unwrap()).unwrap(), act).unwrap();
                let fd = ((plus - minus).unwrap() / (2.0 * h)).unwrap();
                let got = yt.narrow(1, 1 + j, 1).unwrap().squeeze(1).unwrap();
                let err = (fd - got).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap();
                assert!(err < 1e-7, "{act:?}: tangent {j} off by {err}");
            }
        }
    }
}
