//! The ODE solvers against analytic solutions, an independent reference, finite
//! differences, and torchdiffeq's step counts.

use candle_core::{DType, Device, Tensor, Var};
use flowline::ode::{Failure, Method, Options, solve};

fn scalar(v: f64) -> Tensor {
    Tensor::new(&[v], &Device::Cpu).unwrap()
}

fn vec2(a: f64, b: f64) -> Tensor {
    Tensor::new(&[a, b], &Device::Cpu).unwrap()
}

fn values(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64).unwrap().to_vec1().unwrap()
}

fn decay_error(method: Method, h: f64) -> f64 {
    // y' = -y, y(0) = 1 on [0, 1]: y(1) = e^-1.
    let field = |_t: f64, y: &[Tensor]| Ok(vec![y[0].neg()?]);
    let mut opts = Options::new(method);
    opts.step = Some(h);
    let sol = solve(&field, &[scalar(1.0)], &[0.0, 1.0], &opts).unwrap();
    (values(&sol.ys[1][0])[0] - (-1.0f64).exp()).abs()
}

#[test]
fn fixed_step_methods_converge_at_their_order() {
    for (m, p) in [(Method::Euler, 1), (Method::Midpoint, 2), (Method::Rk4, 4)] {
        let ratio = decay_error(m, 0.02) / decay_error(m, 0.01);
        let want = 2f64.powi(p);
        assert!((ratio / want - 1.0).abs() < 0.1, "{m:?}: error ratio {ratio}, expected about {want}");
    }
}

/// y' = A y with A the rotation generator: y(t) = (cos t, -sin t) from (1, 0).
#[test]
fn dopri5_matches_the_matrix_exponential_and_error_follows_tolerance() {
    let field = |_t: f64, y: &[Tensor]| {
        let v = &y[0];
        let (a, b) = (v.narrow(0, 0, 1)?, v.narrow(0, 1, 1)?);
        Ok(vec![Tensor::cat(&[&b, &a.neg()?], 0)?])
    };
    let ts: Vec<f64> = (0..=20).map(|i| i as f64 * 0.5).collect();
    let mut last = f64::INFINITY;
    for tol in [1e-4, 1e-6, 1e-8] {
        let mut opts = Options::new(Method::Dopri5);
        opts.rtol = tol;
        opts.atol = tol;
        let sol = solve(&field, &[vec2(1.0, 0.0)], &ts, &opts).unwrap();
        let err = ts
            .iter()
            .zip(&sol.ys)
            .map(|(t, y)| {
                let v = values(&y[0]);
                ((v[0] - t.cos()).powi(2) + (v[1] + t.sin()).powi(2)).sqrt()
            })
            .fold(0.0, f64::max);
        assert!(err < 100.0 * tol, "tol {tol}: error {err}");
        assert!(err < last / 10.0, "error must shrink with the tolerance: {err} after {last}");
        last = err;
    }
}

fn van_der_pol(mu: f64) -> impl Fn(f64, &[Tensor]) -> candle_core::Result<Vec<Tensor>> {
    move |_t: f64, y: &[Tensor]| {
        let v = &y[0];
        let (x, p) = (v.narrow(0, 0, 1)?, v.narrow(0, 1, 1)?);
        let dp = ((((x.sqr()? * -1.0)? + 1.0)? * &p)? * mu)?.sub(&x)?;
        Ok(vec![Tensor::cat(&[&p, &dp], 0)?])
    }
}

/// Van der Pol (mu = 1) from (2, 0) to t = 10: dopri5 at 1e-8 against an independent
/// reference, fixed-step RK4 with h = 1e-4 (global error ~1e-13).
#[test]
fn van_der_pol_matches_an_independent_reference() {
    let f = van_der_pol(1.0);
    let mut reference = Options::new(Method::Rk4);
    reference.step = Some(1e-4);
    let r = solve(&f, &[vec2(2.0, 0.0)], &[0.0, 10.0], &reference).unwrap();
    let mut opts = Options::new(Method::Dopri5);
    opts.rtol = 1e-8;
    opts.atol = 1e-8;
    let s = solve(&f, &[vec2(2.0, 0.0)], &[0.0, 10.0], &opts).unwrap();
    let (a, b) = (values(&r.ys[1][0]), values(&s.ys[1][0]));
    assert!((a[0] - b[0]).abs() < 1e-6 && (a[1] - b[1]).abs() < 1e-6, "{a:?} vs {b:?}");
    assert_eq!(s.stats.nfe, 6 * (s.stats.accepted + s.stats.rejected) + 2, "FSAL: 6 evaluations a step, 2 to start");
}

