//! Adversarial attacks as config values (`logbarrier(norm: l2)`, `pgd(norm: linf)`, ...),
//! lowered into the numerical library's `Attack`, and the `attack` stage that applies one to
//! a trained classifier.

use crate::plots::ImageGrid;
use super::attack_outcome::{Outcome, SUMMARY, Status, norm_column, robust_metric, summary};
use super::attacked::{ATTACKED, Attacked, Cost, metric_key};
use super::dataset::DATASET;
use super::layers::check_model;
use super::model::{MODEL, model_ref};
use crate::data::Dataset;
use crate::diag::{Code, Diag};
use crate::lang::{
    Args, Builtin, Dflt, Kind, Meta, Output, Param, Registry, Role, RunCtx, Stage, StaticCall, Ty, VKind,
};
use crate::robust::attack::Attack;
use crate::robust::cw::CwConfig;
use crate::robust::ddn::DdnConfig;
use crate::robust::ensemble::Ensemble;
use crate::robust::fmn::FmnConfig;
use crate::robust::logbarrier::LogBarrierConfig;
use crate::robust::norms::Norm;
use crate::robust::oracle::{Criterion, Oracle};
use crate::robust::pgd::PgdConfig;
use crate::robust::proxlogbarrier::{L0_PULL_BACK, ProxConfig, StepRule};
use std::any::TypeId;
use std::sync::Arc;

pub static ATTACK: Kind = Kind {
    name: "attack",
    describe: "an attack such as `logbarrier(norm: l2)`",
    supers: &[],
    role: Role::Config {
        noun: "attack",
        heading: "attacks",
        lowers_to: TypeId::of::<Attack>,
        lowers_to_name: "robust::Attack",
        chains: false,
    },
};

fn int_at_least(name: &'static str, d: i64, min: f64, doc: &'static str) -> Param {
    Param::new(name, Ty::Int, Dflt::Int(d), doc).within(Some(min), None)
}

fn positive(name: &'static str, d: f64, doc: &'static str) -> Param {
    Param::new(name, Ty::Float, Dflt::Float(d), doc).positive()
}

fn barrier_params(lambda0: f64, beta: f64, step: f64, outer: usize, inner: usize) -> Vec<Param> {
    vec![
        positive("lambda0", lambda0, "initial barrier weight"),
        Param::new("beta", Ty::Float, Dflt::Float(beta), "barrier weight shrink per outer loop")
            .within(Some(0.0), Some(1.0)),
        positive("step", step, "gradient step"),
        int_at_least("outer", outer as i64, 1.0, "outer (barrier) iterations"),
        int_at_least("inner", inner as i64, 1.0, "inner (gradient) iterations per outer"),
    ]
}

/// The barrier schedule both log-barrier attacks take: lambda0, beta, step, outer, inner.
fn barrier(a: &Args) -> Result<(f64, f64, f64, usize, usize), String> {
    Ok((
        a.need_float("lambda0")?,
        a.need_float("beta")?,
        a.need_float("step")?,
        a.need_usize("outer")?,
        a.need_usize("inner")?,
    ))
}

fn norm(a: &Args) -> Result<Norm, String> {
    let n = a.need_text("norm")?;
    Norm::parse(n).ok_or_else(|| format!("`{n}` is not a norm"))
}

fn attack(
    name: &'static str,
    doc: &'static str,
    params: Vec<Param>,
    lower: fn(&Args) -> Result<Attack, String>,
) -> Builtin {
    Builtin::config(&ATTACK, name, doc, params, move |reg: &Registry, a: &Args| warm(reg, a, lower(a)?))
}

/// The `start:` parameter of the attacks that take starting points.
fn start_param() -> Param {
    Param::new(
        "start",
        Ty::opt(Ty::kind(&ATTACK)),
        Dflt::None,
        "warm start: refine the adversarial points of a fast attack, e.g. `fmn(norm: l2)` or `ddn()`, instead of starting from noise",
    )
}

