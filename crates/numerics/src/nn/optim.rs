//! Adam (L2 weight decay added to the gradient, as `torch.optim.Adam`), AdamW (decoupled
//! weight decay, Loshchilov & Hutter) and SGD with momentum (and Nesterov), over candle
//! `Var`s, with a learning-rate factor for schedules and a gradient scale for clipping.

use super::kernels::{AdamStep, adam_step};
use candle_core::{DType, Result, Tensor, Var, backprop::GradStore};

/// Adam runs in place with flowline's kernel for contiguous float32 parameters on the CPU.
fn in_place(theta: &Tensor, g: &Tensor) -> bool {
    super::kernels::own(theta) && g.dtype() == DType::F32 && theta.is_contiguous()
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum OptimSpec {
    /// `decoupled`: AdamW's weight decay, applied to the weights instead of the gradient.
    Adam {
        lr: f64,
        beta1: f64,
        beta2: f64,
        eps: f64,
        weight_decay: f64,
        decoupled: bool,
    },
    Sgd {
        lr: f64,
        momentum: f64,
        weight_decay: f64,
        nesterov: bool,
    },
}

pub struct Optimizer {
    spec: OptimSpec,
    vars: Vec<Var>,
    first: Vec<Option<Tensor>>,
    second: Vec<Option<Tensor>>,
    t: i32,
    lr_factor: f64,
    /// Use the in-place kernel where it applies (off only to test it against the ops).
    own_kernels: bool,
}

impl Optimizer {
    pub fn new(spec: OptimSpec, vars: Vec<Var>) -> Self {
        let n = vars.len();
        Optimizer { spec, vars, first: vec![None; n], second: vec![None; n], t: 0, lr_factor: 1.0, own_kernels: true }
    }

    /// Multiplies the base learning rate (schedules, warm-up).
    pub fn set_lr_factor(&mut self, f: f64) {
        self.lr_factor = f;
    }

    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.step_scaled(grads, 1.0)
    }

    /// One update with every gradient multiplied by `scale` (gradient-norm clipping).
    pub fn step_scaled(&mut self, grads: &GradStore, scale: f64) -> Result<()> {
        self.t += 1;
        for (i, var) in self.vars.iter().enumerate() {
            let Some(g) = grads.get(var.as_tensor()) else { continue };
            // Detached copies: optimizer state must not keep autograd history alive from
            // one step to the next (that history grows without bound).
            let theta = &var.as_tensor().detach();
            if let OptimSpec::Adam { lr, beta1, beta2, eps, weight_decay, decoupled } = self.spec
                && self.own_kernels
                && in_place(var.as_tensor(), g)
            {
                let m = self.first[i].get_or_insert(theta.zeros_like()?.detach());
                let v = self.second[i].get_or_insert(theta.zeros_like()?.detach());
                let lr = lr * self.lr_factor;
                let step = AdamStep { lr, beta1, beta2, eps, weight_decay, decoupled, scale, t: self.t };
                adam_step(var.as_tensor(), m, v, g, step)?;
                continue;
            }
            let g = &if scale != 1.0 { (g.detach() * scale)? } else { g.detach() };
            match self.spec {
                OptimSpec::Adam { lr, beta1, beta2, eps, weight_decay, decoupled } => {
                    let lr = lr * self.lr_factor;
                    let g = if weight_decay != 0.0 && !decoupled { (g + (theta * weight_decay)?)? } else { g.clone() };
                    let m = match &self.first[i] {
                        Some(m) => ((m * beta1)? + (&g * (1.0 - beta1))?)?,
                        None => (&g * (1.0 - beta1))?,
                    };
                    let v = match &self.second[i] {
                        Some(v) => ((v * beta2)? + (g.sqr()? * (1.0 - beta2))?)?,
                        None => (g.sqr()? * (1.0 - beta2))?,
                    };
                    let mhat = (&m / (1.0 - beta1.powi(self.t)))?;
                    let vhat = (&v / (1.0 - beta2.powi(self.t)))?;
                    let update = (mhat / (vhat.sqrt()? + eps)?)?;
                    let decayed = if decoupled && weight_decay != 0.0 {
                        (theta * (1.0 - lr * weight_decay))?
                    } else {
                        theta.clone()
                    };
                    var.set(&(decayed - (update * lr)?)?)?;
                    self.first[i] = Some(m.detach());
                    self.second[i] = Some(v.detach());
                }
                OptimSpec::Sgd { lr, momentum, weight_decay, nesterov } => {
                    let lr = lr * self.lr_factor;
                    let g = if weight_decay != 0.0 { (g + (theta * weight_decay)?)? } else { g.clone() };
                    let d = if momentum != 0.0 {
                        let buf = match &self.first[i] {
                            Some(b) => ((b * momentum)? + &g)?,
                            None => g.clone(),
                        };
                        let d = if nesterov { (&g + (&buf * momentum)?)? } else { buf.clone() };
                        self.first[i] = Some(buf.detach());
                        d
                    } else {
                        g
                    };
                    var.set(&(theta - (d * lr)?)?)?;
                }
            }
        }
        Ok(())
    }

    /// Moments by name (`first.{i}`, `second.{i}`), for checkpoints.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (i, (m, v)) in self.first.iter().zip(&self.second).enumerate() {
            if let Some(m) = m {
                out.push((format!("first.{i}"), m.clone()));
            }
            if let Some(v) = v {
                out.push((format!("second.{i}"), v.clone()));
            }
        }
        out
    }

    /// Continue from saved moments after `step` updates.
    pub fn load_state(&mut self, state: &[(String, Tensor)], step: usize) -> Result<()> {
        check_state(state, &self.vars).map_err(candle_core::Error::Msg)?;
        for (name, t) in state {
            let (kind, index) = name.split_once('.').unwrap_or(("", ""));
            let i: usize = index.parse().unwrap_or(0);
            let t = t.to_device(self.vars[i].device())?;
            if kind == "first" {
                self.first[i] = Some(t);
            } else {
                self.second[i] = Some(t);
            }
        }
        self.t = step as i32;
        Ok(())
    }
}

