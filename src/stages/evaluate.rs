//! `evaluate`: metrics of a model on a dataset.

use super::layers::check_model;
use super::registry::{Builtin, Dflt, Param, Stage, StaticCall};
use super::train::{LOSSES, objective};
use crate::check::{Args, Ty};
use crate::diag::Diag;
use crate::exec::Metrics;
use crate::exec::{Artifact, Output, RunCtx};
use crate::nn::evaluate_classifier;

const METRICS: [&str; 2] = ["accuracy", "loss"];

pub fn builtins() -> Vec<Builtin> {
    vec![Builtin::stage(
        "evaluate",
        "Metrics of a model on labelled data: `accuracy` (top-1) and `loss` (mean of the chosen loss).",
        vec![
            Param::new("trained", Ty::Model, Dflt::Required, "the model to evaluate (usually a `train` result)"),
            Param::new("data", Ty::Dataset, Dflt::Required, "labelled evaluation data"),
            Param::new("metrics", Ty::list(Ty::choice(&METRICS)), Dflt::Syms(&METRICS), "what to compute"),
            Param::new("loss", Ty::choice(&LOSSES), Dflt::Sym("cross_entropy"), "the loss reported as `loss`"),
        ],
        Evaluate,
    )]
}

struct Evaluate;

impl Stage for Evaluate {
    fn output(&self) -> Ty {
        Ty::Metrics
    }
    fn fields(&self, args: &Args) -> Vec<(String, Ty)> {
        args.texts("metrics").into_iter().map(|m| (m, Ty::Float)).collect()
    }
    fn check(&self, cx: &StaticCall) -> Vec<Diag> {
        check_model(cx, "trained", "data").0
    }
    fn run(&self, cx: &mut RunCtx) -> Result<Output, Diag> {
        let data = cx.dataset("data")?;
        let mut rng = cx.take_rng();
        let candle = |e: candle_core::Error| cx.compute_error("evaluation", e);
        let model = cx.model_ref("trained", &data.shape, &mut rng)?;
        let (acc, loss) =
            evaluate_classifier(&model, &data, objective(cx.args().text("loss")), &cx.device).map_err(candle)?;
        let mut metrics = Metrics::new();
        for m in cx.args().texts("metrics") {
            metrics.insert(m.clone(), if m == "accuracy" { acc } else { loss });
        }
        Ok(Output { artifact: Artifact::Metrics, metrics, files: vec![] })
    }
}