/// An attack with a `start:` runs from that attack's points.
fn warm(reg: &Registry, a: &Args, refine: Attack) -> Result<Attack, String> {
    match a.config("start") {
        Some(c) if refine.takes_starts() => {
            Ok(Attack::Warm { start: Box::new(reg.lower::<Attack>(c)?), refine: Box::new(refine) })
        }
        _ => Ok(refine),
    }
}

/// What `bounds:` takes.
fn bounds_type() -> Ty {
    Ty::OneOf(
        "input bounds `[lo, hi]`, `none` (unbounded) or `data` (the dataset's own)",
        vec![Ty::Null, Ty::choice(&["data"]), Ty::list(Ty::Float)],
    )
}

/// The language's defaults are the numerical library's: one source for both.
pub fn builtins() -> Vec<Builtin> {
    let lbd = LogBarrierConfig::paper(Norm::L2);
    let plbd = ProxConfig::paper(Norm::L2);
    let (cwd, ddnd) = (CwConfig::default(), DdnConfig::default());
    let pgdd = PgdConfig::baseline(Norm::L2, None);
    let mut lb = vec![Param::new("norm", Ty::choice(&["l2", "linf"]), Dflt::Str("l2"), "the distance minimised")];
    lb.extend(barrier_params(lbd.lambda0, lbd.beta, lbd.step, lbd.outer, lbd.inner));
    lb.push(
        Param::new("gamma", Ty::Float, Dflt::Float(lbd.gamma), "pull-back toward the previous iterate")
            .within(Some(0.0), Some(1.0)),
    );
    lb.push(
        Param::new("tol", Ty::Float, Dflt::Float(lbd.tol), "an image stops its inner loop below this step")
            .within(Some(0.0), None),
    );
    lb.push(positive("temperature", lbd.temperature, "softmax temperature of the smooth linf surrogate"));
    lb.push(start_param());
    let mut plb = vec![Param::new(
        "norm",
        Ty::choice(&["l0", "l1", "l2", "linf"]),
        Dflt::Str("l2"),
        "the dissimilarity minimised (its proximal operator is used)",
    )];
    plb.extend(barrier_params(plbd.lambda0, plbd.beta, plbd.step, plbd.outer, plbd.inner));
    plb.push(positive("mu", plbd.mu, "weight of the dissimilarity"));
    plb.push(
        Param::new(
            "gamma",
            Ty::Float,
            Dflt::Float(L0_PULL_BACK),
            "l0: share of a rejected step kept when pulling back",
        )
        .within(Some(0.0), Some(1.0)),
    );
    plb.push(start_param());
    let fmnd = FmnConfig::paper(Norm::L2);
    let attacked_doc = "Attack the first `count` images (or the first `count` correctly classified ones) of labelled data: \
                        per-image CSV and adversarial inputs, re-verified success, distances in l0/l1/l2/linf, robust \
                        accuracy at `eps`, and a clean / adversarial / perturbation figure.";
    vec![
        attack(
            "logbarrier",
            "LogBarrier (Finlay et al. 2019), minimum-norm in l2 or linf; defaults of the paper's code.",
            lb,
            |a| {
                let (lambda0, beta, step, outer, inner) = barrier(a)?;
                Ok(Attack::LogBarrier(LogBarrierConfig {
                    norm: norm(a)?,
                    lambda0,
                    beta,
                    gamma: a.need_float("gamma")?,
                    step,
                    outer,
                    inner,
                    tol: a.need_float("tol")?,
                    temperature: a.need_float("temperature")?,
                }))
            },
        ),
        attack(
            "prox_logbarrier",
            "ProxLogBarrier (Pooladian et al. 2020), minimum l0/l1/l2/linf by proximal steps; the paper's defaults.",
            plb,
            |a| {
                let d = ProxConfig::paper(norm(a)?);
                let (lambda0, beta, step, outer, inner) = barrier(a)?;
                Ok(Attack::ProxLogBarrier(ProxConfig {
                    lambda0,
                    beta,
                    step,
                    mu: a.need_float("mu")?,
                    outer,
                    inner,
                    rule: match d.rule {
                        StepRule::PullBack { .. } => StepRule::PullBack { gamma: a.need_float("gamma")? },
                        rule => rule,
                    },
                    ..d
                }))
            },
        ),
        attack(
            "pgd",
            "PGD on the logit margin with restarts; the smallest radius it succeeds at, by bisection per image.",
            vec![
                Param::new("norm", Ty::choice(&["l2", "linf"]), Dflt::Str("l2"), "the ball"),
                int_at_least("steps", pgdd.steps as i64, 1.0, "gradient steps per radius"),
                int_at_least("restarts", pgdd.restarts as i64, 1.0, "tries per radius (random starts after the first)"),
                Param::new("eps_max", Ty::opt(Ty::Float), Dflt::None, "largest radius (default: the bounds' diameter)")
                    .positive(),
                int_at_least("bisections", pgdd.bisections as i64, 0.0, "halvings of the radius interval"),
            ],
            |a| {
                Ok(Attack::Pgd(PgdConfig {
                    norm: norm(a)?,
                    steps: a.need_usize("steps")?,
                    restarts: a.need_usize("restarts")?,
                    eps_max: a.float("eps_max"),
                    bisections: a.need_usize("bisections")?,
                }))
            },
        ),
        attack(
            "cw",
            "Carlini-Wagner l2 in tanh space with Adam and a binary search over c; their code's defaults.",
            vec![
                int_at_least("steps", cwd.steps as i64, 1.0, "Adam steps per binary-search step (early abort)"),
                int_at_least("binary_steps", cwd.binary_steps as i64, 1.0, "binary-search steps over c"),
                positive("lr", cwd.lr, "Adam learning rate"),
                positive("c0", cwd.c0, "initial c"),
                Param::new("kappa", Ty::Float, Dflt::Float(cwd.kappa), "confidence margin").within(Some(0.0), None),
            ],
            |a| {
                Ok(Attack::CarliniWagner(CwConfig {
                    steps: a.need_usize("steps")?,
                    binary_steps: a.need_usize("binary_steps")?,
                    lr: a.need_float("lr")?,
                    c0: a.need_float("c0")?,
                    kappa: a.need_float("kappa")?,
                }))
            },
        ),
        attack(
            "fmn",
            "Fast Minimum-Norm (Pintor et al. 2021), l0/l1/l2/linf: normalised margin ascent projected onto an adaptive lp ball; the reference code's schedules, 100 steps.",
            vec![
                Param::new("norm", Ty::choice(&["l0", "l1", "l2", "linf"]), Dflt::Str("l2"), "the distance minimised"),
                int_at_least("steps", fmnd.steps as i64, 1.0, "iterations"),
                positive("alpha", fmnd.alpha_init, "initial step (cosine-annealed to `alpha_final`)"),
                positive("alpha_final", fmnd.alpha_final, "final step"),
                Param::new("gamma", Ty::Float, Dflt::Float(fmnd.gamma_init), "initial relative radius change")
                    .within(Some(0.0), Some(1.0)),
                Param::new("gamma_final", Ty::Float, Dflt::Float(fmnd.gamma_final), "final relative radius change")
                    .within(Some(0.0), Some(1.0)),
                start_param(),
            ],
            |a| {
                Ok(Attack::Fmn(FmnConfig {
                    norm: norm(a)?,
                    steps: a.need_usize("steps")?,
                    alpha_init: a.need_float("alpha")?,
                    alpha_final: a.need_float("alpha_final")?,
                    gamma_init: a.need_float("gamma")?,
                    gamma_final: a.need_float("gamma_final")?,
                }))
            },
        ),
        Builtin::config(
            &ATTACK,
            "ensemble",
            "Several attacks on the same images; per image the smallest perturbation the model confirms wins. A member warm-started from an earlier member reuses its points.",
            vec![
                Param::new("attacks", Ty::list(Ty::kind(&ATTACK)), Dflt::Required, "the members, run in order, e.g. `[fmn(norm: l1), prox_logbarrier(norm: l1, start: fmn(norm: l1))]`"),
                Param::new(
                    "norm",
                    Ty::opt(Ty::choice(&["l0", "l1", "l2", "linf"])),
                    Dflt::None,
                    "the distance compared (default: the first member's)",
                ),
            ],
            |reg: &Registry, a: &Args| {
                let members =
                    a.configs("attacks").into_iter().map(|(c, _)| reg.lower::<Attack>(c)).collect::<Result<Vec<_>, _>>()?;
                let Some(first) = members.first() else { return Err("an ensemble needs at least one attack\nlist the attacks to run, e.g. `ensemble(attacks: [fmn(norm: l2), ddn()])`".into()) };
                let norm = match a.text("norm") {
                    Some(n) => Norm::parse(n).ok_or_else(|| format!("`{n}` is not a norm"))?,
                    None => first.norm(),
                };
                Ok(Attack::Ensemble(Ensemble { norm, members }))
            },
        ),
        attack(
            "ddn",
            "Decoupled Direction and Norm (Rony et al. 2019), l2; the paper's defaults.",
            vec![
                int_at_least("steps", ddnd.steps as i64, 1.0, "iterations"),
                Param::new("gamma", Ty::Float, Dflt::Float(ddnd.gamma), "radius change per step")
                    .within(Some(0.0), Some(1.0)),
                positive("init_norm", ddnd.init_norm, "initial radius"),
                positive("alpha", ddnd.alpha, "initial step (cosine-annealed to 0.01)"),
            ],
            |a| {
                Ok(Attack::Ddn(DdnConfig {
                    steps: a.need_usize("steps")?,
                    gamma: a.need_float("gamma")?,
                    init_norm: a.need_float("init_norm")?,
                    alpha: a.need_float("alpha")?,
                }))
            },
        ),
        Builtin::stage(
            "attack",
            attacked_doc,
            vec![
                Param::new("model", Ty::kind(&MODEL), Dflt::Required, "a trained classifier"),
                Param::new("data", Ty::kind(&DATASET), Dflt::Required, "labelled inputs"),
                Param::new("using", Ty::kind(&ATTACK), Dflt::Required, "the attack, e.g. `logbarrier(norm: l2)`"),
                Param::new("count", Ty::Int, Dflt::Int(100), "how many images").within(Some(1.0), None),
                Param::new("only_correct", Ty::Bool, Dflt::Bool(false), "take the first `count` correctly classified"),
                Param::new("top", Ty::Int, Dflt::Int(1), "success: the label leaves the top `top` classes")
                    .within(Some(1.0), None),
                Param::new(
                    "bounds",
                    bounds_type(),
                    Dflt::Sym("data"),
                    "the box inputs stay in: `[lo, hi]`, `data` (what the dataset declares: images [0, 1]) or `none` (unbounded)",
                ),
                Param::new(
                    "eps",
                    Ty::list(Ty::Float),
                    Dflt::Syms(&[]),
                    "radii >= 0 (attack's norm) for robust accuracy",
                ),
                Param::new("batch", Ty::Int, Dflt::Int(100), "images attacked together").within(Some(1.0), None),
                Param::new("grid", Ty::Int, Dflt::Int(8), "broken images drawn (0: no figure)")
                    .within(Some(0.0), Some(64.0)),
            ],
            AttackStage,
        ),
    ]
}