/// Lotka-Volterra (alpha 1.5, beta 1, delta 1, gamma 3) from (1, 1) to t = 10 against the
/// same kind of independent reference; the conserved quantity
/// V = delta x - gamma ln x + beta y - alpha ln y stays put.
#[test]
fn lotka_volterra_matches_the_reference_and_conserves_its_invariant() {
    let f = |_t: f64, y: &[Tensor]| {
        let v = &y[0];
        let (x, q) = (v.narrow(0, 0, 1)?, v.narrow(0, 1, 1)?);
        let xy = (&x * &q)?;
        Ok(vec![Tensor::cat(&[&((&x * 1.5)? - &xy)?, &(&xy - (&q * 3.0)?)?], 0)?])
    };
    let invariant = |v: &[f64]| v[0] - 3.0 * v[0].ln() + v[1] - 1.5 * v[1].ln();
    let mut reference = Options::new(Method::Rk4);
    reference.step = Some(1e-4);
    let r = solve(&f, &[vec2(1.0, 1.0)], &[0.0, 10.0], &reference).unwrap();
    let mut opts = Options::new(Method::Dopri5);
    opts.rtol = 1e-9;
    opts.atol = 1e-9;
    let s = solve(&f, &[vec2(1.0, 1.0)], &[0.0, 10.0], &opts).unwrap();
    let (a, b) = (values(&r.ys[1][0]), values(&s.ys[1][0]));
    assert!((a[0] - b[0]).abs() < 1e-6 && (a[1] - b[1]).abs() < 1e-6, "{a:?} vs {b:?}");
    assert!((invariant(&b) - invariant(&[1.0, 1.0])).abs() < 1e-7);
}

/// torchdiffeq 0.2.5, odeint(method="dopri5", rtol=1e-6, atol=1e-6) on Van der Pol (mu = 1,
/// y0 = (2, 0), t in [0, 10], float64) takes 560 evaluations (measured with
/// bench/python/ode_nfe.py); ours must be within 10%.
#[test]
fn dopri5_nfe_is_within_ten_percent_of_torchdiffeq() {
    let mut opts = Options::new(Method::Dopri5);
    opts.rtol = 1e-6;
    opts.atol = 1e-6;
    let s = solve(&van_der_pol(1.0), &[vec2(2.0, 0.0)], &[0.0, 10.0], &opts).unwrap();
    let theirs = TORCHDIFFEQ_NFE as f64;
    eprintln!("dopri5 NFE: flowline {}, torchdiffeq {theirs}", s.stats.nfe);
    assert!(((s.stats.nfe as f64) / theirs - 1.0).abs() <= 0.1, "ours {} vs torchdiffeq {theirs}", s.stats.nfe);
}

const TORCHDIFFEQ_NFE: usize = 560;

/// d y(T) / d a for y' = a y is T y0 e^{aT}: gradients flow through the solver's ops.
#[test]
fn gradients_through_the_solver_match_the_analytic_derivative() {
    let a = Var::new(&[-0.7f64], &Device::Cpu).unwrap();
    let field = |_t: f64, y: &[Tensor]| Ok(vec![y[0].broadcast_mul(a.as_tensor())?]);
    for method in [Method::Rk4, Method::Dopri5] {
        let mut opts = Options::new(method);
        opts.step = Some(0.01);
        opts.rtol = 1e-10;
        opts.atol = 1e-10;
        let s = solve(&field, &[scalar(1.5)], &[0.0, 2.0], &opts).unwrap();
        let g = s.ys[1][0].sum_all().unwrap().backward().unwrap();
        let got = values(g.get(a.as_tensor()).unwrap())[0];
        let want = 2.0 * 1.5 * (-0.7f64 * 2.0).exp();
        assert!((got - want).abs() < 1e-6, "{method:?}: {got} vs {want}");
    }
}

#[test]
fn dense_output_is_accurate_between_steps() {
    let field = |_t: f64, y: &[Tensor]| Ok(vec![y[0].neg()?]);
    let ts: Vec<f64> = (0..=50).map(|i| i as f64 * 0.1).collect();
    for (method, tol, err) in [(Method::Dopri5, 1e-8, 1e-7), (Method::Bosh3, 1e-6, 1e-5)] {
        let mut opts = Options::new(method);
        opts.rtol = tol;
        opts.atol = tol;
        let s = solve(&field, &[scalar(1.0)], &ts, &opts).unwrap();
        if method == Method::Dopri5 {
            assert!(
                s.stats.accepted < ts.len() - 1,
                "fewer steps ({}) than outputs: most come from interpolation",
                s.stats.accepted
            );
        }
        for (t, y) in ts.iter().zip(&s.ys) {
            assert!((values(&y[0])[0] - (-t).exp()).abs() < err, "{method:?} at {t}");
        }
    }
}

