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
    // A missing pipeline file is one kind of failure: E1003, exit 2, under every command.
    for cmd in ["check", "run", "graph", "fmt"] {
        let missing = flowline(&[cmd, "no/such.flow"]);
        assert_eq!(code(&missing), 2, "{cmd}");
        assert!(stderr(&missing).contains("E1003"), "{cmd}: {}", stderr(&missing));
    }
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
    assert!(!tmp.path().join("points").exists(), "--only runs the stage and what it needs");
    assert!(report.contains("status: not run"), "the other stages are listed as not run");
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
    // Standard-library definitions are documented beside the built-ins.
    assert!(stdout(&stages).contains("mlp(hidden: 64, classes: 2)"), "{}", stdout(&stages));
    let doc = flowline(&["doc", "mlp"]);
    assert_eq!(code(&doc), 0, "{}", stderr(&doc));
    assert!(stdout(&doc).contains("std.models") && stdout(&doc).contains("multilayer perceptron"));
    assert!(stderr(&flowline(&["doc", "mlq"])).contains("did you mean `mlp`"));
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

fn report_value(dir: &std::path::Path) -> flowline::exec::yaml::Value {
    flowline::exec::yaml::from_str(&std::fs::read_to_string(dir.join("report.yaml")).unwrap()).unwrap()
}

fn stage_field(report: &flowline::exec::yaml::Value, stage: &str, field: &str) -> String {
    let v = &report["stages"][stage][field];
    v.as_str().map(str::to_string).unwrap_or_else(|| format!("{v:?}"))
}

