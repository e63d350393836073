//! Out-of-distribution evaluation of a likelihood model, with a classifier's max-softmax
//! score as the non-likelihood baseline: each set's scores, their histograms on one figure,
//! and the AUROC of the score separating each outlier set from the inliers. A flow scores
//! an image by its bits per dimension (a higher value, a less likely image, is more
//! out-of-distribution); a classifier by 1 - max softmax. The outlier sets come from the
//! dataset stages in `ood_sets`.

use super::attack_outcome::median;
use super::dataset::DATASET;
use super::flow_train::{images, log_likelihoods, solve_error, tensor};
use super::flow_trained::{FLOW_TRAINING, FlowTrained};
use super::flows::FLOW;
use super::model::{TRAINED, model_ref};
use crate::data::Dataset;
use crate::diag::{Code, Diag};
use crate::flow::image;
use crate::lang::{Builtin, Dflt, FIGURE, Kind, Metrics, Output, Param, RunCtx, Stage, StaticCall, Ty};
use crate::ood::{auroc, density_histogram};
use crate::plots::{Axis, LinePlot, Scaling, Series};

pub fn builtins() -> Vec<Builtin> {
    let mut all = vec![Builtin::stage(
        "ood",
        "Out-of-distribution detection by a model's own score: a flow's bits per dimension (Nalisnick et al.'s test of likelihood models) or a classifier's max softmax (the baseline). Per set, the mean score and the AUROC of the score separating the outliers from the inliers (below 0.5: the outliers look more in-distribution than the model's own test data); the histograms of all sets on one figure.",
        vec![
            Param::new("model", Ty::OneOf("a trained flow or a trained classifier", vec![Ty::kind(&FLOW_TRAINING), Ty::kind(&TRAINED)]), Dflt::Required, "a `train` result: a flow (scored by likelihood) or a classifier (scored by max softmax)"),
            Param::new("inliers", Ty::kind(&DATASET), Dflt::Required, "held-out data from the model's own distribution"),
            Param::new("outliers", Ty::list(Ty::kind(&DATASET)), Dflt::Required, "the out-of-distribution sets, images of the inliers' shape"),
            Param::new("labels", Ty::list(Ty::Str), Dflt::Syms(&[]), "names of the outlier sets (default: their stage names)"),
            Param::new("bins", Ty::Int, Dflt::Int(60), "histogram bins").within(Some(2.0), Some(1000.0)),
            Param::new("title", Ty::opt(Ty::Str), Dflt::None, "figure title (default: what is drawn)"),
        ],
        Ood,
    )];
    all.extend(super::ood_sets::builtins());
    all
}

struct Ood;

impl Stage for Ood {
    fn output(&self) -> &'static Kind {
        &FIGURE
    }
    fn check(&self, cx: &StaticCall) -> Vec<Diag> {
        let mut diags = Vec::new();
        let Some(shape) = cx.meta("inliers").and_then(|m| m.shape) else { return diags };
        let labels = cx.args.texts("labels");
        let sets = cx.args.stages("outliers");
        if let Some(v) = cx.args.get("outliers") {
            for (k, r) in sets.iter().enumerate() {
                if let Some(s) = (cx.meta_of)(r).and_then(|m| m.shape)
                    && s != shape
                {
                    diags.push(
                        Diag::new(Code::E4001, format!("outlier set {} has examples of shape {s:?}, the inliers {shape:?}", k + 1))
                            .at(v.span, "not the inliers' shape")
                            .hint("scores compare like with like: bring the outliers to the inliers' shape (`downsample`)"),
                    );
                }
            }
        }
        let n = sets.len();
        if !labels.is_empty() && labels.len() != n {
            diags.push(
                Diag::new(Code::E2003, format!("{} labels for {n} outlier sets", labels.len()))
                    .at(cx.args.get("labels").map_or(cx.span, |v| v.span), "one label per set")
                    .hint("give one label per outlier set, or none (their stage names)"),
            );
        }
        diags
    }
    fn run(&self, cx: &mut RunCtx) -> Result<Output, Diag> {
        let inliers = cx.input::<Dataset>("inliers")?;
        let outliers = cx.inputs::<Dataset>("outliers")?;
        let labels = cx.args().texts("labels");
        let mut names = vec!["inliers".to_string()];
        names.extend(outliers.iter().enumerate().map(|(k, (n, _))| labels.get(k).cloned().unwrap_or_else(|| n.clone())));
        for (name, d) in &outliers {
            if d.shape != inliers.shape {
                return Err(cx.error(
                    Code::R1002,
                    format!("outlier set `{name}` has examples of shape {:?}, the inliers {:?}", d.shape, inliers.shape),
                ));
            }
        }
        let flow = cx.input_kind("model").is_some_and(|k| k.is_a(&FLOW));
        let sets: Vec<&Dataset> = std::iter::once(inliers.as_ref()).chain(outliers.iter().map(|(_, d)| d.as_ref())).collect();
        let (scores, unit) = if flow { flow_scores(cx, &sets)? } else { softmax_scores(cx, &sets)? };
        let mut metrics = Metrics::new();
        let mut table = String::from("set,n,mean,median,auroc\n");
        for (k, (name, s)) in names.iter().zip(&scores).enumerate() {
            let mean = s.iter().sum::<f64>() / s.len().max(1) as f64;
            let area = if k == 0 { None } else { auroc(&scores[0], s) };
            metrics.insert(format!("{name}.{}", unit.metric), mean);
            if let Some(a) = area {
                metrics.insert(format!("{name}.auroc"), a);
            }
            let cell = area.map_or(String::new(), |a| a.to_string());
            table.push_str(&format!("{},{},{mean},{},{cell}\n", crate::csv::field(name), s.len(), median(&mut s.iter().copied().filter(|x| !x.is_nan()).collect::<Vec<_>>())));
        }
        let mut per_example = String::from("set,index,score\n");
        for (name, s) in names.iter().zip(&scores) {
            for (i, v) in s.iter().enumerate() {
                per_example.push_str(&format!("{},{i},{v}\n", crate::csv::field(name)));
            }
        }
        let mut files = vec![cx.write_file("ood.csv", table.as_bytes())?, cx.write_file("scores.csv", per_example.as_bytes())?];
        files.extend(histogram_figure(cx, &names, &scores, &unit)?);
        Ok(Output::nothing(&FIGURE, metrics, files))
    }
}

