//! `flowline status` and `run --dry-run`: what a run would execute and why, with nothing run.

mod common;

use std::process::{Command, Output};

fn flowline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flowline")).args(args).current_dir(common::root()).output().unwrap()
}

fn stdout(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// The line of `stage` in a status table.
fn line<'a>(table: &'a str, stage: &str) -> &'a str {
    table.lines().find(|l| l.split_whitespace().next() == Some(stage)).unwrap_or_else(|| panic!("{stage}: {table}"))
}

#[test]
fn status_says_what_would_run_and_why_and_dry_run_runs_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("p.flow");
    std::fs::write(
        &file,
        "use std.models\nseed 3\nlet data = toy2d(\"moons\", n: 200)\n\
         let fits = sweep lr in [1e-2, 1e-3]: train(mlp(hidden: 8, classes: 2), data, optimizer: adam(lr: lr), iters: 5)\n\
         let scores = evaluate(fits, data)\nreport scores\n",
    )
    .unwrap();
    let (f, out) = (file.to_str().unwrap(), tmp.path().join("out"));
    let o = out.to_str().unwrap();

    let before = stdout(&flowline(&["status", f, "--out", o]));
    assert!(line(&before, "fits[lr=0.01]").contains("would run") && before.contains("no result yet"), "{before}");
    assert!(before.ends_with("5 stages: 0 cached, 5 would run\n"), "{before}");
    let dry = stdout(&flowline(&["run", f, "--out", o, "--dry-run"]));
    assert_eq!(dry, before);
    assert!(!out.join("data").exists(), "a dry run executes nothing");

    stdout(&flowline(&["run", f, "--out", o, "-q"]));
    let after = stdout(&flowline(&["status", f, "--out", o]));
    assert!(after.ends_with("5 stages: 5 cached, 0 would run\n"), "{after}");

    // An argument changed: that stage is stale for that reason, what uses it for its input.
    let changed = stdout(&flowline(&["status", f, "--out", o, "--set", "fits.iters=6"]));
    assert!(line(&changed, "data").contains("cached"), "{changed}");
    assert!(line(&changed, "fits[lr=0.001]").contains("stale: argument `iters` changed: 5 -> 6"), "{changed}");
    assert!(line(&changed, "scores[lr=0.001]").contains("stale: input `trained` changed"), "{changed}");
    let reseeded = stdout(&flowline(&["status", f, "--out", o, "--set", "seed=4"]));
    assert!(line(&reseeded, "data").contains("seed changed: 3 -> 4"), "{reseeded}");

    // A missing file makes the result incomplete; `--only` narrows the table.
    let model = std::fs::read_dir(out.join("fits[lr=0.01]"))
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| e.file_name().to_string_lossy().ends_with(".safetensors"));
    std::fs::remove_file(model.unwrap().path()).unwrap();
    let partial = stdout(&flowline(&["status", f, "--out", o, "--only", "fits"]));
    assert!(line(&partial, "fits[lr=0.01]").contains("files of its result are missing"), "{partial}");
    assert!(partial.ends_with("3 stages: 2 cached, 1 would run\n"), "{partial}");
}
