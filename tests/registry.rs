//! Invariants of the registry the families compose: names are unique, every config built-in
//! lowers its defaults into its kind's type, every kind is documented and every result kind
//! can be read back, every stage emits exactly the numbers it declares, and consumers read
//! their inputs through the same save and load whether fresh or cached.

mod common;

use common::{render, run_opts, shared_data_or_skip};
use flowline::diag::{SourceMap, Span};
use flowline::lang::{Args, Body, Builtin, CVal, Config, Dflt, Registry, Role, Ty, VKind, metric_names};
use flowline::{CheckOptions, Plan, Report};
use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

fn reg() -> &'static Registry {
    flowline::registry()
}

#[test]
fn no_name_is_defined_twice() {
    assert!(reg().duplicates().is_empty(), "{:?}", reg().duplicates());
}

/// A value for a required parameter, for the lowering test.
fn sample(ty: &Ty, min: Option<f64>) -> CVal {
    let span = Span::default();
    let v = |k| CVal::new(k, span);
    match ty {
        Ty::Int => v(VKind::Int(min.map_or(2, |m| m.max(2.0) as i64))),
        Ty::Float => v(VKind::Float(1.0)),
        Ty::Str => v(VKind::Str("x".into())),
        Ty::Bool => v(VKind::Bool(false)),
        Ty::List(inner) => match inner.as_ref() {
            Ty::List(_) => v(VKind::List(vec![
                v(VKind::List(vec![sample(&Ty::Float, None), sample(&Ty::Float, None)])),
                v(VKind::List(vec![sample(&Ty::Float, None), sample(&Ty::Float, None)])),
            ])),
            t => v(VKind::List(vec![sample(t, None)])),
        },
        Ty::Kind(k) if k.name == "layer" => config(reg().find("relu").unwrap()),
        Ty::Kind(k) if k.name == "attack" => config(reg().find("pgd").unwrap()),
        other => panic!("no sample value for a required {other}"),
    }
}

/// A call of a config built-in with its defaults and sample values for what is required.
fn config(b: &Builtin) -> CVal {
    let span = Span::default();
    let args = b
        .params
        .iter()
        .map(|p| {
            let v = match &p.default {
                Dflt::Required => sample(&p.ty, p.range.and_then(|r| r.min)),
                Dflt::None => CVal::new(VKind::None, span),
                Dflt::Int(i) => CVal::new(VKind::Int(*i), span),
                Dflt::Float(f) => CVal::new(VKind::Float(*f), span),
                Dflt::Str(s) => CVal::new(VKind::Str(s.to_string()), span),
                Dflt::Sym(s) => CVal::new(VKind::Sym(s.to_string()), span),
                Dflt::Bool(x) => CVal::new(VKind::Bool(*x), span),
                Dflt::Config(name) => config(reg().find(name).unwrap()),
                Dflt::Syms(items) => CVal::new(
                    VKind::List(items.iter().map(|s| CVal::new(VKind::Sym(s.to_string()), span)).collect()),
                    span,
                ),
            };
            (p.name.into(), v)
        })
        .collect();
    CVal::new(VKind::Config(Arc::new(Config { builtin: b.name.into(), args: Args(args) })), span)
}

/// Every config family's built-ins lower, with their defaults, into the numerical library's
/// type their kind declares; no name falls through to another's.
#[test]
fn every_config_lowers_its_defaults_into_its_kinds_type() {
    let mut lowered = 0;
    for b in reg().all() {
        let Body::Config { kind, lower } = &b.body else { continue };
        let Role::Config { lowers_to, lowers_to_name, .. } = kind.role else {
            panic!("`{}` is a config of {}, which is no config kind", b.name, kind.name)
        };
        let VKind::Config(c) = config(b).kind else { unreachable!() };
        let value = lower(reg(), &c.args).unwrap_or_else(|e| panic!("`{}` does not lower its defaults: {e}", b.name));
        assert_eq!(
            <dyn Any>::type_id(&*value),
            lowers_to(),
            "`{}` lowers into another type than {lowers_to_name}",
            b.name
        );
        lowered += 1;
    }
    assert!(lowered > 30, "only {lowered} configs");
}

