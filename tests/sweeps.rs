//! Sweeps: `sweep ... in [...]: ...` and `--sweep` make one stage per member, named after it;
//! calls given a sweep map over it; a member draws the random numbers the same pipeline run
//! once with its values would; growing a sweep runs only the new members; `report` gives a
//! table and a figure.

mod common;

use common::{render, run_opts};
use flowline::CheckOptions;
use flowline::diag::SourceMap;
use flowline::exec::{Report, flatten_metrics};
use flowline::plan::Plan;

const HEAD: &str = "use std.models\nseed 7\nlet data = toy2d(\"moons\", n: 300, noise: 0.1)\n\
                    let test = toy2d(\"moons\", n: 200, noise: 0.1, seed: 99)\n";

fn plan_of(src: &str, sweeps: &[&str]) -> Plan {
    let mut sources = SourceMap::new();
    let id = sources.add("t.flow", None, src.to_string());
    let opts = CheckOptions { sweeps: sweeps.iter().map(|s| s.to_string()).collect(), ..Default::default() };
    let checked = flowline::check(&mut sources, id, &opts).map_err(|d| render(&d, &sources)).unwrap();
    flowline::plan(checked).unwrap()
}

fn run(plan: &Plan, out: &std::path::Path) -> Report {
    flowline::run(plan, &run_opts(out, "t.flow")).unwrap()
}

fn names(plan: &Plan) -> Vec<String> {
    plan.order.iter().map(|&i| plan.nodes()[i].name.clone()).collect()
}

fn status_of<'a>(report: &'a Report, stage: &str) -> &'a str {
    report.stages.iter().find(|s| s.name == stage).map(|s| s.status).unwrap_or("absent")
}

fn fit(lr: &str) -> String {
    format!("train(mlp(hidden: 8, classes: 2), data, optimizer: adam(lr: {lr}), batch: 100, epochs: 2)")
}

/// The stages of a sweep and what maps over it, by name; a stage inside the sweep that
/// does not depend on the swept values is made once, named without them.
#[test]
fn a_sweep_makes_one_named_stage_per_member_and_calls_map_over_it() {
    let src = format!(
        "{HEAD}let fits = sweep lr in [1e-2, 1e-3], seed in [1, 2]:\n    \
         train(mlp(hidden: 8, classes: 2), toy2d(\"moons\", n: 100), optimizer: adam(lr: lr), iters: 3)\n\
         let scores = evaluate(fits, test)\nreport scores, fits.final_loss\n"
    );
    let plan = plan_of(&src, &[]);
    let n = names(&plan);
    for member in ["fits[lr=0.01,seed=1]", "fits[lr=0.001,seed=2]", "scores[lr=0.01,seed=2]", "scores[lr=0.001,seed=1]"]
    {
        assert!(n.contains(&member.to_string()), "{member} not in {n:?}");
    }
    // The data inside the sweep depends on the seed only: one per seed, not one per member.
    let data: Vec<&String> = n.iter().filter(|s| s.ends_with(".data")).collect();
    assert_eq!(data, ["fits[seed=1].data", "fits[seed=2].data"], "{n:?}");
    assert_eq!(n.len(), 2 + 2 + 4 + 4);
    let reports = &plan.checked.reports;
    assert_eq!(reports[0].axes, ["lr", "seed"]);
    assert_eq!(reports[0].members.len(), 4);
    assert_eq!(reports[1].field.as_deref(), Some("final_loss"));
    // `--only` with the sweep's name runs its members and what they need.
    let only = plan.select("fits").unwrap();
    assert_eq!(only.len(), 2 + 4, "{:?}", only.iter().map(|&i| &plan.nodes()[i].name).collect::<Vec<_>>());
}

/// A member computes what the pipeline computes when run once with its values: same seed,
/// same random stream (the sweep over `lr` does not change the initial weights).
#[test]
fn a_member_equals_the_same_pipeline_run_once_with_its_values() {
    let tmp = tempfile::tempdir().unwrap();
    let swept = plan_of(&format!("{HEAD}let fit = sweep lr in [1e-2, 3e-3], seed in [7, 8]: {}\n", fit("lr")), &[]);
    let report = run(&swept, &tmp.path().join("sweep"));
    let member = report.stages.iter().find(|s| s.name == "fit[lr=0.003,seed=7]").unwrap();
    let single = plan_of(&format!("{HEAD}let fit = {}\n", fit("3e-3")), &[]);
    let once = run(&single, &tmp.path().join("once"));
    let alone = once.stages.iter().find(|s| s.name == "fit").unwrap();
    assert_eq!(member.metrics["final_loss"], alone.metrics["final_loss"]);
    // Another seed is another stream.
    let other = report.stages.iter().find(|s| s.name == "fit[lr=0.003,seed=8]").unwrap();
    assert_ne!(member.metrics["final_loss"], other.metrics["final_loss"]);

    // `--sweep` gives the same numbers as the sweep written in the pipeline.
    let cli = plan_of(&format!("{HEAD}let fit = {}\n", fit("1e-2")), &["fit.optimizer.lr=1e-2,3e-3", "fit.seed=7,8"]);
    let by_flag = run(&cli, &tmp.path().join("flag"));
    let flagged = by_flag.stages.iter().find(|s| s.name == "fit[optimizer.lr=3e-3,seed=7]").unwrap();
    assert_eq!(flagged.metrics["final_loss"], member.metrics["final_loss"]);
}

