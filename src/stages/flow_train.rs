//! Training and evaluating a flow, for `train` and `evaluate` when their model is a flow:
//! maximum likelihood with RNODE's regularizers, a record per iteration (loss terms,
//! forward and backward NFE, seconds), the loss and NFE-per-iteration curves; NLL and NFE
//! on held-out data.

use super::flow_trained::{FLOW_TRAINING, FlowTrained, KEPT_POINTS, TrainingLog};
use super::flows::{FlowSpec, check_flow, flow_config};
use super::ode::failure_code;
use super::regularizers::Regularizer;
use crate::data::Dataset;
use crate::diag::{Code, Diag};
use crate::flow::{BuiltFlow, FlowFit, FlowRecord, fit_flow_with, image};
use crate::lang::{Args, METRICS, Metrics, Output, RunCtx, StaticCall};
use crate::nn::OptimSpec;
use crate::ode::{Failure, SolveError};
use crate::plots::{Axis, LinePlot, Scaling, Series};
use candle_core::{DType, Tensor};
use std::sync::Arc;

/// `train`'s numbers for a flow. The tail means are over the last tenth of the iterations.
pub const TRAIN_METRICS: [&str; 7] =
    ["final_loss", "final_nll", "steps", "parameters", "nfe_forward", "nfe_backward", "nfe_forward_mean"];

/// `evaluate`'s measures of a flow.
pub const FLOW_MEASURES: [&str; 4] = ["nll", "bits_per_dim", "nfe", "nll_closed_form"];

/// `train` arguments that only classifiers take.
const CLASSIFIER_ONLY: [&str; 9] =
    ["schedule", "warmup", "clip", "crop", "flip", "valid", "patience", "checkpoint_every", "resume"];

/// The model argument holds a flow (a `cnf(...)` or a trained one).
pub fn is_flow(cx: &StaticCall, param: &str) -> bool {
    flow_config(cx.args, param) || cx.kind(param).is_some_and(|k| k.is_a(&super::flows::FLOW))
}

/// `train`'s checks when its model is a flow.
pub fn check_train(cx: &StaticCall) -> Vec<Diag> {
    let mut diags = Vec::new();
    let at = |p: &str| cx.args.get(p).map_or(cx.span, |v| v.span);
    if !flow_config(cx.args, "model") {
        diags.push(
            Diag::new(Code::E2005, "continuing the training of a trained flow is not supported yet")
                .at(at("model"), "a trained flow")
                .hint("train the `cnf(...)` itself for more iterations"),
        );
        return diags;
    }
    let potential = super::flows::potential_config(cx.args, "model");
    if potential && !super::regularizers::names(cx.args).is_empty() {
        diags.push(
            Diag::new(
                Code::E2005,
                "a potential flow trains by its dual; RNODE's regularizers act on an ODE solve it does not make",
            )
            .at(at("regularizers"), "not for a potential flow")
            .hint("drop `regularizers`"),
        );
    } else {
        diags.extend(super::regularizers::check(cx, true));
    }
    for p in CLASSIFIER_ONLY {
        if cx.given(p) {
            diags.push(
                Diag::new(Code::E2014, format!("`{p}` applies to classifiers; flows do not take it yet"))
                    .at(at(p), "not for a flow")
                    .hint("flows train with `optimizer`, `batch`, `iters` (or `epochs`) and `regularizers`"),
            );
        }
    }
    let images = cx.meta("data").and_then(|m| m.shape).is_some_and(|s| s.len() == 3);
    if potential {
        if cx.given("loss") && !cx.args.text("loss").is_some_and(|l| super::potential_train::LOSSES.contains(&l)) {
            diags.push(
                Diag::new(Code::E2005, format!("a potential flow trains by the entropic dual, not `{}`", cx.args.text("loss").unwrap_or("?")))
                    .at(at("loss"), "not a potential flow's loss")
                    .hint("write `loss: entropic_dual` (each potential's own objective, the default) or `entropic_alternating` (the joint dual in turns)"),
            );
        }
    } else if cx.given("loss") {
        match cx.args.text("loss") {
            Some("nll") => {}
            Some(l) if super::potential_train::LOSSES.contains(&l) => diags.push(
                Diag::new(
                    Code::E2005,
                    format!("`{l}` trains a `potential_flow`; this flow trains by maximum likelihood"),
                )
                .at(at("loss"), "for potential flows")
                .hint("write `loss: nll`, or train a `potential_flow(phi: ..., psi: ...)`"),
            ),
            Some("bits_per_dim") if images => {}
            Some("bits_per_dim") => diags.push(
                Diag::new(Code::E2005, "`bits_per_dim` is a loss for 8-bit images; these data are vectors")
                    .at(at("loss"), "needs image data")
                    .hint("flows of vector data train with `loss: nll`"),
            ),
            Some(other) => diags.push(
                Diag::new(Code::E2005, format!("a flow trains by maximum likelihood, not `{other}`"))
                    .at(at("loss"), "not a flow's loss")
                    .hint("write `loss: nll` (the default for flows), or `bits_per_dim` for images"),
            ),
            None => {}
        }
    }
    diags.extend(check_flow(cx, "model", "data"));
    diags.extend(super::clamp::check(cx, "batch", "data"));
    diags
}

