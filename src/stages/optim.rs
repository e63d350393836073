//! Optimizers and learning-rate schedules as config values, lowered into the numerical
//! library's `OptimSpec` and `Schedule`.

use crate::lang::{Args, Builtin, Dflt, Kind, Param, Registry, Role, Ty};
use crate::nn::{OptimSpec, Schedule};
use std::any::TypeId;

pub static OPTIMIZER: Kind = Kind {
    name: "optimizer",
    describe: "an optimizer",
    supers: &[],
    role: Role::Config {
        noun: "optimizer",
        heading: "optimizers",
        lowers_to: TypeId::of::<OptimSpec>,
        lowers_to_name: "OptimSpec",
        chains: false,
    },
};

pub static SCHEDULE: Kind = Kind {
    name: "schedule",
    describe: "a learning-rate schedule",
    supers: &[],
    role: Role::Config {
        noun: "schedule",
        heading: "schedules",
        lowers_to: TypeId::of::<Schedule>,
        lowers_to_name: "Schedule",
        chains: false,
    },
};

/// Adam's parameters; only the default and meaning of the weight decay differ between
/// Adam (an L2 term in the gradient) and AdamW (decoupled).
fn adam_params(weight_decay: f64, decay_doc: &'static str) -> Vec<Param> {
    vec![
        Param::new("lr", Ty::Float, Dflt::Float(1e-3), "learning rate").positive(),
        Param::new("weight_decay", Ty::Float, Dflt::Float(weight_decay), decay_doc).within(Some(0.0), None),
        Param::new("beta1", Ty::Float, Dflt::Float(0.9), "decay of the first moment")
            .within(Some(0.0), Some(0.999_999)),
        Param::new("beta2", Ty::Float, Dflt::Float(0.999), "decay of the second moment")
            .within(Some(0.0), Some(0.999_999_9)),
        Param::new("eps", Ty::Float, Dflt::Float(1e-8), "denominator guard").positive(),
    ]
}

fn adam(a: &Args, decoupled: bool) -> Result<OptimSpec, String> {
    Ok(OptimSpec::Adam {
        lr: a.need_float("lr")?,
        beta1: a.need_float("beta1")?,
        beta2: a.need_float("beta2")?,
        eps: a.need_float("eps")?,
        weight_decay: a.need_float("weight_decay")?,
        decoupled,
    })
}

pub fn builtins() -> Vec<Builtin> {
    vec![
        Builtin::config(
            &OPTIMIZER,
            "adamw",
            "AdamW (Loshchilov & Hutter): Adam with weight decay decoupled from the gradient, as torch.optim.AdamW.",
            adam_params(0.01, "decoupled weight decay coefficient"),
            |_: &Registry, a: &Args| adam(a, true),
        ),
        Builtin::config(&SCHEDULE, "constant", "A constant learning rate.", vec![], |_: &Registry, _: &Args| {
            Ok(Schedule::Constant)
        }),
        Builtin::config(
            &SCHEDULE,
            "step_decay",
            "Multiply the learning rate by `gamma` every `every` steps.",
            vec![
                Param::new("every", Ty::Int, Dflt::Int(1000), "steps between decays").within(Some(1.0), None),
                Param::new("gamma", Ty::Float, Dflt::Float(0.1), "decay factor").positive(),
            ],
            |_: &Registry, a: &Args| {
                Ok(Schedule::Step { every: a.need_usize("every")?, gamma: a.need_float("gamma")? })
            },
        ),
        Builtin::config(
            &SCHEDULE,
            "cosine",
            "Cosine annealing from the base rate to `min` times it over the run (after warm-up).",
            vec![
                Param::new("min", Ty::Float, Dflt::Float(0.0), "final factor on the base rate")
                    .within(Some(0.0), Some(1.0)),
            ],
            |_: &Registry, a: &Args| Ok(Schedule::Cosine { min_factor: a.need_float("min")? }),
        ),
        Builtin::config(
            &OPTIMIZER,
            "adam",
            "Adam (Kingma & Ba); weight_decay adds an L2 term to the gradient, as torch.optim.Adam.",
            adam_params(0.0, "L2 penalty coefficient"),
            |_: &Registry, a: &Args| adam(a, false),
        ),
        Builtin::config(
            &OPTIMIZER,
            "sgd",
            "Stochastic gradient descent with momentum (PyTorch's formulation) and optional Nesterov.",
            vec![
                Param::new("lr", Ty::Float, Dflt::Float(0.1), "learning rate").positive(),
                Param::new("momentum", Ty::Float, Dflt::Float(0.0), "momentum coefficient")
                    .within(Some(0.0), Some(1.0)),
                Param::new("weight_decay", Ty::Float, Dflt::Float(0.0), "L2 penalty coefficient")
                    .within(Some(0.0), None),
                Param::new("nesterov", Ty::Bool, Dflt::Bool(false), "Nesterov momentum"),
            ],
            |_: &Registry, a: &Args| {
                Ok(OptimSpec::Sgd {
                    lr: a.need_float("lr")?,
                    momentum: a.need_float("momentum")?,
                    weight_decay: a.need_float("weight_decay")?,
                    nesterov: a.need_bool("nesterov")?,
                })
            },
        ),
    ]
}
