//! ODE solvers and analytic vector fields as config values, and the `odeint` and
//! `solver_table` stages.

use crate::diag::{Code, Diag};
use crate::lang::{
    Args, Builtin, CVal, Config, Dflt, Kind, METRICS, Metrics, Output, Param, Registry, Role, RunCtx, Stage,
    StaticCall, Ty, VKind, show_number,
};
use crate::ode::{AnalyticField, Failure, Method, Options, solve};
use crate::plots::{Axis, LinePlot, Scaling, Series};
use candle_core::{Device, Tensor};
use std::any::TypeId;
use std::collections::BTreeMap;

pub static SOLVER: Kind = Kind {
    name: "solver",
    describe: "an ODE solver such as `dopri5(...)`",
    supers: &[],
    role: Role::Config {
        noun: "solver",
        heading: "solvers",
        lowers_to: TypeId::of::<Options>,
        lowers_to_name: "ode::Options",
        chains: false,
    },
};

pub static FIELD: Kind = Kind {
    name: "field",
    describe: "a vector field such as `van_der_pol(mu: 1.0)`",
    supers: &[],
    role: Role::Config {
        noun: "vector field",
        heading: "vector fields",
        lowers_to: TypeId::of::<AnalyticField>,
        lowers_to_name: "ode::AnalyticField",
        chains: false,
    },
};

/// The step of a fixed-step solver when none is given.
const DEFAULT_STEP: f64 = 0.01;

fn fixed(method: Method, doc: &'static str) -> Builtin {
    Builtin::config(
        &SOLVER,
        method.name(),
        doc,
        vec![Param::new("step", Ty::Float, Dflt::Float(DEFAULT_STEP), "step size").positive()],
        move |_: &Registry, a: &Args| Ok(Options { step: Some(a.need_float("step")?), ..Options::new(method) }),
    )
}

/// The adaptive solvers' defaults are the numerical library's (`Options::new`).
fn adaptive(method: Method, doc: &'static str) -> Builtin {
    let d = Options::new(method);
    Builtin::config(
        &SOLVER,
        method.name(),
        doc,
        vec![
            Param::new("rtol", Ty::Float, Dflt::Float(d.rtol), "relative tolerance (torchdiffeq's default)").positive(),
            Param::new("atol", Ty::Float, Dflt::Float(d.atol), "absolute tolerance (torchdiffeq's default)").positive(),
            Param::new("first_step", Ty::opt(Ty::Float), Dflt::None, "initial step (default: Hairer's selection)")
                .positive(),
            Param::new("min_step", Ty::Float, Dflt::Float(d.min_step), "fail (R2003) below this step")
                .within(Some(0.0), None),
            Param::new("max_step", Ty::opt(Ty::Float), Dflt::None, "largest step").positive(),
            Param::new(
                "max_steps",
                Ty::Int,
                Dflt::Int(d.max_steps as i64),
                "fail (R2002) after this many attempted steps",
            )
            .within(Some(1.0), None),
        ],
        move |_: &Registry, a: &Args| {
            Ok(Options {
                rtol: a.need_float("rtol")?,
                atol: a.need_float("atol")?,
                first_step: a.float("first_step"),
                min_step: a.need_float("min_step")?,
                max_step: a.float("max_step").unwrap_or(f64::INFINITY),
                max_steps: a.need_usize("max_steps")?,
                ..Options::new(method)
            })
        },
    )
}

fn field(
    name: &'static str,
    doc: &'static str,
    params: Vec<Param>,
    lower: fn(&Args) -> Result<AnalyticField, String>,
) -> Builtin {
    Builtin::config(&FIELD, name, doc, params, move |_: &Registry, a: &Args| lower(a))
}

