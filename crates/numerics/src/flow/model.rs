//! What training needs of a flow, whether one CNF or a chain of pieces (each implementation
//! beside its type): its parameters, its likelihood with the regularizer integrals, and
//! (where it has them) gradients by the adjoint method.

use super::count::VjpCounter;
use crate::ode::{Options, SolveError, State, Stats};
use crate::rng::Rng;
use candle_core::{Tensor, Var};

/// Per example: log-likelihood, the regularizer integrals, and where the data went.
pub struct Likelihood {
    /// log p(x), [n].
    pub log_p: Tensor,
    /// z(t1), [n, d].
    pub z: Tensor,
    /// The kinetic-energy integral, [n].
    pub kinetic: Tensor,
    /// The Jacobian-Frobenius integral, [n].
    pub jacobian: Tensor,
    /// The end state of the solve [z, delta, kinetic, jacobian] (for the adjoint).
    pub end: State,
    pub stats: Stats,
}

/// Gradients of the loss in the parameters by the adjoint method, with the (detached)
/// likelihood and the backward solve's stats.
pub type AdjointGradients = (Likelihood, Vec<Tensor>, Stats);

pub trait FlowModel {
    fn vars(&self) -> Vec<Var>;
    /// log p(x) and the integrals, differentiable in the parameters (backprop through the
    /// solver), the evaluations a backward pass differentiates counted by `vjps`.
    fn log_likelihood_counted(
        &self,
        x: &Tensor,
        opts: &Options,
        rng: &mut Rng,
        vjps: Option<&VjpCounter>,
    ) -> Result<Likelihood, SolveError>;
    /// The gradients of mean(-log p) + weights . mean(integrals) by the adjoint method.
    fn adjoint_loss_gradients(
        &self,
        x: &Tensor,
        weights: (f64, f64),
        opts: &Options,
        rng: &mut Rng,
    ) -> Result<AdjointGradients, SolveError>;
}