/// `evaluate`'s checks when its model is a flow.
pub fn check_evaluate(cx: &StaticCall) -> Vec<Diag> {
    let mut diags = Vec::new();
    let at = cx.args.get("metrics").map_or(cx.span, |v| v.span);
    let wrong: Vec<String> =
        cx.args.texts("metrics").into_iter().filter(|m| !FLOW_MEASURES.contains(&m.as_str())).collect();
    if !wrong.is_empty() {
        let how = if cx.given("metrics") { "are" } else { "(the default) are" };
        diags.push(
            Diag::new(Code::E2005, format!("{} {how} measures of classifiers, not of a flow", wrong.join(", ")))
                .at(at, "not a flow's measure")
                .hint("a flow is evaluated by `metrics: [nll, nfe]` (also `bits_per_dim`)"),
        );
    }
    if flow_config(cx.args, "trained") {
        diags.extend(check_flow(cx, "trained", "data"));
        if !super::flows::potential_config(cx.args, "trained")
            && cx.args.texts("metrics").iter().any(|m| m == "nll_closed_form")
        {
            diags.push(
                Diag::new(
                    Code::E2005,
                    "`nll_closed_form` is the likelihood of a potential flow in closed form; this flow has none",
                )
                .at(at, "for potential flows")
                .hint("evaluate this flow by `nll` (its ODE)"),
            );
        }
    }
    diags
}

pub(super) fn solve_error(cx: &RunCtx, what: &str, e: SolveError) -> Diag {
    if let Failure::Tensor(m) = &e.failure {
        return cx.compute_error(what, m);
    }
    let (code, fix) = failure_code(&e.failure);
    cx.error(code, format!("{what}: the solve stopped at t = {:.6}: {} ({} evaluations)", e.t, e.failure, e.stats.nfe))
        .hint(fix)
}

pub(super) fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 { f64::NAN } else { s / n as f64 }
}

/// The last tenth of a training's per-iteration values (at least one): what its reported
/// means are taken over.
pub(super) fn last_tenth<T>(v: &[T]) -> &[T] {
    &v[v.len() - (v.len() / 10).max(1).min(v.len())..]
}

/// The data as an [n, d] tensor on the run's device.
pub(super) fn tensor(cx: &RunCtx, data: &Dataset) -> Result<Tensor, Diag> {
    Tensor::from_vec(data.x.clone(), (data.n, data.features()), &cx.device).map_err(|e| cx.compute_error("the data", e))
}

/// Examples of shape [c, h, w] are 8-bit images (pixel / 255): flows dequantize them and
/// report bits per dimension of the 256 levels.
pub(super) fn images(data: &Dataset) -> bool {
    data.shape.len() == 3
}

/// Bits per dimension of a mean NLL (nats) over examples of `shape`: of the 256 levels for
/// images, nll / (d ln 2) for vectors.
pub(super) fn bits_per_dim(nll: f64, shape: &[usize]) -> f64 {
    let d: usize = shape.iter().product();
    if shape.len() == 3 { image::bits_per_dim(-nll, d) } else { nll / (d as f64 * std::f64::consts::LN_2) }
}

