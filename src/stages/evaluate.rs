//! `evaluate`: metrics of a model on a dataset.

use super::dataset::DATASET;
use super::layers::check_model;
use super::model::{MODEL, model_ref};
use super::train::{LOSSES, objective};
use crate::data::Dataset;
use crate::diag::Diag;
use crate::lang::{Args, Builtin, Dflt, Kind, METRICS, Metrics, Output, Param, RunCtx, Stage, StaticCall, Ty};
use crate::nn::evaluate_classifier;

const MEASURES: [&str; 2] = ["accuracy", "loss"];

pub fn builtins() -> Vec<Builtin> {
    vec![Builtin::stage(
        "evaluate",
        "Metrics of a model on labelled data: `accuracy` (top-1) and `loss` (mean of the chosen loss).",
        vec![
            Param::new("trained", Ty::kind(&MODEL), Dflt::Required, "the model to evaluate (usually a `train` result)"),
            Param::new("data", Ty::kind(&DATASET), Dflt::Required, "labelled evaluation data"),
            Param::new("metrics", Ty::list(Ty::choice(&MEASURES)), Dflt::Syms(&MEASURES), "what to compute"),
            Param::new("loss", Ty::choice(&LOSSES), Dflt::Sym("cross_entropy"), "the loss reported as `loss`"),
        ],
        Evaluate,
    )]
}

struct Evaluate;

impl Stage for Evaluate {
    fn output(&self) -> &'static Kind {
        &METRICS
    }
    fn metrics(&self, args: &Args) -> Vec<String> {
        args.texts("metrics")
    }
    fn check(&self, cx: &StaticCall) -> Vec<Diag> {
        check_model(cx, "trained", "data").0
    }
    fn run(&self, cx: &mut RunCtx) -> Result<Output, Diag> {
        let data = cx.input::<Dataset>("data")?;
        let mut rng = cx.take_rng();
        let candle = |e: candle_core::Error| cx.compute_error("evaluation", e);
        let model = model_ref(cx, "trained", &data.shape, &mut rng)?;
        let (acc, loss) =
            evaluate_classifier(&model, &data, objective(cx.args().text("loss")), &cx.device).map_err(candle)?;
        let mut metrics = Metrics::new();
        for m in cx.args().texts("metrics") {
            metrics.insert(m.clone(), if m == "accuracy" { acc } else { loss });
        }
        Ok(Output::nothing(&METRICS, metrics, vec![]))
    }
}
