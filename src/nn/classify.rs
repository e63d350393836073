//! Training and evaluating a classifier on an in-memory dataset.

use super::loss::{accuracy, cross_entropy, mse_onehot};
use super::net::Net;
use super::optim::{OptimSpec, Optimizer};
use crate::data::Dataset;
use crate::rng::Rng;
use candle_core::{Device, Result, Tensor};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Objective {
    CrossEntropy,
    Mse,
}

#[derive(Debug, Clone)]
pub struct FitConfig {
    pub objective: Objective,
    pub optimizer: OptimSpec,
    pub batch: usize,
    /// Total optimizer steps.
    pub steps: usize,
}

pub struct FitResult {
    /// Minibatch loss at every step.
    pub loss_curve: Vec<f64>,
    /// Loss on the whole training set after training.
    pub final_loss: f64,
}

#[derive(Debug)]
pub enum FitError {
    Candle(candle_core::Error),
    /// The loss or a gradient stopped being finite.
    NonFinite {
        step: usize,
        last_finite: Option<f64>,
        what: &'static str,
    },
}

impl From<candle_core::Error> for FitError {
    fn from(e: candle_core::Error) -> Self {
        FitError::Candle(e)
    }
}

fn objective_loss(objective: Objective, out: &Tensor, labels: &[u32]) -> Result<Tensor> {
    match objective {
        Objective::CrossEntropy => cross_entropy(out, labels),
        Objective::Mse => mse_onehot(out, labels),
    }
}

fn rows(data: &Dataset, idx: &[usize], device: &Device) -> Result<(Tensor, Vec<u32>)> {
    let f = data.features();
    let mut x = Vec::with_capacity(idx.len() * f);
    let mut y = Vec::with_capacity(idx.len());
    let labels = data.y.as_deref().unwrap_or(&[]);
    for &i in idx {
        x.extend_from_slice(data.row(i));
        y.push(labels.get(i).copied().unwrap_or(0));
    }
    let mut shape = vec![idx.len()];
    shape.extend_from_slice(&data.shape);
    Ok((Tensor::from_vec(x, shape, device)?, y))
}

/// Minibatch training with a fresh shuffle (from `rng`) every epoch.
pub fn fit_classifier(
    model: &Net,
    data: &Dataset,
    cfg: &FitConfig,
    rng: &mut Rng,
    device: &Device,
    mut on_step: impl FnMut(usize, f64),
) -> std::result::Result<FitResult, FitError> {
    let mut opt = Optimizer::new(cfg.optimizer.clone(), model.vars());
    let batch = cfg.batch.clamp(1, data.n.max(1));
    let mut order: Vec<usize> = Vec::new();
    let mut cursor = 0;
    let mut curve = Vec::with_capacity(cfg.steps);
    let mut last_finite = None;
    for step in 0..cfg.steps {
        if cursor + batch > order.len() {
            order = rng.permutation(data.n);
            cursor = 0;
        }
        let idx = &order[cursor..cursor + batch];
        cursor += batch;
        let (x, y) = rows(data, idx, device)?;
        let loss = objective_loss(cfg.objective, &model.forward_train(&x, rng)?, &y)?;
        let value: f32 = loss.to_scalar()?;
        if !value.is_finite() {
            return Err(FitError::NonFinite { step, last_finite, what: "loss" });
        }
        let grads = loss.backward()?;
        for v in model.vars() {
            if let Some(g) = grads.get(v.as_tensor()) {
                let s: f32 = g.sqr()?.sum_all()?.to_scalar()?;
                if !s.is_finite() {
                    return Err(FitError::NonFinite { step, last_finite: Some(value as f64), what: "gradient" });
                }
            }
        }
        opt.step(&grads)?;
        last_finite = Some(value as f64);
        curve.push(value as f64);
        on_step(step, value as f64);
    }
    let (_, final_loss) = evaluate_classifier(model, data, cfg.objective, device)?;
    Ok(FitResult { loss_curve: curve, final_loss })
}

/// (accuracy, mean loss) over the whole dataset, in chunks.
pub fn evaluate_classifier(model: &Net, data: &Dataset, objective: Objective, device: &Device) -> Result<(f64, f64)> {
    const CHUNK: usize = 4096;
    let mut hits = 0.0;
    let mut loss = 0.0;
    let mut start = 0;
    while start < data.n {
        let end = (start + CHUNK).min(data.n);
        let idx: Vec<usize> = (start..end).collect();
        let (x, y) = rows(data, &idx, device)?;
        let out = model.forward(&x)?;
        let k = (end - start) as f64;
        hits += accuracy(&out, &y)? * k;
        loss += objective_loss(objective, &out, &y)?.to_scalar::<f32>()? as f64 * k;
        start = end;
    }
    let n = data.n.max(1) as f64;
    Ok((hits / n, loss / n))
}

/// Predicted class of each example of `x` (row-major, each shaped like the model's input).
pub fn predict_classes(model: &Net, x: &[f32], device: &Device) -> Result<Vec<u32>> {
    let n = x.len() / model.input_features().max(1);
    let mut shape = vec![n];
    shape.extend_from_slice(&model.input);
    let t = Tensor::from_vec(x.to_vec(), shape, device)?;
    model.forward(&t)?.argmax(candle_core::D::Minus1)?.to_vec1()
}
