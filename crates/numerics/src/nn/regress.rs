//! Fitting a regression network to a target function by minibatch mean squared error: the
//! networks whose Gaussian averages `heat_smoothing` computes in regression.

use super::net::Net;
use super::optim::{OptimSpec, Optimizer};
use crate::data::Dataset;
use crate::rng::Rng;
use candle_core::{Device, Result, Tensor};

/// `steps` Adam/SGD steps on minibatches of `data`'s inputs, the targets from `target`;
/// the loss at every step.
#[allow(clippy::too_many_arguments)]
pub fn fit_function(
    model: &Net,
    data: &Dataset,
    target: &dyn Fn(&Tensor) -> Result<Tensor>,
    optimizer: &OptimSpec,
    batch: usize,
    steps: usize,
    rng: &mut Rng,
    device: &Device,
) -> Result<Vec<f64>> {
    let mut opt = Optimizer::new(optimizer.clone(), model.vars());
    let mut batches = crate::rng::Batches::new(data.n, batch);
    let mut losses = Vec::with_capacity(steps);
    while losses.len() < steps {
        let idx = batches.next(rng);
        let x = super::heat::inputs(data, &idx, device)?;
        let y = target(&x)?.detach();
        let out = model.forward_train(&x, rng)?;
        let loss = (out - y)?.sqr()?.mean_all()?;
        let value = loss.to_scalar::<f32>()? as f64;
        if !value.is_finite() {
            candle_core::bail!("the regression loss became {value} at step {}", losses.len());
        }
        opt.step(&loss.backward()?)?;
        losses.push(value);
    }
    Ok(losses)
}
