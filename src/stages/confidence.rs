//! Calibrated confidence (Finlay & Oberman): the family's built-ins, and `confidence`, which
//! fits equal-mass histograms of uncertainty scores on calibration data and measures on test
//! data how predictive each is of a correct top-k prediction (expected Bayes ratio, ECE,
//! Brier), against MC dropout. `confident_predict` (its own file) reads the histograms back.

use super::confidence_scores::{Evaluated, evaluate, pairs};
use super::confidence_stored::{CONFIDENCE, Entry, Stored};
use super::dataset::DATASET;
use super::layers::check_model;
use super::model::{MODEL, model_ref};
use crate::calib::histogram::Histogram;
use crate::calib::measures::score;
use crate::data::Dataset;
use crate::diag::{Code, Diag};
use crate::lang::{Args, Builtin, Dflt, Kind, Metrics, Output, Param, RunCtx, Stage, StaticCall, Ty, VKind};
use crate::nn::LayerSpec;
use crate::plots::{Axis, LinePlot, Scaling, Series};
use std::sync::Arc;

const SCORES: [&str; 5] = ["neg_log_pmax", "entropy", "neg_log_topk", "grad_norm", "mc_dropout"];

pub fn builtins() -> Vec<Builtin> {
    let score_ty = || Ty::choice(&SCORES);
    vec![
        Builtin::stage(
            "confidence",
            "Calibrated top-k confidence (Finlay & Oberman): equal-mass histograms of uncertainty scores fitted on `calibration`, scored on `test` by expected Bayes ratio, ECE and Brier; MC dropout as a score; reliability diagram and P(correct | score).",
            vec![
                Param::new("model", Ty::kind(&MODEL), Dflt::Required, "a trained classifier"),
                Param::new("calibration", Ty::kind(&DATASET), Dflt::Required, "labelled data the histograms are fitted on"),
                Param::new("test", Ty::kind(&DATASET), Dflt::Required, "labelled data they are scored on (not the calibration data)"),
                Param::new("scores", Ty::list(score_ty()), Dflt::Syms(&SCORES), "uncertainty scores: -log p_max, entropy, -log top-k mass, input-gradient norm, MC-dropout variance"),
                Param::new("bins", Ty::Int, Dflt::Int(100), "equal-mass bins").within(Some(1.0), Some(100000.0)),
                Param::new("k", Ty::list(Ty::Int), Dflt::Syms(&[]), "top-k events (default [1, 5])"),
                Param::new("passes", Ty::Int, Dflt::Int(20), "MC dropout's forward passes").within(Some(2.0), Some(10000.0)),
                Param::new("cap", Ty::Float, Dflt::Float(100.0), "largest Bayes ratio counted (a bin all right or all wrong has infinite odds)").within(Some(1.0), None),
                Param::new("batch", Ty::Int, Dflt::Int(500), "examples evaluated together").within(Some(1.0), None),
            ],
            Confidence,
        ),
        Builtin::stage(
            "confident_predict",
            "Each example's prediction with its calibrated probability of being correct, read from a `confidence` result's histogram (one forward pass).",
            vec![
                Param::new("model", Ty::kind(&MODEL), Dflt::Required, "the classifier the histogram was fitted for"),
                Param::new("histogram", Ty::kind(&CONFIDENCE), Dflt::Required, "a `confidence` result"),
                Param::new("data", Ty::kind(&DATASET), Dflt::Required, "inputs (labels, where present, are scored)"),
                Param::new("score", score_ty(), Dflt::Str("neg_log_pmax"), "which stored score to read"),
                Param::new("k", Ty::Int, Dflt::Int(1), "which top-k event").within(Some(1.0), None),
                Param::new("batch", Ty::Int, Dflt::Int(500), "examples evaluated together").within(Some(1.0), None),
            ],
            super::confident_predict::ConfidentPredict,
        ),
    ]
}

fn ks(args: &Args) -> Vec<usize> {
    match args.floats("k") {
        Some(v) if !v.is_empty() => v.into_iter().map(|k| k as usize).collect(),
        _ => vec![1, 5],
    }
}

fn scores(args: &Args) -> Vec<String> {
    match args.get("scores").map(|v| &v.kind) {
        Some(VKind::List(items)) => items
            .iter()
            .filter_map(|i| match &i.kind {
                VKind::Sym(s) | VKind::Str(s) => Some(s.to_string()),
                _ => None,
            })
            .collect(),
        _ => SCORES.iter().map(|s| s.to_string()).collect(),
    }
}