#[test]
fn failures_return_codes_and_stats_never_hang() {
    // A stiff problem with a tight step budget.
    let stiff = |t: f64, y: &[Tensor]| Ok(vec![((&y[0] - t.cos())? * -1e4)?]);
    let mut opts = Options::new(Method::Dopri5);
    opts.max_steps = 20;
    let e = solve(&stiff, &[scalar(0.0)], &[0.0, 10.0], &opts).unwrap_err();
    assert_eq!(e.failure, Failure::MaxSteps);
    assert_eq!(e.stats.accepted + e.stats.rejected, 20);
    assert!(e.stats.nfe > 0 && e.t > 0.0 && e.t < 10.0);
    let mut opts = Options::new(Method::Dopri5);
    opts.min_step = 1e-2;
    let e = solve(&stiff, &[scalar(0.0)], &[0.0, 10.0], &opts).unwrap_err();
    assert_eq!(e.failure, Failure::StepUnderflow);
    // Blow-up: y' = y^2 from 1 explodes at t = 1.
    let blow = |_t: f64, y: &[Tensor]| Ok(vec![y[0].sqr()?]);
    let e = solve(&blow, &[scalar(1.0)], &[0.0, 2.0], &Options::new(Method::Dopri5)).unwrap_err();
    assert!(matches!(e.failure, Failure::StepUnderflow | Failure::MaxSteps), "{:?}", e.failure);
    let e = solve(&blow, &[scalar(1.0)], &[1.0, 0.5], &Options::new(Method::Rk4)).unwrap_err();
    assert!(matches!(e.failure, Failure::BadTimes(_)));
}

#[test]
fn uncontrolled_or_loosely_controlled_components_do_not_drive_the_step() {
    // Component 1 integrates a wild quantity; excluding it from error control keeps the
    // step count of component 0 alone.
    let field = |t: f64, y: &[Tensor]| Ok(vec![y[0].neg()?, scalar((50.0 * t).sin() * 1e3)]);
    let mut opts = Options::new(Method::Dopri5);
    opts.rtol = 1e-6;
    opts.atol = 1e-6;
    let both = solve(&field, &[scalar(1.0), scalar(0.0)], &[0.0, 5.0], &opts).unwrap();
    opts.controlled = vec![true, false];
    let first = solve(&field, &[scalar(1.0), scalar(0.0)], &[0.0, 5.0], &opts).unwrap();
    assert!(first.stats.nfe < both.stats.nfe, "{} vs {}", first.stats.nfe, both.stats.nfe);
    // A loose tolerance of its own for the wild component also relieves the step.
    opts.controlled = Vec::new();
    opts.tolerances = vec![None, Some((1e-2, 1e2))];
    let loose = solve(&field, &[scalar(1.0), scalar(0.0)], &[0.0, 5.0], &opts).unwrap();
    assert!(loose.stats.nfe < both.stats.nfe, "{} vs {}", loose.stats.nfe, both.stats.nfe);
}

/// The `odeint` stage reports the library's stats and final state, writes its files, and
/// with `on_failure: "return"` keeps a flagged partial trajectory.
#[test]
fn odeint_stage_runs_and_flags_partial_results() {
    use flowline::CheckOptions;
    use flowline::diag::SourceMap;
    let src = "let orbit = odeint(linear_field(matrix: [[0, 1], [-1, 0]]), y0: [1.0, 0.0], t1: 3.0, solver: dopri5(rtol: 1e-9, atol: 1e-9))\n\
               let stiff = odeint(van_der_pol(mu: 1000.0), y0: [2.0, 0.0], t1: 3000.0, solver: dopri5(max_steps: 30), on_failure: \"return\")\n";
    let mut sources = SourceMap::new();
    let id = sources.add("t.flow", None, src);
    let plan = flowline::check(&mut sources, id, &CheckOptions::default()).and_then(flowline::plan).unwrap();
    let out = tempfile::tempdir().unwrap();
    let opts = flowline::exec::RunOptions { out: out.path().to_path_buf(), quiet: true, ..Default::default() };
    let r = flowline::run(&plan, &opts).unwrap();
    let orbit = &r.stages[0].metrics;
    assert!((orbit["final_0"] - 3f64.cos()).abs() < 1e-7 && (orbit["final_1"] + 3f64.sin()).abs() < 1e-7, "{orbit:?}");
    assert_eq!(orbit["failed"], 0.0);
    let stiff = &r.stages[1].metrics;
    assert_eq!(stiff["failed"], 1.0);
    assert_eq!(stiff["accepted"] + stiff["rejected"], 30.0);
    let csv = std::fs::read_to_string(out.path().join("orbit/trajectory.csv")).unwrap();
    assert_eq!(csv.lines().count(), 202);
    assert!(out.path().join("orbit/phase.png").exists());
}

