//! Neural-network pieces on candle: layer specs and their shapes, models, losses,
//! optimizers and the classifier training loop. Nothing here knows the language.

mod adjoint_op;
mod classify;
pub mod kernels;
mod loss;
mod net;
mod optim;
mod spec;

pub use classify::{
    Augment, FitConfig, FitError, FitResult, Objective, Schedule, Start, Validation, evaluate_classifier,
    fit_classifier, predict_classes,
};
pub use loss::{accuracy, cross_entropy, log_softmax, mse_onehot};
pub use net::{Net, activate, max_pool_composed, non_finite};
pub use optim::{OptimSpec, Optimizer, check_state as check_optimizer_state};
pub use spec::{Activation, Aggregate, LayerSpec, ShapeError, ShapeErrorKind, infer_one, infer_shapes};
