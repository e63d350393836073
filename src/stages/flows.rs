//! Continuous normalizing flows (FFJORD, RNODE): the `cnf` config and its time-dependent
//! field layers, traces and regularizers, and the `density_plot` stage. Training and
//! evaluation of a flow go through `train` and `evaluate`, which hand a flow to
//! `flow_train`; the trained flow is `flow_trained`'s artifact.

use super::flow_curves::{CURVES, FlowCurves};
use super::flow_density::DensityPlot;
use super::flow_trained::FLOW_TRAINING;
use super::layers::LAYER;
use super::ode::SOLVER;
use crate::diag::{Code, Diag, Span};
use crate::flow::{Trace, field_plan};
use crate::lang::{Args, Builtin, CVal, Dflt, Kind, Param, Registry, Role, StaticCall, Ty, VKind};
use crate::nn::LayerSpec;
use crate::ode::{Method, Options};
use serde::{Deserialize, Serialize};
use std::any::TypeId;

/// A flow to train or evaluate: a `cnf(...)`, or a trained one.
pub static FLOW: Kind =
    Kind { name: "flow", describe: "a flow (`cnf(...)` or a trained one)", supers: &[], role: Role::Abstract };

pub static CNF: Kind = Kind {
    name: "cnf",
    describe: "a continuous normalizing flow such as `cnf(field(), t1: 0.5)`",
    supers: &[&FLOW],
    role: Role::Config {
        noun: "flow",
        heading: "flows",
        lowers_to: TypeId::of::<FlowSpec>,
        lowers_to_name: "FlowSpec",
        chains: false,
    },
};

pub static TRACE: Kind = Kind {
    name: "trace",
    describe: "a divergence estimator, `exact` or `hutchinson(...)`",
    supers: &[],
    role: Role::Config {
        noun: "trace",
        heading: "traces",
        lowers_to: TypeId::of::<Trace>,
        lowers_to_name: "flow::Trace",
        chains: false,
    },
};

pub static REGULARIZER: Kind = Kind {
    name: "regularizer",
    describe: "a training regularizer such as `kinetic(0.01)`",
    supers: &[],
    role: Role::Config {
        noun: "regularizer",
        heading: "regularizers",
        lowers_to: TypeId::of::<Regularizer>,
        lowers_to_name: "Regularizer",
        chains: false,
    },
};

/// RNODE's penalties, each an integral along the trajectory weighted by lambda.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Regularizer {
    Kinetic(f64),
    JacobianFrobenius(f64),
}

/// What `cnf(...)` lowers into: everything needed to build, train and reload the flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowSpec {
    pub field: Vec<LayerSpec>,
    pub t0: f64,
    pub t1: f64,
    pub solver: Options,
    pub trace: Trace,
    pub adjoint: bool,
}

/// FFJORD's and RNODE's solver: dopri5 with atol = rtol = 1e-5.
pub fn default_solver() -> Options {
    Options { rtol: 1e-5, atol: 1e-5, ..Options::new(Method::Dopri5) }
}

fn time_layer(name: &'static str, doc: &'static str, make: fn(Option<usize>, usize) -> LayerSpec) -> Builtin {
    Builtin::config(
        &LAYER,
        name,
        doc,
        vec![
            Param::new("in", Ty::opt(Ty::Int), Dflt::None, "input width; inferred when omitted")
                .within(Some(1.0), None),
            Param::new("out", Ty::Int, Dflt::Required, "output width").within(Some(1.0), None),
        ],
        move |_: &Registry, a: &Args| Ok(vec![make(a.int("in").map(|v| v as usize), a.need_usize("out")?)]),
    )
}