/// A member's cache key is its own: adding a value runs the new members only.
#[test]
fn growing_a_sweep_runs_only_the_new_members() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let body = fit("lr");
    let first = run(&plan_of(&format!("{HEAD}let fit = sweep lr in [1e-2, 3e-3]: {body}\nreport fit\n"), &[]), &out);
    assert_eq!(status_of(&first, "fit[lr=0.01]"), "executed");
    let grown = plan_of(&format!("{HEAD}let fit = sweep lr in [1e-2, 3e-3, 1e-3]: {body}\nreport fit\n"), &[]);
    let second = run(&grown, &out);
    assert_eq!(status_of(&second, "fit[lr=0.01]"), "cached");
    assert_eq!(status_of(&second, "fit[lr=0.003]"), "cached");
    assert_eq!(status_of(&second, "fit[lr=0.001]"), "executed");
    assert_eq!(status_of(&second, "data"), "cached");
}

/// `report` of a sweep: a table with a row per member (its values, seed and numbers) in
/// report.yaml and report.html, a figure of each number against the swept value, and the
/// console's `name[values].metric` lines.
#[test]
fn a_reported_sweep_is_a_table_and_a_figure() {
    let tmp = tempfile::tempdir().unwrap();
    let src = format!(
        "{HEAD}let fit = sweep wd in [0, 0.001, 0.01]: train(mlp(hidden: 8, classes: 2), data, \
         optimizer: adam(lr: 1e-2, weight_decay: wd), batch: 100, epochs: 2)\n\
         let score = evaluate(fit, test, metrics: [accuracy, loss])\nreport score, fit.final_loss\n"
    );
    let report = run(&plan_of(&src, &[]), tmp.path());
    let yaml = std::fs::read_to_string(tmp.path().join("report.yaml")).unwrap();
    let doc: flowline::yaml::Value = flowline::yaml::from_str(&yaml).unwrap();
    let rows = doc["reported"]["score"]["rows"].as_sequence().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[1]["wd"].as_f64(), Some(0.001));
    assert_eq!(rows[1]["seed"].as_i64(), Some(7), "the pipeline's seed, reported per member");
    assert_eq!(rows[1]["stage"].as_str(), Some("score[wd=0.001]"));
    assert!(rows[2]["accuracy"].as_f64().unwrap() > 0.5);
    let figure = doc["reported"]["score"]["figure"].as_str().unwrap();
    assert_eq!(figure, "sweeps/score.png");
    assert!(tmp.path().join(figure).is_file() && tmp.path().join("sweeps/score.svg").is_file());
    let flat = flatten_metrics(&report);
    assert!(flat.contains_key("score[wd=0.01].accuracy"), "{flat:?}");
    assert!(flat.contains_key("fit[wd=0].final_loss"), "{flat:?}");
    let html = std::fs::read_to_string(tmp.path().join("report.html")).unwrap();
    assert!(html.contains("<h2>Sweep: score</h2>") && html.contains("score[wd=0.001]"));
    assert!(html.contains("<figcaption>sweeps/score.png</figcaption>"));
}

/// The same text formats back to itself, sweeps included.
#[test]
fn sweeps_format_back_to_themselves() {
    let src = format!("{HEAD}let fits = sweep lr in [1e-2, 1e-3], seed in [1, 2]: {}\n", fit("lr"));
    let format = |text: &str| {
        let (program, diags) = flowline::syntax::parse_program(0, text);
        assert!(diags.is_empty(), "{diags:?}");
        flowline::syntax::format_program(&program, text)
    };
    let once = format(&src);
    let twice = format(&once);
    assert_eq!(once, twice);
    assert!(once.contains("let fits = sweep lr in [1e-2, 1e-3], seed in [1, 2]:"), "{once}");
}
