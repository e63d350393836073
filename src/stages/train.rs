//! `train`: fits a classifier and keeps its weights, curves and final loss; optional
//! validation with early stopping, schedules, clipping, augmentation, checkpoints, resume.

use super::dataset::DATASET;
use super::flow_train;
use super::flows::{FLOW, flow_config};
use super::regularizers::{REGULARIZER, Regularizer};
use super::layers::check_model;
use super::model::{Curves, MODEL, ModelArg, TRAINING, Trained, model_arg};
use super::optim::{OPTIMIZER, SCHEDULE};
use crate::data::Dataset;
use crate::diag::{Code, Diag};
use crate::lang::{Args, Builtin, Dflt, Kind, Meta, Metrics, Output, Param, RunCtx, Stage, StaticCall, TABLE, Ty};
use crate::nn::{Augment, FitConfig, FitError, Net, Objective, OptimSpec, Schedule, Start, fit_classifier};
use crate::plots::{Axis, LinePlot, Scaling, Series};
use crate::yaml;
use candle_core::Tensor;
use std::collections::HashMap;
use std::sync::Arc;

pub const LOSSES: [&str; 2] = ["cross_entropy", "mse"];
const DEFAULT_EPOCHS: usize = 10;

pub fn builtins() -> Vec<Builtin> {
    vec![Builtin::stage(
        "train",
        "Train a classifier by minibatch gradient descent (seeded shuffling); `epochs` or `iters`, 10 epochs if neither.",
        vec![
            Param::new(
                "model",
                model_or_flow(),
                Dflt::Required,
                "layers to initialise, a trained model to continue, or a flow (`cnf(...)`) to fit by maximum likelihood",
            ),
            Param::new("data", Ty::kind(&DATASET), Dflt::Required, "training data (labelled for a classifier)"),
            Param::new(
                "loss",
                Ty::choice(&["cross_entropy", "mse", "nll", "bits_per_dim", "entropic_dual", "entropic_alternating"]),
                Dflt::Sym("cross_entropy"),
                "training objective (a flow's: `nll`, its default; a potential flow's: `entropic_dual`, its default, or `entropic_alternating`)",
            ),
            Param::new(
                "regularizers",
                Ty::list(Ty::kind(&REGULARIZER)),
                Dflt::Syms(&[]),
                "penalties: a flow's `[kinetic(0.01), jacobian_frobenius(0.01)]` (RNODE); a classifier's `input_gradient(0.1)` or `adversarial(pgd(norm: linf, steps: 7), eps: 0.3)`",
            ),
            Param::new(
                "optimizer",
                Ty::kind(&OPTIMIZER),
                Dflt::Config("adam"),
                "`adam(...)`, `adamw(...)` or `sgd(...)`",
            ),
            Param::new("batch", Ty::Int, Dflt::Int(128), "minibatch size (capped at the dataset size)")
                .within(Some(1.0), None),
            Param::new("epochs", Ty::opt(Ty::Int), Dflt::None, "passes over the data").within(Some(1.0), None),
            Param::new("iters", Ty::opt(Ty::Int), Dflt::None, "optimizer steps (instead of epochs)")
                .within(Some(1.0), None),
            Param::new(
                "schedule",
                Ty::kind(&SCHEDULE),
                Dflt::Config("constant"),
                "learning-rate schedule: `constant()`, `step_decay(...)`, `cosine(...)`",
            ),
            Param::new("warmup", Ty::Int, Dflt::Int(0), "steps of linear learning-rate warm-up")
                .within(Some(0.0), None),
            Param::new("clip", Ty::opt(Ty::Float), Dflt::None, "clip the global gradient norm to this value")
                .positive(),
            Param::new(
                "crop",
                Ty::Int,
                Dflt::Int(0),
                "random-crop augmentation: shift images by up to this many pixels",
            )
            .within(Some(0.0), Some(16.0)),
            Param::new("flip", Ty::Bool, Dflt::Bool(false), "random horizontal flips of images"),
            Param::new(
                "valid",
                Ty::opt(Ty::kind(&DATASET)),
                Dflt::None,
                "validation data: evaluated periodically; the best model is kept",
            ),
            Param::new("eval_every", Ty::opt(Ty::Int), Dflt::None, "steps between validations (default: one epoch)")
                .within(Some(1.0), None),
            Param::new(
                "patience",
                Ty::opt(Ty::Int),
                Dflt::None,
                "stop after this many validations without improvement",
            )
            .within(Some(1.0), None),
            Param::new("checkpoint_every", Ty::opt(Ty::Int), Dflt::None, "write a checkpoint every this many steps")
                .within(Some(1.0), None),
            Param::new(
                "resume",
                Ty::opt(Ty::Str),
                Dflt::None,
                "continue from a checkpoint written by `checkpoint_every`; a relative path is read from the run folder (`fit/checkpoints/step_100.safetensors`)",
            ),
        ],
        Train,
    )]
}

