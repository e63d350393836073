//! Continuous normalizing flows (FFJORD, RNODE): time-dependent vector fields that carry
//! forward tangents (`squash`), and the flow itself (`cnf`): log-likelihood by integrating
//! the state with its log-density change, exactly or by Hutchinson's estimator, the
//! kinetic-energy and Jacobian-Frobenius integrals as extra states outside error control,
//! and sampling by integrating back from the base distribution.
//!
//! Traces and Jacobian norms come from Jacobian-vector products propagated layer by layer
//! (ordinary differentiable ops), so training needs first-order autograd only: candle's
//! second-order gradients are silently wrong (../shared/DESIGN.md, section 4).

mod built;
mod chain;
mod cnf;
mod conditioned;
mod conv_layer;
mod count;
mod field;
mod fit;
pub mod image;
mod model;
mod mrcnf;
pub mod resolution;
mod square;
mod squash;

pub use built::BuiltFlow;
pub use chain::{FlowChain, Multiscale, Piece, base_draws, conv_field_specs, scales_fit};
pub use cnf::{Cnf, Dynamics, Trace, standard_normal_log_density};
pub use conditioned::Conditioned;
pub use conv_layer::ConcatConv2d;
pub use count::VjpCounter;
pub use field::{FieldError, PlannedKind, PlannedLayer, TangentField, TimeNet, field_plan, field_plan_between};
pub use fit::{FlowFit, FlowRecord, fit_flow, fit_flow_with};
pub use model::{AdjointGradients, FlowModel, Likelihood};
pub use mrcnf::{Mrcnf, ScaleFlow, ScaleTerms};
pub use square::Square;
pub use squash::{ConcatLinear, ConcatSquash, TimeLayer};
