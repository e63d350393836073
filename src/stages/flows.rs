//! Continuous normalizing flows (FFJORD, RNODE): the `cnf` config and its time-dependent
//! field layers, traces and regularizers, and the `density_plot` stage. Training and
//! evaluation of a flow go through `train` and `evaluate`, which hand a flow to
//! `flow_train`; the trained flow is `flow_trained`'s artifact.

use super::flow_curves::{CURVES, FlowCurves};
use super::flow_density::DensityPlot;
use super::flow_field::FlowPlot;
use super::flow_samples::SampleGrid;
use super::flow_trained::FLOW_TRAINING;
use super::layers::LAYER;
use super::ode::SOLVER;
use crate::diag::{Code, Diag, Span};
use crate::flow::{BuiltFlow, FlowChain, Mrcnf, Multiscale, Trace, field_plan, scales_fit};
use crate::lang::{Args, Builtin, CVal, Dflt, Kind, Param, Registry, Role, StaticCall, Ty, VKind};
use crate::nn::{Activation, LayerSpec};
use crate::ode::{Method, Options};
use crate::potential::{HeatRule, PotentialFlow, check_layers};
use crate::rng::Rng;
use candle_core::{DType, Device};
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

/// What `cnf(...)` and `multiscale_cnf(...)` lower into: everything needed to build, train
/// and reload the flow (with the shape of the data it meets).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowSpec {
    /// The field of each block (empty for a multiscale flow, whose fields follow `multiscale`).
    pub field: Vec<LayerSpec>,
    pub t0: f64,
    pub t1: f64,
    pub solver: Options,
    pub trace: Trace,
    pub adjoint: bool,
    /// CNF blocks in sequence (per scale and side of a squeeze, for a multiscale flow).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub blocks: usize,
    /// The logit transform's alpha, for image data.
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiscale: Option<ScaleSpec>,
    /// A flow recovered from entropic Kantorovich potentials (`potential_flow`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub potential: Option<PotentialSpec>,
}

/// `potential_flow(...)`: the two potentials' layers, eps, and the heat operator's draws.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PotentialSpec {
    pub phi: Vec<LayerSpec>,
    pub psi: Vec<LayerSpec>,
    pub eps: f64,
    /// Draws per point for the heat operator in training (the paper: 100).
    pub mc_samples: usize,
    /// Draws of the fixed rule the recovered flow smooths with (the paper: 200 in generation).
    pub flow_samples: usize,
    /// Gauss-Hermite points per axis for the heat operator, in training and in the flow,
    /// instead of Monte-Carlo draws.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gauss_hermite: Option<usize>,
}

/// FFJORD's multiscale layout, or MRCNF's multi-resolution one: scales, and each block's
/// convolutional field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScaleSpec {
    pub scales: usize,
    pub hidden: Vec<usize>,
    pub act: Activation,
    pub kernel: usize,
    /// A multi-resolution flow (`mrcnf`) rather than FFJORD's multiscale one.
    #[serde(default, skip_serializing_if = "is_false")]
    pub multires: bool,
}

fn is_false(v: &bool) -> bool {
    !*v
}

fn one() -> usize {
    1
}

fn is_one(v: &usize) -> bool {
    *v == 1
}

/// FFJORD's logit alpha for MNIST.
fn default_alpha() -> f64 {
    1e-6
}

