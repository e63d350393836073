//! Continuous normalizing flows against closed forms (a linear field's Gaussian pushforward
//! and its regularizer integrals), Hutchinson against the exact trace, invertibility, a
//! density that integrates to one, and gradients of the full RNODE loss against central
//! differences, through backprop and through the adjoint.

use candle_core::{DType, Device, Result, Tensor, Var};
use flowline::flow::{Cnf, Dynamics, TangentField, TimeNet, Trace};
use flowline::nn::Activation;
use flowline::ode::{Method, Options, adjoint_gradients};
use flowline::rng::Rng;

/// f(t, z) = a * z (a diagonal linear map, a [d]).
struct Diagonal(Tensor);

impl TangentField for Diagonal {
    fn dim(&self) -> usize {
        self.0.dim(0).unwrap()
    }
    fn eval(&self, _t: f64, z: &Tensor) -> Result<Tensor> {
        z.broadcast_mul(&self.0)
    }
    fn eval_with_tangents(&self, t: f64, z: &Tensor, tangents: &Tensor) -> Result<(Tensor, Tensor)> {
        Ok((self.eval(t, z)?, tangents.broadcast_mul(&self.0)?))
    }
    fn vars(&self) -> Vec<Var> {
        vec![]
    }
}

fn tight(method: Method) -> Options {
    let mut o = Options::new(method);
    (o.rtol, o.atol) = (1e-10, 1e-10);
    o
}

fn data(n: usize, d: usize, seed: u64) -> Tensor {
    let mut rng = Rng::new(seed);
    Tensor::from_vec((0..n * d).map(|_| rng.normal()).collect::<Vec<f64>>(), (n, d), &Device::Cpu).unwrap()
}

fn v1(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64).unwrap().to_vec1().unwrap()
}

/// z(T) = x e^{aT}; log p(x) = log N(z(T)) + T sum a; kinetic = sum_i a_i x_i^2
/// (e^{2 a_i T} - 1) / (4 d); jacobian = T sum a^2 / d.
#[test]
fn a_linear_field_has_the_closed_form_likelihood_and_integrals() {
    let a = [0.7f64, -0.4, 1.1];
    let (t0, t1) = (0.2, 1.0);
    let big_t = t1 - t0;
    let flow = Cnf { field: Diagonal(Tensor::new(&a, &Device::Cpu).unwrap()), t0, t1, trace: Trace::Exact };
    let x = data(5, 3, 1);
    let got = flow.log_likelihood(&x, &tight(Method::Dopri5), &mut Rng::new(0)).unwrap();
    let xs = x.to_vec2::<f64>().unwrap();
    let (lp, kin, jac) = (v1(&got.log_p), v1(&got.kinetic), v1(&got.jacobian));
    for (r, xr) in xs.iter().enumerate() {
        let z: Vec<f64> = xr.iter().zip(&a).map(|(x, a)| x * (a * big_t).exp()).collect();
        let log_n = -0.5 * z.iter().map(|v| v * v).sum::<f64>() - 1.5 * (2.0 * std::f64::consts::PI).ln();
        let want_lp = log_n + big_t * a.iter().sum::<f64>();
        let want_kin: f64 =
            xr.iter().zip(&a).map(|(x, a)| a * x * x * ((2.0 * a * big_t).exp() - 1.0)).sum::<f64>() / 12.0;
        let want_jac = big_t * a.iter().map(|a| a * a).sum::<f64>() / 3.0;
        assert!((lp[r] - want_lp).abs() < 1e-7, "log p {} vs {want_lp}", lp[r]);
        assert!((kin[r] - want_kin).abs() < 1e-7, "kinetic {} vs {want_kin}", kin[r]);
        assert!((jac[r] - want_jac).abs() < 1e-9, "jacobian {} vs {want_jac}", jac[r]);
    }
}

fn mlp(seed: u64, widths: &[usize]) -> TimeNet {
    TimeNet::squash_mlp(widths, Activation::Tanh, &mut Rng::new(seed), DType::F64, &Device::Cpu).unwrap()
}