/// A flow training's batch (capped at the data, with a warning when asked for more) and
/// its iterations (`iters`, or `epochs` over the data, 10 epochs by default).
pub(super) fn lengths(cx: &mut RunCtx, n: usize) -> (usize, usize) {
    let asked = cx.args().int("batch").unwrap_or(128) as usize;
    let batch = asked.min(n.max(1));
    if batch < asked && cx.given("batch") {
        cx.warn(Code::W2001, super::clamp::message("batch", asked, n));
    }
    let a = cx.args();
    let iters = match (a.int("iters"), a.int("epochs")) {
        (Some(i), _) => i as usize,
        (None, Some(e)) => e as usize * (n / batch).max(1),
        (None, None) => 10 * (n / batch).max(1),
    };
    (batch, iters)
}

/// `train` of a flow.
pub fn train(cx: &mut RunCtx) -> Result<Output, Diag> {
    let spec: FlowSpec = cx.lower("model")?;
    if spec.potential.is_some() {
        return super::potential_train::train(cx, spec);
    }
    let data = cx.input::<Dataset>("data")?;
    let optimizer: OptimSpec = cx.lower("optimizer")?;
    let regs = super::regularizers::lowered(cx)?;
    let weight = |pick: fn(&Regularizer) -> Option<f64>| regs.iter().filter_map(pick).sum::<f64>();
    let (kinetic, jacobian) = (
        weight(|r| if let Regularizer::Kinetic(l) = r { Some(*l) } else { None }),
        weight(|r| if let Regularizer::JacobianFrobenius(l) = r { Some(*l) } else { None }),
    );
    let (batch, iters) = lengths(cx, data.n);
    let d = data.features();
    let mut rng = cx.take_rng();
    let flow = spec
        .build(&data.shape, &mut rng, &cx.device)
        .map_err(|e| cx.error(Code::R1006, format!("cannot build the flow: {e}")))?;
    let x = tensor(cx, &data)?;
    let cfg = FlowFit {
        iters,
        batch,
        optimizer,
        kinetic,
        jacobian,
        adjoint: spec.adjoint,
        dequantize: images(&data),
        bits_per_dim: images(&data) && cx.args().text("loss") == Some("bits_per_dim"),
    };
    let model = flow
        .likelihood_model()
        .ok_or_else(|| cx.error(Code::R1006, "this flow is not trained by maximum likelihood"))?;
    let bar = cx.progress.bar(iters as u64, cx.name());
    let result = fit_flow_with(model, &x, &cfg, &spec.solver, &mut rng, |i, r| {
        if i % 5 == 0 {
            bar.set_position(i as u64);
            bar.set_message(format!("nll {:.4} nfe {}", r.nll, r.nfe_forward));
        }
    });
    bar.finish_and_clear();
    let records = match result {
        Ok(r) => r,
        Err(e) if e.failure == Failure::NonFinite && e.partial.is_empty() && e.last.is_none() => {
            return Err(cx
                .error(Code::R2001, format!("the flow's loss became NaN or infinite in `{}`", cx.name()))
                .hint("lower the learning rate, or tighten the solver's tolerances"));
        }
        Err(e) => return Err(solve_error(cx, "training the flow", e)),
    };
    let kept = data.n.min(KEPT_POINTS) * d;
    let mut metrics = Metrics::new();
    let tail = last_tenth(&records);
    metrics.insert("final_loss".into(), mean(tail.iter().map(|r| r.loss)));
    metrics.insert("final_nll".into(), mean(tail.iter().map(|r| r.nll)));
    metrics.insert("steps".into(), records.len() as f64);
    metrics.insert("parameters".into(), flow.parameter_count() as f64);
    metrics.insert("nfe_forward".into(), mean(tail.iter().map(|r| r.nfe_forward as f64)));
    metrics.insert("nfe_backward".into(), mean(tail.iter().map(|r| r.nfe_backward as f64)));
    metrics.insert("nfe_forward_mean".into(), mean(records.iter().map(|r| r.nfe_forward as f64)));
    let bits = cfg.bits_per_dim.then_some(data.shape.as_slice());
    let files = plot_training(cx, &records, kinetic != 0.0 || jacobian != 0.0, bits)?;
    let trained = FlowTrained {
        spec,
        shape: data.shape.clone(),
        flow,
        records: TrainingLog::Likelihood(records),
        data: data.x[..kept].to_vec(),
    };
    Ok(Output { artifact: Arc::new(trained), metrics, files })
}

