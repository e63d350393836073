//! `heat_smoothing`: a trained model retrained without labels into its own Gaussian
//! average (Campbell, Finlay & Oberman): implicit heat steps, each minimising
//! 1/2 |v - f|^2 + lambda (h sigma^2 / 2) |grad_x v|_F^2 from the previous step's model.
//! Optionally measures how close v comes to a Monte-Carlo estimate of E[f(x + sigma Z)].

use super::dataset::DATASET;
use super::layers::check_shapes;
use super::model::{ModelArg, TRAINED, Trained, model_arg};
use super::optim::OPTIMIZER;
use crate::certify::average::monte_carlo_average;
use crate::data::Dataset;
use crate::diag::{Code, Diag};
use crate::lang::{Args, Builtin, Dflt, Kind, Meta, Metrics, Output, Param, RunCtx, Stage, StaticCall, Ty};
use crate::nn::{HeatConfig, Net, Outputs, frozen, heat_smooth, input_batch};
use crate::plots::{Axis, LinePlot, Scaling, Series};
use candle_core::Tensor;
use std::sync::Arc;

pub fn builtins() -> Vec<Builtin> {
    vec![Builtin::stage(
        "heat_smoothing",
        "Gaussian averaging by regularized retraining (Campbell, Finlay & Oberman): a trained model v starts from f and minimises 1/2 |v - f|^2 + lambda (h sigma^2 / 2) |grad_x v|_F^2 over the data's inputs (no labels), `steps` implicit heat steps of `epochs` each; the Jacobian norm by random projections and finite differences.",
        vec![
            Param::new("model", Ty::kind(&TRAINED), Dflt::Required, "the trained model f to average"),
            Param::new("data", Ty::kind(&DATASET), Dflt::Required, "inputs to average over (labels are not read)"),
            Param::new("sigma", Ty::Float, Dflt::Required, "the Gaussian's standard deviation, in input units").positive(),
            Param::new("lambda", Ty::Float, Dflt::Float(HeatConfig::LAMBDA), "weight of the Jacobian term; 0.5 makes each step the implicit heat step (the reference code's gamma 5 with its 1/classes projections)")
                .within(Some(0.0), None),
            Param::new("steps", Ty::Int, Dflt::Int(1), "implicit heat steps of size sigma^2 / steps").within(Some(1.0), Some(1000.0)),
            Param::new("epochs", Ty::Int, Dflt::Int(1), "passes over the data per heat step").within(Some(1.0), None),
            Param::new("projections", Ty::Int, Dflt::Int(1), "random output projections per example and step of the Jacobian estimate")
                .within(Some(1.0), Some(1000.0)),
            Param::new("dt", Ty::Float, Dflt::Float(HeatConfig::DT), "finite-difference step of the Jacobian estimate (input units)").positive(),
            Param::new("outputs", Ty::choice(&["softmax", "identity"]), Dflt::Sym("softmax"), "average a classifier's softmax, or a regression network's raw outputs"),
            Param::new("init", Ty::choice(&["base", "random"]), Dflt::Sym("base"), "start v from f's weights (the paper's one-epoch retraining) or from a fresh initialisation (the reference code's; needs more epochs, but escapes a saturated softmax, whose gradients vanish)"),
            Param::new("optimizer", Ty::kind(&OPTIMIZER), Dflt::Config("adam"), "`adam(...)` or `sgd(...)`"),
            Param::new("batch", Ty::Int, Dflt::Int(128), "minibatch size").within(Some(1.0), None),
            Param::new("check", Ty::opt(Ty::kind(&DATASET)), Dflt::None, "held-out inputs on which v is compared with a Monte-Carlo average of f"),
            Param::new("check_count", Ty::Int, Dflt::Int(100), "how many `check` inputs").within(Some(1.0), None),
            Param::new("draws", Ty::Int, Dflt::Int(1000), "Monte-Carlo draws per `check` input").within(Some(2.0), None),
        ],
        HeatSmoothing,
    )]
}

struct HeatSmoothing;

const CHECK_METRICS: [&str; 5] =
    ["mc_abs_error", "base_abs_error", "mc_standard_error", "max_abs_error", "check_inputs"];