/// Hutchinson's estimate, one draw per row, averaged over many rows of the same point,
/// approaches the exact log-density change (Gaussian and Rademacher noise).
#[test]
fn hutchinson_is_unbiased() {
    let widths = [2, 16, 16, 2];
    let x = data(1, 2, 5);
    let mut opts = Options::new(Method::Rk4);
    opts.step = Some(0.05);
    let exact = Cnf { field: mlp(2, &widths), t0: 0.0, t1: 0.5, trace: Trace::Exact };
    let want = v1(&exact.log_likelihood(&x, &opts, &mut Rng::new(0)).unwrap().log_p)[0];
    let many = x.broadcast_as((4000, 2)).unwrap().contiguous().unwrap();
    for rademacher in [false, true] {
        let flow = Cnf { field: mlp(2, &widths), t0: 0.0, t1: 0.5, trace: Trace::Hutchinson { rademacher } };
        let got = v1(&flow.log_likelihood(&many, &opts, &mut Rng::new(9)).unwrap().log_p);
        let mean = got.iter().sum::<f64>() / got.len() as f64;
        let sd = (got.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / got.len() as f64).sqrt();
        let se = sd / (got.len() as f64).sqrt();
        assert!(sd > 0.0, "the estimate varies with the draw");
        assert!((mean - want).abs() < 4.0 * se, "rademacher {rademacher}: {mean} +- {se} vs {want}");
    }
}

/// x -> z -> x returns to x at a tight tolerance; samples have the data's shape.
#[test]
fn the_flow_inverts() {
    let flow = Cnf { field: mlp(4, &[2, 16, 16, 2]), t0: 0.0, t1: 1.0, trace: Trace::Exact };
    let x = data(50, 2, 7);
    let opts = tight(Method::Dopri5);
    let z = flow.log_likelihood(&x, &opts, &mut Rng::new(0)).unwrap().z;
    let (back, stats) = flow.sample(&z, &opts).unwrap();
    assert_eq!(back.dims(), x.dims());
    let err = (back - &x).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap();
    assert!(err < 1e-6, "round trip error {err}");
    assert!(stats.nfe > 0);
}

/// The density on a grid over [-8, 8]^2 sums to one within 1% (a field that moves the base
/// distribution noticeably: t1 = 1 with weights scaled up).
#[test]
fn the_density_integrates_to_one() {
    let flow = Cnf { field: mlp(6, &[2, 32, 32, 2]), t0: 0.0, t1: 1.0, trace: Trace::Exact };
    for l in &flow.field.layers {
        let (_, w) = l.named()[0];
        w.set(&(w.as_tensor() * 2.0).unwrap()).unwrap();
    }
    let k = 160;
    let (lo, hi) = (-8.0, 8.0);
    let cell = (hi - lo) / k as f64;
    let pts: Vec<f64> =
        (0..k * k).flat_map(|i| [lo + cell * ((i % k) as f64 + 0.5), lo + cell * ((i / k) as f64 + 0.5)]).collect();
    let grid = Tensor::from_vec(pts, (k * k, 2), &Device::Cpu).unwrap();
    let mut opts = Options::new(Method::Dopri5);
    (opts.rtol, opts.atol) = (1e-6, 1e-6);
    let got = flow.log_likelihood(&grid, &opts, &mut Rng::new(0)).unwrap();
    let mass: f64 = v1(&got.log_p).iter().map(|v| v.exp() * cell * cell).sum();
    assert!((mass - 1.0).abs() < 0.01, "the density integrates to {mass}");
    // The field does move the density: it is not the base's.
    let base: Vec<f64> = v1(&flowline::flow::standard_normal_log_density(&grid).unwrap());
    let moved = v1(&got.log_p).iter().zip(&base).map(|(a, b)| (a.exp() - b.exp()).abs() * cell * cell).sum::<f64>();
    assert!(moved > 0.05, "the flow barely moves the density ({moved})");
}

