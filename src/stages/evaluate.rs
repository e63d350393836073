//! `evaluate`: metrics of a model on a dataset.

use super::dataset::DATASET;
use super::layers::check_model;
use super::model::model_ref;
use super::flow_train;
use super::flows::FLOW;
use super::train::{LOSSES, model_or_flow, objective};
use crate::diag::Code;
use crate::data::Dataset;
use crate::diag::Diag;
use crate::lang::{Args, Builtin, Dflt, Kind, METRICS, Metrics, Output, Param, RunCtx, Stage, StaticCall, Ty};
use crate::nn::evaluate_classifier;

const MEASURES: [&str; 2] = ["accuracy", "loss"];
const ALL_MEASURES: [&str; 6] = ["accuracy", "loss", "nll", "bits_per_dim", "nfe", "nll_closed_form"];

pub fn builtins() -> Vec<Builtin> {
    vec![Builtin::stage(
        "evaluate",
        "Metrics of a model on data: a classifier's `accuracy` (top-1) and `loss` (mean of the chosen loss); a flow's `nll` (mean -log p, exact trace up to 16 dimensions), `bits_per_dim`, `nfe` (mean function evaluations of a solve) and, for a potential flow, `nll_closed_form` (its density in closed form, normalised over normal draws).",
        vec![
            Param::new("trained", model_or_flow(), Dflt::Required, "the model or flow to evaluate (usually a `train` result)"),
            Param::new("data", Ty::kind(&DATASET), Dflt::Required, "evaluation data (labelled for a classifier)"),
            Param::new(
                "metrics",
                Ty::list(Ty::choice(&ALL_MEASURES)),
                Dflt::Syms(&MEASURES),
                "what to compute (a flow's: `[nll, nfe]`, also `bits_per_dim`; a potential flow's also `nll_closed_form`)",
            ),
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
        if flow_train::is_flow(cx, "trained") {
            return flow_train::check_evaluate(cx);
        }
        let mut diags = check_model(cx, "trained", "data").0;
        let wrong: Vec<String> =
            cx.args.texts("metrics").into_iter().filter(|m| !MEASURES.contains(&m.as_str())).collect();
        if !wrong.is_empty() {
            diags.push(
                Diag::new(Code::E2005, format!("{} measure flows, and this model is a classifier", wrong.join(", ")))
                    .at(cx.args.get("metrics").map_or(cx.span, |v| v.span), "not a classifier's measure")
                    .hint("a classifier is evaluated by `metrics: [accuracy, loss]`"),
            );
        }
        diags
    }
    fn run(&self, cx: &mut RunCtx) -> Result<Output, Diag> {
        if cx.input_kind("trained").is_some_and(|k| k.is_a(&FLOW)) {
            return flow_train::evaluate(cx);
        }
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