/// The console prints the reported numbers in the order of `report`, integers as
/// integers and other values to significant digits, never `0.000000`.
#[test]
fn the_console_prints_reported_numbers_in_report_order_and_readably() {
    let tmp = tempfile::tempdir().unwrap();
    let o =
        flowline(&["run", "pipelines/quickstart.flow", "--profile", "smoke", "--out", tmp.path().to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    let keys: Vec<&str> = out.lines().filter_map(|l| l.split_once(": ").map(|(k, _)| k)).collect();
    assert_eq!(
        &keys[..6],
        &["score.accuracy", "score.loss", "fit.final_loss", "adv.success_rate", "adv.median", "adv.robust_0p1"],
        "{out}"
    );
    assert!(!out.contains(".000000"), "{out}");
    let rate = out.lines().find_map(|l| l.strip_prefix("adv.success_rate: ")).unwrap();
    assert!(!rate.contains('.') || rate.len() <= 8, "{rate}");
}

/// A failing stage does not stop the stages that do not need it; the report records the
/// failure and what was skipped because of it, and the exit status is 1.
#[test]
fn a_failing_stage_lets_independent_stages_run_and_is_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("p.flow");
    std::fs::write(&file, common::FAILING_PIPELINE).unwrap();
    // One stage at a time, and two at a time.
    for jobs in ["1", "2"] {
        let out = tmp.path().join(format!("out{jobs}"));
        let o = flowline(&["run", file.to_str().unwrap(), "--out", out.to_str().unwrap(), "--jobs", jobs]);
        assert_eq!(code(&o), 1, "{}", stderr(&o));
        assert!(stderr(&o).contains("R2001"), "{}", stderr(&o));
        let r = report_value(&out);
        assert_eq!(stage_field(&r, "fit", "status"), "failed");
        assert!(stage_field(&r, "fit", "error").starts_with("R2001"));
        assert_eq!(stage_field(&r, "score", "status"), "skipped");
        assert!(stage_field(&r, "score", "note").contains("`fit`"));
        assert_eq!(stage_field(&r, "points", "status"), "executed");
        assert!(out.join("points/scatter.png").exists() || out.join("points").read_dir().unwrap().count() > 0);
        assert_eq!(r["failures"][0]["stage"].as_str(), Some("fit"));
        assert_eq!(r["failures"][0]["code"].as_str(), Some("R2001"));
    }
}

/// The report alone says how to reproduce the run: command line, overrides, profile, start
/// time, host and the git commit of the pipeline's repository.
#[test]
fn the_report_records_how_the_run_was_started() {
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
        "--quiet",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let r = report_value(tmp.path());
    let run = &r["run"];
    let command = run["command"].as_str().unwrap();
    assert!(command.contains("run pipelines/quickstart.flow --profile smoke --set fit.epochs=1"), "{command}");
    assert_eq!(run["overrides"][0].as_str(), Some("fit.epochs=1"));
    assert_eq!(r["profile"].as_str(), Some("smoke"));
    assert!(run["started"].as_str().unwrap().ends_with('Z'));
    assert!(!run["host"].as_str().unwrap().is_empty());
    let in_repo = Command::new("git").args(["rev-parse", "HEAD"]).current_dir(common::root()).output();
    if let Ok(g) = in_repo
        && g.status.success()
    {
        let head = String::from_utf8_lossy(&g.stdout).trim().to_string();
        assert_eq!(run["git"]["commit"].as_str(), Some(head.as_str()));
    }
}

/// Two runs into one folder: the second is refused with the first one's pid, and the
/// folder is free again once the first is done.
#[test]
fn a_second_run_into_a_busy_folder_is_refused_naming_the_first() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().to_str().unwrap();
    let held = flowline::exec::RunLock::acquire(tmp.path()).unwrap();
    let o = flowline(&["run", "pipelines/quickstart.flow", "--profile", "smoke", "--out", out, "--only", "data"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("R1005") && stderr(&o).contains(&format!("pid {}", std::process::id())),
        "{}",
        stderr(&o)
    );
    drop(held);
    let o = flowline(&["run", "pipelines/quickstart.flow", "--profile", "smoke", "--out", out, "--only", "data"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

/// Files a run writes are readable by others as usual (0666 less the umask, 0644 under the
/// common 022), not the private 0600 of a temporary file.
#[cfg(target_os = "linux")]
#[test]
fn run_files_get_the_usual_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let o = flowline(&[
        "run",
        "pipelines/quickstart.flow",
        "--profile",
        "smoke",
        "--out",
        tmp.path().to_str().unwrap(),
        "--only",
        "fit",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let umask = status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .map(|u| u32::from_str_radix(u.trim(), 8).unwrap())
        .unwrap();
    for f in ["report.yaml", "fit/model.safetensors", "fit/stage.yaml"] {
        let mode = std::fs::metadata(tmp.path().join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o666 & !umask, "{f}: {mode:o}");
    }
}

/// `--only STAGE` keeps every stage's last result in the report, marked as not run by it.
#[test]
fn only_keeps_the_other_stages_last_results_in_the_report() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().to_str().unwrap();
    let o = flowline(&["run", "pipelines/quickstart.flow", "--profile", "smoke", "--out", out, "--quiet"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let before = report_value(tmp.path());
    let o = flowline(&[
        "run",
        "pipelines/quickstart.flow",
        "--profile",
        "smoke",
        "--out",
        out,
        "--only",
        "points",
        "--force",
        "--quiet",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let after = report_value(tmp.path());
    assert_eq!(stage_field(&after, "points", "status"), "executed");
    assert_eq!(stage_field(&after, "score", "status"), "not run");
    assert_eq!(after["stages"]["score"]["metrics"], before["stages"]["score"]["metrics"]);
    assert_eq!(after["reported"]["score"], before["reported"]["score"]);
    assert_eq!(after["run"]["only"].as_str(), Some("points"));
    // Changing the model makes the kept evaluation stale, and the report says so.
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
    let stale = report_value(tmp.path());
    assert_eq!(stale["stages"]["score"]["current"].as_bool(), Some(false));
}

/// `flowline test` runs the profile the snapshot was taken under.
#[test]
fn test_uses_the_profile_recorded_in_the_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("q.flow");
    let text = std::fs::read_to_string(common::root().join("pipelines/quickstart.flow")).unwrap();
    std::fs::write(
        &file,
        format!(
            "{text}profile tiny {{ fit.epochs = 1, data.n = 300, test.n = 200, regions.grid = 20, adv.count = 5 }}\n"
        ),
    )
    .unwrap();
    let f = file.to_str().unwrap();
    assert_eq!(code(&flowline(&["test", f, "--profile", "tiny", "--accept"])), 0);
    let snap = std::fs::read_to_string(tmp.path().join("q.snap.yaml")).unwrap();
    assert!(snap.contains("profile: tiny"), "{snap}");
    let o = flowline(&["test", f]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let o = flowline(&["test", f, "--profile", "smoke"]);
    assert_eq!(code(&o), 1, "another profile than the snapshot's is refused");
    assert!(stderr(&o).contains("taken under profile `tiny`"), "{}", stderr(&o));
}

/// A clamped argument is a warning the run shows once (the checker's and the stage's say
/// the same words) and records in the report; the run succeeds.
#[test]
fn clamped_arguments_are_warned_about_once_and_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("p.flow");
    std::fs::write(
        &file,
        "use std.models\nlet data = toy2d(\"moons\", n: 60)\n\
         let fit = train(mlp(hidden: 8, classes: 2), data, batch: 100, epochs: 1)\n\
         let adv = attack(fit, data, using: ddn(steps: 5), count: 500, bounds: none)\n",
    )
    .unwrap();
    let out = tmp.path().join("out");
    let o = flowline(&["run", file.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.matches("`count: 500` asks for more").count(), 1, "{err}");
    assert_eq!(err.matches("`batch: 100` asks for more").count(), 1, "{err}");
    let r = report_value(&out);
    assert!(r["stages"]["adv"]["warnings"][0].as_str().unwrap().starts_with("W2001"));
    let o = flowline(&["check", file.to_str().unwrap()]);
    assert_eq!(code(&o), 0);
    assert!(stderr(&o).contains("2 warnings"), "{}", stderr(&o));
}
