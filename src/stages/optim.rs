//! Optimizers and learning-rate schedules as config values.

use super::registry::{Builtin, Dflt, Param, Sort};
use crate::check::{Config, Ty};
use crate::nn::{OptimSpec, Schedule};

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

pub fn builtins() -> Vec<Builtin> {
    vec![
        Builtin::new(
            "adamw",
            Sort::Optimizer,
            "AdamW (Loshchilov & Hutter): Adam with weight decay decoupled from the gradient, as torch.optim.AdamW.",
            adam_params(0.01, "decoupled weight decay coefficient"),
        ),
        Builtin::new("constant", Sort::Schedule, "A constant learning rate.", vec![]),
        Builtin::new(
            "step_decay",
            Sort::Schedule,
            "Multiply the learning rate by `gamma` every `every` steps.",
            vec![
                Param::new("every", Ty::Int, Dflt::Int(1000), "steps between decays").within(Some(1.0), None),
                Param::new("gamma", Ty::Float, Dflt::Float(0.1), "decay factor").positive(),
            ],
        ),
        Builtin::new(
            "cosine",
            Sort::Schedule,
            "Cosine annealing from the base rate to `min` times it over the run (after warm-up).",
            vec![
                Param::new("min", Ty::Float, Dflt::Float(0.0), "final factor on the base rate")
                    .within(Some(0.0), Some(1.0)),
            ],
        ),
        Builtin::new(
            "adam",
            Sort::Optimizer,
            "Adam (Kingma & Ba); weight_decay adds an L2 term to the gradient, as torch.optim.Adam.",
            adam_params(0.0, "L2 penalty coefficient"),
        ),
        Builtin::new(
            "sgd",
            Sort::Optimizer,
            "Stochastic gradient descent with momentum (PyTorch's formulation) and optional Nesterov.",
            vec![
                Param::new("lr", Ty::Float, Dflt::Float(0.1), "learning rate").positive(),
                Param::new("momentum", Ty::Float, Dflt::Float(0.0), "momentum coefficient")
                    .within(Some(0.0), Some(1.0)),
                Param::new("weight_decay", Ty::Float, Dflt::Float(0.0), "L2 penalty coefficient")
                    .within(Some(0.0), None),
                Param::new("nesterov", Ty::Bool, Dflt::Bool(false), "Nesterov momentum"),
            ],
        ),
    ]
}

pub fn optimizer_spec(c: &Config) -> Option<OptimSpec> {
    let a = &c.args;
    Some(match c.builtin.name {
        "adam" | "adamw" => OptimSpec::Adam {
            lr: a.float("lr")?,
            beta1: a.float("beta1")?,
            beta2: a.float("beta2")?,
            eps: a.float("eps")?,
            weight_decay: a.float("weight_decay")?,
            decoupled: c.builtin.name == "adamw",
        },
        "sgd" => OptimSpec::Sgd {
            lr: a.float("lr")?,
            momentum: a.float("momentum")?,
            weight_decay: a.float("weight_decay")?,
            nesterov: a.bool("nesterov")?,
        },
        _ => return None,
    })
}

pub fn schedule_spec(c: &Config) -> Option<Schedule> {
    Some(match c.builtin.name {
        "constant" => Schedule::Constant,
        "step_decay" => Schedule::Step { every: c.args.int("every")? as usize, gamma: c.args.float("gamma")? },
        "cosine" => Schedule::Cosine { min_factor: c.args.float("min")? },
        _ => return None,
    })
}
