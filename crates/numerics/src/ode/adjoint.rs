//! Gradients by the adjoint method (Chen et al. 2018; Pontryagin): after a forward solve to
//! y(t1), integrate backwards in time the augmented state [y, a, g] with
//!   dy/dt = f(t, y),  da/dt = -a . df/dy,  dg/dt = -a . df/dtheta,
//! from a(t1) = dL/dy(t1), g(t1) = 0, to get dL/dy(t0) = a(t0) and dL/dtheta = g(t0).
//! Memory is constant in the number of steps; the vector-Jacobian products are first-order
//! autograd on one evaluation of f at a time.

use super::solve::{Field, Options, SolveError, State, Stats, solve};
use candle_core::{Result, Tensor, Var};

pub struct AdjointGradients {
    /// dL/dy(t0), per state component.
    pub y0: State,
    /// dL/dtheta, one per parameter.
    pub params: Vec<Tensor>,
    /// Stats of the backward solve.
    pub stats: Stats,
}

/// The augmented field in reversed time tau = t1 - t (so the solver runs forward).
struct Backward<'a> {
    field: &'a dyn Field,
    params: &'a [Var],
    t1: f64,
    n: usize,
}

impl Field for Backward<'_> {
    fn eval(&self, tau: f64, z: &[Tensor]) -> Result<State> {
        let t = self.t1 - tau;
        let (y, rest) = z.split_at(self.n);
        let a = &rest[..self.n];
        let vars: Vec<Var> = y.iter().map(|t| Var::from_tensor(&t.detach())).collect::<Result<_>>()?;
        let yv: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
        let f = self.field.eval(t, &yv)?;
        // s = sum_i <a_i, f_i>; its gradients are a . df/dy and a . df/dtheta.
        let mut s = Tensor::zeros((), f[0].dtype(), f[0].device())?;
        for (fi, ai) in f.iter().zip(a) {
            s = (s + (fi * ai.detach())?.sum_all()?)?;
        }
        let grads = s.backward()?;
        let mut out = Vec::with_capacity(z.len());
        for fi in &f {
            out.push(fi.detach().neg()?);
        }
        for v in &vars {
            out.push(match grads.get(v.as_tensor()) {
                Some(g) => g.detach(),
                None => v.as_tensor().zeros_like()?,
            });
        }
        for p in self.params {
            out.push(match grads.get(p.as_tensor()) {
                Some(g) => g.detach(),
                None => p.as_tensor().zeros_like()?,
            });
        }
        Ok(out)
    }
}

/// dL/dy(t0) and dL/dtheta for a loss whose gradient at y(t1) is `grad_y1`.
pub fn adjoint_gradients(
    field: &dyn Field,
    params: &[Var],
    y1: &[Tensor],
    grad_y1: &[Tensor],
    t0: f64,
    t1: f64,
    opts: &Options,
) -> std::result::Result<AdjointGradients, SolveError> {
    let n = y1.len();
    let tensor_error = |e| SolveError::tensor(e, t1);
    let mut z: State = y1.iter().map(|t| t.detach()).collect();
    z.extend(grad_y1.iter().map(|t| t.detach()));
    for p in params {
        z.push(p.as_tensor().zeros_like().map_err(tensor_error)?);
    }
    let back = Backward { field, params, t1, n };
    let sol = solve(&back, &z, &[0.0, t1 - t0], opts)?;
    let end = &sol.ys[1];
    Ok(AdjointGradients { y0: end[n..2 * n].to_vec(), params: end[2 * n..].to_vec(), stats: sol.stats })
}