fn eps_list(args: &Args) -> Vec<f64> {
    args.floats("eps").unwrap_or_default()
}

/// Radii must be finite and non-negative, and distinct after rounding to their names.
fn check_eps(cx: &StaticCall) -> Vec<Diag> {
    let Some(v) = cx.args.get("eps") else { return vec![] };
    let VKind::List(items) = &v.kind else { return vec![] };
    let mut d = Vec::new();
    let mut seen: Vec<(String, f64)> = Vec::new();
    for it in items {
        let x = match it.kind {
            VKind::Int(i) => i as f64,
            VKind::Float(f) => f,
            _ => continue,
        };
        if !(x >= 0.0 && x.is_finite()) {
            d.push(
                Diag::new(Code::E2006, format!("`eps` radii must be >= 0; got {x}")).at(it.span, "not a radius").hint(
                    "robust accuracy at eps counts images no attack broke within distance eps, e.g. `eps: [0.1, 0.3]`",
                ),
            );
            continue;
        }
        let name = robust_metric(x);
        if let Some((_, other)) = seen.iter().find(|(n, _)| *n == name) {
            d.push(
                Diag::new(Code::E2006, format!("`eps` radii {other} and {x} are both reported as `{name}`"))
                    .at(it.span, "same name as an earlier radius")
                    .hint("radii are named by their first three significant digits; drop one or make them differ"),
            );
            continue;
        }
        seen.push((name, x));
    }
    d
}

