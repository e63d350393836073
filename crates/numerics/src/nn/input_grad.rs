//! Two CPU ops with their own backward pass. A convolution that backpropagates to its input
//! only, for attacks: candle's backward also computes the kernel gradient and goes through
//! a slow transposed convolution (measured at batch 100, 16 -> 32 channels at 28x28:
//! forward 46 ms, transposed convolution 120 ms, kernel gradient 61 ms); here the input
//! gradient of a stride-1 convolution is a plain convolution with the flipped, transposed
//! kernel. And max pooling (kernel = stride) that routes the whole gradient to each
//! window's maximum: candle 0.11's max-pool backward multiplies it by (maxima in the
//! window) / k^2, a quarter of the true gradient for 2x2 windows. Other devices keep
//! candle's ops.

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor};

fn tensor_of(s: &CpuStorage, l: &Layout) -> Result<Tensor> {
    let data = match s {
        CpuStorage::F32(v) => v,
        _ => candle_core::bail!("input-gradient ops take float32"),
    };
    let t = match l.contiguous_offsets() {
        Some((a, b)) => Tensor::from_slice(&data[a..b], l.shape(), &candle_core::Device::Cpu)?,
        None => {
            // Walk the strided view in row-major order.
            let (dims, strides) = (l.dims(), l.stride());
            let mut v = Vec::with_capacity(l.shape().elem_count());
            let mut index = vec![0usize; dims.len()];
            for _ in 0..l.shape().elem_count() {
                v.push(data[l.start_offset() + index.iter().zip(strides).map(|(i, s)| i * s).sum::<usize>()]);
                for d in (0..dims.len()).rev() {
                    index[d] += 1;
                    if index[d] < dims[d] {
                        break;
                    }
                    index[d] = 0;
                }
            }
            Tensor::from_vec(v, l.shape(), &candle_core::Device::Cpu)?
        }
    };
    Ok(t)
}

fn storage_of(t: &Tensor) -> Result<(CpuStorage, Shape)> {
    Ok((CpuStorage::F32(t.flatten_all()?.to_vec1::<f32>()?), t.shape().clone()))
}

pub struct ConvInputGrad {
    kernel: Tensor,
    /// The kernel flipped in both spatial axes, in and out channels swapped.
    adjoint: Tensor,
    pad: usize,
    stride: usize,
}

impl ConvInputGrad {
    pub fn new(kernel: &Tensor, pad: usize, stride: usize) -> Result<Self> {
        let kernel = kernel.detach();
        let (_, _, kh, kw) = kernel.dims4()?;
        let rev = |n: usize| Tensor::from_vec((0..n as u32).rev().collect::<Vec<_>>(), n, kernel.device());
        let adjoint = kernel.index_select(&rev(kh)?, 2)?.index_select(&rev(kw)?, 3)?.transpose(0, 1)?.contiguous()?;
        Ok(ConvInputGrad { kernel, adjoint, pad, stride })
    }
}

impl CustomOp1 for ConvInputGrad {
    fn name(&self) -> &'static str {
        "conv2d-input-grad"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        storage_of(&tensor_of(s, l)?.conv2d(&self.kernel, self.pad, self.stride, 1, 1)?)
    }
    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let k = self.kernel.dim(2)?;
        if self.stride == 1 && self.pad < k && self.kernel.dim(3)? == k {
            return Ok(Some(grad.conv2d(&self.adjoint, k - 1 - self.pad, 1, 1, 1)?));
        }
        let out = (grad.dim(2)? - 1) * self.stride + k - 2 * self.pad;
        let g = grad.conv_transpose2d(&self.kernel, self.pad, arg.dim(2)? - out, self.stride, 1)?;
        Ok(Some(g))
    }
}

/// Max pooling with kernel = stride (no overlap), which is all flowline allows.
pub struct MaxPool {
    pub size: usize,
}

impl MaxPool {
    /// For each output position, the flat index of its window's first maximum.
    fn argmax(&self, x: &[f32], dims: (usize, usize, usize, usize)) -> (Vec<f32>, Vec<usize>) {
        let (n, c, h, w) = dims;
        let k = self.size;
        let (oh, ow) = (h / k, w / k);
        let mut vals = Vec::with_capacity(n * c * oh * ow);
        let mut at = Vec::with_capacity(n * c * oh * ow);
        for plane in 0..n * c {
            let base = plane * h * w;
            for i in 0..oh {
                for j in 0..ow {
                    let mut best = (f32::NEG_INFINITY, base + i * k * w + j * k);
                    for di in 0..k {
                        for dj in 0..k {
                            let p = base + (i * k + di) * w + j * k + dj;
                            if x[p] > best.0 {
                                best = (x[p], p);
                            }
                        }
                    }
                    vals.push(best.0);
                    at.push(best.1);
                }
            }
        }
        (vals, at)
    }
}