/// A classifier's model or a flow (`train` and `evaluate` take either).
pub fn model_or_flow() -> Ty {
    Ty::OneOf("a model or a flow", vec![Ty::kind(&MODEL), Ty::kind(&FLOW)])
}

pub fn objective(name: Option<&str>) -> Objective {
    match name {
        Some("mse") => Objective::Mse,
        _ => Objective::CrossEntropy,
    }
}

struct Train;

impl Stage for Train {
    fn output(&self) -> &'static Kind {
        &TRAINING
    }
    fn output_for(&self, args: &Args) -> &'static Kind {
        flow_train::train_output(args).unwrap_or(&TRAINING)
    }
    fn parts(&self, args: &Args) -> Vec<(String, Ty)> {
        if flow_config(args, "model") {
            return vec![];
        }
        vec![("model".into(), Ty::kind(&MODEL)), ("loss_curve".into(), Ty::kind(&TABLE))]
    }
    fn metrics(&self, args: &Args) -> Vec<String> {
        if super::flows::potential_config(args, "model") {
            return super::potential_train::TRAIN_METRICS.iter().map(|m| m.to_string()).collect();
        }
        if flow_config(args, "model") {
            return flow_train::TRAIN_METRICS.iter().map(|m| m.to_string()).collect();
        }
        let mut numbers = vec!["final_loss", "steps", "parameters"];
        if super::regularizers::names(args).iter().any(|n| n == "input_gradient") {
            numbers.push("final_penalty");
        }
        if args.stage("valid").is_some() {
            numbers.extend(["best_valid_accuracy", "best_valid_loss", "best_step", "stopped_early"]);
        }
        numbers.into_iter().map(str::to_string).collect()
    }
    fn check(&self, cx: &StaticCall) -> Vec<Diag> {
        let mut diags = Vec::new();
        if flow_train::is_flow(cx, "model") {
            diags.extend(exclusive_lengths(cx));
            diags.extend(flow_train::check_train(cx));
            return diags;
        }
        if matches!(cx.args.text("loss"), Some("nll" | "bits_per_dim" | "entropic_dual" | "entropic_alternating")) && cx.given("loss") {
            diags.push(
                Diag::new(Code::E2005, "`loss` here is for flows, and this model is a classifier")
                    .at(cx.args.get("loss").map_or(cx.span, |v| v.span), "not for a classifier")
                    .hint("classifiers train with `cross_entropy` or `mse`"),
            );
        }
        diags.extend(super::regularizers::check(cx, false));
        diags.extend(exclusive_lengths(cx));
        diags.extend(self.classifier_checks(cx));
        diags
    }
    fn meta(&self, cx: &StaticCall) -> Meta {
        if flow_train::is_flow(cx, "model") {
            return Meta { shape: cx.meta("data").and_then(|m| m.shape), ..Meta::default() };
        }
        let widths = check_model(cx, "model", "data").1;
        Meta { shape: widths.as_ref().map(|w| w.0.clone()), classes: widths.map(|w| w.1), ..Meta::default() }
    }
    fn run(&self, cx: &mut RunCtx) -> Result<Output, Diag> {
        if flow_config(cx.args(), "model") {
            return flow_train::train(cx);
        }
        self.train_classifier(cx)
    }
}

/// `epochs` and `iters` exclude each other.
fn exclusive_lengths(cx: &StaticCall) -> Vec<Diag> {
    let mut diags = Vec::new();
    if let (Some(e), Some(i)) = (cx.args.int("epochs"), cx.args.int("iters")) {
        let span = cx.args.get("iters").map(|v| v.span).unwrap_or(cx.span);
        diags.push(
            Diag::new(Code::E2014, format!("`train` takes `epochs` or `iters`, not both (got {e} and {i})"))
                .at(span, "remove one")
                .hint("`epochs: N` makes N passes over the data; `iters: N` takes N optimizer steps"),
        );
    }
    diags
}