/// What `bounds:` says, before the data is consulted.
#[derive(Debug, Clone, Copy, PartialEq)]
enum BoundsArg {
    /// The dataset's own box.
    Data,
    Box(f64, f64),
    Unbounded,
}

fn bounds_arg(args: &Args) -> Result<BoundsArg, String> {
    match args.get("bounds").map(|v| &v.kind) {
        None | Some(VKind::Sym(_) | VKind::Str(_)) => Ok(BoundsArg::Data),
        Some(VKind::None) => Ok(BoundsArg::Unbounded),
        _ => {
            let b = args.floats("bounds").unwrap_or_default();
            match b[..] {
                [lo, hi] if lo < hi => Ok(BoundsArg::Box(lo, hi)),
                _ => Err(format!("bounds must be two numbers [lo, hi] with lo < hi; got {b:?}")),
            }
        }
    }
}

/// The box an attack works in; infinite where unbounded. `None`: `data` was asked for and
/// the data declares none.
fn resolve_bounds(arg: BoundsArg, data: Option<&Meta>) -> Option<(f64, f64)> {
    match arg {
        BoundsArg::Box(lo, hi) => Some((lo, hi)),
        BoundsArg::Unbounded => Some((f64::NEG_INFINITY, f64::INFINITY)),
        BoundsArg::Data => data?.bounds,
    }
}

