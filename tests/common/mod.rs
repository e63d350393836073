//! Helpers shared by the integration tests.
#![allow(dead_code)]

use flowline::diag::{Diag, SourceMap, render_all};
use flowline::exec::{DeviceChoice, RunOptions};
use flowline::{CheckOptions, Report};
use std::path::{Path, PathBuf};

/// The checkout: FLOWLINE_ROOT when set (test binaries run on another machine, where the
/// build's folder does not exist: scripts/gpu_check.sh), else where the crate was built.
pub fn root() -> PathBuf {
    std::env::var_os("FLOWLINE_ROOT").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// `../shared/data` beside the checkout, where the real datasets for tests live.
pub fn shared_data() -> Option<PathBuf> {
    let p = root().join("../shared/data");
    p.join("mnist").is_dir().then_some(p)
}

/// For tests named `*_needs_shared_data`: the data folder, or a printed reason to skip.
/// Under CI (`CI=true`), which always has the data beside the clone, a missing folder is a
/// failure: a test that skips there would pass without testing anything.
pub fn shared_data_or_skip(test: &str) -> Option<PathBuf> {
    let p = shared_data();
    if let Err(why) = skip_or_fail(test, p.is_some(), std::env::var("CI").ok().as_deref()) {
        panic!("{why}");
    }
    p
}

/// Ok(true): run; Ok(false): skip (the reason is printed); Err: fail, because under CI the
/// data folder is always there and a skip would hide a broken setup.
pub fn skip_or_fail(test: &str, present: bool, ci: Option<&str>) -> Result<bool, String> {
    if present {
        return Ok(true);
    }
    let why = format!("{test}: ../shared/data is absent (the real datasets live there)");
    if matches!(ci, Some("true" | "1")) {
        return Err(format!("{why}; CI is set, and CI always has the data beside the clone"));
    }
    println!("skipping {why}");
    eprintln!("skipping {why}");
    Ok(false)
}

/// A path relative to the crate root, as diagnostics should show it in snapshots.
pub fn rel(path: &Path) -> PathBuf {
    path.strip_prefix(root()).map(Path::to_path_buf).unwrap_or_else(|_| path.to_path_buf())
}

pub fn render(diags: &[Diag], sources: &SourceMap) -> String {
    render_all(diags, sources, 100)
}

pub fn run_opts(out: &Path, pipeline: &str) -> RunOptions {
    RunOptions {
        out: out.to_path_buf(),
        device: DeviceChoice::Cpu,
        force: false,
        only: None,
        quiet: true,
        pipeline: pipeline.into(),
        data_dir: shared_data().unwrap_or_else(|| PathBuf::from("data")),
        share_runs: false,
        command: Vec::new(),
        jobs: 1,
        executor: Default::default(),
    }
}

/// A pipeline whose training diverges (R2001): `score` needs it, `points` does not.
pub const FAILING_PIPELINE: &str = "let data = toy2d(\"moons\", n: 64)\n\
    let fit = train(linear(16) |> relu |> linear(2), data, optimizer: sgd(lr: 1e30), iters: 20)\n\
    let score = evaluate(fit, data)\n\
    let points = scatter_plot(data)\n\
    report score, points\n";

/// Check, plan and run a pipeline file with a profile.
pub fn run_file(path: &Path, profile: Option<&str>, out: &Path) -> Result<Report, String> {
    run_file_on(path, profile, out, DeviceChoice::Cpu)
}

/// `run_file` on a device.
pub fn run_file_on(path: &Path, profile: Option<&str>, out: &Path, device: DeviceChoice) -> Result<Report, String> {
    let mut sources = SourceMap::new();
    let opts = CheckOptions { profile: profile.map(str::to_string), sets: vec![], ..Default::default() };
    let plan = flowline::compile(&mut sources, &rel(path), &opts).map_err(|d| render(&d, &sources))?;
    let run = RunOptions { device, ..run_opts(out, &rel(path).display().to_string()) };
    flowline::run(&plan, &run).map_err(|f| render(&f.diags, &sources))
}

/// The codes of the diagnostics `flowline check` gives a pipeline's text (none when it checks).
pub fn check_codes(src: &str) -> Vec<flowline::diag::Code> {
    let mut sources = SourceMap::new();
    let id = sources.add("t.flow", None, src);
    let opts = CheckOptions { profile: None, sets: vec![], ..Default::default() };
    flowline::check(&mut sources, id, &opts).err().unwrap_or_default().iter().map(|d| d.code).collect()
}
