//! Executors: `--jobs 2` runs independent stages side by side and gives the report of
//! `--jobs 1`, bit for bit.

mod common;

use common::{rel, render, root, run_opts};
use flowline::CheckOptions;
use flowline::diag::SourceMap;
use flowline::exec::{Report, RunOptions, flatten_metrics};

fn run(path: &str, profile: Option<&str>, sweeps: &[&str], jobs: usize, out: &std::path::Path) -> Report {
    let mut sources = SourceMap::new();
    let opts = CheckOptions {
        profile: profile.map(str::to_string),
        sweeps: sweeps.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    let plan =
        flowline::compile(&mut sources, &rel(&root().join(path)), &opts).map_err(|d| render(&d, &sources)).unwrap();
    let opts = RunOptions { jobs, ..run_opts(out, path) };
    flowline::run(&plan, &opts).unwrap_or_else(|f| panic!("{}", render(&f.diags, &sources)))
}

/// The quickstart (a classifier, an attack, a CNF) and a sweep over it: every reported
/// number and every stage's metrics equal, whatever the number of jobs.
#[test]
fn two_jobs_give_the_numbers_of_one() {
    let tmp = tempfile::tempdir().unwrap();
    let sweep = ["fit.optimizer.lr=1e-2,3e-3", "fit.seed=1,2"];
    for (k, (profile, sweeps)) in [(Some("smoke"), &[][..]), (Some("smoke"), &sweep[..])].into_iter().enumerate() {
        let one = run("pipelines/quickstart.flow", profile, sweeps, 1, &tmp.path().join(format!("one{k}")));
        let two = run("pipelines/quickstart.flow", profile, sweeps, 2, &tmp.path().join(format!("two{k}")));
        assert_eq!(flatten_metrics(&one), flatten_metrics(&two));
        assert!(!flatten_metrics(&one).is_empty());
        // Everything but wall times (an attack reports its `seconds`).
        let timeless = |m: &flowline::lang::Metrics| {
            m.iter().filter(|(k, _)| !k.ends_with("seconds")).map(|(k, v)| (k.clone(), *v)).collect::<Vec<_>>()
        };
        for (a, b) in one.stages.iter().zip(&two.stages) {
            assert_eq!((&a.name, timeless(&a.metrics)), (&b.name, timeless(&b.metrics)), "stage {}", a.name);
            assert_eq!(b.status, "executed", "{}", b.name);
        }
    }
}

fn plan_of(src: &str, sets: &[&str]) -> Result<flowline::plan::Plan, Vec<flowline::diag::Code>> {
    let mut sources = SourceMap::new();
    let id = sources.add("t.flow", None, src.to_string());
    let opts = CheckOptions { sets: sets.iter().map(|s| s.to_string()).collect(), ..Default::default() };
    flowline::check(&mut sources, id, &opts)
        .map(|c| flowline::plan(c).unwrap())
        .map_err(|d| d.iter().map(|d| d.code).collect())
}

/// `resources:` reaches the stage's node (not its arguments), the pipeline's default fills
/// what a stage leaves out, and neither changes a cache key: a stage computes the same
/// wherever it runs.
#[test]
fn resources_are_checked_attached_to_their_stages_and_left_out_of_keys() {
    let base = "use std.models\nlet data = toy2d(\"moons\", n: 100)\n";
    let with = format!("{base}let fit = train(mlp(), data, iters: 3, resources: resources(cpus: 2, time: \"10\"))\n");
    let plain = format!("{base}let fit = train(mlp(), data, iters: 3)\n");
    let p = plan_of(&with, &["resources=resources(partition: \"debug\", time: \"5\")"]).unwrap();
    let fit = &p.nodes()[p.find("fit").unwrap()];
    let own = fit.resources.clone().unwrap();
    assert_eq!((own.cpus, own.time.as_deref()), (Some(2), Some("10")));
    assert!(fit.args.get("resources").is_none());
    let defaults = p.checked.resources.clone().unwrap();
    assert_eq!(own.over(&defaults).sbatch_options(), ["--cpus-per-task=2", "--time=10", "--partition=debug"]);
    let q = plan_of(&plain, &[]).unwrap();
    let d = std::path::Path::new("data");
    assert_eq!(flowline::plan::keys(&p, flowline::registry(), d), flowline::plan::keys(&q, flowline::registry(), d));
    // From `--set` on the stage's path, as any argument.
    let set = plan_of(&plain, &["fit.resources=resources(gpus: 1)"]).unwrap();
    assert_eq!(set.nodes()[set.find("fit").unwrap()].resources.as_ref().and_then(|r| r.gpus), Some(1));
    // What Slurm would not read is refused before anything runs.
    use flowline::diag::Code;
    assert_eq!(plan_of(&plain, &["fit.resources=resources(mem: \"4GB\")"]).unwrap_err(), [Code::E2006]);
    assert_eq!(plan_of(&plain, &["resources=resources(time: \"2h\")"]).unwrap_err(), [Code::E2006]);
    assert_eq!(plan_of(&plain, &["fit.resources=adam()"]).unwrap_err(), [Code::E2005]);
}