fn has_dropout(specs: &[LayerSpec]) -> bool {
    specs.iter().any(|s| match s {
        LayerSpec::Dropout { p } => *p > 0.0,
        LayerSpec::Residual { body, .. } => has_dropout(body),
        _ => false,
    })
}
struct Confidence;

impl Stage for Confidence {
    fn output(&self) -> &'static Kind {
        &CONFIDENCE
    }
    fn metrics(&self, args: &Args) -> Vec<String> {
        let ks = ks(args);
        let mut m: Vec<String> = ks.iter().map(|k| format!("accuracy_top{k}")).collect();
        for (s, k) in pairs(&scores(args), &ks) {
            m.extend(["ebr", "ece", "brier"].map(|what| format!("{s}_top{k}_{what}")));
        }
        if scores(args).iter().any(|s| s == "mc_dropout") {
            m.push("mc_dropout_forwards_per_image".into());
        }
        m
    }
    fn check(&self, cx: &StaticCall) -> Vec<Diag> {
        let mut d = check_model(cx, "model", "calibration").0;
        d.extend(check_model(cx, "model", "test").0);
        let classes = cx.meta("calibration").and_then(|m| m.classes);
        if let (Some(v), Some(c)) = (cx.args.get("k"), classes) {
            for k in ks(cx.args) {
                if k == 0 || k > c {
                    d.push(
                        Diag::new(Code::E2006, format!("top-{k} of {c} classes"))
                            .at(v.span, "k out of range")
                            .hint(format!("k runs from 1 to the number of classes ({c})")),
                    );
                }
            }
        }
        if let (Some(a), Some(b)) = (cx.args.stage("calibration"), cx.args.stage("test"))
            && a == b
        {
            d.push(
                Diag::new(Code::E2006, "the histograms would be scored on the data they are fitted on")
                    .at(cx.args.get("test").map_or(cx.span, |v| v.span), "the calibration data again")
                    .hint("split held-out data in two: `let halves = split(test_set, fraction: 0.5)`, then `calibration: halves.first, test: halves.second`"),
            );
        }
        d
    }
    fn run(&self, cx: &mut RunCtx) -> Result<Output, Diag> {
        let calibration = cx.input::<Dataset>("calibration")?;
        let test = cx.input::<Dataset>("test")?;
        let mut rng = cx.take_rng();
        let net = model_ref(cx, "model", &calibration.shape, &mut rng)?;
        let a = cx.args();
        let (names, ks) = (scores(a), ks(a));
        let bins = a.int("bins").unwrap_or(100) as usize;
        let passes = a.int("passes").unwrap_or(20) as usize;
        let cap = a.float("cap").unwrap_or(100.0);
        let batch = a.int("batch").unwrap_or(500) as usize;
        let classes = calibration.classes.unwrap_or(0);
        if let Some(k) = ks.iter().find(|k| **k > classes) {
            return Err(cx.error(Code::R1002, format!("top-{k} of a {classes}-class problem")));
        }
        if names.iter().any(|n| n == "mc_dropout") && !has_dropout(&net.specs) {
            return Err(cx
                .error(Code::R1002, "MC dropout needs dropout layers, and this model has none")
                .hint("leave `mc_dropout` out of `scores`, or train a model with `dropout(p)` layers"));
        }
        if calibration.y.is_none() || test.y.is_none() {
            return Err(cx.error(Code::R1002, "`confidence` needs labelled calibration and test data"));
        }
        let cal = evaluate(cx, &net, &calibration, &names, &ks, passes, batch, &mut rng)?;
        let tst = evaluate(cx, &net, &test, &names, &ks, passes, batch, &mut rng)?;
        let mut metrics = Metrics::new();
        for (j, k) in ks.iter().enumerate() {
            metrics.insert(format!("accuracy_top{k}"), tst.correct[j].iter().filter(|c| **c).count() as f64 / test.n.max(1) as f64);
        }
        let mut entries = Vec::new();
        let mut table = String::from("score,k,expected_bayes_ratio,ece,brier,bins\n");
        for (s, k) in pairs(&names, &ks) {
            let j = ks.iter().position(|x| *x == k).unwrap_or(0);
            let values = |e: &Evaluated| e.scores.iter().find(|(n, _)| *n == s).map(|(_, v)| v.clone()).unwrap_or_default();
            let hist = Histogram::fit(&values(&cal), &cal.correct[j], bins);
            let scored = score(&hist, &values(&tst), &tst.correct[j], cap);
            metrics.insert(format!("{s}_top{k}_ebr"), scored.expected_bayes_ratio);
            metrics.insert(format!("{s}_top{k}_ece"), scored.ece);
            metrics.insert(format!("{s}_top{k}_brier"), scored.brier);
            table.push_str(&format!(
                "{s},{k},{},{},{},{}\n",
                scored.expected_bayes_ratio,
                scored.ece,
                scored.brier,
                hist.counts.len()
            ));
            entries.push(Entry { score: s, k, histogram: hist });
        }
        if names.iter().any(|s| s == "mc_dropout") {
            metrics.insert("mc_dropout_forwards_per_image".into(), passes as f64);
        }
        let mut files = vec![cx.write_file("confidence.csv", table.as_bytes())?];
        // Costs per image on the test data: wall times go to a file, not the metrics.
        let per = |s: f64| s / test.n.max(1) as f64 * 1e6;
        let cost = format!(
            "method,forward_passes,backward_passes,microseconds_per_image\nsoftmax scores,1,0,{}\ninput-gradient norm,1,1,{}\nMC dropout,{passes},0,{}\n",
            per(tst.seconds[0]),
            per(tst.seconds[0] + tst.seconds[1]),
            per(tst.seconds[2])
        );
        files.push(cx.write_file("cost.csv", cost.as_bytes())?);
        files.extend(figures(cx, &entries, &tst, &ks)?);
        let stored = Stored { entries, passes };
        Ok(Output { artifact: Arc::new(stored), metrics, files })
    }
}

