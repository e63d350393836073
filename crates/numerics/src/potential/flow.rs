//! The flow recovered from two potentials: phi on the data side (t = 0), psi on the normal
//! side (t = 1), entropic parameter eps.
//!
//! phi_t = eps log H_{t eps}[e^{phi/eps}], psi_t = eps log H_{(1-t) eps}[e^{psi/eps}];
//! rho_t is proportional to exp((phi_t + psi_t)/eps) and v_t = (grad psi_t - grad phi_t)/2
//! carries it (the continuity equation holds with this sign), from the data at t = 0 to the
//! standard normal at t = 1. The heat operator goes through one fixed rule (`rule`), so
//! the field is one deterministic map for the solver and a sample decodes to where it came
//! from.

use super::heat::{HeatRule, Smoothed};
use super::net::{Potential, Want};
use crate::flow::{base_draws, standard_normal_log_density};
use crate::nn::LayerSpec;
use crate::ode::{Options, SolveError, Stats, solve};
use crate::rng::Rng;
use candle_core::{DType, Device, Result, Tensor, Var};
use std::collections::HashMap;

pub struct PotentialFlow {
    pub phi: Potential,
    pub psi: Potential,
    pub eps: f64,
    /// The heat operator's rule for the recovered flow.
    pub rule: HeatRule,
    /// The rule is a deterministic quadrature rebuilt with the flow, not saved with its
    /// weights (Monte-Carlo draws are saved, so that the flow stays the same map).
    pub fixed_rule: bool,
    dim: usize,
}

/// The velocity at a time, with its divergence when asked.
pub struct Velocity {
    pub v: Tensor,
    pub div: Option<Tensor>,
}

/// Where the rule's nodes are saved among the weights.
const NODES: &str = "heat.nodes";
const LOG_WEIGHTS: &str = "heat.log_weights";

impl PotentialFlow {
    /// Fresh potentials of the given layers for points of dimension `dim`, and a rule of
    /// `draws` antithetic Monte-Carlo draws.
    pub fn new(
        phi: &[LayerSpec],
        psi: &[LayerSpec],
        dim: usize,
        eps: f64,
        draws: usize,
        rng: &mut Rng,
        dev: &Device,
    ) -> std::result::Result<Self, String> {
        if !(eps > 0.0 && eps.is_finite()) {
            return Err(format!("eps must be positive, got {eps}"));
        }
        let phi = Potential::new(phi, dim, rng, dev).map_err(|e| format!("phi: {e}"))?;
        let psi = Potential::new(psi, dim, rng, dev).map_err(|e| format!("psi: {e}"))?;
        let rule = HeatRule::monte_carlo(draws, dim, true, rng);
        Ok(PotentialFlow { phi, psi, eps, rule, fixed_rule: false, dim })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn vars(&self) -> Vec<Var> {
        let mut v = self.phi.vars();
        v.extend(self.psi.vars());
        v
    }

    pub fn parameter_count(&self) -> usize {
        self.phi.parameter_count() + self.psi.parameter_count()
    }

    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out: Vec<(String, Tensor)> = Vec::new();
        for (prefix, p) in [("phi.", &self.phi), ("psi.", &self.psi)] {
            out.extend(p.named_tensors().into_iter().map(|(n, t)| (format!("{prefix}{n}"), t)));
        }
        let k = self.rule.len();
        let dev = Device::Cpu;
        if self.fixed_rule {
            return out;
        }
        if let (Ok(nodes), Ok(lw)) = (
            Tensor::from_vec(self.rule.nodes.clone(), (k, self.dim), &dev),
            Tensor::from_vec(self.rule.log_weights.clone(), k, &dev),
        ) {
            out.push((NODES.into(), nodes));
            out.push((LOG_WEIGHTS.into(), lw));
        }
        out
    }

    /// Restores the potentials and the rule saved by `named_tensors` (a fixed rule stays).
    pub fn set_tensors(&mut self, tensors: &HashMap<String, Tensor>) -> std::result::Result<(), String> {
        self.phi.restore(tensors, "phi.")?;
        self.psi.restore(tensors, "psi.")?;
        if self.fixed_rule {
            return Ok(());
        }
        let read = |name: &str| -> std::result::Result<Vec<f32>, String> {
            let t = tensors.get(name).ok_or(format!("no tensor `{name}`"))?;
            t.to_dtype(DType::F32).and_then(|t| t.flatten_all()?.to_vec1::<f32>()).map_err(|e| e.to_string())
        };
        let (nodes, log_weights) = (read(NODES)?, read(LOG_WEIGHTS)?);
        if nodes.len() != log_weights.len() * self.dim || log_weights.is_empty() {
            return Err(format!("`{NODES}` does not hold {} points of dimension {}", log_weights.len(), self.dim));
        }
        self.rule = HeatRule { nodes, log_weights, dim: self.dim };
        Ok(())
    }

    /// phi_t and psi_t at x with what `want` asks.
    pub fn potentials_at(&self, t: f64, x: &Tensor, want: Want) -> Result<(Smoothed, Smoothed)> {
        let t = t.clamp(0.0, 1.0);
        let phi = self.rule.smooth(&self.phi, x, t * self.eps, self.eps, want)?;
        let psi = self.rule.smooth(&self.psi, x, (1.0 - t) * self.eps, self.eps, want)?;
        Ok((phi, psi))
    }

