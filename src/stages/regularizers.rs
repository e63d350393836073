//! Training regularizers, the `regularizer` kind `train` takes: RNODE's penalties for flows
//! (`kinetic`, `jacobian_frobenius`) and robust-training terms for classifiers
//! (`input_gradient`, `adversarial`, `gaussian_noise`). Each says which models it applies to, and `train`'s
//! checker holds a regularizer to its models.

use super::attacks::ATTACK;
use crate::diag::{Code, Diag};
use crate::lang::{Args, Builtin, Dflt, Kind, Param, Registry, Role, RunCtx, StaticCall, Ty, VKind};
use crate::nn::{Adversarial, Ball, GradNorm, InputGradient, LayerSpec, Penalty, without_tangent};
use crate::robust::attack::Attack;
use crate::robust::norms::Norm;
use std::any::TypeId;

pub static REGULARIZER: Kind = Kind {
    name: "regularizer",
    describe: "a training regularizer such as `kinetic(0.01)` or `input_gradient(0.1)`",
    supers: &[],
    role: Role::Config {
        noun: "regularizer",
        heading: "regularizers",
        lowers_to: TypeId::of::<Regularizer>,
        lowers_to_name: "Regularizer",
        chains: false,
    },
};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Regularizer {
    /// RNODE's kinetic energy, weighted by lambda.
    Kinetic(f64),
    /// RNODE's Jacobian Frobenius penalty, weighted by lambda.
    JacobianFrobenius(f64),
    /// A classifier's robust-training term.
    Classifier(Penalty),
}

/// Which regularizers a flow takes; classifiers take the others.
const FLOW_ONES: [&str; 2] = ["kinetic", "jacobian_frobenius"];

fn rnode(name: &'static str, doc: &'static str, make: fn(f64) -> Regularizer) -> Builtin {
    Builtin::config(
        &REGULARIZER,
        name,
        doc,
        vec![Param::new("lambda", Ty::Float, Dflt::Required, "weight in the loss").within(Some(0.0), None)],
        move |_: &Registry, a: &Args| Ok(make(a.need_float("lambda")?)),
    )
    .positional("lambda")
}

pub fn builtins() -> Vec<Builtin> {
    vec![
        rnode(
            "kinetic",
            "RNODE's kinetic energy (flows): lambda times the integral of 0.5 * mean over coordinates of |f|^2, per example.",
            Regularizer::Kinetic,
        ),
        rnode(
            "jacobian_frobenius",
            "RNODE's Jacobian penalty (flows): lambda times the integral of |df/dz|_F^2 / d (Hutchinson's eps^T J^T J eps / d with the trace's draw).",
            Regularizer::JacobianFrobenius,
        ),
        Builtin::config(
            &REGULARIZER,
            "input_gradient",
            "Input-gradient penalty (classifiers; Finlay & Oberman 2019): lambda/2 * mean(((l(x + h d) - l(x)) / h)^2), d the normalised input gradient held fixed, so no double backpropagation.",
            vec![
                Param::new("lambda", Ty::Float, Dflt::Required, "weight of the penalty").within(Some(0.0), None),
                Param::new("h", Ty::Float, Dflt::Float(InputGradient::H), "finite-difference step (input units)")
                    .positive(),
                Param::new(
                    "norm",
                    Ty::choice(&["l2", "l1"]),
                    Dflt::Sym("l2"),
                    "`l2` (d = g/|g|_2, against l2 attacks) or `l1` (d = sign(g)/sqrt(N), against linf attacks)",
                ),
                Param::new(
                    "exact",
                    Ty::Bool,
                    Dflt::Bool(false),
                    "the h -> 0 limit (g . d)^2 by a forward-mode tangent instead of the finite difference",
                ),
            ],
            |_: &Registry, a: &Args| {
                let norm = if a.text("norm") == Some("l1") { GradNorm::L1 } else { GradNorm::L2 };
                Ok(Regularizer::Classifier(Penalty::InputGradient(InputGradient {
                    lambda: a.need_float("lambda")?,
                    h: a.need_float("h")?,
                    norm,
                    exact: a.bool("exact").unwrap_or(false),
                })))
            },
        )
        .positional("lambda"),
        Builtin::config(
            &REGULARIZER,
            "adversarial",
            "Adversarial training (classifiers; Madry et al. 2018): PGD examples in the eps-ball (pgd's `norm` and `steps`) replace or join each batch.",
            vec![
                Param::new("attack", Ty::kind(&ATTACK), Dflt::Required, "`pgd(norm: linf, steps: 7)`"),
                Param::new("eps", Ty::Float, Dflt::Required, "the ball's radius (MNIST linf: 0.3)").positive(),
                Param::new("step", Ty::opt(Ty::Float), Dflt::None, "ascent step (default 2.5 eps / steps)").positive(),
                Param::new("random_start", Ty::Bool, Dflt::Bool(true), "start from a uniform point of the ball"),
                Param::new(
                    "mode",
                    Ty::choice(&["replace", "join"]),
                    Dflt::Sym("replace"),
                    "`replace` the clean batch (Madry) or `join` it (half and half)",
                ),
            ],
            |reg: &Registry, a: &Args| {
                let attack = reg.lower::<Attack>(a.config("attack").ok_or("argument `attack` is not an attack")?)?;
                let Attack::Pgd(p) = attack else {
                    return Err("adversarial training takes `pgd(...)` examples".into());
                };
                let ball = match p.norm {
                    Norm::L2 => Ball::L2,
                    _ => Ball::Linf,
                };
                let eps = a.need_float("eps")?;
                Ok(Regularizer::Classifier(Penalty::Adversarial(Adversarial {
                    ball,
                    eps,
                    steps: p.steps,
                    step: a.float("step").unwrap_or_else(|| Adversarial::default_step(eps, p.steps)),
                    random_start: a.bool("random_start").unwrap_or(true),
                    join: a.text("mode") == Some("join"),
                })))
            },
        )
        .positional("attack"),
        Builtin::config(
            &REGULARIZER,
            "gaussian_noise",
            "Gaussian noise augmentation (classifiers; Cohen et al. 2019, the base model of randomized smoothing): each input becomes x + sigma z, z ~ N(0, I), unclipped.",
            vec![Param::new("sigma", Ty::Float, Dflt::Required, "noise level in input units (MNIST: 0.25, 0.5, 1.0)").positive()],
            |_: &Registry, a: &Args| Ok(Regularizer::Classifier(Penalty::GaussianNoise(a.need_float("sigma")?))),
        )
        .positional("sigma"),
    ]
}

