//! The built-ins of the language, one file per family, each with its registration function
//! (`builtins`), its kinds and artifacts, and calls into the numerical library (`nn`,
//! `data`, `ode`, `robust`, `plots`), which knows nothing of the language. A family sees
//! the language only through `lang`.

mod attack_outcome;
mod attacked;
mod certified;
mod certify_attacks;
mod clamp;
mod confidence_scores;
mod confidence_stored;
mod confident_predict;
mod dataset;
mod flow_curves;
mod flow_density;
mod flow_field;
mod flow_samples;
mod flow_train;
mod flow_trained;
mod heat_smoothing;
mod model;
mod ood_sets;
mod potential_train;

pub use dataset::load_dataset;

use crate::lang::{Builtin, Registry};

/// Declares the families and lists their registration functions, so that a family is added
/// by one name here.
macro_rules! families {
    ($($family:ident),* $(,)?) => {
        $(mod $family;)*

        /// Every family's built-ins, in the order listed; a program embedding flowline may
        /// add families of its own before composing the registry.
        pub fn families() -> Vec<Vec<Builtin>> {
            vec![$($family::builtins()),*]
        }
    };
}

/// The registry of every family.
pub fn registry() -> Registry {
    Registry::new(families())
}

families!(
    data,
    datasets,
    layers,
    optim,
    regularizers,
    train,
    load,
    evaluate,
    plots,
    ode,
    flows,
    attacks,
    attack_reports,
    attack_report,
    bounds,
    confidence,
    certify,
    regression,
    resources,
    ood
);