impl Stage for HeatSmoothing {
    fn output(&self) -> &'static Kind {
        &TRAINED
    }
    fn metrics(&self, args: &Args) -> Vec<String> {
        let mut m: Vec<&str> = vec!["optimizer_steps", "final_objective", "final_fidelity", "final_penalty"];
        if args.stage("check").is_some() {
            m.extend(CHECK_METRICS);
        }
        m.into_iter().map(String::from).collect()
    }
    fn check(&self, cx: &StaticCall) -> Vec<Diag> {
        let mut d = check_shapes(cx, "model", "data").0;
        d.extend(super::clamp::check(cx, "batch", "data"));
        if cx.args.text("outputs") == Some("softmax")
            && let Some(meta) = cx.meta("model")
            && meta.classes.is_none()
            && cx.meta("data").is_some_and(|m| m.classes.is_none())
        {
            d.push(
                Diag::new(Code::E2005, "`outputs: softmax` averages a classifier, and nothing here has classes")
                    .at(cx.args.get("model").map_or(cx.span, |v| v.span), "a regression network?")
                    .hint("write `outputs: identity` to average a regression network's raw outputs"),
            );
        }
        d
    }
    fn meta(&self, cx: &StaticCall) -> Meta {
        let widths = check_shapes(cx, "model", "data").1;
        Meta { shape: widths.as_ref().map(|w| w.0.clone()), classes: widths.map(|w| w.1), ..Meta::default() }
    }
    fn run(&self, cx: &mut RunCtx) -> Result<Output, Diag> {
        let data = cx.input::<Dataset>("data")?;
        let check = cx.optional_input::<Dataset>("check")?;
        let ModelArg::Trained(base) = model_arg(cx, "model")? else {
            return Err(cx.internal("heat_smoothing's model is a trained one"));
        };
        let a = cx.args();
        let outputs = if a.text("outputs") == Some("identity") { Outputs::Identity } else { Outputs::Softmax };
        let asked = a.int("batch").unwrap_or(128) as usize;
        let cfg = HeatConfig {
            sigma: a.float("sigma").unwrap_or(0.25),
            lambda: a.float("lambda").unwrap_or(HeatConfig::LAMBDA),
            steps: a.int("steps").unwrap_or(1) as usize,
            epochs: a.int("epochs").unwrap_or(1) as usize,
            projections: a.int("projections").unwrap_or(1) as usize,
            dt: a.float("dt").unwrap_or(HeatConfig::DT),
            outputs,
            optimizer: cx.lower("optimizer")?,
            batch: asked.min(data.n.max(1)),
        };
        let (check_count, draws) =
            (a.int("check_count").unwrap_or(100) as usize, a.int("draws").unwrap_or(1000) as usize);
        let batch_given = cx.given("batch");
        let check_given = cx.given("check_count");
        let mut rng = cx.take_rng();
        if cfg.batch < asked && batch_given {
            cx.warn(Code::W2001, super::clamp::message("batch", asked, data.n));
        }
        let model = if cx.args().text("init") == Some("random") {
            Net::init(&base.model.specs, &base.model.input, &mut rng, &cx.device)
        } else {
            frozen(&base.model, &cx.device)
        }
        .map_err(|e| cx.compute_error("Gaussian averaging", e))?;
        let total = cfg.steps * cfg.epochs * (data.n / cfg.batch).max(1);
        let bar = cx.progress.bar(total as u64, cx.name());
        let curves = heat_smooth(&model, &base.model, &data, &cfg, &mut rng, &cx.device, &mut |step, value| {
            if step % 10 == 0 {
                bar.set_position(step as u64);
                bar.set_message(format!("objective {value:.4}"));
            }
        })
        .map_err(|e| {
            cx.error(Code::R2001, format!("Gaussian averaging failed: {e}"))
                .hint("lower the learning rate, or the finite-difference step `dt`")
        })?;
        bar.finish_and_clear();
        let tail = |v: &[f64]| super::flow_train::mean(super::flow_train::last_tenth(v).iter().copied());
        let mut metrics = Metrics::new();
        metrics.insert("optimizer_steps".into(), curves.objective.len() as f64);
        metrics.insert("final_objective".into(), tail(&curves.objective));
        metrics.insert("final_fidelity".into(), tail(&curves.fidelity));
        metrics.insert("final_penalty".into(), tail(&curves.penalty));
        let mut files = write_curves(cx, &curves)?;
        if let Some(check) = check {
            let n = check_count.min(check.n);
            if n < check_count && check_given {
                cx.warn(Code::W2001, super::clamp::message("check_count", check_count, check.n));
            }
            let c = compare(&base.model, &model, &check, n, draws, &cfg, &mut rng, &cx.device)
                .map_err(|e| cx.compute_error("the Monte-Carlo check", e))?;
            metrics.insert("mc_abs_error".into(), c.averaged);
            metrics.insert("base_abs_error".into(), c.base);
            metrics.insert("mc_standard_error".into(), c.standard_error);
            metrics.insert("max_abs_error".into(), c.worst);
            metrics.insert("check_inputs".into(), n as f64);
            files.push(cx.write_file("check.csv", c.csv.as_bytes())?);
            let cost = format!(
                "method,evaluations_per_input,seconds_per_input\nmonte_carlo,{draws},{}\naveraged_model,1,{}\n",
                c.seconds.0, c.seconds.1
            );
            files.push(cx.write_file("cost.csv", cost.as_bytes())?);
            if !c.line.is_empty() {
                let col = |k: usize| c.line.iter().map(|p| p[k]).collect::<Vec<f64>>();
                let (xs, mc, v, f) = (col(0), col(1), col(2), col(3));
                let mc_name = format!("Monte Carlo E[f(x + sigma Z)], {draws} draws");
                let plot = LinePlot {
                    title: &format!("Gaussian average at sigma = {}", cfg.sigma),
                    x: Axis::new("x", Scaling::Linear),
                    y: Axis::new("output", Scaling::Linear),
                    series: vec![
                        Series::xy("f (base)", &xs, &f),
                        Series::xy(&mc_name, &xs, &mc),
                        Series::xy("v (heat step)", &xs, &v),
                    ],
                };
                files.extend(super::plots::write_figure(cx, "average", plot.render())?);
            }
        }
        let trained = Trained { model, classes: base.classes, curves: None };
        Ok(Output { artifact: Arc::new(trained), metrics, files })
    }
}