pub fn builtins() -> Vec<Builtin> {
    vec![
        fixed(Method::Euler, "Forward Euler, order 1, fixed step."),
        fixed(Method::Midpoint, "Explicit midpoint, order 2, fixed step."),
        fixed(Method::Rk4, "Classic Runge-Kutta, order 4, fixed step."),
        adaptive(Method::Bosh3, "Bogacki-Shampine 3(2), adaptive step, cubic Hermite dense output."),
        adaptive(
            Method::Dopri5,
            "Dormand-Prince 5(4), adaptive step with torchdiffeq's controller, quartic dense output.",
        ),
        field(
            "van_der_pol",
            "x' = p, p' = mu (1 - x^2) p - x.",
            vec![Param::new("mu", Ty::Float, Dflt::Float(1.0), "damping").within(Some(0.0), None)],
            |a| Ok(AnalyticField::VanDerPol { mu: a.need_float("mu")? }),
        ),
        field(
            "lotka_volterra",
            "x' = alpha x - beta x y, y' = delta x y - gamma y.",
            vec![
                Param::new("alpha", Ty::Float, Dflt::Float(1.5), "prey growth").positive(),
                Param::new("beta", Ty::Float, Dflt::Float(1.0), "predation").positive(),
                Param::new("delta", Ty::Float, Dflt::Float(1.0), "predator growth").positive(),
                Param::new("gamma", Ty::Float, Dflt::Float(3.0), "predator death").positive(),
            ],
            |a| {
                Ok(AnalyticField::LotkaVolterra {
                    alpha: a.need_float("alpha")?,
                    beta: a.need_float("beta")?,
                    delta: a.need_float("delta")?,
                    gamma: a.need_float("gamma")?,
                })
            },
        ),
        field(
            "linear_field",
            "y' = A y.",
            vec![Param::new("matrix", Ty::list(Ty::list(Ty::Float)), Dflt::Required, "A, as a list of rows")],
            |a| {
                let rows = match &a.need("matrix")?.kind {
                    VKind::List(rows) => rows.iter().map(|r| r.numbers().unwrap_or_default()).collect(),
                    _ => return Err("argument `matrix` is not a list of rows".into()),
                };
                Ok(AnalyticField::Linear { matrix: rows })
            },
        ),
        Builtin::stage(
            "solver_table",
            "Every solver on one problem: error at t1 against a reference solve, NFE and steps, as a table (CSV, report metrics) and a work-precision plot.",
            vec![
                Param::new("field", Ty::kind(&FIELD), Dflt::Required, "the vector field"),
                Param::new("y0", Ty::list(Ty::Float), Dflt::Required, "initial state"),
                Param::new("t1", Ty::Float, Dflt::Required, "end time (from 0)"),
                Param::new("solvers", Ty::list(Ty::kind(&SOLVER)), Dflt::Required, "the solvers to compare"),
                Param::new("labels", Ty::list(Ty::Str), Dflt::Syms(&[]), "names in the table (default: solver names)"),
                Param::new(
                    "reference",
                    Ty::kind(&SOLVER),
                    Dflt::Required,
                    "a much tighter solve, e.g. `rk4(step: 1e-4)`",
                ),
            ],
            SolverTable,
        ),
        Builtin::stage(
            "odeint",
            "Integrate a vector field from y0 over [t0, t1]: the trajectory (CSV), a phase plot (PNG), and the solver's NFE and step counts.",
            vec![
                Param::new("field", Ty::kind(&FIELD), Dflt::Required, "the vector field"),
                Param::new("y0", Ty::list(Ty::Float), Dflt::Required, "initial state"),
                Param::new("t1", Ty::Float, Dflt::Required, "end time"),
                Param::new("t0", Ty::Float, Dflt::Float(0.0), "start time"),
                Param::new("points", Ty::Int, Dflt::Int(201), "output times, evenly spaced")
                    .within(Some(2.0), Some(1_000_000.0)),
                Param::new("solver", Ty::kind(&SOLVER), Dflt::Config("dopri5"), "the method and its options"),
                Param::new(
                    "on_failure",
                    Ty::choice(&["error", "return"]),
                    Dflt::Str("error"),
                    "`return` keeps a flagged partial trajectory",
                ),
            ],
            Odeint,
        ),
    ]
}

fn floats(v: &CVal) -> Vec<f64> {
    v.numbers().unwrap_or_default()
}

/// The solvers of a list argument, each with its label and lowered options.
fn solvers(cx: &RunCtx, param: &str) -> Result<Vec<(Config, Options)>, Diag> {
    let configs: Vec<Config> = match cx.args().get(param).map(|v| &v.kind) {
        Some(VKind::List(items)) => items
            .iter()
            .filter_map(|i| if let VKind::Config(c) = &i.kind { Some((**c).clone()) } else { None })
            .collect(),
        _ => Vec::new(),
    };
    configs.into_iter().map(|c| cx.lower_config(&c).map(|o| (c, o))).collect()
}