/// Every kind is documented in `flowline stages`; configs under their kind's heading; every
/// result kind a stage makes can be read back from its folder.
#[test]
fn every_kind_and_builtin_is_listed_and_every_result_can_be_reloaded() {
    let listing = flowline::help::listing(reg());
    for k in reg().kinds() {
        assert!(listing.contains(&format!("  {:<14} {}", k.name, k.describe)), "kind `{}` is not listed", k.name);
        match &k.role {
            Role::Result { load, .. } => assert!(load.is_some(), "`{}` results cannot be read back", k.name),
            Role::Config { heading, .. } => {
                assert!(
                    reg().all().iter().any(|b| b.config_kind().is_some_and(|c| c == *k)),
                    "no built-in makes {}",
                    k.name
                );
                assert!(listing.contains(&format!("{heading}:\n")), "no heading for {}", k.name);
            }
            Role::Abstract => {
                assert!(reg().kinds().iter().any(|s| s.supers.contains(k)), "`{}` has no subkind", k.name)
            }
        }
    }
    for b in reg().all() {
        let section = listing.split(&format!("{}:\n", b.heading())).nth(1).unwrap_or("");
        assert!(section.contains(&format!("  {}(", b.name)), "`{}` is missing under {}", b.name, b.heading());
        if let Some(s) = b.as_stage() {
            assert!(
                matches!(s.output().role, Role::Result { .. }),
                "`{}` makes {}, no result kind",
                b.name,
                s.output().name
            );
        }
    }
}

fn plan_of(src: &str) -> (Plan, SourceMap) {
    let mut sources = SourceMap::new();
    let id = sources.add("t.flow", None, src.to_string());
    let plan = flowline::check(&mut sources, id, &CheckOptions::default())
        .and_then(flowline::plan)
        .unwrap_or_else(|d| panic!("{}", render(&d, &sources)));
    (plan, sources)
}

fn run(plan: &Plan, sources: &SourceMap, out: &Path) -> Report {
    let mut opts = run_opts(out, "t.flow");
    opts.quiet = true;
    flowline::run(plan, &opts).unwrap_or_else(|f| panic!("{}", render(&f.diags, sources)))
}

/// Each executed stage emits exactly the numbers it declares (its kind's and its own).
fn assert_emits_what_it_declares(plan: &Plan, report: &Report) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for node in plan.nodes() {
        let s = report.stages.iter().find(|s| s.name == node.name).unwrap();
        assert_eq!(s.status, "executed", "{}", node.name);
        let stage = reg().stage(&node.builtin).unwrap();
        let declared: BTreeSet<String> = metric_names(stage, &node.args).into_iter().collect();
        let emitted: BTreeSet<String> = s.metrics.keys().filter(|k| !k.contains('.')).cloned().collect();
        assert_eq!(emitted, declared, "`{}` ({}) emits other numbers than it declares", node.name, node.builtin);
        seen.insert(node.builtin.to_string());
    }
    seen
}

/// Stages that need images, covered with the real datasets.
const IMAGE_STAGES: [&str; 8] =
    ["downsample", "image_grid", "misclassified", "sample_grid", "invert", "flip", "noise_images", "constant_images"];

/// The stage built-ins a coverage run must exercise: those reading the data directory and
/// those needing images with the real datasets, the others on built-in data.
fn stages_to_cover(with_data: bool) -> BTreeSet<String> {
    reg()
        .all()
        .iter()
        .filter_map(|b| b.as_stage().map(|s| (b.name, s.reads_data_dir() || IMAGE_STAGES.contains(&b.name))))
        .filter(|(_, needs)| *needs == with_data)
        .map(|(n, _)| n.to_string())
        .collect()
}