/// Attacks that need a finite box say so when the inputs are unbounded.
fn unbounded_ok(cx: &StaticCall, span: crate::diag::Span) -> Vec<Diag> {
    let Some(attack) = cx.lower::<Attack>("using") else { return vec![] };
    let mut d = Vec::new();
    for part in attack.parts() {
        match part {
            Attack::CarliniWagner(_) => d.push(
                Diag::new(Code::E2006, "`cw` needs finite bounds: it optimises in tanh space between them")
                    .at(span, "unbounded")
                    .hint("give `bounds: [lo, hi]`, or attack unbounded inputs with `ddn`, `pgd` or `logbarrier`"),
            ),
            Attack::Pgd(c) if c.eps_max.is_none() => d.push(
                Diag::new(
                    Code::E2002,
                    "`pgd` on unbounded inputs needs `eps_max`: its default is the diameter of the bounds",
                )
                .at(span, "unbounded")
                .hint("write e.g. `pgd(norm: l2, eps_max: 5.0)`, the largest radius to search"),
            ),
            _ => {}
        }
    }
    d
}

struct AttackStage;

impl Stage for AttackStage {
    fn output(&self) -> &'static Kind {
        &ATTACKED
    }
    fn metrics(&self, args: &Args) -> Vec<String> {
        let mut f: Vec<String> = SUMMARY.iter().map(|s| s.to_string()).collect();
        f.extend(eps_list(args).into_iter().map(robust_metric));
        f
    }
    fn check(&self, cx: &StaticCall) -> Vec<Diag> {
        let (mut d, shape) = check_model(cx, "model", "data");
        d.extend(super::clamp::check(cx, "count", "data"));
        d.extend(check_eps(cx));
        let bounds_span = cx.args.get("bounds").map_or(cx.span, |v| v.span);
        match bounds_arg(cx.args) {
            Err(e) => {
                d.push(Diag::new(Code::E2006, e).at(bounds_span, "invalid bounds").hint("write `bounds: [0.0, 1.0]`"))
            }
            Ok(arg) => {
                let meta = cx.meta("data");
                match (meta.as_ref(), resolve_bounds(arg, meta.as_ref())) {
                    (Some(_), None) => d.push(
                        Diag::new(Code::E2002, "`attack` needs `bounds:`: this data declares no box its inputs live in")
                            .at(cx.args.get("data").map_or(cx.span, |v| v.span), "no declared bounds")
                            .hint("give the box the attack must stay in, e.g. `bounds: [-3.0, 3.0]`, or `bounds: none` for unbounded inputs")
                            .hint("image datasets declare [0, 1]; `toy2d` sets and `logit` outputs declare none"),
                    ),
                    (_, Some((lo, hi))) if !(hi - lo).is_finite() => d.extend(unbounded_ok(cx, bounds_span)),
                    _ => {}
                }
            }
        }
        if let (Some((_, classes)), Some(top)) = (shape, cx.args.int("top"))
            && top as usize >= classes
        {
            d.push(
                Diag::new(Code::E2006, format!("`top: {top}` needs more than {top} classes; the model has {classes}"))
                    .at(cx.args.get("top").map_or(cx.span, |v| v.span), "too large")
                    .hint("`top: 1` is ordinary misclassification"),
            );
        }
        d
    }
    /// 1: ProxLogBarrier l0 pulls rejected steps back (the authors' rule); 2: the final pull
    /// keeps a logit margin of 1e-4; 3: failures count as infinite distances in the summary;
    /// 4: model calls and time kept with the result (for `attack_report`).
    fn revision(&self) -> u32 {
        4
    }
    fn run(&self, cx: &mut RunCtx) -> Result<Output, Diag> {
        let data = cx.input::<Dataset>("data")?;
        let mut rng = cx.take_rng();
        let candle = |e: candle_core::Error| cx.compute_error("the attack", e);
        let net = model_ref(cx, "model", &data.shape, &mut rng)?;
        let attack: Attack = cx.lower("using")?;
        let labels = data.y.as_ref().ok_or_else(|| cx.error(Code::R1002, "the data has no labels"))?;
        let a = cx.args();
        let bounds = bounds_arg(a)
            .ok()
            .and_then(|arg| resolve_bounds(arg, cx.meta_of("data").as_ref()))
            .ok_or_else(|| cx.error(Code::R1006, "the attack has no bounds (the checker should have said so)"))?;
        let count = a.int("count").unwrap_or(100) as usize;
        let batch = a.int("batch").unwrap_or(100) as usize;
        let only_correct = a.bool("only_correct").unwrap_or(false);
        let crit = Criterion { top: a.int("top").unwrap_or(1) as usize };
        let model = |t: &candle_core::Tensor| net.forward_input_grad(t);
        let mut oracle = Oracle::new(&model, &data.shape, bounds, crit, &cx.device);
        if !(bounds.1 - bounds.0).is_finite() {
            // Unbounded inputs: noise starts scale with the spread of the data.
            oracle = oracle.with_scale(data_spread(&data));
        }
        let row = |i: usize| -> Vec<f64> { data.row(i).iter().map(|v| *v as f64).collect() };

        let chosen = choose(&oracle, &data, count, batch, only_correct).map_err(candle)?;
        let short = (chosen.len() < count).then(|| {
            let have = chosen.len();
            if only_correct {
                format!("`count: {count}` asks for more correctly classified examples than the data holds: {have} are attacked")
            } else {
                super::clamp::message("count", count, have)
            }
        });
        let mut outcomes: Vec<Outcome> = Vec::new();
        let to_attack: Vec<usize> = chosen.iter().filter(|c| c.1).map(|c| c.0).collect();
        for &(i, correct) in &chosen {
            if !correct {
                outcomes.push(Outcome {
                    index: i,
                    label: labels[i] as usize,
                    status: Status::Misclassified,
                    adv_label: None,
                    dist: [0.0; 4],
                    input: None,
                    clean: data.row(i).to_vec(),
                });
            }
        }
        let bar = cx.progress.bar(to_attack.len() as u64, cx.name());
        let clock = std::time::Instant::now();
        let mut members = Vec::new();
        for chunk in to_attack.chunks(batch) {
            let xs: Vec<Vec<f64>> = chunk.iter().map(|&i| row(i)).collect();
            let ys: Vec<usize> = chunk.iter().map(|&i| labels[i] as usize).collect();
            let found = attack.run_logged(&oracle, &xs, &ys, &mut rng, &mut members).map_err(candle)?;
            // Re-verify exactly what is returned: the float32 input the model sees.
            let adv: Vec<Option<Vec<f32>>> =
                found.into_iter().map(|f| f.map(|v| v.iter().map(|x| *x as f32).collect())).collect();
            let as64: Vec<Vec<f64>> = adv
                .iter()
                .map(|a| a.as_ref().map_or_else(Vec::new, |v| v.iter().map(|x| *x as f64).collect()))
                .collect();
            let present: Vec<usize> = (0..chunk.len()).filter(|&k| adv[k].is_some()).collect();
            let refs: Vec<&[f64]> = present.iter().map(|&k| as64[k].as_slice()).collect();
            let logits = oracle.logits(&refs).map_err(candle)?;
            let mut verdict: Vec<Option<(bool, usize)>> = vec![None; chunk.len()];
            for (&k, l) in present.iter().zip(&logits) {
                let in_bounds = as64[k].iter().all(|v| *v >= bounds.0 - 1e-6 && *v <= bounds.1 + 1e-6);
                let pred = (0..l.len()).max_by(|&p, &q| l[p].total_cmp(&l[q])).unwrap_or(0);
                verdict[k] = Some((in_bounds && crit.margin(l, ys[k]).0 > 0.0, pred));
            }
            for (k, &i) in chunk.iter().enumerate() {
                let (status, adv_label, dist, input) = match (&verdict[k], &adv[k]) {
                    (Some((true, pred)), Some(a)) => {
                        let d = crate::robust::norms::diff(&as64[k], &xs[k]);
                        let dist = [Norm::L0.of(&d), Norm::L1.of(&d), Norm::L2.of(&d), Norm::Linf.of(&d)];
                        (Status::Broken, Some(*pred), dist, Some(a.clone()))
                    }
                    _ => (Status::Failed, None, [f64::INFINITY; 4], None),
                };
                outcomes.push(Outcome {
                    index: i,
                    label: ys[k],
                    status,
                    adv_label,
                    dist,
                    input,
                    clean: data.row(i).to_vec(),
                });
            }
            bar.inc(chunk.len() as u64);
        }
        bar.finish_and_clear();
        outcomes.sort_by_key(|o| o.index);
        let norm = attack.norm();
        let mut files = Vec::new();
        let grid = a.int("grid").unwrap_or(8) as usize;
        if grid > 0 && data.shape.len() == 3 && (data.shape[0] == 1 || data.shape[0] == 3) {
            files.extend(write_grid(cx, &outcomes, &data, grid, norm)?);
        }
        let (forwards, gradients) = oracle.evaluations();
        let per = |v: usize| v as f64 / to_attack.len().max(1) as f64;
        let cost = Cost {
            label: attack.label(),
            forwards_per_image: per(forwards),
            gradients_per_image: per(gradients),
            seconds: clock.elapsed().as_secs_f64(),
            broken: None,
            wins: None,
        };
        let members: Vec<Cost> = members
            .into_iter()
            .map(|m| Cost {
                label: m.label,
                forwards_per_image: per(m.forwards),
                gradients_per_image: per(m.gradients),
                seconds: m.seconds,
                broken: Some(m.broken),
                wins: Some(m.wins),
            })
            .collect();
        let mut metrics = summary(&outcomes, norm, &eps_list(a));
        cost.insert_into(&mut metrics, "");
        for m in &members {
            m.insert_into(&mut metrics, &format!("members.{}.", metric_key(&m.label)));
        }
        if let Some(w) = short {
            cx.warn(Code::W2001, w);
        }
        let attacked = Attacked { norm, shape: data.shape.clone(), outcomes, cost, members };
        Ok(Output { artifact: Arc::new(attacked), metrics, files })
    }
}

