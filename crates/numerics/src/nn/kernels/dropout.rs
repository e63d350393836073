//! Inverted dropout as one op: y = x / keep where a uniform 32-bit draw is below keep 2^32,
//! else 0. The draws come from the run's generator in bulk (one f64 draw a value, mapped and
//! collected into a float mask, was 4.6% of a convnet step); candle's product x * mask also
//! computed a gradient for the mask (a product, a zeroed buffer and a sum, each over the
//! whole activation). Here the backward pass is the same selection applied to dy.

use super::dense::values;
use super::simd::wide_fn;
use crate::rng::Rng;
use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use std::sync::Arc;

#[derive(Debug, Clone)]
struct Masked {
    bits: Arc<Vec<u32>>,
    /// Values whose draw is below this are kept.
    threshold: u32,
    scale: f32,
}

wide_fn! {
    fn select(x: &[f32], bits: &[u32], threshold: u32, scale: f32, out: &mut Vec<f32>) {
        out.extend(x.iter().zip(bits).map(|(a, b)| if *b < threshold { a * scale } else { 0.0 }));
    }
}

impl CustomOp1 for Masked {
    fn name(&self) -> &'static str {
        "flowline-dropout"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = values(s, l)?;
        if x.len() != self.bits.len() {
            candle_core::bail!("dropout: mask of {} values for {:?}", self.bits.len(), l.dims());
        }
        let mut y = Vec::with_capacity(x.len());
        select(&x, &self.bits, self.threshold, self.scale, &mut y);
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }
    fn bwd(&self, _x: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(dy.apply_op1_no_bwd(self)?))
    }
}

/// One draw per value: (bits, the keep threshold, the scale 1 / (1 - p)).
fn draws(x: &Tensor, p: f64, rng: &mut Rng) -> (Vec<u32>, u32, f32) {
    let keep = 1.0 - p;
    let threshold = (keep * 4_294_967_296.0).min(u32::MAX as f64) as u32;
    let mut bits = vec![0u32; x.elem_count()];
    rng.fill_u32(&mut bits);
    (bits, threshold, (1.0 / keep) as f32)
}

/// x with each value zeroed with probability p and the rest scaled by 1 / (1 - p).
pub fn dropout(x: &Tensor, p: f64, rng: &mut Rng) -> Result<Tensor> {
    if super::own(x) {
        let (bits, threshold, scale) = draws(x, p, rng);
        return x.apply_op1(Masked { bits: Arc::new(bits), threshold, scale });
    }
    x * dropout_mask(x, p, rng)?
}

/// The mask `dropout` multiplies by (0 or 1 / (1 - p)), from the same draws: a tangent
/// carried beside the values goes through the same units.
pub fn dropout_mask(x: &Tensor, p: f64, rng: &mut Rng) -> Result<Tensor> {
    let (bits, threshold, scale) = draws(x, p, rng);
    let mask: Vec<f32> = bits.iter().map(|b| if *b < threshold { scale } else { 0.0 }).collect();
    Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(x.dtype())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::kernels::testing::{flat, random};
    use candle_core::Var;

    /// The op against the composed product with the same mask: values and gradient; the
    /// share dropped is p.
    #[test]
    fn dropout_matches_the_product_with_its_mask() {
        let x0 = random(&[4, 3, 5], &mut Rng::new(30));
        let probe = random(&[4, 3, 5], &mut Rng::new(31));
        let x = Var::from_tensor(&x0).unwrap();
        let y = dropout(x.as_tensor(), 0.3, &mut Rng::new(7)).unwrap();
        let mut bits = vec![0u32; 60];
        Rng::new(7).fill_u32(&mut bits);
        let mask: Vec<f32> = bits
            .iter()
            .map(|b| if (*b as f64) < 0.7 * 4_294_967_296.0 { (1.0 / 0.7f64) as f32 } else { 0.0 })
            .collect();
        let want: Vec<f32> = flat(&x0).iter().zip(&mask).map(|(a, m)| a * m).collect();
        assert_eq!(flat(&y), want);
        let g = y.mul(&probe).unwrap().sum_all().unwrap().backward().unwrap();
        let want: Vec<f32> = flat(&probe).iter().zip(&mask).map(|(a, m)| a * m).collect();
        assert_eq!(flat(g.get(&x).unwrap()), want);
        let ones = Tensor::ones((200_000,), candle_core::DType::F32, &candle_core::Device::Cpu).unwrap();
        let kept = flat(&dropout(&ones, 0.3, &mut Rng::new(8)).unwrap()).iter().filter(|v| **v != 0.0).count();
        let share = kept as f64 / 200_000.0;
        // Binomial standard deviation ~0.001.
        assert!((share - 0.7).abs() < 0.005, "kept {share}");
    }
}