impl Train {
    fn classifier_checks(&self, cx: &StaticCall) -> Vec<Diag> {
        let mut diags = Vec::new();
        if cx.args.int("patience").is_some() && cx.args.stage("valid").is_none() {
            let span = cx.args.get("patience").map(|v| v.span).unwrap_or(cx.span);
            diags.push(
                Diag::new(Code::E2014, "`patience` needs validation data")
                    .at(span, "nothing to be patient about")
                    .hint("add `valid: ...` (for instance `split(data, fraction: 0.9).second`)"),
            );
        }
        diags.extend(check_model(cx, "model", "data").0);
        diags.extend(super::clamp::check(cx, "batch", "data"));
        if let (Some(train), Some(valid), Some(v)) = (cx.meta("data"), cx.meta("valid"), cx.args.get("valid"))
            && train.shape.is_some()
            && valid.shape.is_some()
            && train.shape != valid.shape
        {
            diags.push(
                Diag::new(
                    Code::E4001,
                    format!(
                        "validation examples have shape {:?}, training examples {:?}",
                        valid.shape.unwrap_or_default(),
                        train.shape.unwrap_or_default()
                    ),
                )
                .at(v.span, "shape differs from the training data")
                .hint("validate on data prepared like the training data"),
            );
        }
        diags
    }

