//! Layers (`linear`, activations) and the static shape check of a model against data.

use super::registry::{Builtin, Dflt, Param, Sort, StaticCall};
use crate::check::{CVal, Ty, VKind};
use crate::diag::{Code, Diag};
use crate::nn::{Activation, LayerSpec, infer_widths};

pub fn builtins() -> Vec<Builtin> {
    let mut linear = Builtin::new(
        "linear",
        Sort::Layer,
        "Dense layer y = W x + b (PyTorch initialisation); `linear(out)` infers its input width.",
        vec![
            Param::new("in", Ty::opt(Ty::Int), Dflt::None, "input width; inferred from what comes before when omitted")
                .within(Some(1.0), None),
            Param::new("out", Ty::Int, Dflt::Required, "output width").within(Some(1.0), None),
        ],
    );
    linear.single_positional = Some("out");
    vec![
        linear,
        Builtin::new("relu", Sort::Layer, "Rectified linear unit max(x, 0).", vec![]),
        Builtin::new(
            "tanh",
            Sort::Layer,
            "Hyperbolic tangent (computed as 2*sigmoid(2x)-1, ~5x faster on CPU).",
            vec![],
        ),
        Builtin::new("softplus", Sort::Layer, "Smooth ReLU log(1 + e^x), computed stably.", vec![]),
        Builtin::new("sigmoid", Sort::Layer, "Logistic function 1 / (1 + e^-x).", vec![]),
    ]
}

/// The numerical spec of a layer chain; `None` if the value is not layers.
pub fn layer_specs(v: &CVal) -> Option<Vec<LayerSpec>> {
    v.layers().into_iter().map(one_spec).collect()
}

fn one_spec(v: &CVal) -> Option<LayerSpec> {
    let VKind::Config(c) = &v.kind else {
        return None;
    };
    Some(match c.builtin.name {
        "linear" => LayerSpec::Linear { input: c.args.int("in").map(|i| i as usize), out: c.args.int("out")? as usize },
        "relu" => LayerSpec::Act(Activation::Relu),
        "tanh" => LayerSpec::Act(Activation::Tanh),
        "softplus" => LayerSpec::Act(Activation::Softplus),
        "sigmoid" => LayerSpec::Act(Activation::Sigmoid),
        _ => return None,
    })
}

/// Point at a layer where the user wrote it; a layer that comes from an imported `def`
/// is shown at the call of that `def` instead.
fn local(layer: crate::diag::Span, call: crate::diag::Span) -> crate::diag::Span {
    if layer.file == call.file { layer } else { call }
}

/// Check a model argument against the dataset argument: every layer's input width, and
/// the output width against the number of classes. Returns the diagnostics and, when
/// known, the model's (input, output) widths.
pub fn check_model(cx: &StaticCall, model: &str, data: &str) -> (Vec<Diag>, Option<(usize, usize)>) {
    let Some(meta) = cx.meta(data) else {
        return (vec![], None);
    };
    let mut diags = Vec::new();
    if meta.classes.is_none() {
        if let Some(d) = cx.args.get(data) {
            diags.push(
                Diag::new(Code::E4002, "this dataset has no class labels")
                    .at(d.span, "unlabelled data")
                    .hint("classifiers need labelled data: `toy2d` sets other than `swissroll` have classes"),
            );
        }
        return (diags, None);
    }
    let Some(features) = meta.features else {
        return (diags, None);
    };
    let Some(value) = cx.args.get(model) else {
        return (diags, None);
    };
    let out = if let VKind::Stage(_) = value.kind {
        // A trained model: its widths are in its metadata.
        let Some(m) = cx.meta(model) else {
            return (diags, None);
        };
        if let Some(fin) = m.features
            && fin != features
        {
            diags.push(
                Diag::new(Code::E4001, format!("the model takes {fin} input features, the data has {features}"))
                    .at(value.span, "input width mismatch"),
            );
            return (diags, None);
        }
        m.classes
    } else {
        let layers = value.layers();
        let Some(specs) = layer_specs(value) else {
            return (diags, None);
        };
        match infer_widths(&specs, features) {
            Ok(w) => w.last().copied().or(Some(features)),
            Err(e) => {
                diags.push(
                    Diag::new(Code::E4001, format!("this layer expects {} input features but receives {}", e.expected, e.got))
                        .at(local(layers[e.layer].span, value.span), format!("receives width {}", e.got))
                        .hint(if e.layer == 0 {
                            format!("the data has {features} features; write `linear({})`-style layers without an input width to infer it", specs.iter().find_map(|s| match s { LayerSpec::Linear { out, .. } => Some(*out), _ => None }).unwrap_or(1))
                        } else {
                            "omit the input width (`linear(out)`) to have it inferred".to_string()
                        }),
                );
                return (diags, None);
            }
        }
    };
    if let (Some(o), Some(k)) = (out, meta.classes)
        && o != k
    {
        let last = value.layers().last().map(|l| local(l.span, value.span)).unwrap_or(value.span);
        diags.push(
            Diag::new(Code::E4002, format!("the model outputs {o} values but the data has {k} classes"))
                .at(last, format!("outputs {o}"))
                .hint(format!("end the model with `linear({k})`")),
        );
    }
    (diags, out.map(|o| (features, o)))
}