/// Top-1 (or the first k) reliability diagram: each bin's stored probability against the test
/// fraction correct in it; and P(correct | bin) against the score's calibration quantile, so
/// that scores of every scale share one axis.
fn figures(cx: &RunCtx, entries: &[Entry], tst: &Evaluated, ks: &[usize]) -> Result<Vec<String>, Diag> {
    let k = ks.first().copied().unwrap_or(1);
    let chosen: Vec<&Entry> = entries.iter().filter(|e| e.k == k).collect();
    let mut reliability: Vec<(String, Vec<f64>, Vec<f64>)> = Vec::new();
    let mut curves: Vec<(String, Vec<f64>, Vec<f64>)> = Vec::new();
    for e in &chosen {
        let values = tst.scores.iter().find(|(n, _)| *n == e.score).map(|(_, v)| v.as_slice()).unwrap_or(&[]);
        let h = &e.histogram;
        let bins = h.counts.len();
        let (mut n, mut hits) = (vec![0usize; bins], vec![0usize; bins]);
        for (v, c) in values.iter().zip(&tst.correct[0]) {
            let b = h.bin(*v);
            n[b] += 1;
            hits[b] += usize::from(*c);
        }
        let (mut xs, mut ys) = (Vec::new(), Vec::new());
        for b in (0..bins).filter(|&b| n[b] > 0) {
            xs.push(h.correct[b]);
            ys.push(hits[b] as f64 / n[b] as f64);
        }
        let mut order: Vec<usize> = (0..xs.len()).collect();
        order.sort_by(|&a, &b| xs[a].total_cmp(&xs[b]));
        reliability.push((e.score.clone(), order.iter().map(|&i| xs[i]).collect(), order.iter().map(|&i| ys[i]).collect()));
        let total: usize = h.counts.iter().sum();
        let mut seen = 0usize;
        let (mut qx, mut qy) = (Vec::new(), Vec::new());
        for b in 0..bins {
            qx.push((seen as f64 + h.counts[b] as f64 / 2.0) / total.max(1) as f64);
            qy.push(h.correct[b]);
            seen += h.counts[b];
        }
        curves.push((e.score.clone(), qx, qy));
    }
    let diagonal = [0.0, 1.0];
    let mut series = vec![Series::xy("perfect calibration", &diagonal, &diagonal)];
    series.extend(reliability.iter().map(|(n, x, y)| Series::xy(n, x, y)));
    let plot = LinePlot {
        title: &format!("Reliability of the stored histograms (top-{k}, test data)"),
        x: Axis::new("stored P(correct | bin), from calibration data", Scaling::Linear),
        y: Axis::new("fraction correct on test data", Scaling::Linear),
        series,
    };
    let mut files = super::plots::write_figure(cx, "reliability", plot.render())?;
    let plot = LinePlot {
        title: &format!("P(correct top-{k} | score), calibration data"),
        x: Axis::new("score quantile (0: most certain)", Scaling::Linear),
        y: Axis::new("P(correct | bin)", Scaling::Linear),
        series: curves.iter().map(|(n, x, y)| Series::xy(n, x, y)).collect(),
    };
    files.extend(super::plots::write_figure(cx, "p_correct", plot.render())?);
    Ok(files)
}
