//! Neural-network pieces on candle: layer specs and their shapes, models, losses,
//! optimizers and the classifier training loop. Nothing here knows the language.

mod classify;
mod loss;
mod model;
mod optim;
mod shapes;

pub use classify::{FitConfig, FitError, FitResult, Objective, evaluate_classifier, fit_classifier, predict_classes};
pub use loss::{accuracy, cross_entropy, log_softmax, mse_onehot};
pub use model::Mlp;
pub use optim::{OptimSpec, Optimizer};
pub use shapes::{Activation, LayerSpec, ShapeError, infer_widths};