    fn train_classifier(&self, cx: &mut RunCtx) -> Result<Output, Diag> {
        let data = cx.input::<Dataset>("data")?;
        let valid = cx.optional_input::<Dataset>("valid")?;
        let optimizer: OptimSpec = cx.lower("optimizer")?;
        let schedule: Schedule = cx.lower("schedule")?;
        let asked = cx.args().int("batch").unwrap_or(128) as usize;
        let batch = asked.min(data.n.max(1));
        if batch < asked && cx.given("batch") {
            cx.warn(Code::W2001, super::clamp::message("batch", asked, data.n));
        }
        let a = cx.args();
        let per_epoch = (data.n / batch).max(1);
        let steps = match (a.int("iters"), a.int("epochs")) {
            (Some(i), _) => i as usize,
            (None, Some(e)) => e as usize * per_epoch,
            (None, None) => DEFAULT_EPOCHS * per_epoch,
        };
        let cfg = FitConfig {
            objective: objective(a.text("loss")),
            optimizer: optimizer.clone(),
            batch,
            steps,
            schedule,
            warmup: a.int("warmup").unwrap_or(0) as usize,
            clip: a.float("clip"),
            augment: Augment { crop_pad: a.int("crop").unwrap_or(0) as usize, flip: a.bool("flip").unwrap_or(false) },
            eval_every: a.int("eval_every").map_or(per_epoch, |v| v as usize),
            patience: a.int("patience").map(|v| v as usize),
            checkpoint_every: a.int("checkpoint_every").map(|v| v as usize),
            penalties: Vec::new(),
            bounds: (f64::NEG_INFINITY, f64::INFINITY),
        };
        let penalties = super::regularizers::lowered(cx)?;
        let cfg = FitConfig {
            penalties: penalties
                .into_iter()
                .filter_map(|r| match r {
                    Regularizer::Classifier(p) => Some(p),
                    _ => None,
                })
                .collect(),
            bounds: cx.meta_of("data").and_then(|m| m.bounds).unwrap_or((f64::NEG_INFINITY, f64::INFINITY)),
            ..cfg
        };
        let a = cx.args();
        let resume = a.text("resume").map(str::to_string);
        let mut rng = cx.take_rng();
        let candle = |e: candle_core::Error| cx.compute_error("training", e);
        let model = match model_arg(cx, "model")? {
            ModelArg::Layers(specs) => Net::init(&specs, &data.shape, &mut rng, &cx.device).map_err(candle)?,
            ModelArg::Trained(t) => {
                let tensors = t.model.named_tensors().into_iter().collect();
                Net::from_tensors(&t.model.specs, &t.model.input, &tensors, &cx.device).map_err(candle)?
            }
        };
        let start = match &resume {
            Some(path) => load_checkpoint(cx, &model, path)?,
            None => Start { step: 0, optimizer_state: None },
        };
        let bar = cx.progress.bar(steps as u64, cx.name());
        let ckpt_dir = cx.dir().path("checkpoints");
        let spec_yaml = checkpoint_yaml(&model, data.classes, &optimizer);
        let mut written = Vec::new();
        let result = fit_classifier(
            &model,
            &data,
            valid.as_deref(),
            &cfg,
            start,
            &mut rng,
            &cx.device,
            |step, loss| {
                if step % 10 == 0 {
                    bar.set_position(step as u64);
                    bar.set_message(format!("loss {loss:.4}"));
                }
            },
            |step, net, opt_state| {
                let mut map: HashMap<String, Tensor> = net.named_tensors().into_iter().collect();
                for (n, t) in opt_state {
                    map.insert(format!("optim.{n}"), t.clone());
                }
                let file = ckpt_dir.join(format!("step_{step}.safetensors"));
                crate::lang::save_tensors(&file, &map).map_err(|d| d.message)?;
                let meta = format!("step: {step}\n{spec_yaml}");
                crate::lang::write_atomic(&file.with_extension("yaml"), meta.as_bytes()).map_err(|d| d.message)?;
                written.push(file);
                Ok(())
            },
        );
        bar.finish_and_clear();
        let fit = match result {
            Ok(f) => f,
            Err(FitError::Candle(e)) => return Err(candle(e)),
            Err(FitError::Hook(e)) => return Err(cx.error(Code::R1001, format!("cannot write a checkpoint: {e}"))),
            Err(FitError::NonFinite { step, last_finite, what }) => {
                let last =
                    last_finite.map(|l| format!("{l:.6}")).unwrap_or_else(|| "none (the first step failed)".into());
                return Err(cx
                    .error(Code::R2001, format!("the {what} became NaN or infinite at step {step} of `{}`", cx.name()))
                    .hint(format!("last finite loss: {last}"))
                    .hint(
                        "lower the learning rate, clip gradients (`clip: 1.0`), or check the data for extreme values",
                    ));
            }
        };
        let mut files = plot_curves(cx, &fit, per_epoch)?;
        if let Some(best) = fit.best {
            // The kept model is the best validated one; it also goes beside the periodic
            // checkpoints, with its step, so it can be resumed or loaded on its own.
            let map: HashMap<String, Tensor> = model.named_tensors().into_iter().collect();
            let file = ckpt_dir.join("best.safetensors");
            crate::lang::save_tensors(&file, &map)?;
            let meta = format!(
                "step: {}\nvalid_accuracy: {}\nvalid_loss: {}\n{spec_yaml}",
                best.step, best.accuracy, best.loss
            );
            crate::lang::write_atomic(&file.with_extension("yaml"), meta.as_bytes())?;
            let rel = cx.dir().rel("checkpoints/best");
            files.push(format!("{rel}.safetensors"));
            files.push(format!("{rel}.yaml"));
        }
        files.extend(
            written
                .iter()
                .filter_map(|p| cx.relative(p))
                .flat_map(|rel| [rel.clone(), rel.replace(".safetensors", ".yaml")]),
        );
        let mut metrics = Metrics::new();
        metrics.insert("final_loss".into(), fit.final_loss);
        metrics.insert("steps".into(), fit.steps_taken as f64);
        metrics.insert("parameters".into(), model.parameter_count() as f64);
        if !fit.penalty_curve.is_empty() {
            let tail = flow_train::last_tenth(&fit.penalty_curve);
            metrics.insert("final_penalty".into(), flow_train::mean(tail.iter().copied()));
        }
        if let Some(b) = fit.best {
            metrics.insert("best_valid_accuracy".into(), b.accuracy);
            metrics.insert("best_valid_loss".into(), b.loss);
            metrics.insert("best_step".into(), b.step as f64);
            metrics.insert("stopped_early".into(), if fit.stopped_early { 1.0 } else { 0.0 });
        }
        let curves = Curves { loss: fit.loss_curve, accuracy: fit.acc_curve, validations: fit.validations };
        let trained = Trained { model, classes: data.classes, curves: Some(curves) };
        Ok(Output { artifact: Arc::new(trained), metrics, files })
    }
}

/// What a checkpoint needs beside its tensors to be loaded elsewhere.
fn checkpoint_yaml(model: &Net, classes: Option<usize>, optimizer: &OptimSpec) -> String {
    let mut m = yaml::Mapping::new();
    m.insert(yaml::string("input"), yaml::to_value(&model.input));
    m.insert(yaml::string("classes"), yaml::to_value(&classes));
    m.insert(yaml::string("layers"), yaml::to_value(&model.specs));
    m.insert(yaml::string("optimizer"), yaml::to_value(optimizer));
    yaml::to_string(&yaml::Value::Mapping(m)).unwrap_or_default()
}