/// The code and the fix for a failed solve.
pub(super) fn failure_code(f: &Failure) -> (Code, &'static str) {
    match f {
        Failure::MaxSteps => (
            Code::R2002,
            "raise `max_steps` or loosen the tolerances; stiff problems need many small steps with explicit methods",
        ),
        Failure::StepUnderflow => (
            Code::R2003,
            "the solution changes faster than `min_step` can follow (a stiff problem, or one that blows up): lower `min_step` or loosen the tolerances",
        ),
        Failure::NonFinite => (
            Code::R2004,
            "the solution blows up: shorten the interval, take a smaller step, or check the field's parameters",
        ),
        _ => (Code::R1006, "check the solver's options"),
    }
}

/// A solver as a table shows it: `rk4(h=0.01)`, `dopri5(1e-6)` (rtol = atol), or
/// `dopri5(rtol=1e-6, atol=1e-8)`.
pub fn solver_label(c: &Config) -> String {
    let num = show_number;
    match (c.args.float("step"), c.args.float("rtol"), c.args.float("atol")) {
        (Some(h), _, _) => format!("{}(h={})", c.builtin, num(h)),
        (None, Some(r), Some(a)) if r == a => format!("{}({})", c.builtin, num(r)),
        (None, Some(r), Some(a)) => format!("{}(rtol={}, atol={})", c.builtin, num(r), num(a)),
        _ => c.builtin.to_string(),
    }
}

struct Odeint;

