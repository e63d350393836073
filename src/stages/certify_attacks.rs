//! The empirical side of a certificate: attacks run against the smoothed classifier on the
//! images it certified, each point found judged by the smoothed classifier itself. For
//! randomized smoothing the attacks differentiate a Monte-Carlo soft classifier (the mean
//! softmax over fixed noise draws) and PREDICT decides; for a Gaussian-averaged model the
//! attacks see the model and its argmax decides.

use super::certified::Row;
use super::certify::Method;
use crate::data::Dataset;
use crate::nn::{Net, Outputs};
use crate::rng::Rng;
use crate::robust::attack::Attack;
use crate::robust::oracle::{Criterion, Oracle};
use candle_core::{D, Device, Result, Tensor};

/// One attacked image: its certified radius, the l2 distance of the point the attack
/// returned (infinite when none), and the smoothed classifier's class there when it is not
/// the label (None: the attack did not change the smoothed prediction).
#[derive(Debug, Clone, Copy)]
pub struct Verdict {
    pub index: usize,
    pub label: usize,
    pub radius: f64,
    pub distance: f64,
    pub verified: Option<usize>,
}

#[allow(clippy::too_many_arguments)]
pub fn attack_certified(
    net: &Net,
    data: &Dataset,
    targets: &[&Row],
    attack: &Attack,
    method: &Method,
    draws: usize,
    predict_draws: usize,
    batch: usize,
    bounds: Option<(f64, f64)>,
    classes: usize,
    rng: &mut Rng,
    device: &Device,
) -> Result<Vec<Verdict>> {
    let shape = &data.shape;
    // One set of noise draws for every image and every attack step: the soft classifier
    // the attack differentiates is a fixed function.
    let noise = match method {
        Method::Smoothing(s) => {
            let zeros = vec![0.0f32; data.features()];
            Some(crate::certify::noise::noisy_copies(&zeros, shape, draws, s.sigma, rng, device)?)
        }
        Method::Average { .. } => None,
    };
    let model = |t: &Tensor| -> Result<Tensor> {
        let Some(z) = &noise else { return net.forward_input_grad(t) };
        let b = t.dim(0)?;
        let mut dims = vec![b * draws];
        dims.extend_from_slice(shape);
        let copies = t.unsqueeze(1)?.broadcast_add(&z.unsqueeze(0)?)?.reshape(dims)?;
        let p = Outputs::Softmax.apply(&net.forward_input_grad(&copies)?)?;
        let classes = p.dim(D::Minus1)?;
        p.reshape((b, draws, classes))?.mean(1)?.clamp(1e-12, 1.0)?.log()
    };
    let bounds = bounds.unwrap_or((f64::NEG_INFINITY, f64::INFINITY));
    let mut oracle = Oracle::new(&model, shape, bounds, Criterion { top: 1 }, device);
    if !(bounds.1 - bounds.0).is_finite() {
        oracle = oracle.with_scale(super::attacks::data_spread(data));
    }
    let mut classify = |x: &Tensor| -> Result<Vec<u32>> { net.forward(x)?.argmax(D::Minus1)?.to_vec1() };
    let mut verdicts = Vec::with_capacity(targets.len());
    for chunk in targets.chunks(batch.max(1)) {
        let xs: Vec<Vec<f64>> = chunk.iter().map(|r| data.row(r.index).iter().map(|v| *v as f64).collect()).collect();
        let ys: Vec<usize> = chunk.iter().map(|r| r.label).collect();
        let found = attack.run(&oracle, &xs, &ys, rng)?;
        for ((row, x), f) in chunk.iter().zip(&xs).zip(found) {
            let mut v = Verdict {
                index: row.index,
                label: row.label,
                radius: row.radius,
                distance: f64::INFINITY,
                verified: None,
            };
            if let Some(point) = f {
                // Judge exactly what is returned: the float32 input the model sees.
                let point: Vec<f32> = point.iter().map(|p| *p as f32).collect();
                v.distance = point.iter().zip(x).map(|(p, q)| (*p as f64 - q).powi(2)).sum::<f64>().sqrt();
                let class = match method {
                    Method::Smoothing(s) => {
                        s.predict(&mut classify, &point, shape, classes, predict_draws, rng, device)?
                    }
                    Method::Average { .. } => {
                        let mut dims = vec![1];
                        dims.extend_from_slice(shape);
                        classify(&Tensor::from_vec(point.clone(), dims, device)?)?.first().map(|c| *c as usize)
                    }
                };
                v.verified = class.filter(|c| *c != row.label);
            }
            verdicts.push(v);
        }
    }
    Ok(verdicts)
}
