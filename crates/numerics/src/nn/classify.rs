//! Training and evaluating a classifier on an in-memory dataset: minibatches with a seeded
//! shuffle per epoch, learning-rate schedules with linear warm-up, gradient-norm clipping,
//! augmentation (random crop, horizontal flip), periodic validation with early stopping
//! (the best model is kept), checkpoints, and resuming.

use super::loss::{Objective, accuracy};
use super::net::Net;
use super::optim::{OptimSpec, Optimizer};
use super::penalty::{Penalty, penalized_loss};
use crate::data::Dataset;
use crate::rng::Rng;
use candle_core::{Device, Result, Tensor};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Schedule {
    Constant,
    /// Multiply by `gamma` every `every` steps.
    Step {
        every: usize,
        gamma: f64,
    },
    /// Cosine from the base rate down to `min_factor` times it over the run.
    Cosine {
        min_factor: f64,
    },
}

impl Schedule {
    /// The factor on the base learning rate at `step` of `total`, after `warmup` linear
    /// warm-up steps.
    pub fn factor(&self, step: usize, total: usize, warmup: usize) -> f64 {
        if step < warmup {
            return (step + 1) as f64 / warmup as f64;
        }
        match *self {
            Schedule::Constant => 1.0,
            Schedule::Step { every, gamma } => gamma.powi((step / every.max(1)) as i32),
            Schedule::Cosine { min_factor } => {
                let span = total.saturating_sub(warmup).max(1) as f64;
                let t = (step - warmup) as f64 / span;
                min_factor + (1.0 - min_factor) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
            }
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Augment {
    /// Random translation by up to this many pixels (zero fill), as random crop with padding.
    pub crop_pad: usize,
    pub flip: bool,
}

#[derive(Debug, Clone)]
pub struct FitConfig {
    pub objective: Objective,
    pub optimizer: OptimSpec,
    pub batch: usize,
    /// Total optimizer steps.
    pub steps: usize,
    pub schedule: Schedule,
    pub warmup: usize,
    /// Clip the global gradient norm to this value.
    pub clip: Option<f64>,
    pub augment: Augment,
    /// Validate every this many steps (when validation data is given).
    pub eval_every: usize,
    /// Stop after this many validations without improvement.
    pub patience: Option<usize>,
    /// Call the checkpoint hook every this many steps.
    pub checkpoint_every: Option<usize>,
    /// Robust-training terms (input-gradient penalty, adversarial examples).
    pub penalties: Vec<Penalty>,
    /// The box inputs live in, for adversarial examples.
    pub bounds: (f64, f64),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Validation {
    pub step: usize,
    pub loss: f64,
    pub accuracy: f64,
}

pub struct FitResult {
    /// Minibatch loss and accuracy at every step taken.
    pub loss_curve: Vec<f64>,
    pub acc_curve: Vec<f64>,
    /// The input-gradient term at every step (empty without one).
    pub penalty_curve: Vec<f64>,
    pub validations: Vec<Validation>,
    /// Loss on the whole training set after training (of the kept model).
    pub final_loss: f64,
    pub best: Option<Validation>,
    pub stopped_early: bool,
    pub steps_taken: usize,
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
    /// A hook (checkpoint writing) failed.
    Hook(String),
}

impl From<candle_core::Error> for FitError {
    fn from(e: candle_core::Error) -> Self {
        FitError::Candle(e)
    }
}

/// Where training starts: step 0, or a resumed step with optimizer moments.
pub struct Start {
    pub step: usize,
    pub optimizer_state: Option<Vec<(String, Tensor)>>,
}

/// Copy one example, translated by (dy, dx) with zero fill and optionally mirrored.
fn augmented(src: &[f32], shape: &[usize], dy: isize, dx: isize, flip: bool, out: &mut Vec<f32>) {
    let (c, h, w) = (shape[0], shape[1] as isize, shape[2] as isize);
    for ch in 0..c {
        for r in 0..h {
            for col in 0..w {
                let sr = r - dy;
                let sc0 = col - dx;
                let sc = if flip { w - 1 - sc0 } else { sc0 };
                let v = if sr >= 0 && sr < h && sc >= 0 && sc < w {
                    src[ch * (h * w) as usize + (sr * w + sc) as usize]
                } else {
                    0.0
                };
                out.push(v);
            }
        }
    }
}

fn rows(
    data: &Dataset,
    idx: &[usize],
    device: &Device,
    aug: Option<(&Augment, &mut Rng)>,
) -> Result<(Tensor, Vec<u32>)> {
    let f = data.features();
    let mut x = Vec::with_capacity(idx.len() * f);
    let mut y = Vec::with_capacity(idx.len());
    let labels = data.y.as_deref().unwrap_or(&[]);
    let images = data.shape.len() == 3;
    match aug {
        Some((a, rng)) if images && (a.crop_pad > 0 || a.flip) => {
            for &i in idx {
                let span = 2 * a.crop_pad + 1;
                let dy = rng.below(span) as isize - a.crop_pad as isize;
                let dx = rng.below(span) as isize - a.crop_pad as isize;
                let flip = a.flip && rng.uniform() < 0.5;
                augmented(data.row(i), &data.shape, dy, dx, flip, &mut x);
                y.push(labels.get(i).copied().unwrap_or(0));
            }
        }
        _ => {
            for &i in idx {
                x.extend_from_slice(data.row(i));
                y.push(labels.get(i).copied().unwrap_or(0));
            }
        }
    }
    let mut shape = vec![idx.len()];
    shape.extend_from_slice(&data.shape);
    Ok((Tensor::from_vec(x, shape, device)?, y))
}

/// Minibatch training. `on_step(step, loss)` reports progress; `checkpoint(step, net,
/// optimizer state)` is called every `checkpoint_every` steps.
#[allow(clippy::too_many_arguments)]
pub fn fit_classifier(
    model: &Net,
    data: &Dataset,
    valid: Option<&Dataset>,
    cfg: &FitConfig,
    start: Start,
    rng: &mut Rng,
    device: &Device,
    mut on_step: impl FnMut(usize, f64),
    mut checkpoint: impl FnMut(usize, &Net, &[(String, Tensor)]) -> std::result::Result<(), String>,
) -> std::result::Result<FitResult, FitError> {
    let mut opt = Optimizer::new(cfg.optimizer.clone(), model.vars());
    if let Some(state) = &start.optimizer_state {
        opt.load_state(state, start.step)?;
    }
    let batch = cfg.batch.clamp(1, data.n.max(1));
    let mut order: Vec<usize> = Vec::new();
    let mut cursor = usize::MAX;
    let mut curve = Vec::new();
    let mut acc_curve = Vec::new();
    let mut penalty_curve = Vec::new();
    let mut validations = Vec::new();
    let mut best: Option<(Validation, Vec<(String, Tensor)>)> = None;
    let mut since_best = 0;
    let mut stopped_early = false;
    let mut last_finite = None;
    let mut step = start.step;
    // Resumed runs replay the shuffles they skipped, so the data order matches an
    // uninterrupted run.
    let per_epoch = data.n / batch;
    for _ in 0..start.step / per_epoch.max(1) {
        let _ = rng.permutation(data.n);
    }
    while step < cfg.steps {
        if cursor == usize::MAX || cursor + batch > order.len() {
            order = rng.permutation(data.n);
            cursor = if cursor == usize::MAX { (start.step % per_epoch.max(1)) * batch } else { 0 };
        }
        let idx = &order[cursor..cursor + batch];
        cursor += batch;
        let (x, y) = rows(data, idx, device, Some((&cfg.augment, rng)))?;
        let step_loss = penalized_loss(model, &x, &y, cfg.objective, &cfg.penalties, cfg.bounds, rng)?;
        let penalty = step_loss.penalty;
        let (loss, out, y) = (step_loss.loss, step_loss.out, step_loss.labels);
        let value: f32 = loss.to_scalar()?;
        if !value.is_finite() {
            return Err(FitError::NonFinite { step, last_finite, what: "loss" });
        }
        let grads = loss.backward()?;
        // The norm only where clipping needs it; otherwise a scan for NaN and infinities.
        let mut norm2 = 0.0f64;
        let mut finite = true;
        for v in model.vars() {
            if let Some(g) = grads.get(v.as_tensor()) {
                if cfg.clip.is_some() {
                    norm2 += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
                } else {
                    finite &= super::kernels::all_finite(g)?;
                }
            }
        }
        if !norm2.is_finite() || !finite {
            return Err(FitError::NonFinite { step, last_finite: Some(value as f64), what: "gradient" });
        }
        let scale = match cfg.clip {
            Some(c) if norm2.sqrt() > c => c / norm2.sqrt(),
            _ => 1.0,
        };
        opt.set_lr_factor(cfg.schedule.factor(step, cfg.steps, cfg.warmup));
        opt.step_scaled(&grads, scale)?;
        last_finite = Some(value as f64);
        curve.push(value as f64);
        acc_curve.push(accuracy(&out, &y)?);
        if cfg.penalties.iter().any(|p| matches!(p, Penalty::InputGradient(_))) {
            penalty_curve.push(penalty);
        }
        on_step(step, value as f64);
        step += 1;
        if let Some(every) = cfg.checkpoint_every
            && (step.is_multiple_of(every) || step == cfg.steps)
        {
            checkpoint(step, model, &opt.state()).map_err(FitError::Hook)?;
        }
        if let Some(v) = valid
            && (step.is_multiple_of(cfg.eval_every.max(1)) || step == cfg.steps)
        {
            let (acc, l) = evaluate_classifier(model, v, cfg.objective, device)?;
            let val = Validation { step, loss: l, accuracy: acc };
            validations.push(val);
            let better = best.as_ref().is_none_or(|(b, _)| acc > b.accuracy || (acc == b.accuracy && l < b.loss));
            if better {
                let copy = model
                    .named_tensors()
                    .into_iter()
                    .map(|(n, t)| t.copy().map(|t| (n, t)))
                    .collect::<Result<Vec<_>>>()?;
                best = Some((val, copy));
                since_best = 0;
            } else {
                since_best += 1;
                if cfg.patience.is_some_and(|p| since_best >= p) {
                    stopped_early = true;
                    break;
                }
            }
        }
    }
    let best_val = best.as_ref().map(|(v, _)| *v);
    if let Some((_, tensors)) = best {
        model.restore(&tensors)?;
    }
    let (_, final_loss) = evaluate_classifier(model, data, cfg.objective, device)?;
    Ok(FitResult {
        loss_curve: curve,
        acc_curve,
        penalty_curve,
        validations,
        final_loss,
        best: best_val,
        stopped_early,
        steps_taken: step - start.step,
    })
}

/// (accuracy, mean loss) over the whole dataset, in chunks.
pub fn evaluate_classifier(model: &Net, data: &Dataset, objective: Objective, device: &Device) -> Result<(f64, f64)> {
    const CHUNK: usize = 1000;
    let mut hits = 0.0;
    let mut loss = 0.0;
    let mut start = 0;
    while start < data.n {
        let end = (start + CHUNK).min(data.n);
        let idx: Vec<usize> = (start..end).collect();
        let (x, y) = rows(data, &idx, device, None)?;
        let out = model.forward(&x)?;
        let k = (end - start) as f64;
        hits += accuracy(&out, &y)? * k;
        loss += objective.mean(&out, &y)?.to_scalar::<f32>()? as f64 * k;
        start = end;
    }
    let n = data.n.max(1) as f64;
    Ok((hits / n, loss / n))
}

/// Predicted class of each example of `x` (row-major, each shaped like the model's input),
/// in chunks so that memory stays bounded.
pub fn predict_classes(model: &Net, x: &[f32], device: &Device) -> Result<Vec<u32>> {
    const CHUNK: usize = 1000;
    let per = model.input_features().max(1);
    let mut out = Vec::with_capacity(x.len() / per);
    for chunk in x.chunks(CHUNK * per) {
        let mut shape = vec![chunk.len() / per];
        shape.extend_from_slice(&model.input);
        let t = Tensor::from_vec(chunk.to_vec(), shape, device)?;
        out.extend(model.forward(&t)?.argmax(candle_core::D::Minus1)?.to_vec1::<u32>()?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_follow_their_formulas() {
        let s = Schedule::Step { every: 10, gamma: 0.5 };
        assert_eq!(s.factor(9, 100, 0), 1.0);
        assert_eq!(s.factor(10, 100, 0), 0.5);
        assert_eq!(s.factor(25, 100, 0), 0.25);
        let c = Schedule::Cosine { min_factor: 0.0 };
        assert!((c.factor(0, 100, 0) - 1.0).abs() < 1e-12);
        assert!((c.factor(50, 100, 0) - 0.5).abs() < 1e-12);
        assert!((c.factor(100, 100, 0)).abs() < 1e-12);
        assert_eq!(Schedule::Constant.factor(0, 10, 4), 0.25);
        assert_eq!(Schedule::Constant.factor(3, 10, 4), 1.0);
    }

    #[test]
    fn augmentation_translates_and_mirrors() {
        let src: Vec<f32> = (0..9).map(|v| v as f32).collect();
        let mut out = Vec::new();
        augmented(&src, &[1, 3, 3], 0, 1, false, &mut out);
        assert_eq!(out, vec![0.0, 0.0, 1.0, 0.0, 3.0, 4.0, 0.0, 6.0, 7.0]);
        out.clear();
        augmented(&src, &[1, 3, 3], 0, 0, true, &mut out);
        assert_eq!(out, vec![2.0, 1.0, 0.0, 5.0, 4.0, 3.0, 8.0, 7.0, 6.0]);
    }
}
