//! Robust training terms for a classifier's loss: the input-gradient penalty of Finlay and
//! Oberman ("Scaleable input gradient regularization for adversarial robustness", 2019),
//! by finite differences so that no second-order graph is built, or exactly by a
//! forward-mode tangent; and adversarial training on PGD examples (Madry et al. 2018).

use super::loss::{Objective, one_hot};
use super::net::Net;
use crate::rng::Rng;
use candle_core::{D, DType, Result, Tensor, Var};

/// The norm the input gradient is measured in: l2 (against l2 attacks), or l1, the dual
/// of linf (against linf attacks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GradNorm {
    L2,
    L1,
}

/// `loss + lambda/2 * mean(((l(x + h d) - l(x)) / h)^2)`, d the normalised input gradient
/// (l2: g / |g|_2; l1: sign(g) / sqrt(N)), held constant. As h -> 0 the term tends to
/// lambda/2 |g|_2^2 (l2) or lambda/2 |g|_1^2 / N (l1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InputGradient {
    pub lambda: f64,
    pub h: f64,
    pub norm: GradNorm,
    /// The h -> 0 limit, (g . d)^2, from a Jacobian-vector product carried through the
    /// model with first-order autograd only.
    pub exact: bool,
}

impl InputGradient {
    /// The paper's finite-difference step.
    pub const H: f64 = 0.01;
}

/// The ball PGD examples are drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ball {
    L2,
    Linf,
}

/// Train on PGD examples: `steps` ascent steps of the loss of size `step` within the
/// `eps`-ball (from a uniform random start), clamped to the input bounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Adversarial {
    pub ball: Ball,
    pub eps: f64,
    pub steps: usize,
    pub step: f64,
    pub random_start: bool,
    /// `true`: the adversarial examples join the clean batch (half and half in the loss);
    /// `false`: they replace it.
    pub join: bool,
}

