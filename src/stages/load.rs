//! `load_model`: weights trained elsewhere (safetensors), mapped onto a flowline model, so
//! that models users already have can be evaluated, attacked, certified or calibrated.

use super::layers::LAYER;
use super::model::{MODEL, TRAINED, Trained};
use crate::diag::{Code, Diag};
use crate::lang::{Args, Builtin, Dflt, Kind, Meta, Metrics, Output, Param, RunCtx, Stage, StaticCall, Ty, VKind};
use crate::nn::{LayerSpec, Net, infer_shapes};
use candle_core::Tensor;
use std::collections::HashMap;
use std::sync::Arc;

pub fn builtins() -> Vec<Builtin> {
    vec![Builtin::stage(
        "load_model",
        "Load safetensors weights into a model. Names map onto flowline's `layers.{i}.weight`: `prefix` is stripped, \
         PyTorch nn.Sequential names (`0.weight`, `3.bias`, `bn.running_mean`) are matched by index, and `rename` \
         lists explicit `theirs=ours` pairs.",
        vec![
            Param::new("path", Ty::Str, Dflt::Required, "the .safetensors file"),
            Param::new("arch", Ty::kind(&LAYER), Dflt::Required, "the model's layers, as they were trained"),
            Param::new("input", Ty::list(Ty::Int), Dflt::Required, "shape of one input example, e.g. [1, 28, 28]"),
            Param::new("classes", Ty::opt(Ty::Int), Dflt::None, "number of classes (default: the output width)")
                .within(Some(1.0), None),
            Param::new("prefix", Ty::Str, Dflt::Str(""), "prefix to strip from the file's names (`model.`)"),
            Param::new("rename", Ty::list(Ty::Str), Dflt::Syms(&[]), "explicit `theirs=ours` name pairs"),
        ],
        LoadModel,
    )]
}

fn ints(args: &Args, name: &str) -> Vec<usize> {
    match args.get(name).map(|v| &v.kind) {
        Some(VKind::List(items)) => items
            .iter()
            .filter_map(|i| if let VKind::Int(v) = i.kind { Some(v.max(0) as usize) } else { None })
            .collect(),
        _ => Vec::new(),
    }
}

/// Map a file's tensor names onto ours.
pub fn map_names(
    theirs: HashMap<String, Tensor>,
    prefix: &str,
    rename: &[(String, String)],
) -> HashMap<String, Tensor> {
    let mut out = HashMap::new();
    for (name, t) in theirs {
        if let Some((_, ours)) = rename.iter().find(|(their, _)| *their == name) {
            out.insert(ours.clone(), t);
            continue;
        }
        let stripped = name.strip_prefix(prefix).unwrap_or(&name);
        if stripped.ends_with("num_batches_tracked") {
            continue;
        }
        let ours = if stripped.starts_with(|c: char| c.is_ascii_digit()) {
            format!("layers.{stripped}")
        } else {
            stripped.to_string()
        };
        out.insert(ours, t);
    }
    out
}

/// The layers of `arch`, lowered.
fn arch_specs(cx: &StaticCall) -> Option<Vec<LayerSpec>> {
    cx.lower_each::<Vec<LayerSpec>>("arch").map(|l| l.concat())
}

struct LoadModel;

impl Stage for LoadModel {
    fn output(&self) -> &'static Kind {
        &TRAINED
    }
    fn parts(&self, _args: &Args) -> Vec<(String, Ty)> {
        vec![("model".into(), Ty::kind(&MODEL))]
    }
    fn metrics(&self, _args: &Args) -> Vec<String> {
        vec!["parameters".into()]
    }
    fn check(&self, cx: &StaticCall) -> Vec<Diag> {
        let input = ints(cx.args, "input");
        let (Some(arch), Some(specs)) = (cx.args.get("arch"), arch_specs(cx)) else {
            return vec![];
        };
        match infer_shapes(&specs, &input) {
            Ok(_) => vec![],
            Err(e) => vec![
                Diag::new(Code::E4001, e.message)
                    .at(arch.span, "does not fit the declared input")
                    .hint("`input` is the shape of one example, e.g. [1, 28, 28]"),
            ],
        }
    }
    fn meta(&self, cx: &StaticCall) -> Meta {
        let input = ints(cx.args, "input");
        let out = arch_specs(cx).and_then(|s| infer_shapes(&s, &input).ok()).and_then(|s| s.last().cloned());
        let classes = cx.args.int("classes").map(|k| k as usize).or(match out.as_deref() {
            Some([w]) => Some(*w),
            _ => None,
        });
        Meta { shape: Some(input), classes, ..Meta::default() }
    }
    fn run(&self, cx: &mut RunCtx) -> Result<Output, Diag> {
        let specs: Vec<LayerSpec> = cx.lower_each::<Vec<LayerSpec>>("arch")?.concat();
        let a = cx.args();
        let path = std::path::PathBuf::from(a.text("path").unwrap_or(""));
        let input = ints(a, "input");
        if !path.is_file() {
            return Err(cx
                .error(Code::R1004, format!("model file {} not found", path.display()))
                .hint("paths are relative to the folder flowline runs in"));
        }
        let rename: Vec<(String, String)> = a
            .texts("rename")
            .iter()
            .filter_map(|p| p.split_once('=').map(|(x, y)| (x.trim().to_string(), y.trim().to_string())))
            .collect();
        let file = candle_core::safetensors::load(&path, &cx.device)
            .map_err(|e| cx.error(Code::R1002, format!("cannot read {}: {e}", path.display())))?;
        if let Some(n) = crate::nn::non_finite(&file).first() {
            return Err(cx.error(Code::R1002, format!("{}: tensor `{n}` holds NaN or infinite values", path.display())));
        }
        let theirs: Vec<String> = {
            let mut v: Vec<String> = file.keys().cloned().collect();
            v.sort();
            v
        };
        let map = map_names(file, a.text("prefix").unwrap_or(""), &rename);
        let model = Net::from_tensors(&specs, &input, &map, &cx.device).map_err(|e| {
            cx.error(Code::R1002, format!("{} does not fit the architecture: {e}", path.display()))
                .hint(format!("the file holds: {}", theirs.iter().take(12).cloned().collect::<Vec<_>>().join(", ")))
                .hint("use `prefix:` or `rename: [\"theirs=layers.0.weight\"]` to map names")
        })?;
        let classes = a.int("classes").map(|k| k as usize).or(match model.output.as_slice() {
            [w] => Some(*w),
            _ => None,
        });
        let mut metrics = Metrics::new();
        metrics.insert("parameters".into(), model.parameter_count() as f64);
        Ok(Output { artifact: Arc::new(Trained { model, classes, curves: None }), metrics, files: vec![] })
    }
}
