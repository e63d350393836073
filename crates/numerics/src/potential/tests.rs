//! The potential flow against independent references: finite differences for gradients,
//! Laplacians and the continuity equation, Gauss-Hermite moments, a grid integral for the
//! normaliser, and the Gaussian closed form of the entropic interpolation.

use super::*;
use crate::nn::{Activation, LayerSpec, OptimSpec};
use crate::ode::{Method, Options};
use crate::rng::Rng;
use candle_core::{DType, Device, Tensor};

fn mlp(width: usize, act: Activation) -> Vec<LayerSpec> {
    let mut v = Vec::new();
    for _ in 0..3 {
        v.push(LayerSpec::Linear { input: None, out: width });
        v.push(LayerSpec::Act(act));
    }
    v.push(LayerSpec::Linear { input: None, out: 1 });
    v
}

fn points(v: &[f64], d: usize) -> Tensor {
    Tensor::from_vec(v.to_vec(), (v.len() / d, d), &Device::Cpu).unwrap()
}

fn f64s(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1().unwrap()
}

fn potential(act: Activation, seed: u64, d: usize) -> Potential {
    Potential::new(&mlp(16, act), d, &mut Rng::new(seed), &Device::Cpu).unwrap()
}

/// The value at float64 points (the evaluation path computes in the points' dtype, so
/// finite differences are sharp).
fn value(p: &Potential, x: &Tensor) -> Vec<f64> {
    f64s(&p.derivatives(x, Want::Value).unwrap().value)
}

#[test]
fn gauss_hermite_rules_integrate_normal_moments_exactly() {
    for k in [1, 2, 5, 12, 40] {
        let (x, w) = gauss_hermite_1d(k);
        assert_eq!(x.len(), k);
        let moment = |p: i32| x.iter().zip(&w).map(|(x, w)| w * x.powi(p)).sum::<f64>();
        assert!((moment(0) - 1.0).abs() < 1e-12, "k {k}: weights sum to {}", moment(0));
        let mut double_factorial = 1.0;
        for p in (2..2 * k as i32).step_by(2) {
            double_factorial *= (p - 1) as f64;
            let m = moment(p);
            assert!(
                (m - double_factorial).abs() < 1e-9 * double_factorial,
                "k {k}: E x^{p} = {m}, not {double_factorial}"
            );
            assert!(moment(p - 1).abs() < 1e-9 * double_factorial);
        }
    }
    let rule = HeatRule::gauss_hermite(3, 2);
    assert_eq!(rule.len(), 9);
    let total: f64 = rule.log_weights.iter().map(|l| (*l as f64).exp()).sum();
    assert!((total - 1.0).abs() < 1e-6);
}