/// The loss and NFE-per-iteration curves; flows trained in bits per dimension (`bits`:
/// their examples' shape) in bits per dimension.
fn plot_training(
    cx: &RunCtx,
    records: &[FlowRecord],
    regularized: bool,
    bits: Option<&[usize]>,
) -> Result<Vec<String>, Diag> {
    let window = (records.len() / 50).clamp(1, 50);
    let avg = |v: Vec<f64>| super::plots::moving_average(&v, window);
    let (likelihood, unit) = match bits {
        Some(shape) => (
            avg(records.iter().map(|r| bits_per_dim(r.nll, shape)).collect()),
            ("bits per dimension", "bits per dimension"),
        ),
        None => (avg(records.iter().map(|r| r.nll).collect()), ("negative log-likelihood", "per example")),
    };
    let loss = avg(records.iter().map(|r| r.loss).collect());
    let mut series = vec![Series::steps(unit.0, &likelihood)];
    if regularized {
        series.push(Series::steps("loss (with the regularizers)", &loss));
    }
    let mut files = super::plots::write_figure(
        cx,
        "loss_curve",
        LinePlot {
            title: &format!("Training of `{}` (moving average, {window} iterations)", cx.name()),
            x: Axis::new("iteration", Scaling::Integer),
            y: Axis::new(unit.1, Scaling::Linear),
            series,
        }
        .render(),
    )?;
    let avg = |f: fn(&FlowRecord) -> f64| avg(records.iter().map(f).collect());
    let (f, b) = (avg(|r| r.nfe_forward as f64), avg(|r| r.nfe_backward as f64));
    files.extend(super::plots::write_figure(
        cx,
        "nfe_curve",
        LinePlot {
            title: &format!("Function evaluations per iteration of `{}` (moving average, {window})", cx.name()),
            x: Axis::new("iteration", Scaling::Integer),
            y: Axis::new("NFE", Scaling::Linear),
            series: vec![Series::steps("forward", &f), Series::steps("backward", &b)],
        }
        .render(),
    )?);
    Ok(files)
}

/// The flow `param` holds: a trained one, or a `cnf(...)` initialised for `shape`.
pub enum FlowArg {
    Trained(Arc<FlowTrained>),
    Fresh(Box<(FlowSpec, BuiltFlow)>),
}

impl FlowArg {
    fn parts(&self) -> (&FlowSpec, &BuiltFlow) {
        match self {
            FlowArg::Trained(t) => (&t.spec, &t.flow),
            FlowArg::Fresh(f) => (&f.0, &f.1),
        }
    }
}

pub fn flow_arg(cx: &mut RunCtx, param: &str, shape: &[usize]) -> Result<FlowArg, Diag> {
    if cx.args().stage(param).is_some() {
        return cx.input::<FlowTrained>(param).map(FlowArg::Trained);
    }
    let spec: FlowSpec = cx.lower(param)?;
    let mut rng = cx.take_rng();
    let chain = spec
        .build(shape, &mut rng, &cx.device)
        .map_err(|e| cx.error(Code::R1006, format!("cannot build the flow: {e}")))?;
    Ok(FlowArg::Fresh(Box::new((spec, chain))))
}

/// Examples per solve when a flow is evaluated.
const EVAL_BATCH: usize = 1000;
/// Up to this dimension the likelihood is computed with the exact trace.
const EXACT_UP_TO: usize = 16;

/// log p of every example and the mean NFE of a pass over a batch (see `log_likelihood_parts`).
pub fn log_likelihoods(
    flow: &BuiltFlow,
    spec: &FlowSpec,
    x: &Tensor,
    rng: &mut crate::rng::Rng,
) -> Result<(Vec<f64>, f64), SolveError> {
    let (parts, nfe) = log_likelihood_parts(flow, spec, x, rng)?;
    let mut total = parts[0].clone();
    for part in &parts[1..] {
        total.iter_mut().zip(part).for_each(|(t, p)| *t += p);
    }
    Ok((total, nfe))
}