/// Every stage on built-in data, with the parameters that change what it reports.
const COVERAGE: &str = r#"
use std.models
seed 3
let data = toy2d("moons", n: 120, noise: 0.1)
let parts = split(data, fraction: 0.75)
let soft = dequantize(logit(data, alpha: 0.05), levels: 256)
let fit = train(mlp(hidden: 8, classes: 2), parts.first, valid: parts.second, iters: 60, batch: 32, eval_every: 20, optimizer: adam(lr: 1e-2))
let plain = train(linear(4) |> farkas_linear(3) |> relu |> linear(2), data, iters: 3, batch: 32)
let score = evaluate(fit, data, metrics: [accuracy, loss])
let adv = attack(fit, data, using: ddn(steps: 50), count: 8, bounds: none, eps: [0.1, 0.5])
let adv2 = attack(fit, data, using: pgd(norm: linf, steps: 5, bisections: 3, eps_max: 3.0), count: 8, bounds: [-3, 3])
let table = attack_table([adv, adv2], labels: ["ddn", "pgd"])
let by_norm = attack_report([adv, adv2], labels: ["ddn", "pgd"])
let robust = robustness_plot([adv, adv2])
let points = scatter_plot(soft)
let regions = decision_plot(fit, data, grid: 20, adversarial: adv)
let curves = curves_plot([fit, plain], metric: accuracy)
let orbit = odeint(van_der_pol(mu: 1.0), y0: [2.0, 0.0], t1: 1.0, points: 11)
let solvers = solver_table(lotka_volterra(), y0: [1.0, 1.0], t1: 1.0, solvers: [rk4(step: 0.1), dopri5(rtol: 1e-6, atol: 1e-6)], reference: rk4(step: 0.001))
let flow = train(cnf(concat_squash(8) |> tanh |> concat_squash(2), t1: 0.5, trace: hutchinson(noise: rademacher), adjoint: true), data, regularizers: [kinetic(0.1), jacobian_frobenius(0.1)], iters: 3, batch: 32)
let flow2 = train(cnf(concat_linear(2, 8) |> softplus |> concat_linear(2), t1: 0.5, solver: rk4(step: 0.1)), data, iters: 2, batch: 32)
let likelihood = evaluate(flow, data, metrics: [nll, bits_per_dim, nfe])
let density = density_plot(flow, grid: 8, samples: 50)
let densities = density_plot([flow, flow2], grid: 8, samples: 50)
let nfe = flow_curves([flow, flow2], metric: nfe_backward)
let pot = train(potential_flow(phi: linear(2, 4) |> softplus |> linear(4, 1), psi: linear(2, 4) |> tanh |> linear(4, 1), heat: gauss_hermite, nodes: 2), data, loss: entropic_dual, iters: 3, batch: 32)
let pot_score = evaluate(pot, data, metrics: [nll, nll_closed_form, nfe])
let pot_density = density_plot(pot, grid: 8, samples: 20)
let fields = flow_plot([pot, flow2], grid: 4, times: [0.0, 1.0])
let robust_fit = train(mlp(hidden: 8, classes: 2), data, iters: 3, batch: 32, regularizers: [input_gradient(0.1), adversarial(pgd(norm: l2, steps: 2), eps: 0.1), gaussian_noise(0.1)])
let bounds = robustness_bounds(fit, data, attacks: [adv, adv2], labels: ["ddn", "pgd"], count: 8, power_iters: 2)
let conf = confidence(fit, calibration: parts.first, test: parts.second, scores: [neg_log_pmax, entropy, neg_log_topk, grad_norm], bins: 4, k: [1, 2])
let sure = confident_predict(fit, histogram: conf, data: data)
let smooth = heat_smoothing(fit, data, sigma: 0.3, batch: 32, check: parts.second, check_count: 3, draws: 50)
let cert = certify(fit, data, method: randomized_smoothing(0.3, n: 200, n0: 20), count: 4, attacks: [ddn(steps: 20)], attack_count: 2, attack_draws: 4, predict_draws: 200)
let cert2 = certify(smooth, data, method: gaussian_average(0.3), count: 8, attacks: [ddn(steps: 20)])
let certs = certified_plot([cert, cert2])
let line = uniform(dims: 1, n: 64, low: -2.0, high: 2.0)
let reg = regress(mlp(hidden: 8, classes: 1), line, function: "sine", iters: 5, batch: 16)
let reg_avg = heat_smoothing(reg, line, sigma: 0.3, outputs: identity, batch: 16, check: line, check_count: 2, draws: 20)
let box = uniform(dims: 2, n: 20, low: -3.0, high: 3.0)
let by_density = ood(flow, inliers: parts.second, outliers: [box], bins: 8)
let by_softmax = ood(fit, inliers: parts.second, outliers: [box, data], labels: ["box", "all"])
"#;

