//! The interpreter: executes the plan in topological order, reusing cached results,
//! and writes the report.

mod artifact;
mod atomic;
mod cache;
mod context;
mod lock;
mod progress;
mod provenance;
mod report;
pub mod yaml;

pub use artifact::{Artifact, Metrics, Output, Trained, load_dataset, save_tensors as write_tensors};
pub use atomic::write as write_atomic;
pub use context::{ModelArg, ModelRef, RunCtx};
pub use lock::RunLock;
pub use progress::Progress;
pub use provenance::{Git, Provenance};
pub use report::{Report, StageReport, flatten_metrics, show_number};

use crate::diag::{Code, Diag};
use crate::plan::Plan;
use cache::Manifest;
use candle_core::Device;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    #[default]
    Cpu,
    Cuda,
    Auto,
}

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub out: PathBuf,
    pub device: DeviceChoice,
    pub force: bool,
    pub only: Option<String>,
    pub quiet: bool,
    /// Shown in the report.
    pub pipeline: String,
    /// Where dataset stages read their files (`--data-dir`, `FLOWLINE_DATA`, `./data`).
    pub data_dir: PathBuf,
    /// Also take a stage's result from a sibling run folder that computed the same key
    /// (pipelines sharing a `use`d definition under the CLI's default `runs/`).
    pub share_runs: bool,
    /// The command line, recorded in the report.
    pub command: Vec<String>,
}

/// `--data-dir` if given, else `FLOWLINE_DATA`, else `./data`.
pub fn data_dir(flag: Option<PathBuf>) -> PathBuf {
    flag.or_else(|| std::env::var_os("FLOWLINE_DATA").map(PathBuf::from)).unwrap_or_else(|| PathBuf::from("data"))
}

pub fn device(choice: DeviceChoice) -> Result<Device, Diag> {
    match choice {
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Cuda => cuda().map_err(|why| {
            Diag::new(Code::R1003, format!("CUDA is not available: {why}"))
                .hint("use `--device cpu`, or `--device auto` to fall back to the CPU")
        }),
        DeviceChoice::Auto => Ok(cuda().unwrap_or(Device::Cpu)),
    }
}

#[cfg(feature = "cuda")]
fn cuda() -> Result<Device, String> {
    Device::new_cuda(0).map_err(|e| e.to_string())
}

#[cfg(not(feature = "cuda"))]
fn cuda() -> Result<Device, String> {
    Err("this flowline was built without the `cuda` feature (cargo build --features cuda)".into())
}

pub fn device_name(d: &Device) -> &'static str {
    if d.is_cuda() { "cuda" } else { "cpu" }
}

/// A run that did not complete: the diagnostics of what failed and, when the run got as
/// far as executing stages, the report it wrote (`out/report.yaml`), which records them.
pub struct RunFailure {
    pub diags: Vec<Diag>,
    pub report: Option<Box<Report>>,
}

impl std::fmt::Debug for RunFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown: Vec<String> = self.diags.iter().map(Diag::to_string).collect();
        write!(f, "RunFailure({})", shown.join("; "))
    }
}

impl From<Diag> for RunFailure {
    fn from(d: Diag) -> Self {
        RunFailure { diags: vec![d], report: None }
    }
}

