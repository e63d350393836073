//! A continuous normalizing flow: dz/dt = f(t, z) from data at t0 to the base (standard
//! normal) at t1, with d(delta)/dt = -tr(df/dz), so log p(x) = log N(z(t1)) - delta(t1).
//! RNODE's regularizers ride along as extra states excluded from error control:
//! d(kinetic)/dt = 0.5 mean_i f_i^2 and d(jacobian)/dt = |J eps|^2 / d (exact: |J|_F^2 / d),
//! per example (Finlay et al. 2020; their code's means over coordinates).

use super::count::VjpCounter;
use super::field::TangentField;
use super::model::{AdjointGradients, FlowModel, Likelihood};
use crate::ode::{Field, Options, SolveError, State, Stats, adjoint_gradients, solve};
use crate::rng::Rng;
use candle_core::{D, Device, Result, Tensor, Var};

/// How the divergence is computed.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trace {
    /// From d basis tangents: exact, d Jacobian-vector products per evaluation.
    Exact,
    /// Hutchinson's estimator eps^T J eps with one draw per example held fixed for the whole
    /// solve: Gaussian or Rademacher (+-1) noise.
    Hutchinson { rademacher: bool },
}

pub struct Cnf<F: TangentField> {
    pub field: F,
    pub t0: f64,
    pub t1: f64,
    pub trace: Trace,
}

/// log N(z; 0, I) per row of z [n, d].
pub fn standard_normal_log_density(z: &Tensor) -> Result<Tensor> {
    let d = z.dim(D::Minus1)? as f64;
    z.sqr()?.sum(D::Minus1)?.affine(-0.5, -0.5 * d * (2.0 * std::f64::consts::PI).ln())
}

/// The augmented dynamics over [z, delta, kinetic, jacobian]; `tangents` [n, k, d] are the
/// basis (exact) or the noise draws (Hutchinson).
pub struct Dynamics<'a> {
    pub field: &'a dyn TangentField,
    pub tangents: Tensor,
    /// Counts the evaluations a backward pass differentiates.
    pub vjps: Option<VjpCounter>,
    /// Each evaluation's results leave the autograd graph: a solve that is not
    /// differentiated (evaluation, figures) keeps no step's tensors alive.
    pub detach: bool,
}

impl<'a> Dynamics<'a> {
    pub fn new(field: &'a dyn TangentField, tangents: Tensor) -> Self {
        Dynamics { field, tangents, vjps: None, detach: false }
    }
}

impl Field for Dynamics<'_> {
    fn eval(&self, t: f64, y: &[Tensor]) -> Result<State> {
        let (f, jt) = self.field.eval_with_tangents(t, &y[0], &self.tangents)?;
        let f = match &self.vjps {
            Some(c) => c.counted(&f)?,
            None => f,
        };
        let d = f.dim(1)? as f64;
        // Exact: sum_j (J e_j)_j; Hutchinson: eps^T (J eps). The same contraction.
        let trace = (&jt * &self.tangents)?.sum((1, 2))?;
        let frobenius = (jt.sqr()?.sum((1, 2))? / d)?;
        let kinetic = (f.sqr()?.mean(1)? * 0.5)?;
        let out = vec![f, trace.neg()?.unsqueeze(1)?, kinetic.unsqueeze(1)?, frobenius.unsqueeze(1)?];
        Ok(if self.detach { out.iter().map(Tensor::detach).collect() } else { out })
    }
}

/// The tangents of `trace` for n states of dimension d like `like`.
fn tangents(trace: Trace, d: usize, n: usize, like: &Tensor, rng: &mut Rng) -> Result<Tensor> {
    let (dtype, dev) = (like.dtype(), like.device());
    match trace {
        Trace::Exact => Tensor::eye(d, dtype, dev)?.unsqueeze(0)?.broadcast_as((n, d, d))?.contiguous(),
        Trace::Hutchinson { rademacher } => {
            let v: Vec<f64> = (0..n * d)
                .map(|_| if rademacher { if rng.uniform() < 0.5 { -1.0 } else { 1.0 } } else { rng.normal() })
                .collect();
            Tensor::from_vec(v, (n, 1, d), &Device::Cpu)?.to_dtype(dtype)?.to_device(dev)
        }
    }
}

impl<F: TangentField> Cnf<F> {
    /// The tangents for a batch of n: the basis, or fresh noise from `rng`.
    pub fn tangents(&self, n: usize, like: &Tensor, rng: &mut Rng) -> Result<Tensor> {
        tangents(self.trace, self.field.dim(), n, like, rng)
    }

    /// The solver's options for the augmented state: the regularizer integrals are not
    /// error-controlled.
    pub fn augmented(opts: &Options) -> Options {
        Options { controlled: vec![true, true, false, false], ..opts.clone() }
    }

    /// log p(x) for x [n, d] and the regularizer integrals, differentiable in the field's
    /// parameters (backprop through the solver).
    pub fn log_likelihood(
        &self,
        x: &Tensor,
        opts: &Options,
        rng: &mut Rng,
    ) -> std::result::Result<Likelihood, SolveError> {
        self.log_likelihood_counted(x, opts, rng, None)
    }

