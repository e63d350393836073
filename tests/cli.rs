//! The command-line contract: commands, flags and exit codes (0 ok, 1 runtime failure,
//! 2 pipeline error).

mod common;

use std::process::{Command, Output};

fn flowline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flowline")).args(args).current_dir(common::root()).output().unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

#[test]
fn check_exit_codes() {
    assert_eq!(code(&flowline(&["check", "pipelines/quickstart.flow", "stdlib/models.flow"])), 0);
    let bad = flowline(&["check", "tests/errors/e2006_out_of_range.flow"]);
    assert_eq!(code(&bad), 2);
    assert!(stderr(&bad).contains("E2006"));
    let missing = flowline(&["check", "no/such.flow"]);
    assert_eq!(code(&missing), 2);
    assert!(stderr(&missing).contains("R1001"));
}

#[test]
fn a_bad_set_path_is_exit_2_with_a_suggestion() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().to_str().unwrap();
    let o = flowline(&["run", "pipelines/quickstart.flow", "--out", out, "--set", "fit.epoch=3"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("E2009") && stderr(&o).contains("fit.epochs"), "{}", stderr(&o));
    let o = flowline(&["run", "pipelines/quickstart.flow", "--out", out, "--profile", "smok"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("did you mean `smoke`"));
}

#[test]
fn cuda_without_the_feature_is_a_runtime_error() {
    let tmp = tempfile::tempdir().unwrap();
    let o = flowline(&[
        "run",
        "pipelines/quickstart.flow",
        "--profile",
        "smoke",
        "--device",
        "cuda",
        "--out",
        tmp.path().to_str().unwrap(),
    ]);
    if cfg!(feature = "cuda") {
        return;
    }
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("R1003"));
}

#[test]
fn run_with_set_only_and_force() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().to_str().unwrap();
    let o = flowline(&[
        "run",
        "pipelines/quickstart.flow",
        "--profile",
        "smoke",
        "--set",
        "fit.epochs=1",
        "--out",
        out,
        "--only",
        "fit",
        "--quiet",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let report = std::fs::read_to_string(tmp.path().join("report.yaml")).unwrap();
    assert!(report.contains("epochs: 1"));
    assert!(!report.contains("scatter_plot"), "--only runs the stage and what it needs");
    let o = flowline(&[
        "run",
        "pipelines/quickstart.flow",
        "--profile",
        "smoke",
        "--set",
        "fit.epochs=1",
        "--out",
        out,
        "--only",
        "fit",
    ]);
    assert!(stderr(&o).contains("cached"));
    let o = flowline(&[
        "run",
        "pipelines/quickstart.flow",
        "--profile",
        "smoke",
        "--set",
        "fit.epochs=1",
        "--out",
        out,
        "--only",
        "fit",
        "--force",
    ]);
    assert!(!stderr(&o).contains("cached"));
    let o = flowline(&["run", "pipelines/quickstart.flow", "--out", out, "--only", "fitt"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("E3002"));
}

#[test]
fn graph_stages_doc_and_fmt() {
    let dot = flowline(&["graph", "pipelines/quickstart.flow", "--format", "dot"]);
    assert_eq!(code(&dot), 0);
    assert!(stdout(&dot).starts_with("digraph") && stdout(&dot).contains("\"data\" -> \"fit\""));
    let stages = flowline(&["stages"]);
    assert!(stdout(&stages).contains("toy2d(name, n: 1000"));
    let doc = flowline(&["doc", "train"]);
    assert_eq!(code(&doc), 0);
    assert!(stdout(&doc).contains("fields: model"));
    let bad = flowline(&["doc", "trian"]);
    assert_eq!(code(&bad), 2);
    assert!(stderr(&bad).contains("did you mean `train`"));
    let fmt = flowline(&["fmt", "pipelines/quickstart.flow"]);
    assert_eq!(code(&fmt), 0);
    assert_eq!(stdout(&fmt), std::fs::read_to_string(common::root().join("pipelines/quickstart.flow")).unwrap());
    assert_eq!(code(&flowline(&["fmt", "tests/errors/e0001_missing_value.flow"])), 2);
}

#[test]
fn test_command_compares_with_snapshots() {
    // The committed snapshot of the quickstart's smoke profile.
    let o = flowline(&["test", "pipelines/quickstart.flow"]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));

    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("q.flow");
    let text = std::fs::read_to_string(common::root().join("pipelines/quickstart.flow")).unwrap();
    std::fs::write(&file, text).unwrap();
    let f = file.to_str().unwrap();
    assert_eq!(code(&flowline(&["test", f])), 1, "no snapshot yet");
    assert_eq!(code(&flowline(&["test", f, "--accept"])), 0);
    assert_eq!(code(&flowline(&["test", f])), 0);
    let snap = tmp.path().join("q.snap.yaml");
    let s = std::fs::read_to_string(&snap).unwrap();
    let changed: String = s
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("score.accuracy:") {
                "  score.accuracy: 0.5".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&snap, changed).unwrap();
    let o = flowline(&["test", f]);
    assert_eq!(code(&o), 1);
    assert!(stdout(&o).contains("~ score.accuracy"), "{}", stdout(&o));
}