impl CustomOp1 for MaxPool {
    fn name(&self) -> &'static str {
        "maxpool2d"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = tensor_of(s, l)?;
        let dims = x.dims4()?;
        let (vals, _) = self.argmax(&x.flatten_all()?.to_vec1::<f32>()?, dims);
        let shape = Shape::from((dims.0, dims.1, dims.2 / self.size, dims.3 / self.size));
        Ok((CpuStorage::F32(vals), shape))
    }
    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let dims = arg.dims4()?;
        let (_, at) = self.argmax(&arg.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?, dims);
        let g = grad.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        let mut out = vec![0f32; arg.elem_count()];
        for (p, v) in at.into_iter().zip(g) {
            out[p] += v;
        }
        Ok(Some(Tensor::from_vec(out, arg.shape(), arg.device())?))
    }
}

#[cfg(test)]
mod tests {
    use crate::nn::{Activation, LayerSpec, Net};
    use crate::rng::Rng;
    use candle_core::{Device, Tensor, Var};

    fn net(specs: Vec<LayerSpec>, input: &[usize]) -> Net {
        Net::init(&specs, input, &mut Rng::new(1), &Device::Cpu).unwrap()
    }

    fn input(shape: (usize, usize, usize, usize), seed: u64) -> Tensor {
        let mut rng = Rng::new(seed);
        let n = shape.0 * shape.1 * shape.2 * shape.3;
        Tensor::from_vec((0..n).map(|_| rng.normal() as f32).collect::<Vec<_>>(), shape, &Device::Cpu).unwrap()
    }

    fn grad(net: &Net, x: &Tensor, fast: bool) -> (Vec<f32>, Vec<f32>) {
        let v = Var::from_tensor(x).unwrap();
        let y = if fast { net.forward_input_grad(v.as_tensor()) } else { net.forward(v.as_tensor()) }.unwrap();
        let w = Tensor::arange(0f32, y.dim(1).unwrap() as f32, &Device::Cpu).unwrap().affine(0.7, -0.9).unwrap();
        let g = y.broadcast_mul(&w).unwrap().sum_all().unwrap().backward().unwrap();
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        (flat(&y), flat(g.get(&v).unwrap()))
    }

    /// The input-only convolution against candle's convolution backward, for stride 1 and
    /// 2, with and without padding: same values, same input gradients.
    #[test]
    fn convolution_input_gradients_match_candles_backward() {
        let conv = |out, stride, pad| LayerSpec::Conv2d { input: None, out, kernel: 3, stride, pad };
        let specs = vec![
            conv(6, 1, 1),
            LayerSpec::Act(Activation::Tanh),
            conv(5, 2, 0),
            LayerSpec::Act(Activation::Tanh),
            conv(4, 1, 0),
            LayerSpec::Flatten,
            LayerSpec::Linear { input: None, out: 3 },
        ];
        let net = net(specs, &[2, 14, 14]);
        let x = input((3, 2, 14, 14), 2);
        let ((y0, g0), (y1, g1)) = (grad(&net, &x, false), grad(&net, &x, true));
        for (a, b) in y0.iter().zip(&y1) {
            assert!((a - b).abs() < 1e-5, "values {a} vs {b}");
        }
        let scale = g0.iter().fold(0f32, |m, v| m.max(v.abs()));
        for (a, b) in g0.iter().zip(&g1) {
            assert!((a - b).abs() < 1e-5 * scale.max(1.0), "gradients {a} vs {b}");
        }
    }

    /// Max pooling's input gradient against central differences: the network below is
    /// piecewise linear, so a small step that keeps each window's maximum is exact.
    #[test]
    fn max_pool_gradients_match_finite_differences() {
        let specs = vec![
            LayerSpec::Conv2d { input: None, out: 3, kernel: 3, stride: 1, pad: 1 },
            LayerSpec::MaxPool { kernel: 2, stride: 2 },
            LayerSpec::Flatten,
            LayerSpec::Linear { input: None, out: 4 },
        ];
        let net = net(specs, &[1, 6, 6]);
        let x = input((1, 1, 6, 6), 3);
        let (_, g) = grad(&net, &x, false);
        let value = |x: &Tensor| {
            let y = net.forward(x).unwrap();
            let w = Tensor::arange(0f32, 4.0, &Device::Cpu).unwrap().affine(0.7, -0.9).unwrap();
            y.broadcast_mul(&w).unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() as f64
        };
        let base = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let h = 1e-3f32;
        for k in 0..base.len() {
            let shifted = |s: f32| {
                let mut v = base.clone();
                v[k] += s;
                Tensor::from_vec(v, (1, 1, 6, 6), &Device::Cpu).unwrap()
            };
            let fd = (value(&shifted(h)) - value(&shifted(-h))) / (2.0 * h as f64);
            assert!((fd - g[k] as f64).abs() < 2e-3 * (1.0 + fd.abs()), "input {k}: {fd} vs {}", g[k]);
        }
    }
}