/// The width of the range of the data's values: the scale of noise starts on unbounded
/// inputs.
pub(super) fn data_spread(data: &Dataset) -> f64 {
    let (lo, hi) = data.x.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
    (hi - lo) as f64
}

/// Which images: the first `count` of labelled `data`, or the first `count` the model gets
/// right, each with whether it does; the model runs `batch` images at a time.
pub(super) fn choose(
    oracle: &Oracle,
    data: &Dataset,
    count: usize,
    batch: usize,
    only_correct: bool,
) -> candle_core::Result<Vec<(usize, bool)>> {
    let labels = data.y.as_deref().unwrap_or(&[]);
    let mut chosen: Vec<(usize, bool)> = Vec::new();
    let mut next = 0;
    while chosen.len() < count && next < data.n.min(labels.len()) {
        let idx: Vec<usize> = (next..(next + batch).min(data.n)).collect();
        next += idx.len();
        let rows: Vec<Vec<f64>> = idx.iter().map(|&i| data.row(i).iter().map(|v| *v as f64).collect()).collect();
        let refs: Vec<&[f64]> = rows.iter().map(Vec::as_slice).collect();
        let ys: Vec<usize> = idx.iter().map(|&i| labels[i] as usize).collect();
        let wrong = oracle.adversarial(&refs, &ys)?;
        for (i, w) in idx.into_iter().zip(wrong) {
            if chosen.len() < count && !(only_correct && w) {
                chosen.push((i, !w));
            }
        }
    }
    Ok(chosen)
}

