//! Gaussian averaging by regularized retraining (Campbell, Finlay & Oberman, "Deterministic
//! Gaussian averaged neural networks"): the Gaussian average u(x, t) = E[f(x + sqrt(t) Z)]
//! solves the heat equation u_t = 1/2 Laplacian(u) from u(., 0) = f, and one implicit Euler
//! step of size tau minimises E_x[ 1/2 |v - u|^2 + (tau/4) |grad_x v|_F^2 ]. With tau =
//! h sigma^2 (h = 1/steps) that is the paper's loss 1/2 |v - f|^2 + lambda (h sigma^2 / 2)
//! |grad_x v|_F^2 at lambda = 1/2. The Jacobian norm is estimated without double
//! backpropagation: E_w |J^T w|^2 = |J|_F^2 for w ~ N(0, I), and |J^T w| is the finite
//! difference of w . v along the unit direction of its own input gradient.

use super::net::Net;
use super::optim::{OptimSpec, Optimizer};
use super::penalty::{GradNorm, unit_direction};
use crate::data::Dataset;
use crate::rng::Rng;
use candle_core::{D, Device, Result, Tensor, Var};
use std::collections::HashMap;

/// What is averaged: the softmax of a classifier's logits (a [0, 1]-valued function, for
/// which the averaged gap certifies a radius), or a regression network's raw outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outputs {
    Softmax,
    Identity,
}