impl FlowSpec {
    /// The flow over examples of `shape`, fresh parameters from `rng`.
    pub fn build(&self, shape: &[usize], rng: &mut Rng, dev: &Device) -> Result<BuiltFlow, String> {
        if let Some(p) = &self.potential {
            let &[d] = shape else { return Err(format!("a potential flow models vectors, not examples of shape {shape:?}")) };
            let mut flow = PotentialFlow::new(&p.phi, &p.psi, d, p.eps, p.flow_samples, rng, dev)?;
            if let Some(k) = p.gauss_hermite {
                flow.rule = HeatRule::gauss_hermite(flow_nodes(k, p.flow_samples, d), d);
                flow.fixed_rule = true;
            }
            return Ok(BuiltFlow::Potential(Box::new(flow)));
        }
        match &self.multiscale {
            Some(m) => {
                let layout = Multiscale {
                    scales: m.scales,
                    blocks: self.blocks,
                    hidden: m.hidden.clone(),
                    act: m.act,
                    kernel: m.kernel,
                    alpha: self.alpha,
                    t0: self.t0,
                    t1: self.t1,
                    trace: self.trace,
                };
                if m.multires {
                    Mrcnf::new(shape, &layout, rng, DType::F32, dev).map(BuiltFlow::Multires)
                } else {
                    FlowChain::multiscale(shape, &layout, rng, DType::F32, dev).map(BuiltFlow::Chain)
                }
            }
            None => FlowChain::blocks_of(
                &self.field,
                shape,
                self.blocks,
                (self.t0, self.t1),
                self.trace,
                self.alpha,
                rng,
                dev,
            )
            .map(BuiltFlow::Chain),
        }
    }
}

/// Gauss-Hermite points per axis of a potential flow's own rule: as many as `flow_samples`
/// allows in `d` dimensions, at least the training's `nodes`. The flow needs the finer
/// rule: its velocity and density satisfy the continuity equation only as far as the rule
/// solves the heat equation (measured on 8gaussians: with the training's 5 x 5 rule the
/// ODE's NLL was 1.4 nats above the closed form's; 8 x 8: 0.19; 12 x 12: 0.18).
pub fn flow_nodes(nodes: usize, flow_samples: usize, d: usize) -> usize {
    let mut k = 1;
    while ((k + 1) as f64).powi(d as i32) <= flow_samples as f64 {
        k += 1;
    }
    k.max(nodes)
}

/// FFJORD's and RNODE's solver: dopri5 with atol = rtol = 1e-5.
pub fn default_solver() -> Options {
    Options { rtol: 1e-5, atol: 1e-5, ..Options::new(Method::Dopri5) }
}