/// log p of every example in the flow's parts (`BuiltFlow::log_density_parts`: one for a
/// chain, one per resolution for a multi-resolution flow), [part][example], and the mean NFE
/// of a pass over a batch; in batches, the exact trace in low dimension, else each block's
/// estimator with draws from `rng` (Hutchinson's is unbiased for log p: the trajectory does
/// not depend on the draw).
fn log_likelihood_parts(
    flow: &BuiltFlow,
    spec: &FlowSpec,
    x: &Tensor,
    rng: &mut crate::rng::Rng,
) -> Result<(Vec<Vec<f64>>, f64), SolveError> {
    let untimed = |e| SolveError::tensor(e, spec.t0);
    let n = x.dim(0).map_err(untimed)?;
    let (mut out, mut nfe, mut batches): (Vec<Vec<f64>>, _, _) = (Vec::new(), 0.0, 0.0f64);
    for start in (0..n).step_by(EVAL_BATCH) {
        let xb = x.narrow(0, start, EVAL_BATCH.min(n - start)).map_err(untimed)?;
        let (parts, stats) = flow.log_density_parts(&xb, &spec.solver, rng, flow.dim() <= EXACT_UP_TO)?;
        out.resize_with(parts.len(), Vec::new);
        for (o, p) in out.iter_mut().zip(&parts) {
            o.extend(p.to_dtype(DType::F64).and_then(|t| t.to_vec1::<f64>()).map_err(untimed)?);
        }
        nfe += stats.nfe as f64;
        batches += 1.0;
    }
    Ok((out, nfe / batches.max(1.0)))
}

/// `evaluate` of a flow. Images are dequantized with one seeded draw.
pub fn evaluate(cx: &mut RunCtx) -> Result<Output, Diag> {
    let data = cx.input::<Dataset>("data")?;
    let mut x = tensor(cx, &data)?;
    let arg = flow_arg(cx, "trained", &data.shape)?;
    let mut rng = cx.take_rng();
    if images(&data) {
        x = image::dequantize(&x, &mut rng).map_err(|e| cx.compute_error("dequantizing the images", e))?;
    }
    let (spec, flow) = arg.parts();
    let (parts, nfe) =
        log_likelihood_parts(flow, spec, &x, &mut rng).map_err(|e| solve_error(cx, "evaluating the flow", e))?;
    let means: Vec<f64> = parts.iter().map(|p| mean(p.iter().copied())).collect();
    let nll = -means.iter().sum::<f64>();
    let mut metrics = Metrics::new();
    for m in cx.args().texts("metrics") {
        let v = match m.as_str() {
            "nll" => nll,
            "nll_closed_form" => match flow {
                BuiltFlow::Potential(p) => super::potential_train::closed_form_nll(cx, p, &x, &mut rng)?,
                _ => {
                    return Err(cx
                        .error(Code::R1002, "`nll_closed_form` is the likelihood of a potential flow in closed form; this flow has none")
                        .hint("evaluate this flow by `nll` (its ODE)"));
                }
            },
            "bits_per_dim" => {
                if let BuiltFlow::Multires(flow) = flow {
                    resolution_bits(flow, &means, &mut metrics);
                }
                bits_per_dim(nll, &data.shape)
            }
            _ => nfe,
        };
        metrics.insert(m, v);
    }
    Ok(Output::nothing(&METRICS, metrics, vec![]))
}

/// `bits_per_dim.<h>x<w>`: the bits per dimension of a multi-resolution flow's image at
/// each resolution, from the mean log p of its parts (coarsest first): the coarsest
/// image's term plus the details' terms up to that resolution, over that image's pixels
/// (the reference code's per-scale bits/dim; the finest is the flow's own).
fn resolution_bits(flow: &crate::flow::Mrcnf, means: &[f64], metrics: &mut Metrics) {
    let mut cumulative = 0.0;
    for (shape, m) in flow.resolutions().into_iter().zip(means) {
        cumulative += m;
        let [_, h, w] = shape;
        metrics.insert(format!("bits_per_dim.{h}x{w}"), image::bits_per_dim(cumulative, shape.iter().product()));
    }
}

/// `train`'s result kind for these arguments.
pub fn train_output(args: &Args) -> Option<&'static crate::lang::Kind> {
    flow_config(args, "model").then_some(&FLOW_TRAINING)
}
