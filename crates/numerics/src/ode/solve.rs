//! Explicit Runge-Kutta integration of dy/dt = f(t, y) for states that are tuples of
//! tensors. Step-size control follows torchdiffeq so that NFE counts are comparable: the
//! error ratio is the largest RMS over the controlled components of
//! err / (atol + rtol * max(|y0|, |y1|)); a step is accepted when the ratio is <= 1; the
//! next step is h * clamp(0.9 * ratio^(-1/order), 0.2, 10), and an accepted step never
//! shrinks the next one; the first step is Hairer's. Outputs at requested times come from
//! dense interpolation. Fixed-step methods take the user's step from t0 (the last step
//! ends at t1 and may be shorter, as in torchdiffeq); output times between steps are
//! interpolated (cubic Hermite, exact slopes at both ends), so the outputs asked for never
//! change the steps taken. Everything is ordinary tensor ops, so gradients flow through the
//! solve (discretize-then-optimize).

use super::tableau::{DOPRI5_MID, Method};
use candle_core::{Result, Tensor};

pub type State = Vec<Tensor>;

/// A vector field over tuple states.
pub trait Field {
    fn eval(&self, t: f64, y: &[Tensor]) -> Result<State>;
}

impl<F: Fn(f64, &[Tensor]) -> Result<State>> Field for F {
    fn eval(&self, t: f64, y: &[Tensor]) -> Result<State> {
        self(t, y)
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Options {
    pub method: Method,
    pub rtol: f64,
    pub atol: f64,
    /// Fixed-step methods: the step, from the first time on; the last step is shortened to
    /// end at the last time. Default: a hundredth of the interval.
    pub step: Option<f64>,
    pub first_step: Option<f64>,
    pub min_step: f64,
    pub max_step: f64,
    /// Attempted steps (accepted + rejected) before giving up.
    pub max_steps: usize,
    /// Per component: whether it takes part in error control (regularizer integrals
    /// usually do not). All components when empty.
    pub controlled: Vec<bool>,
    /// Per component: its own (rtol, atol) instead of the global ones.
    pub tolerances: Vec<Option<(f64, f64)>>,
}

impl Options {
    /// (rtol, atol) of component `i`, or `None` when it is excluded from error control.
    fn tolerance(&self, i: usize) -> Option<(f64, f64)> {
        if !self.controlled.is_empty() && !self.controlled.get(i).copied().unwrap_or(true) {
            return None;
        }
        Some(self.tolerances.get(i).copied().flatten().unwrap_or((self.rtol, self.atol)))
    }
}

impl Options {
    pub fn new(method: Method) -> Self {
        Options {
            method,
            rtol: 1e-7,
            atol: 1e-9,
            step: None,
            first_step: None,
            min_step: 0.0,
            max_step: f64::INFINITY,
            max_steps: 100_000,
            controlled: Vec::new(),
            tolerances: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub nfe: usize,
    pub accepted: usize,
    pub rejected: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    MaxSteps,
    StepUnderflow,
    NonFinite,
    BadTimes(String),
    Tensor(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::MaxSteps => write!(f, "reached max_steps"),
            Failure::StepUnderflow => write!(f, "the step fell below min_step (or below floating-point resolution)"),
            Failure::NonFinite => write!(f, "the state became NaN or infinite"),
            Failure::BadTimes(why) => write!(f, "{why}"),
            Failure::Tensor(why) => write!(f, "tensor error: {why}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SolveError {
    pub failure: Failure,
    /// Where the solver stopped.
    pub t: f64,
    pub stats: Stats,
    /// The outputs computed before the failure.
    pub partial: Vec<State>,
    /// The last state reached (at `t`), when the solver got past the start.
    pub last: Option<State>,
}

impl SolveError {
    /// A tensor operation around a solve failed (building its state, reading its result)
    /// at time `t`, before or after any step: no stats, no outputs.
    pub fn tensor(e: candle_core::Error, t: f64) -> Self {
        SolveError {
            failure: Failure::Tensor(e.to_string()),
            t,
            stats: Stats::default(),
            partial: Vec::new(),
            last: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Solution {
    /// The state at each requested time (the first is y0).
    pub ys: Vec<State>,
    pub stats: Stats,
}

struct Run<'a> {
    field: &'a dyn Field,
    opts: &'a Options,
    stats: Stats,
    out: Vec<State>,
}

impl Run<'_> {
    fn f(&mut self, t: f64, y: &[Tensor]) -> Result<State> {
        self.stats.nfe += 1;
        self.field.eval(t, y)
    }

    fn fail(&mut self, failure: Failure, t: f64) -> SolveError {
        SolveError { failure, t, stats: self.stats, partial: std::mem::take(&mut self.out), last: None }
    }

    /// A failure after reaching state `y` at time `t`.
    fn fail_at(&mut self, failure: Failure, t: f64, y: &[Tensor]) -> SolveError {
        SolveError { last: Some(y.to_vec()), ..self.fail(failure, t) }
    }
}

/// y + h * sum_j w_j k_j, component by component (zero weights skipped).
fn combine(y: &[Tensor], h: f64, weights: &[f64], ks: &[State]) -> Result<State> {
    let mut out = Vec::with_capacity(y.len());
    for (i, yi) in y.iter().enumerate() {
        let mut acc = yi.clone();
        for (w, k) in weights.iter().zip(ks) {
            if *w != 0.0 {
                acc = (acc + (&k[i] * (h * w))?)?;
            }
        }
        out.push(acc);
    }
    Ok(out)
}

fn rms(t: &Tensor) -> Result<f64> {
    Ok(t.detach().to_dtype(candle_core::DType::F64)?.sqr()?.mean_all()?.to_scalar::<f64>()?.sqrt())
}

/// The largest RMS of err / (atol + rtol * max(|y0|, |y1|)) over controlled components.
fn error_ratio(err: &[Tensor], y0: &[Tensor], y1: &[Tensor], opts: &Options) -> Result<f64> {
    let mut worst = 0.0f64;
    for i in 0..err.len() {
        let Some((rtol, atol)) = opts.tolerance(i) else { continue };
        let scale = ((y0[i].detach().abs()?.maximum(&y1[i].detach().abs()?)? * rtol)? + atol)?;
        let r = rms(&(err[i].detach() / scale)?)?;
        worst = if r.is_nan() { f64::NAN } else { worst.max(r) };
    }
    Ok(worst)
}

fn norm_scaled(y: &[Tensor], y0: &[Tensor], opts: &Options) -> Result<f64> {
    let mut worst = 0.0f64;
    for i in 0..y.len() {
        let Some((rtol, atol)) = opts.tolerance(i) else { continue };
        let scale = ((y0[i].detach().abs()? * rtol)? + atol)?;
        worst = worst.max(rms(&(y[i].detach() / scale)?)?);
    }
    Ok(worst)
}

/// Hairer, Norsett & Wanner, Solving ODEs I, II.4 (as torchdiffeq's `_select_initial_step`).
fn initial_step(run: &mut Run, t0: f64, y0: &[Tensor], f0: &[Tensor], order: usize) -> Result<f64> {
    let d0 = norm_scaled(y0, y0, run.opts)?;
    let d1 = norm_scaled(f0, y0, run.opts)?;
    let h0 = if d0 < 1e-5 || d1 < 1e-5 { 1e-6 } else { 0.01 * d0 / d1 };
    let y1 = combine(y0, h0, &[1.0], &[f0.to_vec()])?;
    let f1 = run.f(t0 + h0, &y1)?;
    let diff: Vec<Tensor> = f1.iter().zip(f0).map(|(a, b)| a - b).collect::<Result<_>>()?;
    let d2 = norm_scaled(&diff, y0, run.opts)? / h0;
    let h1 = if d1 <= 1e-15 && d2 <= 1e-15 {
        (h0 * 1e-3).max(1e-6)
    } else {
        (0.01 / d1.max(d2)).powf(1.0 / (order as f64 + 1.0))
    };
    Ok((100.0 * h0).min(h1))
}

/// One Runge-Kutta step: the new state, the stages, and the error estimate if embedded.
fn rk_step(run: &mut Run, t: f64, y: &[Tensor], f0: &[Tensor], h: f64) -> Result<(State, Vec<State>, Option<State>)> {
    let tab = run.opts.method.tableau();
    let mut ks: Vec<State> = vec![f0.to_vec()];
    for s in 1..tab.c.len() {
        let ys = combine(y, h, &tab.a[s], &ks)?;
        ks.push(run.f(t + tab.c[s] * h, &ys)?);
    }
    let y1 = if tab.fsal {
        // The last stage was evaluated at y1 itself.
        combine(y, h, &tab.a[tab.c.len() - 1], &ks[..tab.c.len() - 1])?
    } else {
        combine(y, h, &tab.b, &ks)?
    };
    let err = match &tab.b_err {
        Some(e) => {
            let zeros: Vec<Tensor> = y.iter().map(|t| t.zeros_like()).collect::<Result<_>>()?;
            Some(combine(&zeros, h, e, &ks)?)
        }
        None => None,
    };
    Ok((y1, ks, err))
}

/// Dense output on [t0, t0 + h] at `t`.
fn interpolate(method: Method, y0: &[Tensor], y1: &[Tensor], ks: &[State], h: f64, x: f64) -> Result<State> {
    let f0 = &ks[0];
    let f1 = &ks[ks.len() - 1];
    let mut out = Vec::with_capacity(y0.len());
    match method {
        Method::Dopri5 => {
            // torchdiffeq's quartic through y0, y1, y_mid with slopes f0, f1.
            let ymid = combine(y0, h, &DOPRI5_MID, ks)?;
            for i in 0..y0.len() {
                let (a0, a1, m, g0, g1) = (&y0[i], &y1[i], &ymid[i], &f0[i], &f1[i]);
                let a = ((((g1 - g0)? * (2.0 * h))? - ((a1 + a0)? * 8.0)?)? + (m * 16.0)?)?;
                let b = ((((g0 * 5.0)? - (g1 * 3.0)?)? * h)? + (a0 * 18.0)? + (a1 * 14.0)? - (m * 32.0)?)?;
                let c = ((((g1 - (g0 * 4.0)?)? * h)? - (a0 * 11.0)? - (a1 * 5.0)?)? + (m * 16.0)?)?;
                let d = (g0 * h)?;
                let v = (a0 + (d * x)? + (c * x.powi(2))? + (b * x.powi(3))? + (a * x.powi(4))?)?;
                out.push(v);
            }
        }
        _ => return hermite(y0, f0, y1, f1, h, x),
    }
    Ok(out)
}

fn finite(y: &[Tensor]) -> Result<bool> {
    for t in y {
        let s = t.detach().to_dtype(candle_core::DType::F64)?.sum_all()?.to_scalar::<f64>()?;
        if !s.is_finite() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The field in reversed time s = -t: dy/ds = -f(-s, y). Integrating it forward over -ts
/// integrates f backwards over decreasing ts (as torchdiffeq does).
struct Reversed<'a>(&'a dyn Field);

impl Field for Reversed<'_> {
    fn eval(&self, s: f64, y: &[Tensor]) -> Result<State> {
        self.0.eval(-s, y)?.iter().map(|k| k.neg()).collect()
    }
}

/// Integrate from `ts[0]` through `ts`, returning the state at each. The times are strictly
/// increasing, or strictly decreasing to integrate backwards in time (sampling a flow from
/// its base distribution); steps and tolerances mean the same either way (a fixed step is
/// its length).
pub fn solve(
    field: &dyn Field,
    y0: &[Tensor],
    ts: &[f64],
    opts: &Options,
) -> std::result::Result<Solution, SolveError> {
    if ts.len() >= 2 && ts.iter().all(|t| t.is_finite()) && ts.windows(2).all(|w| w[1] < w[0]) {
        let back: Vec<f64> = ts.iter().map(|t| -t).collect();
        return solve(&Reversed(field), y0, &back, opts).map_err(|e| SolveError { t: -e.t, ..e });
    }
    let mut run = Run { field, opts, stats: Stats::default(), out: Vec::new() };
    if ts.is_empty() || ts.windows(2).any(|w| w[1] <= w[0]) || ts.iter().any(|t| !t.is_finite()) {
        return Err(run.fail(
            Failure::BadTimes("output times must be finite and strictly increasing or strictly decreasing".into()),
            ts.first().copied().unwrap_or(0.0),
        ));
    }
    let tensor = |run: &mut Run, e: candle_core::Error, t: f64| run.fail(Failure::Tensor(e.to_string()), t);
    run.out.push(y0.to_vec());
    let result = if opts.method.adaptive() { adaptive(&mut run, y0, ts) } else { fixed(&mut run, y0, ts) };
    match result {
        Ok(Ok(())) => Ok(Solution { ys: run.out, stats: run.stats }),
        Ok(Err(e)) => Err(e),
        Err(e) => {
            let t = ts[0];
            Err(tensor(&mut run, e, t))
        }
    }
}

type Step = std::result::Result<(), SolveError>;

fn fixed(run: &mut Run, y0: &[Tensor], ts: &[f64]) -> Result<Step> {
    let (t0, t_end) = (ts[0], ts[ts.len() - 1]);
    let h = run.opts.step.unwrap_or((t_end - t0) / 100.0);
    if h <= 0.0 || !h.is_finite() {
        return Ok(Err(run.fail(Failure::BadTimes("the step must be positive".into()), t0)));
    }
    // The grid t0, t0 + h, ..., t_end; a last step shorter than h by less than a part in
    // 1e9 is rounding, not a step of its own.
    let steps = ((t_end - t0) / h - 1e-9).ceil().max(1.0) as usize;
    let grid = |k: usize| if k == steps { t_end } else { t0 + k as f64 * h };
    let mut y = y0.to_vec();
    let mut t = t0;
    let mut f0 = run.f(t, &y)?;
    let mut next = 1;
    for k in 1..=steps {
        if run.stats.accepted >= run.opts.max_steps {
            return Ok(Err(run.fail_at(Failure::MaxSteps, t, &y)));
        }
        let t1 = grid(k);
        let hk = t1 - t;
        let (y1, _, _) = rk_step(run, t, &y, &f0, hk)?;
        if !finite(&y1)? {
            return Ok(Err(run.fail_at(Failure::NonFinite, t, &y)));
        }
        run.stats.accepted += 1;
        let at_grid = |s: f64| (s - t1).abs() <= 1e-9 * hk.abs();
        let between = next < ts.len() && ts[next] < t1 && !at_grid(ts[next]);
        // The slope at the new point is the next step's first stage: computing it here
        // costs nothing, except after the last step where only interpolation needs it.
        let f1 = if k < steps || between { Some(run.f(t1, &y1)?) } else { None };
        while next < ts.len() && (ts[next] < t1 || at_grid(ts[next])) {
            let v = match &f1 {
                Some(f1) if !at_grid(ts[next]) => hermite(&y, &f0, &y1, f1, hk, (ts[next] - t) / hk)?,
                _ => y1.clone(),
            };
            run.out.push(v);
            next += 1;
        }
        y = y1;
        t = t1;
        if let Some(f1) = f1 {
            f0 = f1;
        }
    }
    Ok(Ok(()))
}

/// Cubic Hermite interpolation on [t0, t0 + h] at fraction x, through (y0, f0) and (y1, f1).
fn hermite(y0: &[Tensor], f0: &[Tensor], y1: &[Tensor], f1: &[Tensor], h: f64, x: f64) -> Result<State> {
    let (h00, h10, h01, h11) = (
        2.0 * x.powi(3) - 3.0 * x.powi(2) + 1.0,
        x.powi(3) - 2.0 * x.powi(2) + x,
        -2.0 * x.powi(3) + 3.0 * x.powi(2),
        x.powi(3) - x.powi(2),
    );
    let mut out = Vec::with_capacity(y0.len());
    for i in 0..y0.len() {
        out.push(((&y0[i] * h00)? + (&f0[i] * (h10 * h))? + (&y1[i] * h01)? + (&f1[i] * (h11 * h))?)?);
    }
    Ok(out)
}

fn adaptive(run: &mut Run, y0: &[Tensor], ts: &[f64]) -> Result<Step> {
    let order = run.opts.method.order();
    let mut t = ts[0];
    let mut y = y0.to_vec();
    let mut f0 = run.f(t, &y)?;
    let mut h = match run.opts.first_step {
        Some(h) => h,
        None => initial_step(run, t, &y, &f0, order)?,
    };
    let mut next = 1;
    while next < ts.len() {
        if run.stats.accepted + run.stats.rejected >= run.opts.max_steps {
            return Ok(Err(run.fail_at(Failure::MaxSteps, t, &y)));
        }
        h = h.min(run.opts.max_step);
        if h < run.opts.min_step || t + h == t {
            return Ok(Err(run.fail_at(Failure::StepUnderflow, t, &y)));
        }
        let (y1, ks, err) = rk_step(run, t, &y, &f0, h)?;
        let ratio = match &err {
            Some(e) => error_ratio(e, &y, &y1, run.opts)?,
            None => 0.0,
        };
        if ratio.is_finite() && ratio <= 1.0 {
            run.stats.accepted += 1;
            let t1 = t + h;
            while next < ts.len() && ts[next] <= t1 {
                let x = (ts[next] - t) / h;
                let v = if ts[next] == t1 { y1.clone() } else { interpolate(run.opts.method, &y, &y1, &ks, h, x)? };
                run.out.push(v);
                next += 1;
            }
            f0 = ks[ks.len() - 1].clone();
            y = y1;
            t = t1;
        } else {
            run.stats.rejected += 1;
        }
        h *= if !ratio.is_finite() {
            0.2
        } else if ratio == 0.0 {
            10.0
        } else {
            let dfactor = if ratio < 1.0 { 1.0 } else { 0.2 };
            (0.9 / ratio.powf(1.0 / order as f64)).clamp(dfactor, 10.0)
        };
    }
    Ok(Ok(()))
}