/// v and f against the Monte-Carlo average of f on held-out inputs: mean absolute
/// differences per output, the Monte-Carlo standard error, the worst difference of v.
struct Comparison {
    averaged: f64,
    base: f64,
    standard_error: f64,
    worst: f64,
    csv: String,
    /// Seconds per input: the Monte-Carlo average, one evaluation of v.
    seconds: (f64, f64),
    /// Per input of a 1-D check: (x, Monte Carlo, v, f) of the first output.
    line: Vec<[f64; 4]>,
}

#[allow(clippy::too_many_arguments)]
fn compare(
    base: &Net,
    averaged: &Net,
    check: &Dataset,
    count: usize,
    draws: usize,
    cfg: &HeatConfig,
    rng: &mut crate::rng::Rng,
    device: &candle_core::Device,
) -> candle_core::Result<Comparison> {
    let f = |x: &Tensor| cfg.outputs.apply(&base.forward(x)?);
    let v = |x: &Tensor| cfg.outputs.apply(&averaged.forward(x)?);
    let (mut sums, mut cells, mut worst) = ([0.0f64; 3], 0usize, 0.0f64);
    let mut csv = String::from("index,output,monte_carlo,standard_error,averaged,base\n");
    let (mut mc_time, mut v_time) = (0.0, 0.0);
    let mut line = Vec::new();
    for i in 0..count {
        let row = check.row(i);
        let clock = std::time::Instant::now();
        let (mc, se) = monte_carlo_average(&f, row, &check.shape, draws, cfg.sigma, 1000, rng, device)?;
        mc_time += clock.elapsed().as_secs_f64();
        let x = input_batch(check, &[i], device)?;
        let clock = std::time::Instant::now();
        let vv: Vec<f32> = v(&x)?.flatten_all()?.to_vec1()?;
        v_time += clock.elapsed().as_secs_f64();
        let ff: Vec<f32> = f(&x)?.flatten_all()?.to_vec1()?;
        if check.shape == [1] {
            line.push([row[0] as f64, mc[0], vv[0] as f64, ff[0] as f64]);
        }
        for k in 0..mc.len() {
            let (dv, df) = ((vv[k] as f64 - mc[k]).abs(), (ff[k] as f64 - mc[k]).abs());
            sums[0] += dv;
            sums[1] += df;
            sums[2] += se[k];
            worst = worst.max(dv);
            cells += 1;
            csv.push_str(&format!("{i},{k},{},{},{},{}\n", mc[k], se[k], vv[k], ff[k]));
        }
    }
    let n = cells.max(1) as f64;
    let per = count.max(1) as f64;
    line.sort_by(|a, b| a[0].total_cmp(&b[0]));
    Ok(Comparison {
        averaged: sums[0] / n,
        base: sums[1] / n,
        standard_error: sums[2] / n,
        worst,
        csv,
        seconds: (mc_time / per, v_time / per),
        line,
    })
}

fn write_curves(cx: &RunCtx, c: &crate::nn::HeatCurves) -> Result<Vec<String>, Diag> {
    let mut csv = String::from("step,objective,fidelity,penalty\n");
    for (i, ((o, f), p)) in c.objective.iter().zip(&c.fidelity).zip(&c.penalty).enumerate() {
        csv.push_str(&format!("{i},{o},{f},{p}\n"));
    }
    let mut files = vec![cx.write_file("objective.csv", csv.as_bytes())?];
    // Minibatch values scatter over decades: the figure shows means over windows of about
    // a hundredth of the run, and only positive ones on its log axis.
    let window = (c.objective.len() / 100).max(1);
    let smoothed = |v: &[f64]| -> (Vec<f64>, Vec<f64>) {
        v.chunks(window)
            .enumerate()
            .map(|(k, w)| ((k * window) as f64 + (w.len() as f64 - 1.0) / 2.0, w.iter().sum::<f64>() / w.len() as f64))
            .filter(|(_, m)| *m > 0.0 && m.is_finite())
            .unzip()
    };
    let (o, f, p) = (smoothed(&c.objective), smoothed(&c.fidelity), smoothed(&c.penalty));
    let plot = LinePlot {
        title: "Gaussian averaging: objective and its terms",
        x: Axis::new("optimizer step", Scaling::Linear),
        y: Axis::new(format!("value (mean over {window} steps)"), Scaling::Log),
        series: vec![
            Series::xy("objective", &o.0, &o.1),
            Series::xy("fidelity 1/2 |v - f|^2", &f.0, &f.1),
            Series::xy("Jacobian term", &p.0, &p.1),
        ],
    };
    files.extend(super::plots::write_figure(cx, "objective", plot.render())?);
    Ok(files)
}