#[test]
fn gradients_and_laplacians_match_finite_differences() {
    let x = points(&[0.3, -0.7, 1.2, 0.4, -1.5, -0.2], 2);
    for act in [Activation::Softplus, Activation::Tanh, Activation::Sigmoid, Activation::Relu] {
        let p = potential(act, 3, 2);
        let der = p.derivatives(&x, Want::Laplacian).unwrap();
        let (grad, lap) = (f64s(der.grad.as_ref().unwrap()), f64s(der.laplacian.as_ref().unwrap()));
        // The training path (float32 kernels) computes the same value.
        let trained = f64s(&p.value(&x.to_dtype(DType::F32).unwrap()).unwrap());
        for (a, b) in trained.iter().zip(f64s(&der.value)) {
            assert!((a - b).abs() < 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
        }
        let h = 1e-4;
        for i in 0..3 {
            let mut second = 0.0;
            for k in 0..2 {
                let at = |s: f64| {
                    let mut v = f64s(&x);
                    v[2 * i + k] += s;
                    value(&p, &points(&v[2 * i..2 * i + 2], 2))[0]
                };
                let fd = (at(h) - at(-h)) / (2.0 * h);
                assert!((fd - grad[2 * i + k]).abs() < 1e-6, "{act:?}: d/dx{k} {} vs {fd}", grad[2 * i + k]);
                second += (at(h) - 2.0 * at(0.0) + at(-h)) / (h * h);
            }
            let tol = 1e-4 * (1.0 + second.abs());
            assert!((second - lap[i]).abs() < tol, "{act:?}: Laplacian {} vs {second}", lap[i]);
        }
    }
}

fn tight() -> Options {
    Options { rtol: 1e-8, atol: 1e-8, ..Options::new(Method::Dopri5) }
}

/// A flow of two fresh softplus potentials in dimension d, its rule `draws` antithetic draws.
fn random_flow(d: usize, eps: f64, draws: usize, seed: u64) -> PotentialFlow {
    let layers = mlp(16, Activation::Softplus);
    PotentialFlow::new(&layers, &layers, d, eps, draws, &mut Rng::new(seed), &Device::Cpu).unwrap()
}

#[test]
fn smoothed_potentials_have_the_gradients_and_laplacians_of_their_values() {
    let flow = random_flow(2, 0.7, 20, 5);
    let x = points(&[0.2, -0.4, -1.1, 0.9], 2);
    for t in [0.0, 0.35, 1.0] {
        let vel = flow.velocity(t, &x, true).unwrap();
        let (v, div) = (f64s(&vel.v), f64s(vel.div.as_ref().unwrap()));
        // v = grad (psi_t - phi_t) / 2 from the smoothed values themselves.
        let half_gap = |p: &[f64]| {
            let (phi, psi) = flow.potentials_at(t, &points(p, 2), Want::Value).unwrap();
            0.5 * (f64s(&psi.value)[0] - f64s(&phi.value)[0])
        };
        let h = 1e-4;
        for i in 0..2 {
            let mut fd_div = 0.0;
            for k in 0..2 {
                let shifted = |s: f64| {
                    let mut p = f64s(&x)[2 * i..2 * i + 2].to_vec();
                    p[k] += s;
                    p
                };
                let fd = (half_gap(&shifted(h)) - half_gap(&shifted(-h))) / (2.0 * h);
                assert!((fd - v[2 * i + k]).abs() < 1e-6, "t {t}: v {} vs {fd}", v[2 * i + k]);
                let vk = |p: Vec<f64>| f64s(&flow.velocity(t, &points(&p, 2), false).unwrap().v)[k];
                fd_div += (vk(shifted(h)) - vk(shifted(-h))) / (2.0 * h);
            }
            assert!((fd_div - div[i]).abs() < 1e-6, "t {t}: div {} vs {fd_div}", div[i]);
        }
    }
}

#[test]
fn the_density_and_velocity_satisfy_the_continuity_equation() {
    // d rho/dt + d(v rho)/dx = 0 for rho_t ~ exp((phi_t + psi_t)/eps) and
    // v = (psi_t - phi_t)'/2, by finite differences in t and x, with a Gauss-Hermite rule
    // (accurate enough that the fixed nodes solve the heat equation). The opposite sign of v
    // leaves a residual of the size of the terms.
    let mut flow = random_flow(1, 1.0, 2, 9);
    flow.rule = HeatRule::gauss_hermite(60, 1);
    let rho = |t: f64, x: f64| f64s(&flow.log_density_at(t, &points(&[x], 1)).unwrap())[0].exp();
    let v = |t: f64, x: f64| f64s(&flow.velocity(t, &points(&[x], 1), false).unwrap().v)[0];
    let h = 1e-4;
    for t in [0.25, 0.5, 0.8] {
        for x in [-1.5, -0.3, 0.4, 2.0] {
            let dt = (rho(t + h, x) - rho(t - h, x)) / (2.0 * h);
            let flux = |s: f64| v(t, x + s) * rho(t, x + s);
            let dx = (flux(h) - flux(-h)) / (2.0 * h);
            let scale = dt.abs() + dx.abs();
            assert!(scale > 1e-3, "a degenerate example: terms {dt}, {dx}");
            assert!((dt + dx).abs() < 1e-5 * scale.max(1.0), "t {t}, x {x}: {dt} + {dx} = {}", dt + dx);
            assert!((dt - dx).abs() > 1e-2 * scale, "t {t}, x {x}: the opposite sign also balances");
        }
    }
}

#[test]
fn the_ode_likelihood_is_the_change_of_variables_of_the_flow_map() {
    // log p(x) = log N(T(x)) + log |det dT/dx|, T the flow map from t = 0 to 1, its
    // Jacobian by central differences: what fails if the divergence were wrong.
    let flow = random_flow(2, 0.5, 16, 11);
    let x = points(&[0.3, -0.2, -0.8, 0.6], 2);
    let (log_p, z, _) = flow.log_density(&x, &tight()).unwrap();
    let (log_p, z) = (f64s(&log_p), f64s(&z));
    let map = |p: Vec<f64>| f64s(&flow.transport(&points(&p, 2), 0.0, 1.0, &tight()).unwrap().0);
    let h = 1e-4;
    for i in 0..2 {
        let at = f64s(&x)[2 * i..2 * i + 2].to_vec();
        let column = |k: usize| {
            let (mut a, mut b) = (at.clone(), at.clone());
            a[k] += h;
            b[k] -= h;
            let (fa, fb) = (map(a), map(b));
            [(fa[0] - fb[0]) / (2.0 * h), (fa[1] - fb[1]) / (2.0 * h)]
        };
        let (c0, c1) = (column(0), column(1));
        let det = c0[0] * c1[1] - c0[1] * c1[0];
        let zi = &z[2 * i..2 * i + 2];
        let expected = -0.5 * (zi[0] * zi[0] + zi[1] * zi[1]) - (2.0 * std::f64::consts::PI).ln() + det.abs().ln();
        assert!((expected - log_p[i]).abs() < 1e-5, "log p {} vs {expected}", log_p[i]);
    }
}

#[test]
fn the_ode_likelihood_carries_the_closed_form_from_t0_to_t1() {
    // For any potentials the field carries rho_0 to rho_1 (the continuity equation), so the
    // ODE's log p(x) = log N(T x) + log rho_0(x) - log rho_1(T x), the unnormalised closed
    // forms' constant cancelling; exact up to the rule's quadrature (Gauss-Hermite, 1-D).
    let mut flow = random_flow(1, 0.8, 2, 17);
    flow.rule = HeatRule::gauss_hermite(60, 1);
    let x = points(&[-1.2, -0.3, 0.5, 1.7], 1);
    let (log_p, z, _) = flow.log_density(&x, &tight()).unwrap();
    let rho0 = f64s(&flow.log_density_at(0.0, &x).unwrap());
    let rho1 = f64s(&flow.log_density_at(1.0, &z).unwrap());
    let z = f64s(&z);
    for (i, lp) in f64s(&log_p).iter().enumerate() {
        let normal = -0.5 * z[i] * z[i] - 0.5 * (2.0 * std::f64::consts::PI).ln();
        let expected = normal + rho0[i] - rho1[i];
        assert!((lp - expected).abs() < 1e-5, "log p {lp} vs {expected}");
    }
}

#[test]
fn points_carried_to_the_normal_side_come_back() {
    let flow = random_flow(2, 1.0, 24, 13);
    let x = points(&[0.5, 1.5, -2.0, 0.1, 0.0, -0.7], 2);
    let (z, _) = flow.transport(&x, 0.0, 1.0, &tight()).unwrap();
    let (back, _) = flow.decode(&z, &tight()).unwrap();
    let moved = f64s(&z).iter().zip(f64s(&x)).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(moved > 1e-2, "the flow barely moves the points ({moved})");
    for (a, b) in f64s(&back).iter().zip(f64s(&x)) {
        assert!((a - b).abs() < 1e-6, "{a} came back for {b}");
    }
}

/// Variance of exp(log_rho) on a uniform 1-D grid.
fn grid_moments(log_rho: &[f64], grid: &[f64]) -> (f64, f64, f64) {
    let max = log_rho.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let w: Vec<f64> = log_rho.iter().map(|l| (l - max).exp()).collect();
    let h = grid[1] - grid[0];
    let mass: f64 = w.iter().sum::<f64>() * h;
    let mean = w.iter().zip(grid).map(|(w, x)| w * x).sum::<f64>() * h / mass;
    let var = w.iter().zip(grid).map(|(w, x)| w * (x - mean).powi(2)).sum::<f64>() * h / mass;
    (mass.ln() + max, mean, var)
}

/// The variance at time t of the entropic interpolation between N(0, s0) and N(0, s1)
/// (1-D): (1-t)^2 s0 + t^2 s1 + 2 t (1-t) sqrt(eps^2/4 + s0 s1).
fn bridge_variance(s0: f64, s1: f64, eps: f64, t: f64) -> f64 {
    (1.0 - t).powi(2) * s0 + t * t * s1 + 2.0 * t * (1.0 - t) * (eps * eps / 4.0 + s0 * s1).sqrt()
}

/// Potentials trained on N(0, 1/4) data (1-D, eps = 1) with the heat operator through a
/// 12-point Gauss-Hermite rule (unbiased: the Monte-Carlo log-sum-exp is biased low by
/// O(1/N), which shows here as a narrower density), at a learning rate of 3e-3 and then
/// 5e-4 to settle Adam's noise.
fn trained_on_gaussian(scheme: Scheme, seed: u64) -> (PotentialFlow, Vec<DualRecord>) {
    let mut rng = Rng::new(seed);
    let layers = mlp(16, Activation::Softplus);
    let mut flow = PotentialFlow::new(&layers, &layers, 1, 1.0, 2, &mut rng, &Device::Cpu).unwrap();
    flow.rule = HeatRule::gauss_hermite(30, 1);
    let data: Vec<f32> = (0..20_000).map(|_| (0.5 * rng.normal()) as f32).collect();
    let data = Tensor::from_vec(data, (20_000, 1), &Device::Cpu).unwrap();
    let adam =
        |lr: f64| OptimSpec::Adam { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0, decoupled: false };
    let mut records = Vec::new();
    for (iters, lr) in [(800, 3e-3), (400, 5e-4)] {
        let cfg = DualFit {
            iters,
            batch: 128,
            mc_samples: 12,
            optimizer: adam(lr),
            scheme,
            quadrature: Some(HeatRule::gauss_hermite(12, 1)),
        };
        records.extend(fit_dual(&flow, &data, &cfg, &mut rng, |_, _| {}).unwrap());
    }
    (flow, records)
}

/// The variance of the data N(0, 1/4) carried by the flow to time t, by a 40-point
/// Gauss-Hermite rule over the data (deterministic, unlike a sample's variance).
fn carried_variance(flow: &PotentialFlow, t: f64) -> f64 {
    let (nodes, weights) = gauss_hermite_1d(40);
    let x: Vec<f64> = nodes.iter().map(|v| 0.5 * v).collect();
    let opts = Options { rtol: 1e-6, atol: 1e-6, ..Options::new(Method::Dopri5) };
    let (moved, _) = flow.transport(&points(&x, 1), 0.0, t, &opts).unwrap();
    let moved = f64s(&moved);
    let mean: f64 = moved.iter().zip(&weights).map(|(m, w)| m * w).sum();
    moved.iter().zip(&weights).map(|(m, w)| w * (m - mean).powi(2)).sum()
}

#[test]
fn potentials_trained_on_gaussians_reach_the_entropic_interpolation() {
    // Between N(0, 1/4) and N(0, 1) with eps = 1 the interpolation at t = 1/2 has variance
    // 0.25/4 + 1/4 + (1/2) sqrt(1/4 + 1/4) = 0.66605 (eps^2/4 under the root; the preprint's
    // eps^2/16 would give 0.592).
    let expected = bridge_variance(0.25, 1.0, 1.0, 0.5);
    assert!((expected - 0.66605).abs() < 1e-5);
    let (flow, records) = trained_on_gaussian(Scheme::SemiDual, 21);
    assert!(records.iter().all(|r| r.loss.is_finite()));
    let grid: Vec<f64> = (0..1201).map(|i| -6.0 + 0.01 * i as f64).collect();
    let on_grid = |t: f64| f64s(&flow.log_density_at(t, &points(&grid, 1)).unwrap());
    let (log_z, _, var0) = grid_moments(&on_grid(0.0), &grid);
    let (_, _, var_half) = grid_moments(&on_grid(0.5), &grid);
    let (_, _, var1) = grid_moments(&on_grid(1.0), &grid);
    // The marginals: the data at t = 0, the normal at t = 1.
    assert!((var0 - 0.25).abs() < 0.015, "rho_0 has variance {var0}, the data 0.25");
    assert!((var1 - 1.0).abs() < 0.04, "rho_1 has variance {var1}, the normal 1");
    // The interpolation in closed form and by carrying the data with the ODE.
    assert!((var_half - expected).abs() < 0.02, "rho_1/2 has variance {var_half}, expected {expected}");
    let carried = carried_variance(&flow, 0.5);
    assert!(
        (carried - expected).abs() < 0.02,
        "the data carried to t = 1/2 have variance {carried}, expected {expected}"
    );
    // The normaliser over normal draws is the grid's integral of the closed form.
    let mut rng = Rng::new(5);
    let (log_z_is, rel_se) = flow.log_normaliser(5000, &mut rng, DType::F64, &Device::Cpu).unwrap();
    assert!((log_z_is - log_z).abs() < 3.0 * rel_se + 1e-3, "log Z {log_z_is} (se {rel_se}) vs {log_z} on the grid");
    // Likelihoods of held-out data: the ODE's, the closed form's and the truth agree.
    let x: Vec<f64> = (0..200).map(|_| 0.5 * rng.normal()).collect();
    let opts = Options { rtol: 1e-6, atol: 1e-6, ..Options::new(Method::Dopri5) };
    let (ode, _, _) = flow.log_density(&points(&x, 1), &opts).unwrap();
    let closed = f64s(&flow.closed_form_log_density(&points(&x, 1), log_z_is).unwrap());
    let truth: Vec<f64> = x.iter().map(|v| -2.0 * v * v - (2.0 * std::f64::consts::PI * 0.25).ln() / 2.0).collect();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (ode, closed, truth) = (mean(&f64s(&ode)), mean(&closed), mean(&truth));
    assert!(
        (ode - truth).abs() < 0.03 && (closed - truth).abs() < 0.03,
        "mean log p: ODE {ode}, closed form {closed}, truth {truth}"
    );
}

#[test]
fn the_joint_dual_ascended_in_turns_normalises_the_closed_form() {
    // The joint dual's optimum solves the Schroedinger system with c = 0, and its
    // derivative in a constant added to phi is 1 - (the coupling's mass), so even short of
    // the optimum the closed form integrates to about one; the semi-duals leave the constant
    // free. Its exponential coupling term needs a small learning rate (at 3e-3 it diverges).
    let mut rng = Rng::new(3);
    let layers = mlp(16, Activation::Softplus);
    let mut flow = PotentialFlow::new(&layers, &layers, 1, 1.0, 2, &mut rng, &Device::Cpu).unwrap();
    flow.rule = HeatRule::gauss_hermite(30, 1);
    let data: Vec<f32> = (0..4000).map(|_| (0.5 * rng.normal()) as f32).collect();
    let data = Tensor::from_vec(data, (4000, 1), &Device::Cpu).unwrap();
    let cfg = DualFit {
        iters: 400,
        batch: 256,
        mc_samples: 12,
        optimizer: OptimSpec::Adam {
            lr: 3e-4,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
        },
        scheme: Scheme::Alternating,
        quadrature: Some(HeatRule::gauss_hermite(12, 1)),
    };
    let records = fit_dual(&flow, &data, &cfg, &mut rng, |_, _| {}).unwrap();
    let mean = |r: &[DualRecord]| r.iter().map(|r| r.psi).sum::<f64>() / r.len() as f64;
    let (first, last) = (mean(&records[..50]), mean(&records[350..]));
    assert!(last > first + 0.2, "the joint objective went from {first} to {last}");
    let grid: Vec<f64> = (0..1201).map(|i| -6.0 + 0.01 * i as f64).collect();
    let (log_z, _, _) = grid_moments(&f64s(&flow.log_density_at(0.0, &points(&grid, 1)).unwrap()), &grid);
    // (A Gibbs kernel without its (2 pi eps)^{-d/2} would put log Z near 0.92.)
    assert!(log_z.abs() < 0.2, "the closed form integrates to e^{log_z}");
}