#[test]
fn every_stage_emits_the_numbers_it_declares_and_reads_cached_inputs_like_fresh_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let (plan, sources) = plan_of(COVERAGE);
    let first = run(&plan, &sources, tmp.path());
    let mut seen = assert_emits_what_it_declares(&plan, &first);

    // A model from a file, read back with the layers it was trained with.
    let weights = tmp.path().join("plain/model.safetensors");
    let src = format!(
        "let data = toy2d(\"moons\", n: 50)\nlet m = load_model(path: \"{}\", arch: linear(4) |> farkas_linear(3) |> relu |> linear(2), input: [2])\nlet e = evaluate(m, data)\n",
        weights.display()
    );
    let (loaded, sources2) = plan_of(&src);
    let other = tempfile::tempdir().unwrap();
    seen.extend(assert_emits_what_it_declares(&loaded, &run(&loaded, &sources2, other.path())));

    let stages = stages_to_cover(false);
    let missing: Vec<&String> = stages.difference(&seen).collect();
    assert!(missing.is_empty(), "not covered: {missing:?}");

    // The consumers again, now reading every input from its folder: the same numbers.
    let edited = COVERAGE.replace("labels: [\"ddn\", \"pgd\"]", "labels: [\"a\", \"b\"]").replace(
        "density_plot(flow, grid: 8, samples: 50)",
        "density_plot(flow, grid: 8, samples: 50, title: \"again\")",
    );
    let (plan2, sources2) = plan_of(&edited);
    let second = run(&plan2, &sources2, tmp.path());
    let status: BTreeMap<&str, &str> = second.stages.iter().map(|s| (s.name.as_str(), s.status)).collect();
    let again = ["table", "by_norm", "density", "bounds"];
    assert!(again.iter().all(|s| status[s] == "executed"), "{status:?}");
    assert!(
        second.stages.iter().filter(|s| !again.contains(&s.name.as_str())).all(|s| s.status == "cached"),
        "{status:?}"
    );
    // The trained flow read back from its folder has the same density as the fresh one.
    let mass = |r: &Report| r.stages.iter().find(|s| s.name == "density").unwrap().metrics["mass"];
    assert_eq!(mass(&first), mass(&second));
    let cells = |r: &Report, prefix: &str| -> Vec<String> {
        let t = r.stages.iter().find(|s| s.name == "table").unwrap();
        t.metrics.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(_, v)| format!("{v:?}")).collect()
    };
    assert_eq!(first.stages.iter().find(|s| s.name == "adv").unwrap().metrics["success_rate"], 1.0);
    assert_eq!(cells(&first, "ddn."), cells(&second, "a."));
    assert_eq!(cells(&first, "pgd."), cells(&second, "b."));
    // The bounds from the model and the attacks read back: the same numbers.
    let bound = |r: &Report, key: &str| r.stages.iter().find(|s| s.name == "bounds").unwrap().metrics[key];
    for (a, b) in [
        ("lipschitz_global", "lipschitz_global"),
        ("ddn_median", "a_median"),
        ("pgd_beats_curvature", "b_beats_curvature"),
    ] {
        assert_eq!(bound(&first, a), bound(&second, b), "{a}");
    }
    assert_eq!(bound(&first, "ddn_below_certified"), 0.0);
}

