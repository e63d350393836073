//! Layers as config values lowered into `nn::LayerSpec`s, and the static shape check of a
//! model against the data it meets.

use super::model::MODEL;
use super::ode::SOLVER;
use crate::diag::{Code, Diag, Span};
use crate::lang::{Args, Builtin, CVal, Dflt, Kind, Param, Registry, Role, StaticCall, Ty, VKind};
use crate::nn::{Activation, Aggregate, LayerSpec, ShapeErrorKind, infer_shapes};
use crate::ode::Options;
use std::any::TypeId;

/// One layer, or a `|>` chain of them; each lowers to the specs it stands for (`resnet`
/// to many).
pub static LAYER: Kind = Kind {
    name: "layer",
    describe: "a layer",
    supers: &[&MODEL],
    role: Role::Config {
        noun: "layer",
        heading: "layers",
        lowers_to: TypeId::of::<Vec<LayerSpec>>,
        lowers_to_name: "Vec<LayerSpec>",
        chains: true,
    },
};

const AGGREGATES: [&str; 2] = ["sum", "mean"];

fn width(name: &'static str, doc: &'static str) -> Param {
    Param::new(name, Ty::Int, Dflt::Required, doc).within(Some(1.0), None)
}

fn inferred(name: &'static str, doc: &'static str) -> Param {
    Param::new(name, Ty::opt(Ty::Int), Dflt::None, doc).within(Some(1.0), None)
}

fn conv_params(out_min: f64) -> Vec<Param> {
    vec![
        inferred("in", "input channels; inferred when omitted"),
        Param::new("out", Ty::Int, Dflt::Required, "output channels").within(Some(out_min), None),
        Param::new("k", Ty::Int, Dflt::Int(3), "kernel size").within(Some(1.0), None),
        Param::new("stride", Ty::Int, Dflt::Int(1), "stride").within(Some(1.0), None),
        Param::new("pad", Ty::Int, Dflt::Int(0), "zero padding on each side").within(Some(0.0), None),
    ]
}

type Lowering = fn(&Registry, &Args) -> Result<Vec<LayerSpec>, String>;

fn layer(name: &'static str, doc: &'static str, params: Vec<Param>, lower: Lowering) -> Builtin {
    Builtin::config(&LAYER, name, doc, params, lower)
}

/// A layer without parameters.
fn plain(name: &'static str, doc: &'static str, spec: LayerSpec) -> Builtin {
    Builtin::config(&LAYER, name, doc, vec![], move |_: &Registry, _: &Args| Ok(vec![spec.clone()]))
}

fn optional(a: &Args, name: &str) -> Option<usize> {
    a.int(name).map(|v| v as usize)
}

fn agg(a: &Args) -> Aggregate {
    if a.text("agg") == Some("mean") { Aggregate::Mean } else { Aggregate::Sum }
}

/// The specs of the layers a chain argument holds.
fn chain(reg: &Registry, a: &Args, param: &str) -> Result<Vec<LayerSpec>, String> {
    Ok(reg.lower_each::<Vec<LayerSpec>>(a.need(param)?)?.concat())
}

/// A pooling layer over k x k windows, its stride the window size unless given.
fn pool(name: &'static str, doc: &'static str, spec: fn(usize, usize) -> LayerSpec) -> Builtin {
    let params = vec![
        Param::new("k", Ty::Int, Dflt::Int(2), "window size").within(Some(1.0), None),
        Param::new("stride", Ty::opt(Ty::Int), Dflt::None, "stride (default: the window size; must equal it to train)")
            .within(Some(1.0), None),
    ];
    Builtin::config(&LAYER, name, doc, params, move |_: &Registry, a: &Args| {
        let k = a.need_usize("k")?;
        Ok(vec![spec(k, optional(a, "stride").unwrap_or(k))])
    })
    .positional("k")
}