impl Stage for Odeint {
    fn output(&self) -> &'static Kind {
        &METRICS
    }
    fn metrics(&self, args: &Args) -> Vec<String> {
        let dim = args.floats("y0").map_or(0, |v| v.len());
        let mut f: Vec<String> =
            ["nfe", "accepted", "rejected", "failed", "t_reached"].iter().map(|f| f.to_string()).collect();
        f.extend((0..dim).map(|i| format!("final_{i}")));
        f
    }
    fn check(&self, cx: &StaticCall) -> Vec<Diag> {
        let (Some(config), Some(field), Some(y0)) =
            (cx.args.config("field"), cx.lower::<AnalyticField>("field"), cx.args.get("y0"))
        else {
            return vec![];
        };
        let mut d = Vec::new();
        match field.dim() {
            Err(e) => d.push(
                Diag::new(Code::E4001, e)
                    .at(cx.args.get("field").map_or(cx.span, |v| v.span), "not a square matrix")
                    .hint("write `linear_field(matrix: [[0, 1], [-1, 0]])`"),
            ),
            Ok(n) if n != floats(y0).len() => d.push(
                Diag::new(
                    Code::E4001,
                    format!(
                        "`{}` acts on states of dimension {n}, but y0 has {} values",
                        config.builtin,
                        floats(y0).len()
                    ),
                )
                .at(y0.span, "wrong dimension")
                .hint(format!("give y0 {n} values")),
            ),
            Ok(_) => {}
        }
        if let (Some(t0), Some(t1)) = (cx.args.float("t0"), cx.args.float("t1"))
            && t1 <= t0
        {
            d.push(
                Diag::new(Code::E2006, format!("t1 ({t1}) must be after t0 ({t0})"))
                    .at(cx.args.get("t1").map_or(cx.span, |v| v.span), "not after t0")
                    .hint("integration runs forward in time"),
            );
        }
        d
    }
    fn run(&self, cx: &mut RunCtx) -> Result<Output, Diag> {
        let field: AnalyticField = cx.lower("field")?;
        let opts: Options = cx.lower("solver")?;
        let a = cx.args();
        let y0 = floats(a.get("y0").ok_or_else(|| cx.internal("no y0"))?);
        let (t0, t1) = (a.float("t0").unwrap_or(0.0), a.float("t1").unwrap_or(1.0));
        let points = a.int("points").unwrap_or(201) as usize;
        let keep_partial = a.text("on_failure") == Some("return");
        let ts: Vec<f64> = (0..points).map(|i| t0 + (t1 - t0) * i as f64 / (points - 1) as f64).collect();
        let y0t = Tensor::new(y0.as_slice(), &Device::Cpu).map_err(|e| cx.compute_error("the initial state", e))?;
        let f = |_t: f64, y: &[Tensor]| Ok(vec![field.eval(&y[0])?]);
        // Each row is (t, state): the requested times reached, and on a kept failure the
        // time and state the solver got to.
        let to_row = |s: &[Tensor]| s[0].to_vec1::<f64>().unwrap_or_default();
        let (rows, stats, reached): (Vec<(f64, Vec<f64>)>, _, Option<f64>) =
            match solve(&f, &[y0t], &ts, &opts) {
                Ok(s) => (ts.iter().copied().zip(s.ys.iter().map(|s| to_row(s))).collect(), s.stats, None),
                Err(e) => {
                    let (code, fix) = failure_code(&e.failure);
                    let diag = cx
                    .error(
                        code,
                        format!(
                            "`{}` stopped at t = {:.6}: {} after {} accepted and {} rejected steps ({} evaluations)",
                            opts.method.name(), e.t, e.failure, e.stats.accepted, e.stats.rejected, e.stats.nfe
                        ),
                    )
                    .hint(fix)
                    .hint("`on_failure: \"return\"` keeps the trajectory up to the failure");
                    if !keep_partial {
                        return Err(diag);
                    }
                    let mut rows: Vec<(f64, Vec<f64>)> =
                        ts.iter().copied().zip(e.partial.iter().map(|s| to_row(s))).collect();
                    if let Some(last) = &e.last
                        && rows.last().is_none_or(|(t, _)| *t < e.t)
                    {
                        rows.push((e.t, to_row(last)));
                    }
                    cx.warn(code, format!("the solve failed at t = {}; the trajectory up to there is kept", e.t));
                    (rows, e.stats, Some(e.t))
                }
            };
        let mut csv = String::from("t");
        for i in 0..y0.len() {
            csv.push_str(&format!(",y{i}"));
        }
        csv.push('\n');
        for (t, r) in &rows {
            csv.push_str(&format!("{t}"));
            for v in r {
                csv.push_str(&format!(",{v}"));
            }
            csv.push('\n');
        }
        let mut files = vec![cx.write_file("trajectory.csv", csv.as_bytes())?];
        let series: Vec<Vec<f64>> =
            (0..y0.len()).map(|i| rows.iter().map(|r| r.1.get(i).copied().unwrap_or(f64::NAN)).collect()).collect();
        let tt: Vec<f64> = rows.iter().map(|r| r.0).collect();
        let (name, xs, ys, x, y) = if y0.len() >= 2 {
            ("trajectory", &series[0], &series[1], "y0", "y1")
        } else {
            ("y0", &tt, &series[0], "t", "y0")
        };
        let plot = LinePlot {
            title: &super::plots::title(cx, || format!("Solution from t = 0 to {t1}: {y} against {x}")),
            x: Axis::new(x, Scaling::Linear),
            y: Axis::new(y, Scaling::Linear),
            series: vec![Series::xy(name, xs, ys)],
        };
        files.extend(super::plots::write_figure(cx, "phase", plot.render())?);
        let mut metrics = Metrics::new();
        metrics.insert("nfe".into(), stats.nfe as f64);
        metrics.insert("accepted".into(), stats.accepted as f64);
        metrics.insert("rejected".into(), stats.rejected as f64);
        metrics.insert("failed".into(), if reached.is_some() { 1.0 } else { 0.0 });
        metrics.insert("t_reached".into(), reached.unwrap_or(t1));
        if let Some((_, last)) = rows.last() {
            for (i, v) in last.iter().enumerate() {
                metrics.insert(format!("final_{i}"), *v);
            }
        }
        Ok(Output::nothing(&METRICS, metrics, files))
    }
}

/// The state at t1, or the failure's code, fix and description.
fn final_state(
    field: &AnalyticField,
    y0: &[f64],
    t1: f64,
    opts: &Options,
) -> Result<(Vec<f64>, crate::ode::Stats), (Code, &'static str, String)> {
    let tensor = |e: candle_core::Error| (Code::R1006, "check the field's parameters", e.to_string());
    let y = Tensor::new(y0, &Device::Cpu).map_err(tensor)?;
    let f = |_t: f64, y: &[Tensor]| Ok(vec![field.eval(&y[0])?]);
    let sol = solve(&f, &[y], &[0.0, t1], opts).map_err(|e| {
        let (code, fix) = failure_code(&e.failure);
        (code, fix, format!("{} at t = {}", e.failure, e.t))
    })?;
    Ok((sol.ys[1][0].to_vec1::<f64>().map_err(tensor)?, sol.stats))
}

