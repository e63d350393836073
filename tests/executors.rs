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
        for (a, b) in one.stages.iter().zip(&two.stages) {
            assert_eq!((&a.name, &a.metrics), (&b.name, &b.metrics), "stage {}", a.name);
            assert_eq!(b.status, "executed", "{}", b.name);
        }
    }
}