fn penalty(name: &'static str, doc: &'static str, make: fn(f64) -> Regularizer) -> Builtin {
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
        time_layer(
            "concat_squash",
            "FFJORD's time-dependent dense layer (W x + b) * sigmoid(W_g t + b_g) + W_b t, for a `cnf`'s field; `concat_squash(out)` infers its input width.",
            |input, out| LayerSpec::ConcatSquash { input, out },
        )
        .positional("out"),
        time_layer(
            "concat_linear",
            "A dense layer of [x, t]: W x + b + w_t t, for a `cnf`'s field.",
            |input, out| LayerSpec::ConcatLinear { input, out },
        )
        .positional("out"),
        Builtin::config(&TRACE, "exact", "The exact divergence: d Jacobian-vector products per evaluation (low dimension).", vec![], |_: &Registry, _: &Args| {
            Ok(Trace::Exact)
        }),
        Builtin::config(
            &TRACE,
            "hutchinson",
            "Hutchinson's estimator eps^T (df/dz) eps, one draw per example held fixed for the whole solve.",
            vec![Param::new("noise", Ty::choice(&["gaussian", "rademacher"]), Dflt::Sym("gaussian"), "the draws' distribution")],
            |_: &Registry, a: &Args| Ok(Trace::Hutchinson { rademacher: a.text("noise") == Some("rademacher") }),
        ),
        penalty(
            "kinetic",
            "RNODE's kinetic energy: lambda times the integral of 0.5 * mean over coordinates of |f|^2, per example.",
            Regularizer::Kinetic,
        ),
        penalty(
            "jacobian_frobenius",
            "RNODE's Jacobian penalty: lambda times the integral of |df/dz|_F^2 / d (Hutchinson's eps^T J^T J eps / d with the trace's draw).",
            Regularizer::JacobianFrobenius,
        ),
        Builtin::config(
            &CNF,
            "cnf",
            "Continuous normalizing flow (FFJORD): dz/dt = field(t, z) from data at t0 to a standard normal at t1, log p(x) = log N(z(t1)) + integral of tr(df/dz).",
            vec![
                Param::new("field", Ty::kind(&LAYER), Dflt::Required, "`concat_squash`/`concat_linear` layers with activations, state width in and out"),
                Param::new("t0", Ty::Float, Dflt::Float(0.0), "start time"),
                Param::new("t1", Ty::Float, Dflt::Required, "end time (RNODE's toy flows: 0.5)").positive(),
                Param::new("solver", Ty::opt(Ty::kind(&SOLVER)), Dflt::None, "default: dopri5(atol: 1e-5, rtol: 1e-5), FFJORD's and RNODE's"),
                Param::new("trace", Ty::kind(&TRACE), Dflt::Config("exact"), "`exact` or `hutchinson(noise: gaussian)`"),
                Param::new("adjoint", Ty::Bool, Dflt::Bool(false), "gradients by the adjoint method (constant memory) instead of backprop through the solver"),
            ],
            |reg: &Registry, a: &Args| {
                let field = reg.lower_each::<Vec<LayerSpec>>(a.need("field")?)?.concat();
                let solver = match a.config("solver") {
                    Some(c) => reg.lower::<Options>(c)?,
                    None => default_solver(),
                };
                let trace = reg.lower::<Trace>(a.config("trace").ok_or("argument `trace` is not a trace")?)?;
                Ok(FlowSpec {
                    field,
                    t0: a.need_float("t0")?,
                    t1: a.need_float("t1")?,
                    solver,
                    trace,
                    adjoint: a.need_bool("adjoint")?,
                })
            },
        ),
        Builtin::stage(
            "flow_curves",
            "Per-iteration curves of several flow trainings overlaid (moving average): forward or backward NFE (RNODE's figure), NLL, loss or seconds.",
            vec![
                Param::new("runs", Ty::list(Ty::kind(&FLOW_TRAINING)), Dflt::Required, "`train` results of flows"),
                Param::new("labels", Ty::list(Ty::Str), Dflt::Syms(&[]), "legend entries (default: stage names)"),
                Param::new("metric", Ty::choice(&CURVES), Dflt::Str("nfe_forward"), "which curve"),
                Param::new("window", Ty::Int, Dflt::Int(50), "moving-average window in iterations").within(Some(1.0), None),
                Param::new("title", Ty::opt(Ty::Str), Dflt::None, "figure title (default: what is drawn)"),
            ],
            FlowCurves,
        ),
        Builtin::stage(
            "density_plot",
            "The learned density of 2-D flows on a grid beside histograms of their training data and of samples (integrated back from the base), FFJORD's figure; reports each density's mass on the grid.",
            vec![
                Param::new("flows", Ty::OneOf("a trained flow or a list of them", vec![Ty::kind(&FLOW_TRAINING), Ty::list(Ty::kind(&FLOW_TRAINING))]), Dflt::Required, "`train` results of 2-D flows, one row each"),
                Param::new("labels", Ty::list(Ty::Str), Dflt::Syms(&[]), "row names (default: stage names)"),
                Param::new("grid", Ty::Int, Dflt::Int(200), "grid cells per axis").within(Some(4.0), Some(1000.0)),
                Param::new("samples", Ty::Int, Dflt::Int(20000), "samples drawn from each flow").within(Some(1.0), Some(1_000_000.0)),
                Param::new("bounds", Ty::opt(Ty::list(Ty::Float)), Dflt::None, "[lo, hi] of the square drawn (default: around the data)"),
                Param::new("title", Ty::opt(Ty::Str), Dflt::None, "figure title (default: what is drawn)"),
            ],
            DensityPlot,
        ),
    ]
}