pub fn builtins() -> Vec<Builtin> {
    vec![
        layer(
            "linear",
            "Dense layer y = W x + b (PyTorch initialisation); `linear(out)` infers its input width.",
            vec![inferred("in", "input width; inferred from what comes before when omitted"), width("out", "output width")],
            |_, a| Ok(vec![LayerSpec::Linear { input: optional(a, "in"), out: a.need_usize("out")? }]),
        )
        .positional("out"),
        layer(
            "conv2d",
            "2-D convolution over [channels, height, width]; `conv2d(out, k: 3)` infers its input channels.",
            conv_params(1.0),
            |_, a| {
                Ok(vec![LayerSpec::Conv2d {
                    input: optional(a, "in"),
                    out: a.need_usize("out")?,
                    kernel: a.need_usize("k")?,
                    stride: a.need_usize("stride")?,
                    pad: a.need_usize("pad")?,
                }])
            },
        )
        .positional("out"),
        pool("maxpool", "Max pooling over k x k windows.", |kernel, stride| LayerSpec::MaxPool { kernel, stride }),
        pool(
            "avgpool",
            "Average pooling over k x k windows (`avgpool(2)` halves 28x28 to 14x14).",
            |kernel, stride| LayerSpec::AvgPool { kernel, stride },
        ),
        plain("global_avgpool", "Mean over all positions: [c, h, w] -> [c].", LayerSpec::GlobalAvgPool),
        plain("flatten", "Flatten each example to a vector.", LayerSpec::Flatten),
        layer(
            "dropout",
            "Zero each value with probability p while training (scaled by 1/(1-p)); identity in evaluation.",
            vec![Param::new("p", Ty::Float, Dflt::Float(0.5), "drop probability").within(Some(0.0), Some(0.99))],
            |_, a| Ok(vec![LayerSpec::Dropout { p: a.need_float("p")? }]),
        ),
        plain(
            "batchnorm",
            "Batch normalisation over channels: batch statistics in training, running statistics (momentum 0.1) in evaluation.",
            LayerSpec::BatchNorm,
        ),
        layer(
            "normalize",
            "(x - mean) / std per channel, inside the model so that data and attacks stay in [0, 1].",
            vec![
                Param::new(
                    "mean",
                    Ty::list(Ty::Float),
                    Dflt::Required,
                    "per-channel means (one value for all channels is allowed)",
                ),
                Param::new("std", Ty::list(Ty::Float), Dflt::Required, "per-channel standard deviations"),
            ],
            |_, a| {
                let list = |n: &str| a.floats(n).ok_or_else(|| format!("argument `{n}` is not a list of numbers"));
                Ok(vec![LayerSpec::Normalize { mean: list("mean")?, std: list("std")? }])
            },
        ),
        layer(
            "residual",
            "x + body(x); the body must keep the shape.",
            vec![Param::new("body", Ty::kind(&LAYER), Dflt::Required, "the layers of the block")],
            |reg, a| Ok(vec![LayerSpec::Residual { body: chain(reg, a, "body")?, farkas: None }]),
        ),
        layer(
            "farkas_linear",
            "Farkas dense layer (Pooladian et al.): the last unit is -Agg of the others' pre-activations with bias max(-Agg(b), b_m), so at least one ReLU is active.",
            vec![
                inferred("in", "input width; inferred when omitted"),
                Param::new("out", Ty::Int, Dflt::Required, "output width, including the appended unit")
                    .within(Some(2.0), None),
                Param::new("agg", Ty::choice(&AGGREGATES), Dflt::Sym("sum"), "aggregate of the other units"),
            ],
            |_, a| Ok(vec![LayerSpec::FarkasLinear { input: optional(a, "in"), out: a.need_usize("out")?, agg: agg(a) }]),
        )
        .positional("out"),
        layer(
            "farkas_conv2d",
            "Farkas convolution: the last channel is -Agg of the others' pre-activations at every position, with bias max(-Agg(b), b_m).",
            {
                let mut p = conv_params(2.0);
                p.push(Param::new("agg", Ty::choice(&AGGREGATES), Dflt::Sym("sum"), "aggregate over the other channels"));
                p
            },
            |_, a| {
                Ok(vec![LayerSpec::FarkasConv2d {
                    input: optional(a, "in"),
                    out: a.need_usize("out")?,
                    kernel: a.need_usize("k")?,
                    stride: a.need_usize("stride")?,
                    pad: a.need_usize("pad")?,
                    agg: agg(a),
                }])
            },
        )
        .positional("out"),
        layer(
            "farkas_residual",
            "Residual Farkas block: h = x[:c-1] + body(x), then an appended channel -Agg(h) + relu(b_m), so at least one unit is positive.",
            vec![
                Param::new("body", Ty::kind(&LAYER), Dflt::Required, "layers mapping c channels to c-1"),
                Param::new("agg", Ty::choice(&AGGREGATES), Dflt::Sym("sum"), "aggregate over the channels"),
            ],
            |reg, a| Ok(vec![LayerSpec::Residual { body: chain(reg, a, "body")?, farkas: Some(agg(a)) }]),
        ),
        layer(
            "resnet",
            "ResNet for images: a 3x3 stem, three stages of (depth-2)/6 basic blocks at widths w, 2w, 4w (stride-2 transitions), global average pooling and a linear classifier.",
            vec![
                Param::new("depth", Ty::Int, Dflt::Int(20), "6n+2: n basic blocks per stage")
                    .within(Some(8.0), Some(1000.0)),
                Param::new("width", Ty::Int, Dflt::Int(16), "channels of the first stage").within(Some(2.0), None),
                Param::new("classes", Ty::Int, Dflt::Int(10), "output classes").within(Some(2.0), None),
                Param::new("batchnorm", Ty::Bool, Dflt::Bool(true), "batch norm after every convolution"),
                Param::new("farkas", Ty::Bool, Dflt::Bool(false), "Farkas convolutions and residual Farkas blocks"),
            ],
            |_, a| {
                Ok(resnet(
                    a.need_usize("depth")?,
                    a.need_usize("width")?,
                    a.need_usize("classes")?,
                    a.need_bool("batchnorm")?,
                    a.need_bool("farkas")?,
                ))
            },
        ),
        layer(
            "neural_ode",
            "Neural ODE block (Chen et al. 2018): y(t1) of dy/dt = field(y), y(0) = input, solved by `solver` and differentiated through the solver's operations.",
            vec![
                Param::new(
                    "field",
                    Ty::kind(&LAYER),
                    Dflt::Required,
                    "layers mapping the state to its derivative (same width in and out)",
                ),
                Param::new("t1", Ty::Float, Dflt::Float(1.0), "integration time").positive(),
                Param::new(
                    "solver",
                    Ty::kind(&SOLVER),
                    Dflt::Config("dopri5"),
                    "e.g. `rk4(step: 0.05)` or `dopri5(rtol: 1e-5, atol: 1e-5)`",
                ),
                Param::new(
                    "adjoint",
                    Ty::Bool,
                    Dflt::Bool(false),
                    "gradients by the adjoint method (constant memory) instead of through the solver's steps",
                ),
            ],
            |reg, a| {
                let o: Options = reg.lower(a.config("solver").ok_or("argument `solver` is not a solver")?)?;
                Ok(vec![LayerSpec::NeuralOde {
                    field: chain(reg, a, "field")?,
                    t1: a.need_float("t1")?,
                    method: o.method,
                    step: o.step,
                    rtol: o.rtol,
                    atol: o.atol,
                    max_steps: o.max_steps,
                    first_step: o.first_step,
                    min_step: o.min_step,
                    max_step: o.max_step.is_finite().then_some(o.max_step),
                    adjoint: a.need_bool("adjoint")?,
                }])
            },
        ),
        plain("relu", "Rectified linear unit max(x, 0).", LayerSpec::Act(Activation::Relu)),
        plain(
            "tanh",
            "Hyperbolic tangent (computed as 2*sigmoid(2x)-1, ~5x faster on CPU).",
            LayerSpec::Act(Activation::Tanh),
        ),
        plain("softplus", "Smooth ReLU log(1 + e^x), computed stably.", LayerSpec::Act(Activation::Softplus)),
        plain("sigmoid", "Logistic function 1 / (1 + e^-x).", LayerSpec::Act(Activation::Sigmoid)),
    ]
}

