//! Evaluating a classifier for `confidence` and `confident_predict`: each example's
//! uncertainty scores and whether its top-k prediction is right, in batches.

use crate::calib::scores::{
    entropy, gradient_norms, in_top, logits, mc_dropout, neg_log_pmax, neg_log_top_mass, ranking, softmax,
};
use crate::data::Dataset;
use crate::diag::Diag;
use crate::lang::RunCtx;
use crate::nn::Net;
use candle_core::Tensor;

/// Every example's uncertainty scores (by name), prediction and, for labelled data, top-k
/// correctness (per k; empty without labels).
pub(super) struct Evaluated {
    pub(super) scores: Vec<(String, Vec<f64>)>,
    pub(super) correct: Vec<Vec<bool>>,
    pub(super) predictions: Vec<usize>,
    /// Seconds spent per score family: softmax, gradient, dropout.
    pub(super) seconds: [f64; 3],
}

fn batch_tensor(data: &Dataset, idx: std::ops::Range<usize>, cx: &RunCtx) -> Result<Tensor, Diag> {
    let mut shape = vec![idx.len()];
    shape.extend(&data.shape);
    let rows: Vec<f32> = idx.flat_map(|i| data.row(i).to_vec()).collect();
    Tensor::from_vec(rows, shape, &cx.device).map_err(|e| cx.compute_error("batching", e))
}

#[allow(clippy::too_many_arguments)]
pub(super) fn evaluate(
    cx: &RunCtx,
    net: &Net,
    data: &Dataset,
    names: &[String],
    ks: &[usize],
    passes: usize,
    batch: usize,
    rng: &mut crate::rng::Rng,
) -> Result<Evaluated, Diag> {
    let candle = |e: candle_core::Error| cx.compute_error("the confidence scores", e);
    let labels = data.y.as_deref();
    let mut out = Evaluated {
        scores: measured_scores(names, ks).into_iter().map(|n| (n, Vec::new())).collect(),
        correct: vec![Vec::new(); ks.len()],
        predictions: Vec::new(),
        seconds: [0.0; 3],
    };
    let mut start = 0;
    while start < data.n {
        let end = (start + batch).min(data.n);
        let x = batch_tensor(data, start..end, cx)?;
        let clock = std::time::Instant::now();
        let probs: Vec<Vec<f64>> = logits(net, &x).map_err(candle)?.iter().map(|l| softmax(l)).collect();
        out.seconds[0] += clock.elapsed().as_secs_f64();
        let grads = if names.iter().any(|n| n == "grad_norm") {
            let clock = std::time::Instant::now();
            let g = gradient_norms(net, &x).map_err(candle)?;
            out.seconds[1] += clock.elapsed().as_secs_f64();
            g
        } else {
            vec![]
        };
        let spread = if names.iter().any(|n| n == "mc_dropout") {
            let clock = std::time::Instant::now();
            let (_, var) = mc_dropout(net, &x, passes, rng).map_err(candle)?;
            out.seconds[2] += clock.elapsed().as_secs_f64();
            var
        } else {
            vec![]
        };
        for (r, p) in probs.iter().enumerate() {
            if let Some(labels) = labels {
                for (j, &k) in ks.iter().enumerate() {
                    out.correct[j].push(in_top(p, labels[start + r] as usize, k));
                }
            }
            out.predictions.push(ranking(p)[0]);
            for (name, values) in out.scores.iter_mut() {
                let v = match name.as_str() {
                    "neg_log_pmax" => neg_log_pmax(p),
                    "entropy" => entropy(p),
                    "grad_norm" => grads[r],
                    "mc_dropout" => spread[r],
                    other => {
                        let k = other.strip_prefix("neg_log_top").and_then(|k| k.parse().ok()).unwrap_or(1);
                        neg_log_top_mass(p, k)
                    }
                };
                values.push(v);
            }
        }
        start = end;
    }
    Ok(out)
}

/// The stored name of score `name` for the top-k event: `neg_log_topk` is `neg_log_top<k>`,
/// and at k = 1 it is -log p_max itself, stored once as `neg_log_pmax`.
pub(super) fn score_name(name: &str, k: usize) -> String {
    match (name, k) {
        ("neg_log_topk", 1) => "neg_log_pmax".into(),
        ("neg_log_topk", k) => format!("neg_log_top{k}"),
        _ => name.into(),
    }
}

/// The (score, k) pairs measured, each once (`neg_log_top<k>` goes with its own k only).
pub(super) fn pairs(names: &[String], ks: &[usize]) -> Vec<(String, usize)> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for n in names {
        for &k in ks {
            let pair = (score_name(n, k), k);
            if !out.contains(&pair) {
                out.push(pair);
            }
        }
    }
    out
}

/// The distinct scores the pairs need.
fn measured_scores(names: &[String], ks: &[usize]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (s, _) in pairs(names, ks) {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}