/// One method's points of a work-precision plot: NFE, error, the setting of each.
type WorkPrecision = (Vec<f64>, Vec<f64>, Vec<String>);

struct SolverTable;

impl Stage for SolverTable {
    fn output(&self) -> &'static Kind {
        &METRICS
    }
    fn check(&self, cx: &StaticCall) -> Vec<Diag> {
        Odeint.check(cx)
    }
    fn run(&self, cx: &mut RunCtx) -> Result<Output, Diag> {
        let field: AnalyticField = cx.lower("field")?;
        let reference: Options = cx.lower("reference")?;
        let a = cx.args();
        let y0 = floats(a.get("y0").ok_or_else(|| cx.internal("no y0"))?);
        let t1 = a.float("t1").unwrap_or(1.0);
        let (exact, _) = final_state(&field, &y0, t1, &reference)
            .map_err(|(code, fix, e)| cx.error(code, format!("the reference solve failed: {e}")).hint(fix))?;
        let solvers = solvers(cx, "solvers")?;
        let labels = a.texts("labels");
        let mut metrics = Metrics::new();
        let mut csv = String::from("solver,error,nfe,accepted,rejected\n");
        let mut by_method: BTreeMap<String, WorkPrecision> = BTreeMap::new();
        for (k, (c, opts)) in solvers.iter().enumerate() {
            let label = labels.get(k).cloned().unwrap_or_else(|| solver_label(c));
            let (y, stats) = final_state(&field, &y0, t1, opts)
                .map_err(|(code, fix, e)| cx.error(code, format!("`{label}` failed: {e}")).hint(fix))?;
            let err = y.iter().zip(&exact).map(|(p, q)| (p - q).powi(2)).sum::<f64>().sqrt();
            csv.push_str(&format!("{label},{err:e},{},{},{}\n", stats.nfe, stats.accepted, stats.rejected));
            metrics.insert(format!("{label}.error"), err);
            metrics.insert(format!("{label}.nfe"), stats.nfe as f64);
            let e = by_method.entry(opts.method.name().to_string()).or_default();
            e.0.push(stats.nfe as f64);
            e.1.push(err.max(1e-16));
            // The point's label: the setting that differs along the method's curve.
            let named = format!("{}(", c.builtin);
            let setting = (label.strip_prefix(&named).and_then(|r| r.strip_suffix(')')))
                .or_else(|| label.strip_prefix(&format!("{}_", c.builtin)));
            e.2.push(setting.unwrap_or(&label).to_string());
        }
        let mut files = vec![cx.write_file("table.csv", csv.as_bytes())?];
        let plot = LinePlot {
            title: &super::plots::title(cx, || format!("Work-precision: error at t = {t1} against function evaluations")),
            x: Axis::new("function evaluations (NFE)", Scaling::Log),
            y: Axis::new("error (l2, against the reference)", Scaling::Log),
            series: by_method
                .iter()
                .map(|(n, (nfe, err, labels))| Series { name: n, values: err, xs: Some(nfe), labels: Some(labels) })
                .collect(),
        };
        files.extend(super::plots::write_figure(cx, "work_precision", plot.render())?);
        Ok(Output::nothing(&METRICS, metrics, files))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(name: &'static str, args: &[(&'static str, f64)]) -> Config {
        let span = crate::diag::Span::default();
        let args = args.iter().map(|(n, v)| ((*n).into(), CVal::new(VKind::Float(*v), span))).collect();
        Config { builtin: name.into(), args: Args(args) }
    }

    #[test]
    fn solver_labels_name_the_method_and_its_setting() {
        assert_eq!(solver_label(&config("rk4", &[("step", 0.01)])), "rk4(h=0.01)");
        assert_eq!(solver_label(&config("euler", &[("step", 1e-3)])), "euler(h=0.001)");
        assert_eq!(solver_label(&config("dopri5", &[("rtol", 1e-6), ("atol", 1e-6)])), "dopri5(1e-6)");
        assert_eq!(solver_label(&config("bosh3", &[("rtol", 1e-6), ("atol", 1e-8)])), "bosh3(rtol=1e-6, atol=1e-8)");
    }
}
