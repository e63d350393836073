//! ODE solvers: explicit Runge-Kutta methods, fixed-step and adaptive, over tuple states
//! of candle tensors, with stats and result codes. Knows nothing of the language.

mod adjoint;
mod analytic;
mod solve;
mod tableau;

pub use adjoint::{AdjointGradients, adjoint_gradients};
pub use analytic::AnalyticField;
pub use solve::{Failure, Field, Options, Solution, SolveError, State, Stats, solve};
pub use tableau::{Method, Tableau};
