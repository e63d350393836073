//! The built-ins of the language, one file per family, each with its registration function
//! (`builtins`), its kinds and artifacts, and calls into the numerical library (`nn`,
//! `data`, `ode`, `robust`, `plots`), which knows nothing of the language. A family sees
//! the language only through `lang`.

mod attack_outcome;
mod attack_reports;
mod attacked;
mod attacks;
mod clamp;
mod data;
mod dataset;
mod datasets;
mod evaluate;
mod layers;
mod load;
mod model;
mod ode;
mod optim;
mod plots;
mod train;

pub use dataset::load_dataset;

use crate::lang::Registry;

/// Every family's built-ins. A new family is its own files and one line here.
pub fn registry() -> Registry {
    Registry::new([
        data::builtins(),
        datasets::builtins(),
        layers::builtins(),
        optim::builtins(),
        train::builtins(),
        load::builtins(),
        evaluate::builtins(),
        plots::builtins(),
        ode::builtins(),
        attacks::builtins(),
        attack_reports::builtins(),
    ])
}