fn load_checkpoint(cx: &RunCtx, model: &Net, path: &str) -> Result<Start, Diag> {
    // Checkpoints live in run folders, so a relative path names one inside this run's.
    let file = cx.run_path(path);
    let bad = |why: String| {
        cx.error(Code::R1002, format!("cannot resume from {path}: {why}"))
            .hint("resume from a `step_N.safetensors` written by `checkpoint_every` for the same model")
    };
    if !file.is_file() {
        return Err(cx
            .error(Code::R1004, format!("checkpoint {} not found", file.display()))
            .hint("a relative `resume:` path is read from the run folder: `<stage>/checkpoints/step_N.safetensors`"));
    }
    let map = candle_core::safetensors::load(&file, &cx.device).map_err(|e| bad(e.to_string()))?;
    if let Some(n) = crate::nn::non_finite(&map).first() {
        return Err(bad(format!("tensor `{n}` holds NaN or infinite values")));
    }
    let meta =
        std::fs::read_to_string(file.with_extension("yaml")).map_err(|e| bad(format!("its .yaml beside it: {e}")))?;
    let meta: yaml::Value = yaml::from_str(&meta).map_err(|e| bad(format!("its .yaml beside it: {e}")))?;
    let step =
        meta.get("step").and_then(yaml::Value::as_u64).ok_or_else(|| bad("no `step` in its .yaml".into()))? as usize;
    let weights: Vec<(String, Tensor)> =
        map.iter().filter(|(n, _)| n.starts_with("layers.")).map(|(n, t)| (n.clone(), t.clone())).collect();
    for (name, t) in model.named_tensors() {
        match map.get(&name) {
            Some(saved) if saved.dims() == t.dims() => {}
            _ => return Err(bad(format!("its tensors do not match this model (`{name}`)"))),
        }
    }
    model.restore(&weights).map_err(|e| bad(e.to_string()))?;
    let state: Vec<(String, Tensor)> =
        map.iter().filter_map(|(n, t)| n.strip_prefix("optim.").map(|s| (s.to_string(), t.clone()))).collect();
    crate::nn::check_optimizer_state(&state, &model.vars()).map_err(bad)?;
    Ok(Start { step, optimizer_state: Some(state) })
}

/// The loss and accuracy curves as figures; their numbers are saved with the result.
fn plot_curves(cx: &RunCtx, fit: &crate::nn::FitResult, per_epoch: usize) -> Result<Vec<String>, Diag> {
    let mut files = Vec::new();
    let window = per_epoch.clamp(1, 50);
    let loss_avg = super::plots::moving_average(&fit.loss_curve, window);
    let acc_avg = super::plots::moving_average(&fit.acc_curve, window);
    let vx: Vec<f64> = fit.validations.iter().map(|v| v.step as f64).collect();
    let vl: Vec<f64> = fit.validations.iter().map(|v| v.loss).collect();
    let va: Vec<f64> = fit.validations.iter().map(|v| v.accuracy).collect();
    let plot = |series: Vec<Series>, what: &str| LinePlot {
        title: &format!("Training {what}"),
        x: Axis::new("step", Scaling::Integer),
        y: Axis::new(what, Scaling::Linear),
        series,
    }
    .render();
    let avg = format!("train (moving average, {window} steps)");
    let penalty_avg = super::plots::moving_average(&fit.penalty_curve, window);
    let mut loss_series = vec![Series::steps(&avg, &loss_avg)];
    if !penalty_avg.is_empty() {
        loss_series.push(Series::steps("input-gradient term (in the loss above)", &penalty_avg));
    }
    let mut acc_series = vec![Series::steps(&avg, &acc_avg)];
    if !vx.is_empty() {
        loss_series.push(Series::xy("validation", &vx, &vl));
        acc_series.push(Series::xy("validation", &vx, &va));
    }
    files.extend(super::plots::write_figure(cx, "loss_curve", plot(loss_series, "loss"))?);
    files.extend(super::plots::write_figure(cx, "accuracy_curve", plot(acc_series, "accuracy"))?);
    Ok(files)
}