/// Saved moments (`first.{i}`, `second.{i}`) fit the parameters `vars`: known names,
/// indices in range, the same shapes and dtypes.
pub fn check_state(state: &[(String, Tensor)], vars: &[Var]) -> std::result::Result<(), String> {
    for (name, t) in state {
        let (kind, index) = name.split_once('.').unwrap_or(("", ""));
        let i: usize = index.parse().map_err(|_| format!("bad optimizer state `{name}`"))?;
        if !matches!(kind, "first" | "second") {
            return Err(format!("bad optimizer state `{name}`"));
        }
        match vars.get(i) {
            Some(v) if v.dims() == t.dims() && v.dtype() == t.dtype() => {}
            _ => return Err(format!("optimizer state `{name}` does not fit this model")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// The in-place Adam kernel against the composed ops, to the bit, over several steps
    /// with gradient scaling, L2 decay and decoupled decay.
    #[test]
    fn in_place_adam_matches_the_composed_update_exactly() {
        let dev = Device::Cpu;
        let mut rng = crate::rng::Rng::new(2);
        let start: Vec<f32> = (0..257).map(|_| rng.normal() as f32).collect();
        for (weight_decay, decoupled, scale) in [(0.0, false, 1.0), (0.01, false, 0.7), (0.05, true, 1.0)] {
            let spec = OptimSpec::Adam { lr: 3e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay, decoupled };
            let run = |own: bool| {
                let w = Var::new(start.as_slice(), &dev).unwrap();
                let mut opt = Optimizer::new(spec.clone(), vec![w.clone()]);
                opt.own_kernels = own;
                for k in 0..5 {
                    let loss =
                        (w.as_tensor().sqr().unwrap() * (1.0 + k as f64)).unwrap().sin().unwrap().sum_all().unwrap();
                    opt.step_scaled(&loss.backward().unwrap(), scale).unwrap();
                }
                w.as_tensor().to_vec1::<f32>().unwrap()
            };
            assert_eq!(run(true), run(false), "wd {weight_decay} decoupled {decoupled} scale {scale}");
        }
    }

    /// Adam's first step moves every coordinate by lr * sign(grad) (bias correction makes
    /// mhat/sqrt(vhat) = g/|g|); SGD with momentum accumulates v = mu v + g; AdamW shrinks
    /// the weights by lr * wd before its step.
    #[test]
    fn steps_match_the_update_rules() {
        let dev = Device::Cpu;
        let v = Var::new(&[1.0f32, -2.0], &dev).unwrap();
        let loss = (v.as_tensor() * 3.0).unwrap().sum_all().unwrap();
        let g = loss.backward().unwrap();
        let spec =
            OptimSpec::Adam { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-12, weight_decay: 0.0, decoupled: false };
        Optimizer::new(spec, vec![v.clone()]).step(&g).unwrap();
        let got: Vec<f32> = v.as_tensor().to_vec1().unwrap();
        assert!((got[0] - 0.9).abs() < 1e-6 && (got[1] + 2.1).abs() < 1e-6, "{got:?}");

        let w = Var::new(&[1.0f32], &dev).unwrap();
        let g = (w.as_tensor() * 3.0).unwrap().sum_all().unwrap().backward().unwrap();
        let spec =
            OptimSpec::Adam { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-12, weight_decay: 0.5, decoupled: true };
        Optimizer::new(spec, vec![w.clone()]).step(&g).unwrap();
        let got: Vec<f32> = w.as_tensor().to_vec1().unwrap();
        assert!((got[0] - (1.0 * (1.0 - 0.05) - 0.1)).abs() < 1e-6, "{got:?}");

        let w = Var::new(&[0.0f32], &dev).unwrap();
        let mut opt = Optimizer::new(
            OptimSpec::Sgd { lr: 1.0, momentum: 0.5, weight_decay: 0.0, nesterov: false },
            vec![w.clone()],
        );
        for _ in 0..2 {
            let g = w.as_tensor().sum_all().unwrap().backward().unwrap(); // grad 1
            opt.step(&g).unwrap();
        }
        // steps: 1, then 0.5*1 + 1 = 1.5
        let got: Vec<f32> = w.as_tensor().to_vec1().unwrap();
        assert!((got[0] + 2.5).abs() < 1e-6, "{got:?}");
        // the same with a gradient scale of 0.5 and a learning-rate factor of 2 is unchanged
        let w2 = Var::new(&[0.0f32], &dev).unwrap();
        let mut opt = Optimizer::new(
            OptimSpec::Sgd { lr: 1.0, momentum: 0.5, weight_decay: 0.0, nesterov: false },
            vec![w2.clone()],
        );
        opt.set_lr_factor(2.0);
        for _ in 0..2 {
            let g = w2.as_tensor().sum_all().unwrap().backward().unwrap();
            opt.step_scaled(&g, 0.5).unwrap();
        }
        let got2: Vec<f32> = w2.as_tensor().to_vec1().unwrap();
        assert_eq!(got, got2);
    }
}
