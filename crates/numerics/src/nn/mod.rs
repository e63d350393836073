//! Neural-network pieces on candle: layer specs and their shapes, models, losses,
//! optimizers and the classifier training loop. Nothing here knows the language.

mod adjoint_op;
mod classify;
mod heat;
mod jvp;
pub mod kernels;
mod lipschitz;
mod loss;
mod net;
mod optim;
mod penalty;
mod regress;
mod spec;

pub use classify::{
    Augment, FitConfig, FitError, FitResult, Schedule, Start, Validation, evaluate_classifier, fit_classifier,
    predict_classes,
};
pub use heat::{
    HeatConfig, HeatCurves, Outputs, frozen, heat_objective, heat_smooth, heat_step, inputs as input_batch,
};
pub use jvp::without_tangent;
pub use lipschitz::{Lipschitz, dense_norm};
pub use loss::{Objective, accuracy, cross_entropy, cross_entropy_each, log_softmax, mse_onehot};
pub use net::{Net, activate, max_pool_composed, non_finite};
pub use optim::{OptimSpec, Optimizer, check_state as check_optimizer_state};
pub use penalty::{
    Adversarial, Ball, GradNorm, InputGradient, Penalized, Penalty, gradient_norms, loss_direction, penalized_loss,
    pgd_examples, sign, unit_direction,
};
pub use regress::fit_function;
pub use spec::{Activation, Aggregate, LayerSpec, ShapeError, ShapeErrorKind, infer_one, infer_shapes};