/// loss = mean(-log p) + 0.1 mean(kinetic) + 0.1 mean(jacobian): its gradient in every
/// parameter by backprop through the solver, against central differences, and the adjoint's
/// against backprop.
#[test]
fn gradients_of_the_regularized_loss_match_central_differences_and_the_adjoint() {
    let flow = Cnf { field: mlp(8, &[2, 4, 2]), t0: 0.0, t1: 0.5, trace: Trace::Exact };
    let x = data(6, 2, 3);
    let mut opts = Options::new(Method::Rk4);
    opts.step = Some(0.05);
    let loss = |flow: &Cnf<TimeNet>| -> Tensor {
        let l = flow.log_likelihood(&x, &opts, &mut Rng::new(0)).unwrap();
        let terms = (l.log_p.neg().unwrap() + (l.kinetic * 0.1).unwrap() + (l.jacobian * 0.1).unwrap()).unwrap();
        terms.mean_all().unwrap()
    };
    let vars = flow.field.vars();
    let grads = loss(&flow).backward().unwrap();
    let h = 1e-6;
    for (k, v) in vars.iter().enumerate() {
        let g = grads.get(v.as_tensor()).map(|g| g.flatten_all().unwrap().to_vec1::<f64>().unwrap()).unwrap();
        let base = v.as_tensor().flatten_all().unwrap().to_vec1::<f64>().unwrap();
        for i in 0..base.len() {
            let at = |s: f64| {
                let mut b = base.clone();
                b[i] += s;
                v.set(&Tensor::from_vec(b, v.shape(), &Device::Cpu).unwrap()).unwrap();
                let value = loss(&flow).to_scalar::<f64>().unwrap();
                v.set(&Tensor::from_vec(base.clone(), v.shape(), &Device::Cpu).unwrap()).unwrap();
                value
            };
            let fd = (at(h) - at(-h)) / (2.0 * h);
            assert!((fd - g[i]).abs() < 1e-6 * (1.0 + fd.abs()), "parameter {k}[{i}]: {fd} vs {}", g[i]);
        }
    }
    // The adjoint: from dL/dy(t1) = (z / n, 1 / n, 0.1 / n, 0.1 / n) (log N's gradient is -z).
    let l = flow.log_likelihood(&x, &tight(Method::Dopri5), &mut Rng::new(0)).unwrap();
    let n = 6.0;
    let grad_end = vec![
        (l.end[0].detach() / n).unwrap(),
        (l.end[1].ones_like().unwrap() / n).unwrap(),
        (l.end[2].ones_like().unwrap() * (0.1 / n)).unwrap(),
        (l.end[3].ones_like().unwrap() * (0.1 / n)).unwrap(),
    ];
    let tangents = flow.tangents(6, &x, &mut Rng::new(0)).unwrap();
    let dynamics = Dynamics::new(&flow.field, tangents);
    let adj = adjoint_gradients(&dynamics, &vars, &l.end, &grad_end, 0.0, 0.5, &tight(Method::Dopri5)).unwrap();
    let exact_grads = {
        let l = flow.log_likelihood(&x, &tight(Method::Dopri5), &mut Rng::new(0)).unwrap();
        let terms = (l.log_p.neg().unwrap() + (l.kinetic * 0.1).unwrap() + (l.jacobian * 0.1).unwrap()).unwrap();
        terms.mean_all().unwrap().backward().unwrap()
    };
    for (v, a) in vars.iter().zip(&adj.params) {
        let want = exact_grads.get(v.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let got = a.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-6 * (1.0 + w.abs()), "adjoint {g} vs backprop {w}");
        }
    }
}