/// A flow call's `solver` (FFJORD's default when absent) and `trace`, lowered.
fn solver_and_trace(reg: &Registry, a: &Args) -> Result<(Options, Trace), String> {
    let solver = match a.config("solver") {
        Some(c) => reg.lower::<Options>(c)?,
        None => default_solver(),
    };
    let trace = reg.lower::<Trace>(a.config("trace").ok_or("argument `trace` is not a trace")?)?;
    Ok((solver, trace))
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
        Builtin::config(
            &LAYER,
            "concat_conv2d",
            "FFJORD's convolution of [t, x] (the time as an extra input channel), stride 1 and same padding, for a `cnf`'s field over images; `concat_conv2d(out)` infers its input channels.",
            vec![
                Param::new("in", Ty::opt(Ty::Int), Dflt::None, "input channels; inferred when omitted").within(Some(1.0), None),
                Param::new("out", Ty::Int, Dflt::Required, "output channels").within(Some(1.0), None),
                Param::new("k", Ty::Int, Dflt::Int(3), "kernel size (odd: the image keeps its size)").within(Some(1.0), None),
            ],
            |_: &Registry, a: &Args| {
                Ok(vec![LayerSpec::ConcatConv2d {
                    input: a.int("in").map(|v| v as usize),
                    out: a.need_usize("out")?,
                    kernel: a.need_usize("k")?,
                }])
            },
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
                Param::new("blocks", Ty::Int, Dflt::Int(1), "CNF blocks in sequence, each with its own field").within(Some(1.0), Some(64.0)),
                Param::new("alpha", Ty::Float, Dflt::Float(1e-6), "image data: the logit transform's alpha (FFJORD's MNIST value)").within(Some(0.0), Some(0.49)),
            ],
            |reg: &Registry, a: &Args| {
                let field = reg.lower_each::<Vec<LayerSpec>>(a.need("field")?)?.concat();
                let (solver, trace) = solver_and_trace(reg, a)?;
                Ok(FlowSpec {
                    field,
                    t0: a.need_float("t0")?,
                    t1: a.need_float("t1")?,
                    solver,
                    trace,
                    adjoint: a.need_bool("adjoint")?,
                    blocks: a.need_usize("blocks")?,
                    alpha: a.need_float("alpha")?,
                    multiscale: None,
                    potential: None,
                })
            },
        ),
        Builtin::config(
            &CNF,
            "multiscale_cnf",
            "FFJORD's multiscale CNF for images (RNODE's MNIST model): the logit transform, then per scale `blocks` CNF blocks, a squeeze (2x2 blocks to channels), `blocks` more, and half the channels factored out to the base; each block's field is concat_conv2d layers of the `hidden` widths.",
            scale_params(1e-6, "the logit transform's alpha (FFJORD's MNIST value)", "CNF blocks on each side of a squeeze"),
            |reg: &Registry, a: &Args| scale_spec(reg, a, false),
        ),
        Builtin::config(
            &CNF,
            "mrcnf",
            "Multi-resolution CNF (Voleti et al. 2021): images split into ever coarser images and the details between them by a unit-determinant 2x2 transform; a CNF on the coarsest image (after the logit transform) and, per finer scale, a CNF on the details conditioned on the coarse image (its channels concatenated to the field's input). log p(x) is the sum of the scales' terms; samples are drawn coarse to fine.",
            scale_params(0.05, "the logit transform's alpha (the reference code's value)", "CNF blocks per scale"),
            |reg: &Registry, a: &Args| scale_spec(reg, a, true),
        ),
        Builtin::config(
            &CNF,
            "potential_flow",
            "A flow from entropic Kantorovich potentials (Finlay et al. 2020): scalar networks phi (data side, t = 0) and psi (normal side, t = 1) trained by the entropic dual with no ODE solve (`train(..., loss: entropic_dual)`); the flow is v_t = grad(psi_t - phi_t) / 2 with phi_t, psi_t the potentials smoothed by the heat operator, and the density at t = 0 is exp((phi + eps log H_eps e^{psi/eps}) / eps) up to its constant.",
            vec![
                Param::new("phi", Ty::kind(&LAYER), Dflt::Required, "the data-side potential: `linear` layers with activations, ending in `linear(1)` (the paper: 4 layers of width 64)"),
                Param::new("psi", Ty::kind(&LAYER), Dflt::Required, "the normal-side potential, layers as `phi`"),
                Param::new("eps", Ty::Float, Dflt::Float(1.0), "the entropic parameter (the paper: 1; smaller is sharper and harder)").positive(),
                Param::new("mc_samples", Ty::Int, Dflt::Int(100), "draws per point for the heat operator in training (the paper: 100)").within(Some(1.0), Some(10_000.0)),
                Param::new("flow_samples", Ty::Int, Dflt::Int(200), "points of the fixed rule the recovered flow smooths with: antithetic Monte-Carlo draws (the paper: 200 in generation), or with `heat: gauss_hermite` the largest k^dim rule within it (at least `nodes` a side: the flow needs a finer rule than training)").within(Some(2.0), Some(10_000.0)),
                Param::new("heat", Ty::choice(&["monte_carlo", "gauss_hermite"]), Dflt::Sym("monte_carlo"), "the heat operator's estimator: Monte-Carlo draws (the paper's; its log-sum-exp is biased low by O(1/mc_samples)) or a tensor-product Gauss-Hermite rule of `nodes` points per axis, in training and in the flow (low dimension)"),
                Param::new("nodes", Ty::Int, Dflt::Int(5), "Gauss-Hermite points per axis with `heat: gauss_hermite` (nodes^dim evaluations per point)").within(Some(1.0), Some(64.0)),
                Param::new("solver", Ty::opt(Ty::kind(&SOLVER)), Dflt::None, "for the likelihood and sampling; default: dopri5(atol: 1e-5, rtol: 1e-5)"),
            ],
            |reg: &Registry, a: &Args| {
                let solver = match a.config("solver") {
                    Some(c) => reg.lower::<Options>(c)?,
                    None => default_solver(),
                };
                let layers = |name: &str| -> Result<Vec<LayerSpec>, String> {
                    Ok(reg.lower_each::<Vec<LayerSpec>>(a.need(name)?)?.concat())
                };
                Ok(FlowSpec {
                    field: Vec::new(),
                    t0: 0.0,
                    t1: 1.0,
                    solver,
                    trace: Trace::Exact,
                    adjoint: false,
                    blocks: 1,
                    alpha: default_alpha(),
                    multiscale: None,
                    potential: Some(PotentialSpec {
                        phi: layers("phi")?,
                        psi: layers("psi")?,
                        eps: a.need_float("eps")?,
                        mc_samples: a.need_usize("mc_samples")?,
                        flow_samples: a.need_usize("flow_samples")?,
                        gauss_hermite: if a.text("heat") == Some("gauss_hermite") { Some(a.need_usize("nodes")?) } else { None },
                    }),
                })
            },
        ),
        Builtin::stage(
            "flow_curves",
            "Per-iteration curves of several flow trainings overlaid (moving average): forward or backward NFE (RNODE's figure), NLL, bits per dimension (image flows), loss or seconds.",
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
            "sample_grid",
            "Images drawn from a trained image flow (base draws integrated back through its blocks), with training images beside them; reports the sampling's NFE.",
            vec![
                Param::new("flow", Ty::kind(&FLOW_TRAINING), Dflt::Required, "`train` result of an image flow"),
                Param::new("count", Ty::Int, Dflt::Int(64), "samples drawn").within(Some(1.0), Some(1024.0)),
                Param::new("data", Ty::Bool, Dflt::Bool(true), "show as many training images beside them"),
                Param::new("title", Ty::opt(Ty::Str), Dflt::None, "figure title (default: what is drawn)"),
            ],
            SampleGrid,
        ),
        Builtin::stage(
            "density_plot",
            "The learned density of 2-D flows on a grid beside histograms of their training data and of samples (integrated back from the base), FFJORD's figure (a potential flow's density in closed form); reports each density's mass on the grid and the function evaluations of a sampling solve (`sample_nfe`).",
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
        Builtin::stage(
            "flow_plot",
            "The velocity of 2-D flows as arrows at fractions of the way from the data (t = 0) to the base (t = 1), one row per flow, one scale of arrow per row, over the density at that time where the flow has it in closed form (potential flows).",
            vec![
                Param::new("flows", Ty::OneOf("a trained flow or a list of them", vec![Ty::kind(&FLOW_TRAINING), Ty::list(Ty::kind(&FLOW_TRAINING))]), Dflt::Required, "`train` results of 2-D flows of one field (a single CNF block, or a potential flow)"),
                Param::new("labels", Ty::list(Ty::Str), Dflt::Syms(&[]), "row names (default: stage names)"),
                Param::new("times", Ty::opt(Ty::list(Ty::Float)), Dflt::None, "fractions of the flow in [0, 1] (default [0, 1/3, 2/3, 1])"),
                Param::new("grid", Ty::Int, Dflt::Int(17), "arrows per axis").within(Some(2.0), Some(100.0)),
                Param::new("bounds", Ty::opt(Ty::list(Ty::Float)), Dflt::None, "[lo, hi] of the square drawn (default: around the data)"),
                Param::new("title", Ty::opt(Ty::Str), Dflt::None, "figure title (default: what is drawn)"),
            ],
            FlowPlot,
        ),
    ]
}