/// What a score is called in metrics and on the figure's axis.
struct Unit {
    metric: &'static str,
    axis: &'static str,
    noun: &'static str,
    scaling: Scaling,
}

/// Bits per dimension of every image of every set (dequantized with one seeded draw per
/// image, as `evaluate` does); the solve uses each block's own trace estimator.
fn flow_scores(cx: &mut RunCtx, sets: &[&Dataset]) -> Result<(Vec<Vec<f64>>, Unit), Diag> {
    let f = cx.input::<FlowTrained>("model")?;
    let mut rng = cx.take_rng();
    let mut out = Vec::new();
    for d in sets {
        if d.shape != f.shape {
            return Err(cx.error(
                Code::R1002,
                format!("the flow models examples of shape {:?}; these have shape {:?}", f.shape, d.shape),
            ));
        }
        let mut x = tensor(cx, d)?;
        if images(d) {
            x = image::dequantize(&x, &mut rng).map_err(|e| cx.compute_error("dequantizing the images", e))?;
        }
        let (log_p, _) = log_likelihoods(&f.flow, &f.spec, &x, &mut rng)
            .map_err(|e| solve_error(cx, "the likelihood of the data", e))?;
        out.push(log_p.iter().map(|l| super::flow_train::bits_per_dim(-l, &d.shape)).collect());
    }
    let unit = if f.shape.len() == 3 {
        Unit { metric: "bits_per_dim", axis: "bits per dimension", noun: "bits per dimension", scaling: Scaling::Linear }
    } else {
        Unit { metric: "nll", axis: "negative log-likelihood", noun: "negative log-likelihood", scaling: Scaling::Linear }
    };
    Ok((out, unit))
}

/// 1 - max softmax of every example of every set.
fn softmax_scores(cx: &mut RunCtx, sets: &[&Dataset]) -> Result<(Vec<Vec<f64>>, Unit), Diag> {
    let mut rng = cx.take_rng();
    let net = model_ref(cx, "model", &sets[0].shape, &mut rng)?;
    let mut out = Vec::new();
    for d in sets {
        let mut s = Vec::with_capacity(d.n);
        let idx: Vec<usize> = (0..d.n).collect();
        for chunk in idx.chunks(500) {
            let p = super::certify::softmax_rows(&net, d, chunk, &cx.device)
                .map_err(|e| cx.compute_error("the classifier's softmax", e))?;
            s.extend(p.iter().map(|row| 1.0 - row.iter().cloned().fold(0.0, f64::max)));
        }
        out.push(s);
    }
    let unit = Unit { metric: "one_minus_max_softmax", axis: "1 - max softmax", noun: "1 - max softmax", scaling: Scaling::Log };
    Ok((out, unit))
}

/// Overlaid step outlines of each set's score density, on shared bins. The softmax score
/// spans decades near zero, so it is binned on a log axis (its log10, exact zeros at the
/// smallest positive value seen).
fn histogram_figure(cx: &RunCtx, names: &[String], scores: &[Vec<f64>], unit: &Unit) -> Result<Vec<String>, Diag> {
    let bins = cx.args().int("bins").unwrap_or(60) as usize;
    let log = unit.scaling == Scaling::Log;
    let shown: Vec<Vec<f64>> = if log {
        let floor = scores.iter().flatten().copied().filter(|v| *v > 0.0).fold(f64::INFINITY, f64::min);
        let floor = if floor.is_finite() { floor } else { 1e-12 };
        scores.iter().map(|s| s.iter().map(|v| v.max(floor).log10()).collect()).collect()
    } else {
        scores.to_vec()
    };
    let refs: Vec<&[f64]> = shown.iter().map(Vec::as_slice).collect();
    let h = density_histogram(&refs, bins, None);
    let outlines: Vec<(Vec<f64>, Vec<f64>)> = (0..names.len()).map(|k| h.outline(k)).collect();
    let inliers = match cx.input_name("inliers") {
        Some(n) => format!("inliers (`{n}`)"),
        None => "inliers".to_string(),
    };
    let legend: Vec<&str> = std::iter::once(inliers.as_str()).chain(names[1..].iter().map(String::as_str)).collect();
    let series = legend.iter().zip(&outlines).map(|(n, (xs, ys))| Series::xy(n, xs, ys)).collect();
    let axis = if log { format!("log10 of {}", unit.axis) } else { unit.axis.to_string() };
    let title = super::plots::title(cx, || {
        format!("{} under `{}`: inliers and out-of-distribution sets", capitalised(unit.noun), model_name(cx))
    });
    let plot = LinePlot {
        title: &title,
        x: Axis::new(&axis, Scaling::Linear),
        y: Axis::new("density", Scaling::Linear),
        series,
    };
    super::plots::write_figure(cx, "histograms", plot.render())
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

fn model_name(cx: &RunCtx) -> String {
    cx.input_name("model").unwrap_or_else(|| cx.name().to_string())
}