/// Execute the plan; returns the report (also written to `out/report.yaml`). A failing
/// stage does not stop the run: every stage that does not depend on it still runs, the
/// report records the failure, and the result is a `RunFailure`.
pub fn execute(plan: &Plan, opts: &RunOptions) -> Result<Report, RunFailure> {
    let device = device(opts.device)?;
    let nodes = plan.nodes();
    let selection = match &opts.only {
        Some(name) => plan.select(name)?,
        None => plan.order.clone(),
    };
    let provenance = Provenance::now(&opts.command, &plan.checked.sets, Path::new(&opts.pipeline));
    std::fs::create_dir_all(&opts.out)
        .map_err(|e| Diag::new(Code::R1001, format!("cannot create the output folder {}: {e}", opts.out.display())))?;
    let _lock = RunLock::acquire(&opts.out)?;
    let keys = cache::keys(nodes, &plan.order, plan.checked.seed, &opts.data_dir);
    let progress = Progress::new(opts.quiet);

    let mut artifacts: Vec<Option<artifact::Artifact>> = vec![None; nodes.len()];
    // Why a stage has no result in this run: its own failure, or a failed stage it needs.
    let mut broken: Vec<Option<String>> = vec![None; nodes.len()];
    let mut reports: Vec<Option<StageReport>> = (0..nodes.len()).map(|_| None).collect();
    let mut failures = Vec::new();
    let total = selection.len();
    for (k, &i) in selection.iter().enumerate() {
        let node = &nodes[i];
        let started = Instant::now();
        if let Some(&d) = node.deps.iter().find(|&&d| broken[d].is_some()) {
            let why = broken[d].clone().unwrap_or_default();
            let note = if why == nodes[d].name {
                format!("needs `{why}`, which failed")
            } else {
                format!("needs `{}`, skipped because `{why}` failed", nodes[d].name)
            };
            broken[i] = Some(why);
            if !opts.quiet {
                eprintln!("[{}/{}] {:<16} {:<14} skipped ({note})", k + 1, total, node.name, node.builtin.name);
            }
            reports[i] = Some(StageReport::not_run(node, nodes, "skipped", Some(note)));
            continue;
        }
        match run_stage(plan, opts, i, &keys, &device, progress, &artifacts) {
            Ok((manifest, artifact, status)) => {
                let secs = started.elapsed().as_secs_f64();
                if !opts.quiet {
                    eprintln!(
                        "[{}/{}] {:<16} {:<14} {status} ({secs:.2}s)",
                        k + 1,
                        total,
                        node.name,
                        node.builtin.name
                    );
                }
                artifacts[i] = Some(artifact);
                reports[i] = Some(StageReport::new(node, nodes, &manifest, status, secs));
            }
            Err(d) => {
                let secs = started.elapsed().as_secs_f64();
                if !opts.quiet {
                    eprintln!("[{}/{}] {:<16} {:<14} failed ({secs:.2}s)", k + 1, total, node.name, node.builtin.name);
                }
                broken[i] = Some(node.name.clone());
                let mut r = StageReport::not_run(node, nodes, "failed", None);
                r.error = Some(d.clone());
                r.wall_seconds = Some(secs);
                reports[i] = Some(r);
                failures.push(d);
            }
        }
    }
    // `--only`: the stages it did not run keep their last results in the report.
    for (i, slot) in reports.iter_mut().enumerate() {
        if slot.is_none() {
            *slot = Some(kept_result(&nodes[i], nodes, &opts.out, &keys[i]));
        }
    }
    let stages = reports.into_iter().flatten().collect();
    let report = Report::new(plan, opts, device_name(&device), stages, provenance);
    let written = report.to_yaml().and_then(|text| atomic::write(&opts.out.join("report.yaml"), text.as_bytes()));
    if let Err(d) = written {
        failures.push(d);
    }
    if failures.is_empty() { Ok(report) } else { Err(RunFailure { diags: failures, report: Some(Box::new(report)) }) }
}

/// A stage this run did not touch, with the result its folder holds from an earlier run.
fn kept_result(node: &crate::check::Node, nodes: &[crate::check::Node], out: &Path, key: &str) -> StageReport {
    match read_manifest(&out.join(&node.name).join("stage.yaml")) {
        Some(m) => {
            let mut r = StageReport::new(node, nodes, &m, "not run", 0.0);
            r.wall_seconds = None;
            r.current = m.key == key;
            let note =
                if r.current { "earlier result, still current" } else { "earlier result, from another definition" };
            r.note = Some(note.into());
            r
        }
        None => StageReport::not_run(node, nodes, "not run", Some("no earlier result".into())),
    }
}

