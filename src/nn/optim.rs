//! Adam (L2 weight decay added to the gradient, as `torch.optim.Adam`) and SGD with
//! momentum (and Nesterov), written over candle `Var`s.

use candle_core::{Result, Tensor, Var, backprop::GradStore};

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum OptimSpec {
    Adam { lr: f64, beta1: f64, beta2: f64, eps: f64, weight_decay: f64 },
    Sgd { lr: f64, momentum: f64, weight_decay: f64, nesterov: bool },
}

pub struct Optimizer {
    spec: OptimSpec,
    vars: Vec<Var>,
    first: Vec<Option<Tensor>>,
    second: Vec<Option<Tensor>>,
    t: i32,
}

impl Optimizer {
    pub fn new(spec: OptimSpec, vars: Vec<Var>) -> Self {
        let n = vars.len();
        Optimizer { spec, vars, first: vec![None; n], second: vec![None; n], t: 0 }
    }

    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.t += 1;
        for (i, var) in self.vars.iter().enumerate() {
            let Some(g) = grads.get(var.as_tensor()) else {
                continue;
            };
            let theta = var.as_tensor();
            match self.spec {
                OptimSpec::Adam { lr, beta1, beta2, eps, weight_decay } => {
                    let g = if weight_decay != 0.0 { (g + (theta * weight_decay)?)? } else { g.clone() };
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
                    var.set(&(theta - (update * lr)?)?)?;
                    self.first[i] = Some(m.detach());
                    self.second[i] = Some(v.detach());
                }
                OptimSpec::Sgd { lr, momentum, weight_decay, nesterov } => {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Adam's first step moves every coordinate by lr * sign(grad) (bias correction makes
    /// mhat/sqrt(vhat) = g/|g|); SGD with momentum accumulates v = mu v + g.
    #[test]
    fn steps_match_the_update_rules() {
        let dev = Device::Cpu;
        let v = Var::new(&[1.0f32, -2.0], &dev).unwrap();
        let loss = (v.as_tensor() * 3.0).unwrap().sum_all().unwrap();
        let g = loss.backward().unwrap();
        let spec = OptimSpec::Adam { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-12, weight_decay: 0.0 };
        Optimizer::new(spec, vec![v.clone()]).step(&g).unwrap();
        let got: Vec<f32> = v.as_tensor().to_vec1().unwrap();
        assert!((got[0] - 0.9).abs() < 1e-6 && (got[1] + 2.1).abs() < 1e-6, "{got:?}");

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
    }
}