    fn solve_with(
        &self,
        x: &Tensor,
        dynamics: Dynamics,
        opts: &Options,
    ) -> std::result::Result<Likelihood, SolveError> {
        let fail = |e| SolveError::tensor(e, self.t0);
        let n = x.dim(0).map_err(fail)?;
        let zero = Tensor::zeros((n, 1), x.dtype(), x.device()).map_err(fail)?;
        let y0 = vec![x.clone(), zero.clone(), zero.clone(), zero];
        let sol = solve(&dynamics, &y0, &[self.t0, self.t1], &Self::augmented(opts))?;
        let end = sol.ys[1].clone();
        let squeeze = |t: &Tensor| t.squeeze(1);
        let build = || -> Result<Likelihood> {
            let log_p = (standard_normal_log_density(&end[0])? - squeeze(&end[1])?)?;
            Ok(Likelihood {
                log_p,
                z: end[0].clone(),
                kinetic: squeeze(&end[2])?,
                jacobian: squeeze(&end[3])?,
                end: end.clone(),
                stats: sol.stats,
            })
        };
        build().map_err(|e| SolveError::tensor(e, self.t1))
    }

    /// log p(x) with the exact trace whatever the flow trains with (a density to plot or a
    /// likelihood to report), detached, and the solve's stats.
    pub fn exact_log_density(&self, x: &Tensor, opts: &Options) -> std::result::Result<(Tensor, Stats), SolveError> {
        let l = self.log_density(x, opts, &mut Rng::new(0), true)?;
        Ok((l.log_p, l.stats))
    }

    /// log p(x) and the rest outside the autograd graph (no step's tensors kept: memory of
    /// one evaluation, whatever the number of steps), with the exact trace or the flow's own
    /// (draws from `rng`).
    pub fn log_density(
        &self,
        x: &Tensor,
        opts: &Options,
        rng: &mut Rng,
        exact: bool,
    ) -> std::result::Result<Likelihood, SolveError> {
        let fail = |e| SolveError::tensor(e, self.t0);
        let n = x.dim(0).map_err(fail)?;
        let trace = if exact { Trace::Exact } else { self.trace };
        let tangents = tangents(trace, self.field.dim(), n, x, rng).map_err(fail)?;
        let dynamics = Dynamics { detach: true, ..Dynamics::new(&self.field, tangents) };
        self.solve_with(&x.detach(), dynamics, opts)
    }

    /// Data from base points z [n, d]: the field integrated from t1 back to t0 (not
    /// differentiable: no step's tensors are kept).
    pub fn sample(&self, z: &Tensor, opts: &Options) -> std::result::Result<(Tensor, Stats), SolveError> {
        let f = |t: f64, y: &[Tensor]| Ok(vec![self.field.eval(t, &y[0])?.detach()]);
        let sol = solve(&f, std::slice::from_ref(z), &[self.t1, self.t0], opts)?;
        Ok((sol.ys[1][0].clone(), sol.stats))
    }
}

impl<F: TangentField> FlowModel for Cnf<F> {
    fn vars(&self) -> Vec<Var> {
        self.field.vars()
    }

    /// `log_likelihood`, with the evaluations a later backward pass differentiates counted.
    fn log_likelihood_counted(
        &self,
        x: &Tensor,
        opts: &Options,
        rng: &mut Rng,
        vjps: Option<&VjpCounter>,
    ) -> std::result::Result<Likelihood, SolveError> {
        let fail = |e| SolveError::tensor(e, self.t0);
        let n = x.dim(0).map_err(fail)?;
        let tangents = self.tangents(n, x, rng).map_err(fail)?;
        self.solve_with(x, Dynamics { vjps: vjps.cloned(), ..Dynamics::new(&self.field, tangents) }, opts)
    }

    /// The gradients of mean(-log p) + kinetic mean(kinetic) + jacobian mean(jacobian) in
    /// the field's parameters by the adjoint method: a forward solve without a graph, then
    /// the adjoint system backwards (constant memory). The likelihood (detached) and the
    /// backward solve's stats come with them.
    fn adjoint_loss_gradients(
        &self,
        x: &Tensor,
        weights: (f64, f64),
        opts: &Options,
        rng: &mut Rng,
    ) -> std::result::Result<AdjointGradients, SolveError> {
        let fail = |e| SolveError::tensor(e, self.t1);
        let n = x.dim(0).map_err(|e| SolveError::tensor(e, self.t0))?;
        let tangents = self.tangents(n, x, rng).map_err(|e| SolveError::tensor(e, self.t0))?;
        let l = self.solve_with(&x.detach(), Dynamics::new(&self.field, tangents.clone()), opts)?;
        let end: State = l.end.iter().map(Tensor::detach).collect();
        // d(-log N(z) + delta)/n: z/n and 1/n; the integrals' weights over n.
        let per = 1.0 / n as f64;
        let grad_end = || -> Result<State> {
            let ones = end[1].ones_like()?;
            Ok(vec![(&end[0] * per)?, (&ones * per)?, (&ones * (weights.0 * per))?, (&ones * (weights.1 * per))?])
        };
        let grad_end = grad_end().map_err(fail)?;
        let vars = self.field.vars();
        let dynamics = Dynamics::new(&self.field, tangents);
        let g = adjoint_gradients(&dynamics, &vars, &end, &grad_end, self.t0, self.t1, &Self::augmented(opts))?;
        Ok((l, g.params, g.stats))
    }
}
