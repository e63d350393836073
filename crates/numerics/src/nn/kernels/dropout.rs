//! Inverted dropout as one op: y = x * mask with mask = 1 / keep with probability keep, else
//! 0, drawn from the run's generator in the same order as before (same masks, same results).
//! candle's product x * mask also computes a gradient for the mask (a product, a zeroed
//! buffer and a sum, each over the whole activation); here the backward pass is dy * mask.

use super::dense::values;
use super::simd::wide_fn;
use crate::rng::Rng;
use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use std::sync::Arc;

#[derive(Debug, Clone)]
struct Masked(Arc<Vec<f32>>);

wide_fn! {
    fn times(x: &[f32], mask: &[f32], out: &mut Vec<f32>) {
        out.extend(x.iter().zip(mask).map(|(a, m)| a * m));
    }
}

impl CustomOp1 for Masked {
    fn name(&self) -> &'static str {
        "flowline-dropout"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = values(s, l)?;
        if x.len() != self.0.len() {
            candle_core::bail!("dropout: mask of {} values for {:?}", self.0.len(), l.dims());
        }
        let mut y = Vec::with_capacity(x.len());
        times(&x, &self.0, &mut y);
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }
    fn bwd(&self, _x: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(dy.apply_op1_no_bwd(self)?))
    }
}

/// x with each value zeroed with probability p and the rest scaled by 1 / (1 - p).
pub fn dropout(x: &Tensor, p: f64, rng: &mut Rng) -> Result<Tensor> {
    let keep = 1.0 - p;
    let scale = (1.0 / keep) as f32;
    let mask: Vec<f32> = (0..x.elem_count()).map(|_| if rng.uniform() < keep { scale } else { 0.0 }).collect();
    if super::own(x) {
        return x.apply_op1(Masked(Arc::new(mask)));
    }
    x * Tensor::from_vec(mask, x.shape(), x.device())?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::kernels::testing::{flat, random};
    use candle_core::Var;

    /// The op against the composed product with the same mask: values and gradient.
    #[test]
    fn dropout_matches_the_product_with_its_mask() {
        let x0 = random(&[4, 3, 5], &mut Rng::new(30));
        let probe = random(&[4, 3, 5], &mut Rng::new(31));
        let x = Var::from_tensor(&x0).unwrap();
        let y = dropout(x.as_tensor(), 0.3, &mut Rng::new(7)).unwrap();
        let mut rng = Rng::new(7);
        let mask: Vec<f32> = (0..60).map(|_| if rng.uniform() < 0.7 { (1.0 / 0.7f64) as f32 } else { 0.0 }).collect();
        let dropped = mask.iter().filter(|m| **m == 0.0).count();
        assert!(dropped > 5 && dropped < 35, "{dropped} of 60 dropped at p = 0.3");
        let want: Vec<f32> = flat(&x0).iter().zip(&mask).map(|(a, m)| a * m).collect();
        assert_eq!(flat(&y), want);
        let g = y.mul(&probe).unwrap().sum_all().unwrap().backward().unwrap();
        let want: Vec<f32> = flat(&probe).iter().zip(&mask).map(|(a, m)| a * m).collect();
        assert_eq!(flat(g.get(&x).unwrap()), want);
    }
}