/// Rows of three: clean (label), adversarial (new label), perturbation (grey is zero).
fn write_grid(
    cx: &RunCtx,
    outcomes: &[Outcome],
    data: &crate::data::Dataset,
    count: usize,
    norm: Norm,
) -> Result<Vec<String>, Diag> {
    let mut images: Vec<Vec<f32>> = Vec::new();
    let mut captions = Vec::new();
    for o in outcomes.iter().filter(|o| o.status == Status::Broken).take(count) {
        let (Some(adv), Some(al)) = (&o.input, o.adv_label) else { continue };
        let clean = data.row(o.index);
        let d: Vec<f32> = adv.iter().zip(clean).map(|(a, c)| a - c).collect();
        let m = d.iter().fold(1e-12f32, |m, v| m.max(v.abs()));
        images.push(clean.to_vec());
        images.push(adv.clone());
        images.push(d.iter().map(|v| 0.5 + 0.5 * v / m).collect());
        captions.push(data.class_name(o.label as u32));
        captions.push(format!("->{}", data.class_name(al as u32)));
        captions.push(format!("{:.3}", o.dist[norm_column(norm)]));
    }
    let refs: Vec<&[f32]> = images.iter().map(Vec::as_slice).collect();
    let title = format!("Adversarial examples ({}), label -> new label", norm.name());
    // Two triples a row once there are two: half the height of one triple a row.
    let perturbation = format!("perturbation ({})", norm.name());
    let triple = ["clean", "adversarial", perturbation.as_str()];
    let headings: Vec<&str> = triple.iter().cycle().take(if refs.len() >= 6 { 6 } else { 3 }).copied().collect();
    let grid = ImageGrid {
        title: &title,
        images: &refs,
        shape: &data.shape,
        captions: &captions,
        columns: Some(headings.len()),
        headings: &headings,
    };
    super::plots::write_figure(cx, "grid", grid.render())
}
