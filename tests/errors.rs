//! Every file in tests/errors/ is a malformed pipeline; its rendered diagnostics (no
//! colour, width 100) are snapshotted. A first-line comment `# flags: ...` passes
//! `--set`, `--sweep`, `--slurm-bin`, `--profile`, `--only`, `--device`, `--out` and `--run` as the CLI would;
//! `--hold-lock` runs while another holder keeps the output folder's lock.

mod common;

use common::{rel, render};
use flowline::CheckOptions;
use flowline::diag::{Code, Diag, SourceMap};
use flowline::exec::{DeviceChoice, ExecutorChoice, RunOptions};
use std::collections::BTreeSet;
use std::path::Path;

struct Flags {
    slurm_bin: Option<String>,
    sets: Vec<String>,
    sweeps: Vec<String>,
    profile: Option<String>,
    only: Option<String>,
    device: DeviceChoice,
    out: Option<String>,
    data_dir: Option<String>,
    run: bool,
    hold_lock: bool,
}

fn flags(text: &str) -> Flags {
    let mut f = Flags {
        slurm_bin: None,
        sets: vec![],
        sweeps: vec![],
        profile: None,
        only: None,
        device: DeviceChoice::Cpu,
        out: None,
        data_dir: None,
        run: false,
        hold_lock: false,
    };
    let Some(line) = text.lines().next().and_then(|l| l.strip_prefix("# flags:")) else { return f };
    let words: Vec<&str> = line.split_whitespace().collect();
    let mut i = 0;
    while i < words.len() {
        let next = words.get(i + 1).map(|s| s.to_string());
        match words[i] {
            "--set" => f.sets.push(next.unwrap_or_default()),
            "--sweep" => f.sweeps.push(next.unwrap_or_default()),
            // `--run` under the Slurm executor with its commands looked up in this folder.
            "--slurm-bin" => f.slurm_bin = next,
            "--profile" => f.profile = next,
            "--only" => f.only = next,
            "--out" => f.out = next,
            "--data-dir" => f.data_dir = next,
            "--device" => {
                f.device = if next.as_deref() == Some("cuda") { DeviceChoice::Cuda } else { DeviceChoice::Cpu };
            }
            "--run" => {
                f.run = true;
                i += 1;
                continue;
            }
            "--hold-lock" => {
                f.hold_lock = true;
                i += 1;
                continue;
            }
            other => panic!("unknown flag {other}"),
        }
        i += 2;
    }
    f
}

/// The diagnostics of one error file, exactly as the CLI would produce them.
fn diagnose(path: &Path) -> (Vec<Diag>, SourceMap) {
    let text = std::fs::read_to_string(path).unwrap();
    let f = flags(&text);
    let mut sources = SourceMap::new();
    let file = flowline::load(&mut sources, &rel(path)).unwrap();
    let checked = match (&f.profile, f.run) {
        (None, false) => {
            flowline::check::check_all_profiles(flowline::registry(), &mut sources, file, &f.sets, &f.sweeps)
        }
        _ => {
            let opts = CheckOptions { profile: f.profile.clone(), sets: f.sets.clone(), sweeps: f.sweeps.clone() };
            flowline::check(&mut sources, file, &opts)
        }
    };
    let plan = match checked.and_then(flowline::plan) {
        Ok(p) => p,
        Err(d) => return (d, sources),
    };
    if !f.run && !plan.checked.warnings.is_empty() {
        return (plan.checked.warnings.clone(), sources);
    }
    assert!(f.run, "{} checks cleanly but is not run", path.display());
    let tmp = tempfile::tempdir().unwrap();
    let out: std::path::PathBuf = f.out.map(Into::into).unwrap_or_else(|| tmp.path().to_path_buf());
    if f.hold_lock {
        std::fs::create_dir_all(&out).unwrap();
    }
    let _held = f.hold_lock.then(|| flowline::exec::RunLock::acquire(&out).unwrap());
    let opts = RunOptions {
        out,
        device: f.device,
        force: true,
        only: f.only,
        quiet: true,
        pipeline: String::new(),
        data_dir: f.data_dir.map(Into::into).unwrap_or_else(|| "tests/data".into()),
        share_runs: false,
        command: Vec::new(),
        jobs: 1,
        executor: match f.slurm_bin {
            Some(bin) => ExecutorChoice::Slurm { worker: "flowline".into(), bin: Some(bin.into()) },
            None => ExecutorChoice::Local,
        },
    };
    match flowline::run(&plan, &opts) {
        // A run that succeeds is here for the warnings its stages gave.
        Ok(report) => {
            let warnings: Vec<Diag> = report.warnings().cloned().collect();
            assert!(!warnings.is_empty(), "{} ran without error or warning", path.display());
            (warnings, sources)
        }
        Err(f) => (f.diags, sources),
    }
}

/// Process ids differ from run to run.
fn redact_pids(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("pid ") {
        out.push_str(&rest[..i + 4]);
        rest = &rest[i + 4..];
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits > 0 {
            out.push_str("[pid]");
            rest = &rest[digits..];
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn error_files_render_their_diagnostics() {
    insta::glob!("errors/*.flow", |path| {
        let (diags, sources) = diagnose(path);
        assert!(!diags.is_empty(), "{} gave no diagnostic", path.display());
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        let expected = stem.split('_').next().unwrap().to_uppercase();
        assert!(
            diags.iter().any(|d| d.code.as_str() == expected),
            "{}: expected {expected}, got {:?}",
            path.display(),
            diags.iter().map(|d| d.code.as_str()).collect::<Vec<_>>()
        );
        for d in &diags {
            assert!(
                !d.hints.is_empty() || d.code.default_hint().is_some(),
                "{}: {} has no hint",
                path.display(),
                d.code.as_str()
            );
            if !d.code.is_runtime() && d.code != Code::E1006 && d.code != Code::E3002 {
                assert!(d.span.is_some(), "{}: {} has no span", path.display(), d.code.as_str());
            }
        }
        insta::assert_snapshot!(redact_pids(&render(&diags, &sources)));
    });
}

/// Every code has an error file of its own.
#[test]
fn every_diagnostic_code_has_an_error_file() {
    let dir = common::root().join("tests/errors");
    let covered: BTreeSet<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(|s| s.split('_').next().unwrap_or("").to_uppercase()))
        .collect();
    for code in Code::ALL {
        assert!(covered.contains(code.as_str()), "no error file for {}", code.as_str());
    }
    assert!(std::fs::read_dir(common::root().join("tests/errors")).unwrap().count() >= 25);
}