    /// v_t(x) = (grad psi_t - grad phi_t) / 2, and with `divergence` its divergence
    /// (Laplacian psi_t - Laplacian phi_t) / 2.
    pub fn velocity(&self, t: f64, x: &Tensor, divergence: bool) -> Result<Velocity> {
        let want = if divergence { Want::Laplacian } else { Want::Gradient };
        let (phi, psi) = self.potentials_at(t, x, want)?;
        let missing = || candle_core::Error::Msg("the smoothing returned no gradient".into());
        let v = ((psi.grad.ok_or_else(missing)? - phi.grad.ok_or_else(missing)?)? * 0.5)?;
        let div = match (divergence, psi.laplacian, phi.laplacian) {
            (true, Some(a), Some(b)) => Some(((a - b)? * 0.5)?),
            (true, _, _) => return Err(candle_core::Error::Msg("the smoothing returned no Laplacian".into())),
            _ => None,
        };
        Ok(Velocity { v, div })
    }

    /// log rho_t(x) up to a constant that does not depend on t: (phi_t + psi_t) / eps.
    pub fn log_density_at(&self, t: f64, x: &Tensor) -> Result<Tensor> {
        let (phi, psi) = self.potentials_at(t, x, Want::Value)?;
        (phi.value + psi.value)? / self.eps
    }

    /// log p(x) by the ODE: x' = v_t(x) from 0 to 1 with delta' = -div v, so that
    /// log p(x) = log N(x(1)) - delta(1); and where the points went. Outside the graph.
    pub fn log_density(&self, x: &Tensor, opts: &Options) -> std::result::Result<(Tensor, Tensor, Stats), SolveError> {
        let fail = |e| SolveError::tensor(e, 0.0);
        let n = x.dim(0).map_err(fail)?;
        let field = |t: f64, y: &[Tensor]| -> Result<Vec<Tensor>> {
            let v = self.velocity(t, &y[0], true)?;
            let div = v.div.ok_or_else(|| candle_core::Error::Msg("no divergence".into()))?;
            Ok(vec![v.v, div.neg()?.unsqueeze(1)?])
        };
        let zero = Tensor::zeros((n, 1), x.dtype(), x.device()).map_err(fail)?;
        let sol = solve(&field, &[x.detach(), zero], &[0.0, 1.0], opts)?;
        let end = &sol.ys[1];
        let log_p = standard_normal_log_density(&end[0])
            .and_then(|l| l - end[1].squeeze(1)?)
            .map_err(|e| SolveError::tensor(e, 1.0))?;
        Ok((log_p, end[0].clone(), sol.stats))
    }

    /// Points of the data side from points z [n, d] of the normal side: the velocity
    /// integrated from t = 1 back to t = 0.
    pub fn decode(&self, z: &Tensor, opts: &Options) -> std::result::Result<(Tensor, Stats), SolveError> {
        self.transport(z, 1.0, 0.0, opts)
    }

    /// Points carried by the flow from time `from` to time `to`.
    pub fn transport(
        &self,
        x: &Tensor,
        from: f64,
        to: f64,
        opts: &Options,
    ) -> std::result::Result<(Tensor, Stats), SolveError> {
        if from == to {
            return Ok((x.clone(), Stats::default()));
        }
        let field = |t: f64, y: &[Tensor]| -> Result<Vec<Tensor>> { Ok(vec![self.velocity(t, &y[0], false)?.v]) };
        let sol = solve(&field, &[x.detach()], &[from, to], opts)?;
        Ok((sol.ys[1][0].clone(), sol.stats))
    }

    /// The closed form of the data density up to its constant: (phi + eps log H_eps[e^{psi/eps}]) / eps.
    pub fn closed_form_unnormalised(&self, x: &Tensor) -> Result<Tensor> {
        self.log_density_at(0.0, x)
    }

    /// log Z of the closed form, Z = integral of exp(phi(x)/eps) H_eps[e^{psi/eps}](x) dx =
    /// integral of exp(psi(y)/eps) H_eps[e^{phi/eps}](y) dy, importance-sampled over `count`
    /// normal draws: the mean of exp((psi + eps log H_eps e^{phi/eps})/eps - log p_N). Where
    /// the Schroedinger system holds the weights are constant, so the estimate is exact.
    /// Returns log Z and the standard error of Z / Z (from the weights' spread).
    pub fn log_normaliser(&self, count: usize, rng: &mut Rng, dtype: DType, dev: &Device) -> Result<(f64, f64)> {
        let count = count.max(2);
        let y: Vec<f32> = (0..count * self.dim).map(|_| rng.normal() as f32).collect();
        let y = Tensor::from_vec(y, (count, self.dim), dev)?.to_dtype(dtype)?;
        let log_w = ((self.log_density_at(1.0, &y)?) - standard_normal_log_density(&y)?)?;
        let log_w: Vec<f64> = log_w.to_dtype(DType::F64)?.to_vec1()?;
        let max = log_w.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let w: Vec<f64> = log_w.iter().map(|l| (l - max).exp()).collect();
        let mean = w.iter().sum::<f64>() / count as f64;
        let var = w.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (count - 1) as f64;
        Ok((mean.ln() + max, (var / count as f64).sqrt() / mean))
    }

    /// log p(x) by the closed form, normalised by `log_z` (from `log_normaliser`).
    pub fn closed_form_log_density(&self, x: &Tensor, log_z: f64) -> Result<Tensor> {
        self.closed_form_unnormalised(x)? - log_z
    }

    /// n samples from the standard normal decoded to the data side.
    pub fn sample(
        &self,
        n: usize,
        opts: &Options,
        rng: &mut Rng,
        dtype: DType,
        dev: &Device,
    ) -> std::result::Result<(Tensor, Stats), SolveError> {
        self.decode(&base_draws(n, self.dim, rng, dtype, dev)?, opts)
    }
}
