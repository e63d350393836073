//! `train`: fits a classifier and keeps its weights, loss curve and final loss.

use super::layers::check_model;
use super::optim::optimizer_spec;
use super::registry::{Builtin, Dflt, Meta, Param, Stage, StaticCall};
use crate::check::{Args, Ty};
use crate::diag::{Code, Diag};
use crate::exec::{Artifact, ModelArg, Output, RunCtx, Trained};
use crate::nn::{FitConfig, FitError, Net, Objective, fit_classifier};
use crate::plots::Series;
use std::collections::BTreeMap;
use std::sync::Arc;

pub const LOSSES: [&str; 2] = ["cross_entropy", "mse"];
const DEFAULT_EPOCHS: usize = 10;

pub fn builtins() -> Vec<Builtin> {
    vec![Builtin::stage(
        "train",
        "Train a classifier by minibatch gradient descent (seeded shuffling); `epochs` or `iters`, 10 epochs if neither.",
        vec![
            Param::new("model", Ty::Model, Dflt::Required, "layers to initialise, or a trained model to continue"),
            Param::new("data", Ty::Dataset, Dflt::Required, "labelled training data"),
            Param::new("loss", Ty::choice(&LOSSES), Dflt::Sym("cross_entropy"), "training objective"),
            Param::new("optimizer", Ty::Optimizer, Dflt::Config("adam"), "`adam(...)` or `sgd(...)`"),
            Param::new("batch", Ty::Int, Dflt::Int(128), "minibatch size (capped at the dataset size)")
                .within(Some(1.0), None),
            Param::new("epochs", Ty::opt(Ty::Int), Dflt::None, "passes over the data").within(Some(1.0), None),
            Param::new("iters", Ty::opt(Ty::Int), Dflt::None, "optimizer steps (instead of epochs)")
                .within(Some(1.0), None),
        ],
        Train,
    )]
}

pub fn objective(name: Option<&str>) -> Objective {
    match name {
        Some("mse") => Objective::Mse,
        _ => Objective::CrossEntropy,
    }
}

struct Train;

impl Stage for Train {
    fn output(&self) -> Ty {
        Ty::Trained
    }
    fn fields(&self, _args: &Args) -> Vec<(String, Ty)> {
        vec![("model".into(), Ty::Model), ("loss_curve".into(), Ty::Table), ("final_loss".into(), Ty::Float)]
    }
    fn check(&self, cx: &StaticCall) -> Vec<Diag> {
        let mut diags = Vec::new();
        if let (Some(e), Some(i)) = (cx.args.int("epochs"), cx.args.int("iters")) {
            let span = cx.args.get("iters").map(|v| v.span).unwrap_or(cx.span);
            diags.push(
                Diag::new(Code::E2014, format!("`train` takes `epochs` or `iters`, not both (got {e} and {i})"))
                    .at(span, "remove one")
                    .hint("`epochs: N` makes N passes over the data; `iters: N` takes N optimizer steps"),
            );
        }
        diags.extend(check_model(cx, "model", "data").0);
        diags
    }
    fn meta(&self, cx: &StaticCall) -> Meta {
        let widths = check_model(cx, "model", "data").1;
        Meta { shape: widths.as_ref().map(|w| w.0.clone()), classes: widths.map(|w| w.1) }
    }
    fn run(&self, cx: &mut RunCtx) -> Result<Output, Diag> {
        let data = cx.dataset("data")?;
        let a = cx.args();
        let optimizer =
            a.config("optimizer").and_then(optimizer_spec).ok_or_else(|| cx.error(Code::R1002, "no optimizer"))?;
        let batch = (a.int("batch").unwrap_or(128) as usize).min(data.n.max(1));
        let per_epoch = data.n.div_ceil(batch).max(1);
        let steps = match (a.int("iters"), a.int("epochs")) {
            (Some(i), _) => i as usize,
            (None, Some(e)) => e as usize * per_epoch,
            (None, None) => DEFAULT_EPOCHS * per_epoch,
        };
        let cfg = FitConfig { objective: objective(a.text("loss")), optimizer, batch, steps };
        let mut rng = cx.take_rng();
        let candle = |e: candle_core::Error| cx.error(Code::R1002, format!("training failed: {e}"));
        let model = match cx.model("model")? {
            ModelArg::Layers(specs) => Net::init(&specs, &data.shape, &mut rng, &cx.device).map_err(candle)?,
            ModelArg::Trained(t) => {
                let tensors = t.model.named_tensors().into_iter().collect();
                Net::from_tensors(&t.model.specs, &t.model.input, &tensors, &cx.device).map_err(candle)?
            }
        };
        let bar = cx.progress.bar(steps as u64, cx.name());
        let result = fit_classifier(&model, &data, &cfg, &mut rng, &cx.device, |step, loss| {
            if step % 10 == 0 {
                bar.set_position(step as u64);
                bar.set_message(format!("loss {loss:.4}"));
            }
        });
        bar.finish_and_clear();
        let fit = match result {
            Ok(f) => f,
            Err(FitError::Candle(e)) => return Err(candle(e)),
            Err(FitError::NonFinite { step, last_finite, what }) => {
                let last =
                    last_finite.map(|l| format!("{l:.6}")).unwrap_or_else(|| "none (the first step failed)".into());
                return Err(cx
                    .error(Code::R2001, format!("the {what} became NaN or infinite at step {step} of `{}`", cx.name()))
                    .hint(format!("last finite loss: {last}"))
                    .hint("lower the learning rate, or clip the data to a sensible range"));
            }
        };
        let mut csv = String::from("step,loss\n");
        for (i, l) in fit.loss_curve.iter().enumerate() {
            csv.push_str(&format!("{i},{l}\n"));
        }
        let curve_csv = cx.write_file("loss_curve.csv", csv.as_bytes())?;
        let smoothed = moving_average(&fit.loss_curve, per_epoch.clamp(1, 50));
        let png = crate::plots::line_plot(
            &[Series { name: "batch loss", values: &fit.loss_curve }, Series { name: "moving avg", values: &smoothed }],
            &format!("{}: training loss", cx.name()),
            "step",
            "loss",
        )
        .to_png()
        .map_err(|e| cx.error(Code::R1001, e))?;
        let curve_png = cx.write_file("loss_curve.png", &png)?;
        let mut metrics = BTreeMap::new();
        metrics.insert("final_loss".into(), fit.final_loss);
        metrics.insert("steps".into(), steps as f64);
        metrics.insert("parameters".into(), model.parameter_count() as f64);
        let trained = Trained { model, classes: data.classes };
        Ok(Output { artifact: Artifact::Trained(Arc::new(trained)), metrics, files: vec![curve_csv, curve_png] })
    }
}

fn moving_average(v: &[f64], window: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(v.len());
    let mut sum = 0.0;
    for i in 0..v.len() {
        sum += v[i];
        if i >= window {
            sum -= v[i - window];
        }
        out.push(sum / (i + 1).min(window) as f64);
    }
    out
}
