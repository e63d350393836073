//! Counting the vector-Jacobian products that backprop through a solver performs: an
//! identity op on each evaluation's output whose backward pass counts itself. An
//! evaluation the loss does not depend on (a rejected step) is never differentiated, so
//! the count is the backward pass's NFE as torchdiffeq users count the adjoint's.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Clone, Default, Debug)]
pub struct VjpCounter(Arc<AtomicUsize>);

impl VjpCounter {
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
    pub fn reset(&self) {
        self.0.store(0, Ordering::Relaxed);
    }
    /// `t`, counted when a gradient passes through it. Only on the CPU (the op has no
    /// kernel elsewhere): other devices get `t` unchanged and a count of zero.
    pub fn counted(&self, t: &Tensor) -> Result<Tensor> {
        if t.device().is_cpu() { t.contiguous()?.apply_op1(self.clone()) } else { Ok(t.clone()) }
    }
}

fn copy<T: Copy>(v: &[T], l: &Layout) -> Result<Vec<T>> {
    Ok(match l.contiguous_offsets() {
        Some((a, b)) => v[a..b].to_vec(),
        None => return Err(candle_core::Error::Msg("vjp counter: non-contiguous input".into())),
    })
}

impl CustomOp1 for VjpCounter {
    fn name(&self) -> &'static str {
        "vjp-counter"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let out = match s {
            CpuStorage::F32(v) => CpuStorage::F32(copy(v, l)?),
            CpuStorage::F64(v) => CpuStorage::F64(copy(v, l)?),
            _ => return Err(candle_core::Error::Msg("vjp counter: float32 or float64 only".into())),
        };
        Ok((out, l.shape().clone()))
    }
    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(Some(grad.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn counts_only_the_outputs_a_gradient_reaches() {
        let c = VjpCounter::default();
        let x = Var::new(&[1.0f32, 2.0, 3.0], &Device::Cpu).unwrap();
        let used = c.counted(&(x.as_tensor() * 2.0).unwrap()).unwrap();
        let unused = c.counted(&(x.as_tensor() * 3.0).unwrap()).unwrap();
        let loss = used.sum_all().unwrap();
        let g = loss.backward().unwrap();
        assert_eq!(c.get(), 1);
        assert_eq!(g.get(x.as_tensor()).unwrap().to_vec1::<f32>().unwrap(), vec![2.0; 3]);
        assert_eq!(unused.to_vec1::<f32>().unwrap(), vec![3.0, 6.0, 9.0]);
    }
}