/// Maximum likelihood on a shifted, shrunken Gaussian blob: the held-out NLL falls toward
/// the blob's entropy (ln(2 pi e 0.25) = 1.45 nats); with the kinetic-energy penalty the flow
/// ends with less kinetic energy than without. Records carry the forward NFE per iteration.
#[test]
fn training_lowers_the_nll_and_the_kinetic_penalty_lowers_the_energy() {
    let dev = Device::Cpu;
    let blob = |n: usize, seed: u64| {
        let mut rng = Rng::new(seed);
        let v: Vec<f32> =
            (0..n).flat_map(|_| [1.5 + 0.5 * rng.normal() as f32, -1.0 + 0.5 * rng.normal() as f32]).collect();
        Tensor::from_vec(v, (n, 2), &dev).unwrap()
    };
    let (train, held) = (blob(2000, 1), blob(500, 2));
    let mut opts = Options::new(Method::Dopri5);
    (opts.rtol, opts.atol) = (1e-4, 1e-4);
    let adam = flowline::nn::OptimSpec::Adam {
        lr: 1e-2,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
        decoupled: false,
    };
    let mut ends = Vec::new();
    for kinetic in [0.0, 1.0] {
        let field = TimeNet::squash_mlp(&[2, 32, 32, 2], Activation::Tanh, &mut Rng::new(3), DType::F32, &dev).unwrap();
        let flow = Cnf { field, t0: 0.0, t1: 1.0, trace: Trace::Exact };
        let nll = |flow: &Cnf<TimeNet>| {
            let l = flow.log_likelihood(&held, &opts, &mut Rng::new(0)).unwrap();
            let kin = l.kinetic.mean_all().unwrap().to_scalar::<f32>().unwrap() as f64;
            (l.log_p.neg().unwrap().mean_all().unwrap().to_scalar::<f32>().unwrap() as f64, kin)
        };
        let (before, _) = nll(&flow);
        let cfg = flowline::flow::FlowFit {
            iters: 150,
            batch: 100,
            optimizer: adam.clone(),
            kinetic,
            jacobian: 0.0,
            adjoint: false,
            dequantize: false,
            bits_per_dim: false,
        };
        let records = flowline::flow::fit_flow(&flow, &train, &cfg, &opts, &mut Rng::new(4)).unwrap();
        assert_eq!(records.len(), 150);
        assert!(records.iter().all(|r| r.nfe_forward >= 8 && r.seconds > 0.0));
        // Every evaluation of an accepted dopri5 step but the last stage's is differentiated
        // once; rejected steps' and the first step's trial evaluation are not.
        assert!(records.iter().all(|r| r.nfe_backward > 0 && r.nfe_backward < r.nfe_forward), "{:?}", records[0]);
        let (after, kin) = nll(&flow);
        assert!(after < before - 1.0 && after < 2.0, "kinetic {kinetic}: held-out NLL {before} -> {after}");
        ends.push(kin);
    }
    assert!(ends[1] < 0.8 * ends[0], "kinetic energy with the penalty {} vs without {}", ends[1], ends[0]);
}

/// Training by the adjoint takes the same steps as training by backprop through the
/// solver (the gradients agree at tight tolerance), and counts its backward solve's NFE.
#[test]
fn adjoint_training_follows_backprop_training() {
    let dev = Device::Cpu;
    let mut rng = Rng::new(8);
    let x: Vec<f64> = (0..40).map(|_| rng.normal()).collect();
    let x = Tensor::from_vec(x, (20, 2), &dev).unwrap();
    let adam = flowline::nn::OptimSpec::Adam {
        lr: 1e-2,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
        decoupled: false,
    };
    let mut weights = Vec::new();
    let mut records = Vec::new();
    for adjoint in [false, true] {
        let flow = Cnf { field: mlp(11, &[2, 8, 2]), t0: 0.0, t1: 0.5, trace: Trace::Exact };
        let cfg = flowline::flow::FlowFit {
            iters: 3,
            batch: 20,
            optimizer: adam.clone(),
            kinetic: 0.1,
            jacobian: 0.1,
            adjoint,
            dequantize: false,
            bits_per_dim: false,
        };
        records.push(flowline::flow::fit_flow(&flow, &x, &cfg, &tight(Method::Dopri5), &mut Rng::new(4)).unwrap());
        weights.push(
            flow.field
                .named_tensors()
                .into_iter()
                .map(|(_, t)| t.flatten_all().unwrap().to_vec1::<f64>().unwrap())
                .collect::<Vec<_>>(),
        );
    }
    for (a, b) in weights[0].iter().flatten().zip(weights[1].iter().flatten()) {
        assert!((a - b).abs() < 1e-6, "backprop {a} vs adjoint {b}");
    }
    for (r, s) in records[0].iter().zip(&records[1]) {
        assert!((r.loss - s.loss).abs() < 1e-6, "{} vs {}", r.loss, s.loss);
        assert!(s.nfe_backward >= 8, "adjoint backward NFE {}", s.nfe_backward);
    }
}