impl Adversarial {
    /// Madry et al.'s step rule when none is given: 2.5 eps / steps.
    pub fn default_step(eps: f64, steps: usize) -> f64 {
        2.5 * eps / steps.max(1) as f64
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Penalty {
    InputGradient(InputGradient),
    Adversarial(Adversarial),
    /// Gaussian noise augmentation at this sigma (Cohen et al.'s training for randomized
    /// smoothing): every input is replaced by x + sigma z, unclipped.
    GaussianNoise(f64),
}

/// One step's loss with every penalty, the outputs accuracy is read from, and the value of
/// the input-gradient term (0 without one).
pub struct Penalized {
    pub loss: Tensor,
    pub out: Tensor,
    pub labels: Vec<u32>,
    pub penalty: f64,
}

/// The training loss of one minibatch under `penalties` (at most one of each kind).
/// `bounds`: the box adversarial examples stay in.
pub fn penalized_loss(
    model: &Net,
    x: &Tensor,
    y: &[u32],
    objective: Objective,
    penalties: &[Penalty],
    bounds: (f64, f64),
    rng: &mut Rng,
) -> Result<Penalized> {
    let mut x = x.clone();
    let mut y = y.to_vec();
    for p in penalties {
        if let Penalty::GaussianNoise(sigma) = p {
            let z: Vec<f32> = (0..x.elem_count()).map(|_| (sigma * rng.normal()) as f32).collect();
            x = (&x + Tensor::from_vec(z, x.shape(), x.device())?.to_dtype(x.dtype())?)?;
        }
    }
    for p in penalties {
        if let Penalty::Adversarial(a) = p {
            let adv = pgd_examples(model, &x, &y, objective, a, bounds, rng)?;
            if a.join {
                x = Tensor::cat(&[&x, &adv], 0)?;
                y.extend_from_within(..);
            } else {
                x = adv;
            }
        }
    }
    let igr = penalties.iter().find_map(|p| match p {
        Penalty::InputGradient(g) => Some(*g),
        _ => None,
    });
    let Some(g) = igr else {
        let out = model.forward_train(&x, rng)?;
        return Ok(Penalized { loss: objective.mean(&out, &y)?, out, labels: y, penalty: 0.0 });
    };
    // Every evaluation sees the same dropout masks: the difference is the model's, not the
    // noise's.
    let masks = rng.clone();
    let (direction, _) = loss_direction(model, &x, &y, objective, g.norm, rng)?;
    let (out, loss, term) = penalty_terms(model, &x, &y, objective, &g, &direction, &masks)?;
    let penalty = term.to_scalar::<f32>()? as f64;
    Ok(Penalized { loss: (loss + term)?, out, labels: y, penalty })
}

/// For a given direction: the outputs, the mean loss and the weighted penalty term, all
/// evaluated with the dropout masks `masks` draws.
pub fn penalty_terms(
    model: &Net,
    x: &Tensor,
    y: &[u32],
    objective: Objective,
    g: &InputGradient,
    direction: &Tensor,
    masks: &Rng,
) -> Result<(Tensor, Tensor, Tensor)> {
    let (out, loss, term) = if g.exact {
        let (out, tangent) = model.forward_train_tangent(x, direction, &mut masks.clone())?;
        let each = objective.each(&out, y)?;
        let slope = directional_derivative(objective, &out, &tangent, y)?;
        (out, each.mean_all()?, slope.sqr()?.mean_all()?)
    } else {
        let out = model.forward_train(x, &mut masks.clone())?;
        let each = objective.each(&out, y)?;
        let moved = model.forward_train(&(x + (direction * g.h)?)?, &mut masks.clone())?;
        let quotient = ((objective.each(&moved, y)? - &each)? / g.h)?;
        (out, each.mean_all()?, quotient.sqr()?.mean_all()?)
    };
    Ok((out, loss, (term * (0.5 * g.lambda))?))
}

/// The unit direction of steepest loss increase per example (d = 0 where the gradient
/// vanishes), detached, and the gradient itself.
pub fn loss_direction(
    model: &Net,
    x: &Tensor,
    y: &[u32],
    objective: Objective,
    norm: GradNorm,
    rng: &mut Rng,
) -> Result<(Tensor, Tensor)> {
    let v = Var::from_tensor(&x.detach())?;
    let out = model.forward_train(v.as_tensor(), rng)?;
    let grads = objective.each(&out, y)?.sum_all()?.backward()?;
    let g = match grads.get(v.as_tensor()) {
        Some(g) => g.detach(),
        None => x.zeros_like()?,
    };
    Ok((unit_direction(&g, norm)?, g))
}

/// g / |g|_2 per row (l2), or sign(g) / sqrt(N) (l1); zero rows stay zero.
pub fn unit_direction(g: &Tensor, norm: GradNorm) -> Result<Tensor> {
    let n = g.dim(0)?;
    let flat = g.reshape((n, ()))?;
    let d = match norm {
        GradNorm::L2 => {
            let len = flat.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-30, f64::INFINITY)?;
            flat.broadcast_div(&len)?
        }
        GradNorm::L1 => {
            let per = flat.dim(1)? as f64;
            (sign(&flat)? / per.sqrt())?
        }
    };
    d.reshape(g.shape())
}

/// -1, 0 or 1 per entry, in the tensor's dtype.
pub fn sign(t: &Tensor) -> Result<Tensor> {
    let pos = t.gt(0.0)?.to_dtype(t.dtype())?;
    let neg = t.lt(0.0)?.to_dtype(t.dtype())?;
    pos - neg
}

/// dl/dx . d per example from the outputs and their tangent J d: the loss's derivative
/// with respect to the outputs is written out, so autograd differentiates it once more.
fn directional_derivative(objective: Objective, out: &Tensor, tangent: &Tensor, y: &[u32]) -> Result<Tensor> {
    let classes = out.dim(D::Minus1)?;
    let hot = one_hot(y, classes, out)?.to_dtype(out.dtype())?;
    let dl_dout = match objective {
        Objective::CrossEntropy => {
            let z = out.broadcast_sub(&out.max_keepdim(D::Minus1)?.detach())?;
            let e = z.exp()?;
            (e.broadcast_div(&e.sum_keepdim(D::Minus1)?)? - hot)?
        }
        Objective::Mse => ((out - hot)? * (2.0 / classes as f64))?,
    };
    (dl_dout * tangent)?.sum(D::Minus1)
}

/// PGD examples for training: the loss ascended from a random start in the ball, in
/// evaluation mode (dropout off), detached.
pub fn pgd_examples(
    model: &Net,
    x: &Tensor,
    y: &[u32],
    objective: Objective,
    cfg: &Adversarial,
    bounds: (f64, f64),
    rng: &mut Rng,
) -> Result<Tensor> {
    let x = x.detach();
    let n = x.dim(0)?;
    let per = x.elem_count() / n.max(1);
    let mut delta = if cfg.random_start {
        let draws: Vec<f32> = match cfg.ball {
            Ball::Linf => (0..x.elem_count()).map(|_| ((rng.uniform() * 2.0 - 1.0) * cfg.eps) as f32).collect(),
            // Uniform in the l2 ball: a Gaussian direction, radius eps * u^(1/N).
            Ball::L2 => {
                let mut v = Vec::with_capacity(x.elem_count());
                for _ in 0..n {
                    let g: Vec<f64> = (0..per).map(|_| rng.normal()).collect();
                    let len = g.iter().map(|a| a * a).sum::<f64>().sqrt().max(1e-30);
                    let r = cfg.eps * rng.uniform().powf(1.0 / per as f64);
                    v.extend(g.iter().map(|a| (a / len * r) as f32));
                }
                v
            }
        };
        Tensor::from_vec(draws, x.shape(), x.device())?.to_dtype(x.dtype())?
    } else {
        x.zeros_like()?
    };
    let mut adv = (&x + &delta)?.clamp(bounds.0, bounds.1)?;
    for _ in 0..cfg.steps {
        let v = Var::from_tensor(&adv)?;
        let out = model.forward_input_grad(v.as_tensor())?;
        let grads = objective.each(&out, y)?.sum_all()?.backward()?;
        let Some(g) = grads.get(v.as_tensor()) else { break };
        let dir = match cfg.ball {
            Ball::Linf => sign(g)?,
            Ball::L2 => unit_direction(g, GradNorm::L2)?,
        };
        delta = project((&(&adv + (dir * cfg.step)?)? - &x)?, cfg)?;
        adv = (&x + &delta)?.clamp(bounds.0, bounds.1)?.detach();
    }
    Ok(adv)
}

/// A perturbation projected onto the ball.
fn project(delta: Tensor, cfg: &Adversarial) -> Result<Tensor> {
    match cfg.ball {
        Ball::Linf => delta.clamp(-cfg.eps, cfg.eps),
        Ball::L2 => {
            let n = delta.dim(0)?;
            let flat = delta.reshape((n, ()))?;
            let len = flat.sqr()?.sum_keepdim(1)?.sqrt()?;
            let scale = (len.clamp(cfg.eps, f64::INFINITY)?.recip()? * cfg.eps)?;
            flat.broadcast_mul(&scale)?.reshape(delta.shape())
        }
    }
}

/// Each example's |grad_x l|: l2 or l1 norm, as f64 on the host.
pub fn gradient_norms(g: &Tensor, norm: GradNorm) -> Result<Vec<f64>> {
    let n = g.dim(0)?;
    let flat = g.to_dtype(DType::F64)?.reshape((n, ()))?;
    let v = match norm {
        GradNorm::L2 => flat.sqr()?.sum(1)?.sqrt()?,
        GradNorm::L1 => flat.abs()?.sum(1)?,
    };
    v.to_vec1()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{Activation, LayerSpec};
    use candle_core::Device;

    fn smooth_net(seed: u64, dropout: bool) -> Net {
        let mut specs = vec![
            LayerSpec::Linear { input: None, out: 12 },
            LayerSpec::Act(Activation::Softplus),
            LayerSpec::Linear { input: None, out: 10 },
            LayerSpec::Act(Activation::Tanh),
        ];
        if dropout {
            specs.push(LayerSpec::Dropout { p: 0.3 });
        }
        specs.push(LayerSpec::Linear { input: None, out: 4 });
        Net::init(&specs, &[6], &mut Rng::new(seed), &Device::Cpu).unwrap()
    }

    fn batch(seed: u64) -> (Tensor, Vec<u32>) {
        let mut rng = Rng::new(seed);
        let v: Vec<f32> = (0..8 * 6).map(|_| rng.uniform() as f32).collect();
        (Tensor::from_vec(v, (8, 6), &Device::Cpu).unwrap(), (0..8).map(|i| i % 4).collect())
    }

    fn scalar(t: &Tensor) -> f64 {
        t.to_scalar::<f32>().unwrap() as f64
    }

    fn term(net: &Net, x: &Tensor, y: &[u32], g: InputGradient, d: &Tensor) -> f64 {
        scalar(&penalty_terms(net, x, y, Objective::CrossEntropy, &g, d, &Rng::new(5)).unwrap().2)
    }

    /// With lambda = 2 the term is mean((dl . d)^2): for d = g / |g| it tends to mean |g|^2 as
    /// h shrinks (first order in h), and the tangent gives it at once.
    #[test]
    fn the_finite_difference_penalty_converges_to_the_squared_gradient_norm() {
        let net = smooth_net(1, false);
        let (x, y) = batch(2);
        for norm in [GradNorm::L2, GradNorm::L1] {
            let (d, grad) = loss_direction(&net, &x, &y, Objective::CrossEntropy, norm, &mut Rng::new(5)).unwrap();
            let per = 6.0;
            let want = gradient_norms(&grad, norm)
                .unwrap()
                .iter()
                .map(|v| if norm == GradNorm::L2 { v * v } else { v * v / per })
                .sum::<f64>()
                / 8.0;
            let cfg = |h: f64, exact: bool| InputGradient { lambda: 2.0, h, norm, exact };
            let errors: Vec<f64> = [0.3, 0.03, 0.003]
                .iter()
                .map(|&h| (term(&net, &x, &y, cfg(h, false), &d) - want).abs() / want)
                .collect();
            assert!(errors[1] < errors[0] / 4.0 && errors[2] < errors[1] / 4.0, "{norm:?}: {errors:?}");
            assert!(errors[2] < 2e-3, "{norm:?}: {errors:?}");
            let exact = term(&net, &x, &y, cfg(0.0, true), &d);
            assert!((exact - want).abs() < 1e-4 * want, "{norm:?}: exact {exact} vs {want}");
        }
    }

    /// The regularized loss's weight gradient (direction held fixed) against central
    /// differences of the weights, for both penalties and with dropout.
    #[test]
    fn the_regularized_loss_gradient_matches_finite_differences() {
        for (exact, dropout) in [(false, false), (true, false), (false, true), (true, true)] {
            let net = smooth_net(3, dropout);
            let (x, y) = batch(4);
            let g = InputGradient { lambda: 1.0, h: 0.05, norm: GradNorm::L2, exact };
            let masks = Rng::new(9);
            let (d, _) = loss_direction(&net, &x, &y, Objective::CrossEntropy, g.norm, &mut masks.clone()).unwrap();
            let total = |net: &Net| {
                let (_, l, t) = penalty_terms(net, &x, &y, Objective::CrossEntropy, &g, &d, &masks).unwrap();
                (l + t).unwrap()
            };
            let grads = total(&net).backward().unwrap();
            for v in net.vars() {
                let auto: Vec<f32> = grads.get(v.as_tensor()).unwrap().flatten_all().unwrap().to_vec1().unwrap();
                let base: Vec<f32> = v.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
                for k in [0, base.len() / 2, base.len() - 1] {
                    let at = |e: f32| {
                        let mut p = base.clone();
                        p[k] += e;
                        v.set(&Tensor::from_vec(p, v.shape(), &Device::Cpu).unwrap()).unwrap();
                        scalar(&total(&net))
                    };
                    let eps = 1e-2;
                    let fd = (at(eps) - at(-eps)) / (2.0 * eps as f64);
                    at(0.0);
                    let a = auto[k] as f64;
                    assert!(
                        (fd - a).abs() < 3e-3 * (1.0 + fd.abs()),
                        "exact {exact} dropout {dropout}: fd {fd} vs {a}"
                    );
                }
            }
        }
    }

    /// The exact term's weight gradient is that of |grad_x l|^2 itself, whose values come
    /// from first-order autograd alone (central differences over the weights).
    #[test]
    fn the_exact_penalty_differentiates_the_squared_gradient_norm() {
        let net = smooth_net(6, false);
        let (x, y) = batch(7);
        let g = InputGradient { lambda: 2.0, h: 0.0, norm: GradNorm::L2, exact: true };
        let (d, _) = loss_direction(&net, &x, &y, Objective::CrossEntropy, g.norm, &mut Rng::new(1)).unwrap();
        let (_, _, t) = penalty_terms(&net, &x, &y, Objective::CrossEntropy, &g, &d, &Rng::new(1)).unwrap();
        let grads = t.backward().unwrap();
        let squared_norm = |net: &Net| {
            let (_, grad) = loss_direction(net, &x, &y, Objective::CrossEntropy, g.norm, &mut Rng::new(1)).unwrap();
            gradient_norms(&grad, GradNorm::L2).unwrap().iter().map(|v| v * v).sum::<f64>() / 8.0
        };
        for v in net.vars() {
            let auto: Vec<f32> = grads.get(v.as_tensor()).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            let base: Vec<f32> = v.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
            let k = base.len() / 3;
            let at = |e: f32| {
                let mut p = base.clone();
                p[k] += e;
                v.set(&Tensor::from_vec(p, v.shape(), &Device::Cpu).unwrap()).unwrap();
                squared_norm(&net)
            };
            let eps = 1e-2;
            let fd = (at(eps) - at(-eps)) / (2.0 * eps as f64);
            at(0.0);
            assert!((fd - auto[k] as f64).abs() < 3e-3 * (1.0 + fd.abs()), "fd {fd} vs {}", auto[k]);
        }
    }

    /// Noise augmentation trains on x + sigma z with z the generator's standard normals,
    /// a fresh draw each step.
    #[test]
    fn gaussian_noise_trains_on_the_noisy_inputs() {
        let net = smooth_net(3, false);
        let (x, y) = batch(4);
        let mut rng = Rng::new(9);
        let mut replay = rng.clone();
        let p =
            penalized_loss(&net, &x, &y, Objective::CrossEntropy, &[Penalty::GaussianNoise(0.5)], (0.0, 1.0), &mut rng)
                .unwrap();
        let z: Vec<f32> = (0..x.elem_count()).map(|_| (0.5 * replay.normal()) as f32).collect();
        let noisy = (&x + Tensor::from_vec(z, x.shape(), &Device::Cpu).unwrap()).unwrap();
        let expected = Objective::CrossEntropy.mean(&net.forward_train(&noisy, &mut replay).unwrap(), &y).unwrap();
        assert!((scalar(&p.loss) - scalar(&expected)).abs() < 1e-6);
        let clean = scalar(&Objective::CrossEntropy.mean(&net.forward(&x).unwrap(), &y).unwrap());
        assert!((scalar(&p.loss) - clean).abs() > 1e-4, "the noise changed nothing");
        let again =
            penalized_loss(&net, &x, &y, Objective::CrossEntropy, &[Penalty::GaussianNoise(0.5)], (0.0, 1.0), &mut rng)
                .unwrap();
        assert!((scalar(&again.loss) - scalar(&p.loss)).abs() > 1e-6, "the same noise twice");
    }

    /// PGD examples stay in the ball and the box, and raise the loss.
    #[test]
    fn pgd_examples_stay_in_the_ball_and_raise_the_loss() {
        let net = smooth_net(8, false);
        let (x, y) = batch(9);
        let clean = scalar(&Objective::CrossEntropy.mean(&net.forward(&x).unwrap(), &y).unwrap());
        for ball in [Ball::Linf, Ball::L2] {
            let cfg = Adversarial { ball, eps: 0.2, steps: 10, step: 0.05, random_start: true, join: false };
            let adv = pgd_examples(&net, &x, &y, Objective::CrossEntropy, &cfg, (0.0, 1.0), &mut Rng::new(3)).unwrap();
            let d: Vec<Vec<f32>> = (&adv - &x).unwrap().to_vec2().unwrap();
            let a: Vec<Vec<f32>> = adv.to_vec2().unwrap();
            for (row, arow) in d.iter().zip(&a) {
                let size = match ball {
                    Ball::Linf => row.iter().fold(0f32, |m, v| m.max(v.abs())),
                    Ball::L2 => row.iter().map(|v| v * v).sum::<f32>().sqrt(),
                };
                assert!(size <= 0.2 + 1e-5, "{ball:?}: {size}");
                assert!(arow.iter().all(|v| (0.0..=1.0).contains(v)));
            }
            let attacked = scalar(&Objective::CrossEntropy.mean(&net.forward(&adv).unwrap(), &y).unwrap());
            assert!(attacked > clean + 1e-3, "{ball:?}: {attacked} vs {clean}");
        }
    }
}