/// The flow a `model` argument holds as a config, if it is one.
pub fn flow_config(args: &Args, param: &str) -> bool {
    args.config(param).is_some_and(|c| matches!(c.builtin.as_ref(), "cnf" | "multiscale_cnf" | "mrcnf" | "potential_flow"))
}

/// The flow a `model` argument holds as a config is a `potential_flow(...)`.
pub fn potential_config(args: &Args, param: &str) -> bool {
    args.config(param).is_some_and(|c| c.builtin.as_ref() == "potential_flow")
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

/// Checks a flow config against the data it meets: vectors or images, and a field that
/// maps the state's shape back to itself (or a multiscale layout the images can take).
pub fn check_flow(cx: &StaticCall, model: &str, data: &str) -> Vec<Diag> {
    let (Some(spec), Some(meta)) = (cx.lower::<FlowSpec>(model), cx.meta(data)) else { return vec![] };
    let Some(shape) = meta.shape else { return vec![] };
    let at = cx.args.get(data).map_or(cx.span, |v| v.span);
    let flow_at = cx.args.get(model).map_or(cx.span, |v| v.span);
    let mut diags = Vec::new();
    if spec.t1 <= spec.t0 {
        diags.push(
            Diag::new(Code::E2006, format!("the flow's t1 ({}) must be after its t0 ({})", spec.t1, spec.t0))
                .at(flow_at, "t1 not after t0")
                .hint("the flow runs from data at t0 to the base distribution at t1"),
        );
    }
    if spec.adjoint && (spec.blocks > 1 || shape.len() == 3) {
        diags.push(
            Diag::new(Code::E2005, "the adjoint method is built for a single CNF block on vector data")
                .at(flow_at, "adjoint through a chain")
                .hint("drop `adjoint: true` (gradients by backprop through the solver), or use `blocks: 1` on vectors"),
        );
    }
    if let Some(p) = &spec.potential {
        match shape.as_slice() {
            [d] => {
                if let Some(k) = p.gauss_hermite
                    && (k as f64).powi(*d as i32) > 10_000.0
                {
                    diags.push(
                        Diag::new(Code::E2006, format!("a Gauss-Hermite rule of {k} points per axis in {d} dimensions has {k}^{d} points, more than 10,000 evaluations per point"))
                            .at(flow_at, "too many quadrature points")
                            .hint("lower `nodes`, or use `heat: monte_carlo` in this dimension"),
                    );
                }
                for (name, layers) in [("phi", &p.phi), ("psi", &p.psi)] {
                    if let Err(e) = check_layers(layers, *d) {
                        let at = cx.args.get(model).map_or(cx.span, |v| v.span);
                        diags.push(
                            Diag::new(Code::E4001, format!("the potential `{name}` on {d}-dimensional data: {e}"))
                                .at(at, "not a scalar potential of these points")
                                .hint(format!("a potential maps the {d} values to one: `linear(64) |> softplus |> linear(64) |> softplus |> linear(1)`")),
                        );
                    }
                }
            }
            _ => diags.push(
                Diag::new(Code::E4001, format!("a `potential_flow` models vectors; these examples have shape {shape:?}"))
                    .at(at, "not vectors")
                    .hint("potential flows are built for low-dimensional data such as `toy2d(...)`"),
            ),
        }
        return diags;
    }
    if shape.len() == 3 && meta.bounds != Some((0.0, 1.0)) {
        diags.push(
            Diag::new(Code::E4001, "a flow over images takes pixels in [0, 1] (8-bit levels / 255)")
                .at(at, "not pixels in [0, 1]")
                .hint("the flow dequantizes and applies the logit itself: give it the images, not `logit(...)` of them"),
        );
        return diags;
    }
    match (shape.as_slice(), &spec.multiscale) {
        ([_, _, _], Some(m)) => {
            if let Err(e) = scales_fit(&shape, m.scales) {
                let flow = if m.multires { "multi-resolution" } else { "multiscale" };
                diags.push(
                    Diag::new(Code::E4001, format!("the {flow} flow on images {shape:?}: {e}"))
                        .at(at, "does not fit these images")
                        .hint("downsample the images (`downsample(2)` gives 14x14 MNIST) or lower `scales`"),
                );
            }
        }
        (_, Some(m)) => diags.push(
            Diag::new(
                Code::E4001,
                format!(
                    "a `{}` models images; these examples have shape {shape:?}",
                    if m.multires { "mrcnf" } else { "multiscale_cnf" }
                ),
            )
                .at(at, "not images")
                .hint("vector data take a `cnf(field, ...)` of `concat_squash` layers"),
        ),
        ([d], None) => {
            if let Err(e) = field_plan(&spec.field, &[*d]) {
                diags.push(
                    Diag::new(Code::E4001, format!("the flow's field on {d}-dimensional data: {}", e.message))
                        .at(layer_span(cx, model, e.layer), "does not fit what arrives here")
                        .hint(format!("the field maps the state ({d} values) to its time derivative ({d} values): `concat_squash({d}, 64) |> tanh |> concat_squash(64, {d})`")),
                );
            }
        }
        ([c, _, _], None) => {
            if let Err(e) = field_plan(&spec.field, &shape) {
                diags.push(
                    Diag::new(Code::E4001, format!("the flow's field on images {shape:?}: {}", e.message))
                        .at(layer_span(cx, model, e.layer), "does not fit what arrives here")
                        .hint(format!("a field over images is `concat_conv2d` layers back to {c} channels: `concat_conv2d(64) |> softplus |> concat_conv2d({c})`")),
                );
            }
        }
        _ => diags.push(
            Diag::new(Code::E4001, format!("a flow models vectors or images [c, h, w]; these examples have shape {shape:?}"))
                .at(at, "neither vectors nor images"),
        ),
    }
    diags
}

/// The parameters `multiscale_cnf` and `mrcnf` share: `alpha`'s default and the meaning of
/// `blocks` differ.
fn scale_params(alpha: f64, alpha_doc: &'static str, blocks: &'static str) -> Vec<Param> {
    vec![
        Param::new("scales", Ty::Int, Dflt::Int(3), "scales (each but the last halves the image)").within(Some(1.0), Some(8.0)),
        Param::new("blocks", Ty::Int, Dflt::Int(2), blocks).within(Some(1.0), Some(16.0)),
        Param::new("hidden", Ty::opt(Ty::list(Ty::Int)), Dflt::None, "hidden channels of each field (default [64, 64, 64])"),
        Param::new("act", Ty::choice(&["softplus", "tanh", "relu", "sigmoid"]), Dflt::Sym("softplus"), "activation between the field's layers"),
        Param::new("k", Ty::Int, Dflt::Int(3), "kernel size (odd)").within(Some(1.0), Some(15.0)),
        Param::new("alpha", Ty::Float, Dflt::Float(alpha), alpha_doc).within(Some(0.0), Some(0.49)),
        Param::new("t0", Ty::Float, Dflt::Float(0.0), "start time"),
        Param::new("t1", Ty::Float, Dflt::Float(1.0), "end time of each block (FFJORD's MNIST: 1)").positive(),
        Param::new("solver", Ty::opt(Ty::kind(&SOLVER)), Dflt::None, "default: dopri5(atol: 1e-5, rtol: 1e-5)"),
        Param::new("trace", Ty::kind(&TRACE), Dflt::Config("hutchinson"), "`hutchinson(noise: gaussian)` (default) or `exact` (D products per evaluation)"),
    ]
}

/// A `multiscale_cnf` or (with `multires`) an `mrcnf` call lowered.
fn scale_spec(reg: &Registry, a: &Args, multires: bool) -> Result<FlowSpec, String> {
    let (solver, trace) = solver_and_trace(reg, a)?;
    let hidden = match a.floats("hidden") {
        Some(v) => v.iter().map(|w| *w as usize).collect(),
        None => vec![64, 64, 64],
    };
    if hidden.contains(&0) {
        return Err("hidden widths must be positive".to_string());
    }
    let k = a.need_usize("k")?;
    if k % 2 == 0 {
        return Err(format!("the kernel size must be odd so that images keep their size, not {k}"));
    }
    let act = match a.text("act") {
        Some("tanh") => Activation::Tanh,
        Some("relu") => Activation::Relu,
        Some("sigmoid") => Activation::Sigmoid,
        _ => Activation::Softplus,
    };
    Ok(FlowSpec {
        field: Vec::new(),
        t0: a.need_float("t0")?,
        t1: a.need_float("t1")?,
        solver,
        trace,
        adjoint: false,
        blocks: a.need_usize("blocks")?,
        alpha: a.need_float("alpha")?,
        multiscale: Some(ScaleSpec { scales: a.need_usize("scales")?, hidden, act, kernel: k, multires }),
        potential: None,
    })
}
