//! The adjoint method plugged into candle's autograd: a custom op whose inputs are the
//! block's input and the flattened field parameters (a carrier, so that candle routes
//! parameter gradients back to each `Var` through `cat`), whose output is the forward
//! solve's y(t1), and whose backward pass integrates the adjoint system.

use super::net::{Built, run_field};
use crate::ode::{Options, adjoint_gradients};
use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor, Var};
use std::sync::Arc;

pub struct AdjointOp {
    pub field: Arc<Vec<Built>>,
    pub params: Vec<Var>,
    pub t1: f64,
    pub opts: Options,
    /// The forward solution, computed without building a graph.
    pub y1: Tensor,
}

impl CustomOp2 for AdjointOp {
    fn name(&self) -> &'static str {
        "neural-ode-adjoint"
    }

    fn cpu_fwd(&self, _s1: &CpuStorage, _l1: &Layout, _s2: &CpuStorage, _l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let values: Vec<f32> = self.y1.to_dtype(candle_core::DType::F32)?.flatten_all()?.to_vec1()?;
        Ok((CpuStorage::F32(values), self.y1.shape().clone()))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        _carrier: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let field = self.field.clone();
        let f = move |_t: f64, y: &[Tensor]| Ok(vec![run_field(&field, &y[0])?]);
        let g = adjoint_gradients(&f, &self.params, &[res.detach()], &[grad_res.detach()], 0.0, self.t1, &self.opts)
            .map_err(|e| candle_core::Error::Msg(format!("adjoint solve stopped at t = {}: {}", e.t, e.failure)))?;
        let flat: Vec<Tensor> = g.params.iter().map(|t| t.flatten_all()).collect::<Result<_>>()?;
        Ok((Some(g.y0[0].clone()), Some(Tensor::cat(&flat, 0)?)))
    }
}