/// One stage: from the cache (this run folder's, or a sibling's) or executed.
fn run_stage(
    plan: &Plan,
    opts: &RunOptions,
    i: usize,
    keys: &[String],
    device: &Device,
    progress: Progress,
    artifacts: &[Option<artifact::Artifact>],
) -> Result<(Manifest, artifact::Artifact, &'static str), Diag> {
    let nodes = plan.nodes();
    let node = &nodes[i];
    let manifest_path = opts.out.join(&node.name).join("stage.yaml");
    let mut cached = if opts.force { None } else { load_cached(&manifest_path, &keys[i], &opts.out, device) };
    let mut status_cached = "cached";
    if cached.is_none() && !opts.force && opts.share_runs && adopt_from_sibling_runs(&opts.out, &node.name, &keys[i]) {
        cached = load_cached(&manifest_path, &keys[i], &opts.out, device);
        status_cached = "cached (another run)";
    }
    if let Some((m, a)) = cached {
        return Ok((m, a, status_cached));
    }
    let _ = std::fs::remove_file(&manifest_path);
    let stage = node
        .builtin
        .stage
        .as_ref()
        .ok_or_else(|| Diag::new(Code::R1002, format!("`{}` is not a stage", node.builtin.name)))?;
    let mut cx = RunCtx {
        node,
        run_dir: &opts.out,
        seed: plan.checked.seed,
        streams: 0,
        device: device.clone(),
        progress,
        data_dir: opts.data_dir.clone(),
        artifacts,
        nodes,
        warnings: Vec::new(),
    };
    let out = stage.run(&mut cx)?;
    if cfg!(debug_assertions) {
        // Every number a stage emits can be read as a field (`fit.final_loss`), except the
        // cells of a table (`label.metric`), which are reported with the whole stage.
        let fields = stage.fields(&node.args);
        let undeclared: Vec<&String> =
            out.metrics.keys().filter(|k| !k.contains('.') && !fields.iter().any(|(f, _)| f == *k)).collect();
        assert!(undeclared.is_empty(), "`{}` emits undeclared metrics {undeclared:?}", node.builtin.name);
    }
    let warnings = std::mem::take(&mut cx.warnings);
    let (reload, mut files) = out.artifact.save(&opts.out, &node.name)?;
    files.extend(out.files.iter().cloned());
    files.sort();
    files.dedup();
    let m = Manifest {
        key: keys[i].clone(),
        builtin: node.builtin.name.into(),
        metrics: out.metrics,
        files,
        reload,
        warnings: warnings.iter().map(cache::StoredDiag::from).collect(),
    };
    let text = yaml::to_string(&m).map_err(|e| Diag::new(Code::R1001, e))?;
    atomic::write(&manifest_path, text.as_bytes())?;
    Ok((m, out.artifact, "executed"))
}

/// The same stage with the same key, already computed by another pipeline in the same
/// runs folder (a shared `use`d definition, same seed and data): copy its folder here. The
/// key covers everything the result depends on, so the copy is that result.
fn adopt_from_sibling_runs(out: &Path, stage: &str, key: &str) -> bool {
    let Some(parent) = out.parent() else { return false };
    let Ok(entries) = std::fs::read_dir(parent) else { return false };
    let mut runs: Vec<std::path::PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    runs.sort();
    for run in runs {
        if run == out || !run.is_dir() {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(run.join(stage).join("stage.yaml")) else { continue };
        let Ok(m) = yaml::from_str::<Manifest>(&text) else { continue };
        if m.key != key || !m.files.iter().all(|f| run.join(f).exists() && f.starts_with(&format!("{stage}/"))) {
            continue;
        }
        let _ = std::fs::remove_dir_all(out.join(stage));
        if copy_dir(&run.join(stage), &out.join(stage)).is_ok() {
            return true;
        }
    }
    false
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let target = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &target)?
        } else {
            std::fs::copy(e.path(), target).map(|_| ())?
        }
    }
    Ok(())
}

fn read_manifest(path: &Path) -> Option<Manifest> {
    yaml::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

fn load_cached(manifest: &Path, key: &str, run_dir: &Path, device: &Device) -> Option<(Manifest, artifact::Artifact)> {
    let m = read_manifest(manifest)?;
    if m.key != key || !m.files.iter().all(|f| run_dir.join(f).exists()) {
        return None;
    }
    let a = artifact::Artifact::load(&m.reload, run_dir, device).ok()?;
    Some((m, a))
}