impl Outputs {
    pub fn apply(self, out: &Tensor) -> Result<Tensor> {
        match self {
            Outputs::Identity => Ok(out.clone()),
            Outputs::Softmax => {
                // Composed softmax: candle's fused one drops gradients (DESIGN §4).
                let z = out.broadcast_sub(&out.max_keepdim(D::Minus1)?.detach())?;
                let e = z.exp()?;
                e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct HeatConfig {
    pub sigma: f64,
    /// Weight of the Jacobian term; 1/2 makes each step the implicit heat step.
    pub lambda: f64,
    /// Implicit steps of size sigma^2 / steps.
    pub steps: usize,
    /// Passes over the data per step.
    pub epochs: usize,
    /// Random output projections w per example and step of the Jacobian estimate.
    pub projections: usize,
    /// Finite-difference step of the Jacobian estimate (input units).
    pub dt: f64,
    pub outputs: Outputs,
    pub optimizer: OptimSpec,
    pub batch: usize,
}

impl HeatConfig {
    /// The exact implicit heat step's weight.
    pub const LAMBDA: f64 = 0.5;
    /// The reference code's finite-difference step.
    pub const DT: f64 = 0.1;

    /// The Jacobian term's coefficient lambda h sigma^2 / 2.
    pub fn coefficient(&self) -> f64 {
        self.lambda * self.sigma * self.sigma / (2.0 * self.steps.max(1) as f64)
    }
}

/// Per optimizer step: the objective, its fidelity term 1/2 |v - u|^2 and the weighted
/// Jacobian term.
#[derive(Debug, Default, Clone)]
pub struct HeatCurves {
    pub objective: Vec<f64>,
    pub fidelity: Vec<f64>,
    pub penalty: Vec<f64>,
}

/// A copy of `model` with its own storage: its parameters no longer move with the original
/// (the previous heat step's solution, or a trainable copy to start from).
pub fn frozen(model: &Net, device: &Device) -> Result<Net> {
    let map: HashMap<String, Tensor> =
        model.named_tensors().into_iter().map(|(n, t)| t.copy().map(|c| (n, c.detach()))).collect::<Result<_>>()?;
    Net::from_tensors(&model.specs, &model.input, &map, device)
}

/// Train `model` through `cfg.steps` implicit heat steps from `f` on the inputs of `data`
/// (no labels are read): the first step's target is f, each later one's the previous
/// step's solution. `model` may start from f's weights or from scratch.
/// `on_step(step, objective)` reports progress.
pub fn heat_smooth(
    model: &Net,
    f: &Net,
    data: &Dataset,
    cfg: &HeatConfig,
    rng: &mut Rng,
    device: &Device,
    on_step: &mut dyn FnMut(usize, f64),
) -> Result<HeatCurves> {
    let mut curves = HeatCurves::default();
    for step in 0..cfg.steps.max(1) {
        let teacher = if step == 0 { frozen(f, device)? } else { frozen(model, device)? };
        let target = |x: &Tensor| -> Result<Tensor> { cfg.outputs.apply(&teacher.forward(x)?) };
        heat_step(model, &target, data, cfg, rng, device, &mut curves, on_step)?;
    }
    Ok(curves)
}

/// One implicit step toward `target` (the previous step's outputs, already transformed).
#[allow(clippy::too_many_arguments)]
pub fn heat_step(
    model: &Net,
    target: &dyn Fn(&Tensor) -> Result<Tensor>,
    data: &Dataset,
    cfg: &HeatConfig,
    rng: &mut Rng,
    device: &Device,
    curves: &mut HeatCurves,
    on_step: &mut dyn FnMut(usize, f64),
) -> Result<()> {
    let mut opt = Optimizer::new(cfg.optimizer.clone(), model.vars());
    let batch = cfg.batch.clamp(1, data.n.max(1));
    for _ in 0..cfg.epochs {
        let order = rng.permutation(data.n);
        for idx in order.chunks_exact(batch) {
            let x = inputs(data, idx, device)?;
            let u = target(&x)?.detach();
            let (objective, fidelity, penalty) = heat_objective(model, &x, &u, cfg, rng)?;
            let value = objective.to_scalar::<f32>()? as f64;
            if !value.is_finite() {
                candle_core::bail!("the averaging objective became {value} at step {}", curves.objective.len());
            }
            opt.step(&objective.backward()?)?;
            curves.objective.push(value);
            curves.fidelity.push(fidelity);
            curves.penalty.push(penalty);
            on_step(curves.objective.len(), value);
        }
    }
    Ok(())
}

/// The batch's objective 1/2 |v - u|^2 + lambda h sigma^2 / 2 |J|_F^2 (mean over examples),
/// with its two terms' values.
pub fn heat_objective(
    model: &Net,
    x: &Tensor,
    u: &Tensor,
    cfg: &HeatConfig,
    rng: &mut Rng,
) -> Result<(Tensor, f64, f64)> {
    // Every evaluation of the step sees the same dropout masks.
    let masks = rng.clone();
    let v = |at: &Tensor| -> Result<Tensor> { cfg.outputs.apply(&model.forward_train(at, &mut masks.clone())?) };
    let out = v(x)?;
    let fidelity = ((&out - u)?.sqr()?.sum(D::Minus1)? * 0.5)?.mean_all()?;
    let mut jacobian = out.zeros_like()?.sum(D::Minus1)?.mean_all()?;
    for _ in 0..cfg.projections.max(1) {
        let w = gaussian_like(&out, rng)?;
        let xv = Var::from_tensor(&x.detach())?;
        let s = (v(xv.as_tensor())? * &w)?.sum(D::Minus1)?;
        let grads = s.sum_all()?.backward()?;
        let g = grads.get(xv.as_tensor()).map_or_else(|| x.zeros_like(), |g| Ok(g.detach()))?;
        let d = unit_direction(&g, GradNorm::L2)?;
        let here = (&out * &w)?.sum(D::Minus1)?;
        let there = (v(&(x + (d * cfg.dt)?)?)? * &w)?.sum(D::Minus1)?;
        let slope = ((there - here)? / cfg.dt)?;
        jacobian = (jacobian + slope.sqr()?.mean_all()?)?;
    }
    let jacobian = (jacobian / cfg.projections.max(1) as f64)?;
    let penalty = (jacobian * cfg.coefficient())?;
    let objective = (&fidelity + &penalty)?;
    Ok((objective, fidelity.to_scalar::<f32>()? as f64, penalty.to_scalar::<f32>()? as f64))
}

/// Standard normal draws shaped like `t`, from the project's RNG.
fn gaussian_like(t: &Tensor, rng: &mut Rng) -> Result<Tensor> {
    let v: Vec<f32> = (0..t.elem_count()).map(|_| rng.normal() as f32).collect();
    Tensor::from_vec(v, t.shape(), t.device())?.to_dtype(t.dtype())
}

/// The inputs of rows `idx` of `data` as one batch `[idx.len(), ...shape]`.
pub fn inputs(data: &Dataset, idx: &[usize], device: &Device) -> Result<Tensor> {
    let mut x = Vec::with_capacity(idx.len() * data.features());
    for &i in idx {
        x.extend_from_slice(data.row(i));
    }
    let mut shape = vec![idx.len()];
    shape.extend_from_slice(&data.shape);
    Tensor::from_vec(x, shape, device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::spec::{Activation, LayerSpec};

    fn mlp(input: usize, hidden: usize, out: usize, seed: u64) -> Net {
        let specs = vec![
            LayerSpec::Linear { input: None, out: hidden },
            LayerSpec::Act(Activation::Tanh),
            LayerSpec::Linear { input: None, out: hidden },
            LayerSpec::Act(Activation::Tanh),
            LayerSpec::Linear { input: None, out },
        ];
        Net::init(&specs, &[input], &mut Rng::new(seed), &Device::Cpu).unwrap()
    }

    fn config(sigma: f64, outputs: Outputs) -> HeatConfig {
        HeatConfig {
            sigma,
            lambda: HeatConfig::LAMBDA,
            steps: 1,
            epochs: 1,
            projections: 1,
            dt: 1e-3,
            outputs,
            optimizer: OptimSpec::Adam {
                lr: 3e-3,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 0.0,
                decoupled: false,
            },
            batch: 256,
        }
    }

    /// |J|_F^2 per example by one backward pass per output.
    fn jacobian_norms(net: &Net, x: &Tensor, outputs: Outputs) -> Vec<f64> {
        let xv = Var::from_tensor(x).unwrap();
        let out = outputs.apply(&net.forward(xv.as_tensor()).unwrap()).unwrap();
        let mut total = vec![0.0; x.dim(0).unwrap()];
        for k in 0..out.dim(1).unwrap() {
            let g = out.narrow(1, k, 1).unwrap().sum_all().unwrap().backward().unwrap();
            let rows: Vec<Vec<f32>> = g.get(xv.as_tensor()).unwrap().to_vec2().unwrap();
            for (t, r) in total.iter_mut().zip(rows) {
                *t += r.iter().map(|v| (*v as f64).powi(2)).sum::<f64>();
            }
        }
        total
    }

    #[test]
    fn the_projected_finite_difference_estimates_the_jacobian_frobenius_norm() {
        let net = mlp(5, 16, 3, 4);
        let mut rng = Rng::new(5);
        let x =
            Tensor::from_vec((0..40).map(|_| rng.normal() as f32).collect::<Vec<_>>(), (8, 5), &Device::Cpu).unwrap();
        for outputs in [Outputs::Identity, Outputs::Softmax] {
            let exact: f64 = jacobian_norms(&net, &x, outputs).iter().sum::<f64>() / 8.0;
            // sigma^2 = 4 with lambda = 1/2 makes the coefficient 1; u = v zeroes the fidelity.
            let cfg = HeatConfig { projections: 4000, ..config(2.0, outputs) };
            let u = outputs.apply(&net.forward(&x).unwrap()).unwrap();
            let (_, fidelity, penalty) = heat_objective(&net, &x, &u, &cfg, &mut rng).unwrap();
            assert!(fidelity.abs() < 1e-9);
            assert!((penalty - exact).abs() < 0.05 * exact, "{outputs:?}: estimate {penalty} vs |J|_F^2 {exact}");
        }
    }

    #[test]
    fn one_heat_step_of_a_quadratic_approaches_its_gaussian_average() {
        // f(x) = x^2 / 4: its Gaussian average is f + sigma^2 / 4, and the implicit step
        // is exact for a quadratic. Inputs uniform on [-6, 6]; the boundary's influence
        // decays like exp(-distance / sigma), so compare on [-1, 1].
        let (sigma, a) = (1.0, 0.25);
        let dev = Device::Cpu;
        let mut rng = Rng::new(6);
        let n = 4096;
        let x: Vec<f32> = (0..n).map(|_| (rng.uniform() * 12.0 - 6.0) as f32).collect();
        let data = Dataset { x, n, shape: vec![1], y: None, classes: None, names: None };
        let net = mlp(1, 32, 1, 7);
        let cfg = HeatConfig { epochs: 150, projections: 2, dt: 1e-2, ..config(sigma, Outputs::Identity) };
        let target = |x: &Tensor| -> Result<Tensor> { x.sqr()? * a };
        let mut curves = HeatCurves::default();
        heat_step(&net, &target, &data, &cfg, &mut rng, &dev, &mut curves, &mut |_, _| {}).unwrap();
        let grid: Vec<f32> = (0..41).map(|k| -1.0 + k as f32 * 0.05).collect();
        let t = Tensor::from_vec(grid.clone(), (41, 1), &dev).unwrap();
        let v: Vec<f32> = net.forward(&t).unwrap().squeeze(1).unwrap().to_vec1().unwrap();
        let err: f64 = grid
            .iter()
            .zip(&v)
            .map(|(x, v)| (*v as f64 - (a * (*x as f64).powi(2) + a * sigma * sigma)).abs())
            .sum::<f64>()
            / 41.0;
        // The teacher itself is a * sigma^2 = 0.25 away.
        assert!(err < 0.05, "mean |v - (f + a sigma^2)| = {err} on [-1, 1]");
    }
}