/// The numerical specs of a layer chain, and for each spec the index of the written layer
/// it came from (`resnet` expands to many). `None` if the value is not layers.
pub fn layer_specs_traced(reg: &Registry, v: &CVal) -> Option<(Vec<LayerSpec>, Vec<usize>)> {
    let per: Vec<Vec<LayerSpec>> = reg.lower_each(v).ok()?;
    let origin = per.iter().enumerate().flat_map(|(i, s)| std::iter::repeat_n(i, s.len())).collect();
    Some((per.concat(), origin))
}

/// A CIFAR-style ResNet (He et al. 2016, section 4.2) with stride-2 transition
/// convolutions between stages. With `farkas`, every convolution in a block is a Farkas
/// convolution and each block is a residual Farkas block (Pooladian et al. 2019).
pub fn resnet(depth: usize, width: usize, classes: usize, batchnorm: bool, farkas: bool) -> Vec<LayerSpec> {
    let blocks = ((depth.saturating_sub(2)) / 6).max(1);
    let conv = |out: usize, stride: usize| LayerSpec::Conv2d { input: None, out, kernel: 3, stride, pad: 1 };
    let fconv =
        |out: usize| LayerSpec::FarkasConv2d { input: None, out, kernel: 3, stride: 1, pad: 1, agg: Aggregate::Mean };
    let mut out = vec![conv(width, 1)];
    if batchnorm {
        out.push(LayerSpec::BatchNorm);
    }
    out.push(LayerSpec::Act(Activation::Relu));
    for stage in 0..3 {
        let w = width << stage;
        if stage > 0 {
            out.push(conv(w, 2));
            if batchnorm {
                out.push(LayerSpec::BatchNorm);
            }
            out.push(LayerSpec::Act(Activation::Relu));
        }
        for _ in 0..blocks {
            let mut body = Vec::new();
            if farkas {
                body.push(fconv(w));
            } else {
                body.push(conv(w, 1));
            }
            if batchnorm {
                body.push(LayerSpec::BatchNorm);
            }
            body.push(LayerSpec::Act(Activation::Relu));
            body.push(if farkas { fconv(w - 1) } else { conv(w, 1) });
            if batchnorm {
                body.push(LayerSpec::BatchNorm);
            }
            out.push(LayerSpec::Residual { body, farkas: farkas.then_some(Aggregate::Mean) });
            out.push(LayerSpec::Act(Activation::Relu));
        }
    }
    out.push(LayerSpec::GlobalAvgPool);
    out.push(LayerSpec::Linear { input: None, out: classes });
    out
}