/// The built-ins the `regularizers` list calls.
pub fn names(args: &Args) -> Vec<String> {
    args.configs("regularizers").into_iter().map(|(c, _)| c.builtin.to_string()).collect()
}

/// Regularizers that do not apply to this model (`flow`: a flow, else a classifier), the
/// same kind twice, the exact penalty on a model no tangent passes, and `adversarial` given
/// something other than PGD.
pub fn check(cx: &StaticCall, flow: bool) -> Vec<Diag> {
    let mut diags = Vec::new();
    let items = cx.args.configs("regularizers");
    for (i, (c, span)) in items.iter().enumerate() {
        let (name, span) = (&c.builtin, *span);
        let for_flows = FLOW_ONES.contains(&name.as_ref());
        if for_flows != flow {
            let (what, fix) = if flow {
                ("a flow", "flows take RNODE's `kinetic(...)` and `jacobian_frobenius(...)`")
            } else {
                ("a classifier", "classifiers take `input_gradient(...)`, `adversarial(pgd(...), eps: ...)` and `gaussian_noise(sigma)`")
            };
            diags.push(
                Diag::new(Code::E2005, format!("`{name}` does not apply to {what}"))
                    .at(span, format!("not for {what}"))
                    .hint(fix),
            );
        }
        if items[..i].iter().any(|(other, _)| other.builtin == *name) {
            diags.push(
                Diag::new(Code::E2014, format!("`{name}` is given twice"))
                    .at(span, "again")
                    .hint("give each regularizer once; its weight sets its strength"),
            );
        }
        if name == "input_gradient"
            && !flow
            && c.args.get("exact").is_some_and(|v| matches!(v.kind, VKind::Bool(true)))
            && let Some(specs) = cx.lower_each::<Vec<LayerSpec>>("model")
            && let Some(layer) = without_tangent(&specs.concat())
        {
            diags.push(
                Diag::new(Code::E2005, format!("the exact penalty cannot pass this model's {layer} layer"))
                    .at(span, "needs a forward-mode tangent through every layer")
                    .hint("use the finite-difference penalty (`exact: false`, the default), which takes any model"),
            );
        }
        if name == "adversarial"
            && let Some(VKind::Config(attack)) = c.args.get("attack").map(|v| &v.kind)
            && attack.builtin != "pgd"
        {
            diags.push(
                Diag::new(Code::E2005, format!("adversarial training takes `pgd(...)` examples, not `{}`", attack.builtin))
                    .at(span, "not a PGD attack")
                    .hint("write `adversarial(pgd(norm: linf, steps: 7), eps: 0.3)`"),
            );
        }
    }
    diags
}

/// The `regularizers` list, lowered.
pub fn lowered(cx: &RunCtx) -> Result<Vec<Regularizer>, Diag> {
    cx.args().configs("regularizers").into_iter().map(|(c, _)| cx.lower_config::<Regularizer>(c)).collect()
}