#[test]
fn every_data_stage_emits_the_numbers_it_declares_needs_shared_data() {
    let Some(dir) = shared_data_or_skip("every_data_stage") else { return };
    let src = r#"
use std.models
let m = mnist(split: "test", limit: 64)
let f = fashion_mnist(split: "test", limit: 16)
let n = notmnist(split: "test", limit: 16)
let c = cifar10(split: "test", limit: 16)
let d = digits(limit: 64)
let small = downsample(m, factor: 2)
let grid = image_grid(small, count: 16)
let fit = train(flatten |> linear(10), small, iters: 2, batch: 32)
let wrong = misclassified(fit, small, count: 9)
let iflow = train(multiscale_cnf(scales: 2, blocks: 1, hidden: [4]), small, loss: bits_per_dim, iters: 2, batch: 8)
let ichain = train(cnf(concat_conv2d(4) |> softplus |> concat_conv2d(1), t1: 0.5, blocks: 2), small, iters: 2, batch: 8)
let ibits = evaluate(iflow, small, metrics: [bits_per_dim, nll, nfe])
let isamples = sample_grid(iflow, count: 4)
let isamples2 = sample_grid(ichain, count: 4, data: false)
let mflow = train(mrcnf(scales: 2, blocks: 1, hidden: [4]), small, loss: bits_per_dim, iters: 2, batch: 8)
let msamples = sample_grid(mflow, count: 4)
let mbits = evaluate(mflow, small, metrics: [bits_per_dim])
let inv = invert(small)
let up = flip(small, axis: horizontal)
let noise = noise_images(like: small, n: 8)
let flat = constant_images(like: small, n: 8)
let o = ood(mflow, inliers: small, outliers: [inv, up, noise, flat], bins: 10)
"#;
    let idx = format!(
        "let i = idx(images: \"{0}/mnist/t10k-images-idx3-ubyte.gz\", labels: \"{0}/mnist/t10k-labels-idx1-ubyte.gz\", limit: 8)\n",
        dir.display()
    );
    let (plan, sources) = plan_of(&format!("{src}{idx}"));
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = run_opts(tmp.path(), "t.flow");
    opts.data_dir = dir;
    let report = flowline::run(&plan, &opts).unwrap_or_else(|f| panic!("{}", render(&f.diags, &sources)));
    let seen = assert_emits_what_it_declares(&plan, &report);
    let stages = stages_to_cover(true);
    assert!(IMAGE_STAGES.iter().all(|s| stages.contains(*s)), "{stages:?}");
    let missing: Vec<&String> = stages.difference(&seen).collect();
    assert!(missing.is_empty(), "not covered: {missing:?}");
    // The multi-resolution flow read back from its folder: the same likelihood, and the
    // grid at each resolution.
    let (again, sources2) =
        plan_of(&format!("{src}{idx}").replace("metrics: [bits_per_dim])", "metrics: [bits_per_dim, nfe])"));
    let second = flowline::run(&again, &opts).unwrap_or_else(|f| panic!("{}", render(&f.diags, &sources2)));
    fn stage<'a>(r: &'a Report, name: &str) -> &'a flowline::exec::StageReport {
        r.stages.iter().find(|s| s.name == name).unwrap()
    }
    assert_eq!(stage(&second, "mflow").status, "cached");
    assert_eq!(stage(&second, "mbits").status, "executed");
    assert_eq!(stage(&report, "mbits").metrics["bits_per_dim"], stage(&second, "mbits").metrics["bits_per_dim"]);
    let grids = &stage(&report, "msamples").artifacts;
    assert!(grids.iter().any(|a| a.ends_with("samples_7x7.png")) && grids.iter().any(|a| a.ends_with("samples.png")));
}

/// A plan written out and read back (as a sweep member or a cluster job would get it) runs
/// to the same report.
#[test]
fn a_plan_read_back_from_yaml_runs_to_the_same_report() {
    let (plan, sources) = plan_of(
        "use std.models\nseed 5\nlet data = toy2d(\"circles\", n: 80)\n\
         let fit = train(mlp(hidden: 8), data, optimizer: sgd(lr: 0.1, momentum: 0.9), iters: 4, batch: 16)\n\
         let s = evaluate(fit, data)\nreport s, fit.final_loss\n",
    );
    let text = flowline::yaml::to_string(&plan).unwrap();
    let back: Plan = flowline::yaml::from_str(&text).unwrap();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (ra, rb) = (run(&plan, &sources, a.path()), run(&back, &sources, b.path()));
    assert_eq!(ra.reported, rb.reported);
    let metrics = |r: &Report| r.stages.iter().map(|s| (s.name.clone(), s.metrics.clone())).collect::<Vec<_>>();
    assert_eq!(metrics(&ra), metrics(&rb));
}