/// The flow a `model` argument holds as a config, if it is one.
pub fn flow_config(args: &Args, param: &str) -> bool {
    args.config(param).is_some_and(|c| c.builtin == "cnf")
}

/// Where a layer of the field was written: the layer inside the `cnf(...)` call when it is
/// in the same file, else the call.
fn layer_span(cx: &StaticCall, param: &str, layer: usize) -> Span {
    let Some(v) = cx.args.get(param) else { return cx.span };
    let Some(VKind::Config(c)) = Some(&v.kind) else { return v.span };
    let Some(field) = c.args.get("field") else { return v.span };
    let layers: Vec<&CVal> = field.layers();
    match layers.get(layer) {
        Some(l) if l.span.file == v.span.file => l.span,
        _ => v.span,
    }
}

/// Checks a flow config against the data it meets: vector data, and a field that maps the
/// state's width back to itself.
pub fn check_flow(cx: &StaticCall, model: &str, data: &str) -> Vec<Diag> {
    let (Some(spec), Some(meta)) = (cx.lower::<FlowSpec>(model), cx.meta(data)) else { return vec![] };
    let Some(shape) = meta.shape else { return vec![] };
    let at = cx.args.get(data).map_or(cx.span, |v| v.span);
    let mut diags = Vec::new();
    if spec.t1 <= spec.t0 {
        diags.push(
            Diag::new(Code::E2006, format!("the flow's t1 ({}) must be after its t0 ({})", spec.t1, spec.t0))
                .at(cx.args.get(model).map_or(cx.span, |v| v.span), "t1 not after t0")
                .hint("the flow runs from data at t0 to the base distribution at t1"),
        );
    }
    let [d] = shape.as_slice() else {
        diags.push(
            Diag::new(Code::E4001, format!("a `cnf` models vectors; these examples have shape {shape:?}"))
                .at(at, "not vector data")
                .hint("image flows (multiscale, dequantized, bits/dim) are not built yet: model vector data for now"),
        );
        return diags;
    };
    if let Err(e) = field_plan(&spec.field, *d) {
        diags.push(
            Diag::new(Code::E4001, format!("the flow's field on {d}-dimensional data: {}", e.message))
                .at(layer_span(cx, model, e.layer), "does not fit what arrives here")
                .hint(format!("the field maps the state ({d} values) to its time derivative ({d} values): `concat_squash({d}, 64) |> tanh |> concat_squash(64, {d})`")),
        );
    }
    diags
}
