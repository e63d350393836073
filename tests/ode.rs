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
    // Times neither increasing nor decreasing (decreasing ones integrate backwards).
    for ts in [vec![0.0, 1.0, 0.5], vec![1.0, 1.0], vec![0.0, f64::NAN]] {
        let e = solve(&blow, &[scalar(1.0)], &ts, &Options::new(Method::Rk4)).unwrap_err();
        assert!(matches!(e.failure, Failure::BadTimes(_)), "{ts:?}");
    }
}

/// Decreasing output times integrate backwards: against analytic solutions (a
/// time-dependent field, so the sign of t matters), a forward-then-backward round trip of
/// a nonlinear field, gradients through a backward solve, and failure times in the
/// caller's time.
#[test]
fn decreasing_times_integrate_backwards() {
    // y' = t y: y(t) = y(T) exp((t^2 - T^2) / 2). From T = 1.5 back through 1.0 to 0.
    let field = |t: f64, y: &[Tensor]| Ok(vec![(&y[0] * t)?]);
    for (method, tol) in [(Method::Dopri5, 1e-8), (Method::Bosh3, 1e-5), (Method::Rk4, 1e-7)] {
        let mut opts = Options::new(method);
        (opts.rtol, opts.atol, opts.step) = (1e-10, 1e-10, Some(0.01));
        let s = solve(&field, &[scalar(2.0)], &[1.5, 1.0, 0.0], &opts).unwrap();
        for (t, y) in [1.5f64, 1.0, 0.0].iter().zip(&s.ys) {
            let want = 2.0 * ((t * t - 2.25) / 2.0).exp();
            assert!((values(&y[0])[0] - want).abs() < tol, "{method:?} at {t}: {:?} vs {want}", values(&y[0]));
        }
    }
    // Van der Pol forward over [0, 3], then back: the start again.
    let mut opts = Options::new(Method::Dopri5);
    (opts.rtol, opts.atol) = (1e-10, 1e-10);
    let vdp = van_der_pol(1.0);
    let there = solve(&vdp, &[vec2(2.0, 0.0)], &[0.0, 3.0], &opts).unwrap();
    let back = solve(&vdp, &there.ys[1], &[3.0, 0.0], &opts).unwrap();
    let y = values(&back.ys[1][0]);
    assert!((y[0] - 2.0).abs() < 1e-6 && y[1].abs() < 1e-6, "round trip: {y:?}");
    // y' = a y backwards from T to 0: y(0) = y(T) e^{-aT}, d y(0) / d a = -T y(T) e^{-aT}.
    let a = Var::new(&[-0.7f64], &Device::Cpu).unwrap();
    let lin = |_t: f64, y: &[Tensor]| Ok(vec![y[0].broadcast_mul(a.as_tensor())?]);
    let s = solve(&lin, &[scalar(1.5)], &[2.0, 0.0], &opts).unwrap();
    let g = s.ys[1][0].sum_all().unwrap().backward().unwrap();
    let want = -2.0 * 1.5 * (0.7f64 * 2.0).exp();
    assert!((values(g.get(a.as_tensor()).unwrap())[0] - want).abs() < 1e-6);
    // A failure reports where it stopped in the caller's time: y' = -y^2 backwards from
    // y(1) = 2 is 1 / (t - 0.5), which blows up at t = 0.5.
    let blow = |_t: f64, y: &[Tensor]| Ok(vec![y[0].sqr()?.neg()?]);
    let mut opts = Options::new(Method::Dopri5);
    opts.max_steps = 500;
    let e = solve(&blow, &[scalar(2.0)], &[1.0, -1.0], &opts).unwrap_err();
    assert!((e.t - 0.5).abs() < 0.01, "stopped at t = {} ({:?})", e.t, e.failure);
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

/// Check and run a pipeline text in a fresh folder.
fn run_pipeline(src: &str) -> (flowline::Report, tempfile::TempDir) {
    let mut sources = flowline::diag::SourceMap::new();
    let id = sources.add("t.flow", None, src);
    let opts = flowline::CheckOptions::default();
    let plan = flowline::check(&mut sources, id, &opts).and_then(flowline::plan).unwrap();
    let out = tempfile::tempdir().unwrap();
    let opts = flowline::exec::RunOptions { out: out.path().to_path_buf(), quiet: true, ..Default::default() };
    (flowline::run(&plan, &opts).unwrap(), out)
}

/// The `odeint` stage reports the library's stats and final state, writes its files, and
/// with `on_failure: "return"` keeps a flagged partial trajectory.
#[test]
fn odeint_stage_runs_and_flags_partial_results() {
    let src = "let orbit = odeint(linear_field(matrix: [[0, 1], [-1, 0]]), y0: [1.0, 0.0], t1: 3.0, solver: dopri5(rtol: 1e-9, atol: 1e-9))\n\
               let stiff = odeint(van_der_pol(mu: 1000.0), y0: [2.0, 0.0], t1: 3000.0, solver: dopri5(max_steps: 30), on_failure: \"return\")\n";
    let (r, out) = run_pipeline(src);
    let orbit = &r.stages[0].metrics;
    assert!((orbit["final_0"] - 3f64.cos()).abs() < 1e-7 && (orbit["final_1"] + 3f64.sin()).abs() < 1e-7, "{orbit:?}");
    assert_eq!(orbit["failed"], 0.0);
    let stiff = &r.stages[1].metrics;
    assert_eq!(stiff["failed"], 1.0);
    assert_eq!(stiff["accepted"] + stiff["rejected"], 30.0);
    let csv = std::fs::read_to_string(out.path().join("orbit/trajectory.csv")).unwrap();
    assert_eq!(csv.lines().count(), 202);
    assert!(out.path().join("orbit/phase.png").exists());
    // The kept partial trajectory ends where the solver stopped, past the start.
    assert!(stiff["t_reached"] > 0.0 && stiff["t_reached"] < 3000.0, "{stiff:?}");
    assert!(stiff["final_0"] != 2.0 || stiff["final_1"] != 0.0, "the final state is not the initial one: {stiff:?}");
    assert_eq!(r.stages[1].warnings.len(), 1);
    assert!(r.stages[1].warnings[0].is_warning(), "a kept failure warns, it does not fail");
}

/// `on_failure: "return"` keeps every output before the failure and the state reached, as
/// the last row at the time reached (a fixed-step blow-up from y' = y^2, y(0) = 1).
#[test]
fn a_kept_failure_returns_the_trajectory_up_to_the_time_reached() {
    // y' = 100 y: rk4 with h = 0.5 multiplies y by ~2.6e5 per step and overflows f64 after
    // about 60 steps (t ~ 30); outputs every 1.0.
    let src = "let boom = odeint(linear_field(matrix: [[100.0]]), y0: [1.0], t1: 100.0, points: 101, solver: rk4(step: 0.5), on_failure: \"return\")\n";
    let (r, out) = run_pipeline(src);
    let m = &r.stages[0].metrics;
    assert_eq!(m["failed"], 1.0);
    let reached = m["t_reached"];
    assert!(reached > 10.0 && reached < 100.0, "{m:?}");
    let csv = std::fs::read_to_string(out.path().join("boom/trajectory.csv")).unwrap();
    let rows: Vec<Vec<f64>> = csv.lines().skip(1).map(|l| l.split(',').map(|v| v.parse().unwrap()).collect()).collect();
    assert!(rows.len() > 10, "{} rows", rows.len());
    let last = rows.last().unwrap();
    assert_eq!(last[0], reached);
    assert_eq!(last[1], m["final_0"]);
    assert!(last[1].is_finite() && last[1] > 1e100);
}

/// A fixed-step method takes the user's step whatever the output grid: rk4(step: 0.1) on
/// [0, 10] takes 100 steps and ends in the same state for 11, 201 or 1,001 outputs, outputs
/// between steps are interpolated to the method's accuracy, and a step longer than the
/// interval is one step.
#[test]
fn fixed_step_solves_take_the_users_steps_whatever_the_outputs() {
    let field = |_t: f64, y: &[Tensor]| Ok(vec![y[0].neg()?]);
    let mut opts = Options::new(Method::Rk4);
    opts.step = Some(0.1);
    let mut finals = Vec::new();
    for points in [11usize, 201, 1001] {
        let ts: Vec<f64> = (0..points).map(|i| 10.0 * i as f64 / (points - 1) as f64).collect();
        let sol = solve(&field, &[scalar(1.0)], &ts, &opts).unwrap();
        assert_eq!(sol.stats.accepted, 100, "{points} outputs");
        assert_eq!(sol.stats.nfe, 400 + usize::from(points > 101), "{points} outputs");
        for (t, y) in ts.iter().zip(&sol.ys) {
            let err = (values(&y[0])[0] - (-t).exp()).abs();
            assert!(err < 2e-6, "t = {t}: error {err}");
        }
        finals.push(values(&sol.ys[points - 1][0])[0]);
    }
    assert!(finals.windows(2).all(|w| w[0] == w[1]), "{finals:?}");
    opts.step = Some(10.0);
    let sol = solve(&field, &[scalar(1.0)], &[0.0, 1.0, 2.0, 3.0], &opts).unwrap();
    assert_eq!(sol.stats.accepted, 1);
    // A step of 0.3 on [0, 1]: 0.3, 0.6, 0.9 and a last step of 0.1.
    opts.step = Some(0.3);
    let sol = solve(&field, &[scalar(1.0)], &[0.0, 1.0], &opts).unwrap();
    assert_eq!(sol.stats.accepted, 4);
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