/// Point at a layer where the user wrote it; a layer that comes from an imported `def`
/// is shown at the call of that `def` instead.
fn local(layer: Span, call: Span) -> Span {
    if layer.file == call.file { layer } else { call }
}

/// Check a model argument against the dataset argument: every layer's input shape, and
/// the output width against the number of classes. Returns the diagnostics and, when
/// known, the model's input shape and output width.
pub fn check_model(cx: &StaticCall, model: &str, data: &str) -> (Vec<Diag>, Option<(Vec<usize>, usize)>) {
    let Some(meta) = cx.meta(data) else { return (vec![], None) };
    if meta.classes.is_none() {
        let mut diags = Vec::new();
        if let (Some(d), true) = (cx.args.get(data), meta.shape.is_some()) {
            diags.push(
                Diag::new(Code::E4002, "this dataset has no class labels")
                    .at(d.span, "unlabelled data")
                    .hint("classifiers need labelled data: `toy2d` sets other than `swissroll` have classes"),
            );
        }
        return (diags, None);
    }
    let (mut diags, found) = check_shapes(cx, model, data);
    if let (Some((_, o)), Some(k), Some(value)) = (&found, meta.classes, cx.args.get(model))
        && *o != k
    {
        let last = value.layers().last().map(|l| local(l.span, value.span)).unwrap_or(value.span);
        diags.push(
            Diag::new(Code::E4002, format!("the model outputs {o} values but the data has {k} classes"))
                .at(last, format!("outputs {o}"))
                .hint(format!("end the model with `linear({k})`")),
        );
    }
    (diags, found)
}

/// Check a model argument's layers against the dataset argument's example shape, labelled
/// or not (regression, label-free retraining). Returns the diagnostics and, when known, the
/// model's input shape and output width.
pub fn check_shapes(cx: &StaticCall, model: &str, data: &str) -> (Vec<Diag>, Option<(Vec<usize>, usize)>) {
    let Some(meta) = cx.meta(data) else { return (vec![], None) };
    let mut diags = Vec::new();
    let Some(shape) = meta.shape.clone() else { return (diags, None) };
    let Some(value) = cx.args.get(model) else { return (diags, None) };
    let out = if let VKind::Stage(_) = value.kind {
        // A trained model: its shapes are in its metadata.
        let Some(m) = cx.meta(model) else { return (diags, None) };
        if let Some(fin) = &m.shape
            && *fin != shape
        {
            diags.push(
                Diag::new(Code::E4001, format!("the model takes inputs of shape {fin:?}, the data has {shape:?}"))
                    .at(value.span, "input shape mismatch")
                    .hint("a trained model can only be used on data shaped like its training data"),
            );
            return (diags, None);
        }
        m.classes
    } else {
        let layers = value.layers();
        let Some((specs, origin)) = layer_specs_traced(cx.registry, value) else { return (diags, None) };
        if let Some(k) = specs.iter().position(LayerSpec::is_time_dependent) {
            diags.push(
                Diag::new(Code::E2005, "a time-dependent layer outside a flow's field")
                    .at(local(layers[origin[k]].span, value.span), "depends on time")
                    .hint("`concat_squash` and `concat_linear` make the field of a `cnf(field, t1: ...)`; classifiers use `linear`"),
            );
            return (diags, None);
        }
        match infer_shapes(&specs, &shape) {
            Ok(s) => match s.last().map(Vec::as_slice) {
                Some([w]) => Some(*w),
                Some(other) => {
                    diags.push(
                        Diag::new(Code::E4002, format!("the model outputs shape {other:?}, not one score per class"))
                            .at(value.span, "not a classifier output")
                            .hint("end the model with `flatten |> linear(classes)`"),
                    );
                    return (diags, None);
                }
                None => None,
            },
            Err(e) => {
                let at = local(layers[origin[e.layer]].span, value.span);
                let (code, hint) = match e.kind {
                    ShapeErrorKind::PoolStride => {
                        (Code::E4003, "use kernel = stride (the default), e.g. `maxpool(2)`".to_string())
                    }
                    ShapeErrorKind::Mismatch => (
                        Code::E4001,
                        format!(
                            "the data's examples have shape {shape:?}; omit input widths (`linear(out)`, `conv2d(out)`) to have them inferred"
                        ),
                    ),
                };
                diags.push(Diag::new(code, e.message).at(at, "does not fit what arrives here").hint(hint));
                return (diags, None);
            }
        }
    };
    (diags, out.map(|o| (shape, o)))
}