/// The adjoint method against the analytic derivative (y' = a y), and on a nonlinear field
/// against backpropagation through the solver and against central finite differences.
#[test]
fn adjoint_gradients_match_analytic_backprop_and_finite_differences() {
    use flowline::ode::adjoint_gradients;
    let mut opts = Options::new(Method::Dopri5);
    opts.rtol = 1e-10;
    opts.atol = 1e-10;
    let a = Var::new(&[-0.7f64], &Device::Cpu).unwrap();
    let lin = |_t: f64, y: &[Tensor]| Ok(vec![y[0].broadcast_mul(a.as_tensor())?]);
    let fwd = solve(&lin, &[scalar(1.5)], &[0.0, 2.0], &opts).unwrap();
    let adj = adjoint_gradients(&lin, std::slice::from_ref(&a), &fwd.ys[1], &[scalar(1.0)], 0.0, 2.0, &opts).unwrap();
    let e = (-0.7f64 * 2.0).exp();
    assert!((values(&adj.y0[0])[0] - e).abs() < 1e-7);
    assert!((values(&adj.params[0])[0] - 2.0 * 1.5 * e).abs() < 1e-7);

    // f(y) = tanh(W y + b), L = sum(y(1)^2)
    let w = Var::new(&[[0.5f64, -1.2], [0.8, 0.3]], &Device::Cpu).unwrap();
    let b = Var::new(&[0.1f64, -0.2], &Device::Cpu).unwrap();
    let field = |_t: f64, y: &[Tensor]| {
        let z = w.as_tensor().matmul(&y[0].unsqueeze(1)?)?.squeeze(1)?.add(b.as_tensor())?;
        Ok(vec![z.tanh()?])
    };
    let y0 = vec2(0.3, -0.4);
    let loss = |ys: &Tensor| ys.sqr().unwrap().sum_all().unwrap();
    let fwd = solve(&field, std::slice::from_ref(&y0), &[0.0, 1.0], &opts).unwrap();
    let grad_y1 = (&fwd.ys[1][0] * 2.0).unwrap();
    let adj = adjoint_gradients(&field, &[w.clone(), b.clone()], &fwd.ys[1], &[grad_y1], 0.0, 1.0, &opts).unwrap();
    let bp = loss(&fwd.ys[1][0]).backward().unwrap();
    let bp_w: Vec<Vec<f64>> = bp.get(w.as_tensor()).unwrap().to_vec2().unwrap();
    let adj_w: Vec<Vec<f64>> = adj.params[0].to_vec2().unwrap();
    for i in 0..2 {
        for j in 0..2 {
            assert!(
                (bp_w[i][j] - adj_w[i][j]).abs() < 1e-7,
                "dW[{i}][{j}]: backprop {} vs adjoint {}",
                bp_w[i][j],
                adj_w[i][j]
            );
        }
    }
    // Central differences on W[0][0].
    let at = |d: f64| {
        w.set(&Tensor::new(&[[0.5f64 + d, -1.2], [0.8, 0.3]], &Device::Cpu).unwrap()).unwrap();
        let s = solve(&field, std::slice::from_ref(&y0), &[0.0, 1.0], &opts).unwrap();
        loss(&s.ys[1][0]).to_scalar::<f64>().unwrap()
    };
    let fd = (at(1e-5) - at(-1e-5)) / 2e-5;
    at(0.0);
    assert!((fd - adj_w[0][0]).abs() < 1e-6, "finite differences {fd} vs adjoint {}", adj_w[0][0]);
    let bp_b: Vec<f64> = bp.get(b.as_tensor()).unwrap().to_vec1().unwrap();
    let adj_b: Vec<f64> = adj.params[1].to_vec1().unwrap();
    assert!((bp_b[0] - adj_b[0]).abs() < 1e-7 && (bp_b[1] - adj_b[1]).abs() < 1e-7);
}
