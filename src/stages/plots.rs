//! Figure stages: PNG files in the stage folder.

use super::registry::{Builtin, Dflt, Param, Stage, StaticCall};
use crate::check::{Args, Ty};
use crate::diag::{Code, Diag};
use crate::exec::{Artifact, Output, RunCtx};
use crate::nn::predict_classes;
use std::collections::BTreeMap;

pub fn builtins() -> Vec<Builtin> {
    vec![
        Builtin::stage(
            "scatter_plot",
            "Scatter plot of 2-D data, coloured by class.",
            vec![
                Param::new("data", Ty::Dataset, Dflt::Required, "2-D data"),
                Param::new("title", Ty::opt(Ty::Str), Dflt::None, "figure title (default: the stage name)"),
            ],
            Scatter,
        ),
        Builtin::stage(
            "decision_plot",
            "Decision regions of a 2-D classifier with the data on top.",
            vec![
                Param::new("trained", Ty::Trained, Dflt::Required, "a trained 2-D classifier"),
                Param::new("data", Ty::Dataset, Dflt::Required, "2-D points to draw"),
                Param::new("grid", Ty::Int, Dflt::Int(200), "grid cells per axis").within(Some(2.0), Some(2000.0)),
                Param::new("title", Ty::opt(Ty::Str), Dflt::None, "figure title (default: the stage name)"),
            ],
            Decision,
        ),
    ]
}

fn require_2d(cx: &StaticCall, param: &str, stage: &str) -> Vec<Diag> {
    match (cx.meta(param).and_then(|m| m.shape), cx.args.get(param)) {
        (Some(f), Some(v)) if f != [2] => vec![
            Diag::new(Code::E4001, format!("`{stage}` draws 2-D data; these examples have shape {f:?}"))
                .at(v.span, format!("shape {f:?}")),
        ],
        _ => vec![],
    }
}

fn points(d: &crate::data::Dataset) -> Vec<[f32; 2]> {
    (0..d.n).map(|i| [d.row(i)[0], d.row(i)[1]]).collect()
}

fn title(cx: &RunCtx) -> String {
    cx.args().text("title").map(str::to_string).unwrap_or_else(|| cx.name().to_string())
}

struct Scatter;

impl Stage for Scatter {
    fn output(&self) -> Ty {
        Ty::Figure
    }
    fn fields(&self, _args: &Args) -> Vec<(String, Ty)> {
        vec![]
    }
    fn check(&self, cx: &StaticCall) -> Vec<Diag> {
        require_2d(cx, "data", "scatter_plot")
    }
    fn run(&self, cx: &mut RunCtx) -> Result<Output, Diag> {
        let d = cx.dataset("data")?;
        if d.shape != [2] {
            return Err(
                cx.error(Code::R1002, format!("scatter_plot needs 2-D data, got examples of shape {:?}", d.shape))
            );
        }
        let png = crate::plots::scatter_plot(&points(&d), d.y.as_deref(), &title(cx))
            .to_png()
            .map_err(|e| cx.error(Code::R1001, e))?;
        let rel = cx.write_file("scatter.png", &png)?;
        Ok(Output { artifact: Artifact::File(rel.clone()), metrics: BTreeMap::new(), files: vec![rel] })
    }
}

struct Decision;

impl Stage for Decision {
    fn output(&self) -> Ty {
        Ty::Figure
    }
    fn check(&self, cx: &StaticCall) -> Vec<Diag> {
        let mut d = require_2d(cx, "data", "decision_plot");
        d.extend(require_2d(cx, "trained", "decision_plot"));
        d
    }
    fn run(&self, cx: &mut RunCtx) -> Result<Output, Diag> {
        let d = cx.dataset("data")?;
        let t = cx.trained("trained")?;
        if d.shape != [2] || t.model.input != [2] {
            return Err(cx.error(Code::R1002, "decision_plot needs a 2-D model and 2-D data"));
        }
        let grid = cx.args().int("grid").unwrap_or(200) as usize;
        let device = cx.device.clone();
        let canvas = crate::plots::decision_plot(&points(&d), d.y.as_deref(), grid, &title(cx), |g| {
            predict_classes(&t.model, g, &device).map_err(|e| e.to_string())
        })
        .map_err(|e| cx.error(Code::R1002, e))?;
        let png = canvas.to_png().map_err(|e| cx.error(Code::R1001, e))?;
        let rel = cx.write_file("decision.png", &png)?;
        Ok(Output { artifact: Artifact::File(rel.clone()), metrics: BTreeMap::new(), files: vec![rel] })
    }
}
