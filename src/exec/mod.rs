//! The interpreter: executes the plan in topological order, reusing cached results,
//! and writes the report.

mod artifact;
mod atomic;
mod cache;
mod context;
mod progress;
mod report;
pub mod yaml;

pub use artifact::{Artifact, Output, Trained, load_dataset, save_tensors as write_tensors};
pub use atomic::write as write_atomic;
pub use context::{ModelArg, ModelRef, RunCtx};
pub use progress::Progress;
pub use report::{Report, StageReport, flatten_metrics};

use crate::diag::{Code, Diag};
use crate::plan::Plan;
use crate::rng::Rng;
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

/// Execute the plan; returns the report (also written to `out/report.yaml`).
pub fn execute(plan: &Plan, opts: &RunOptions) -> Result<Report, Diag> {
    let device = device(opts.device)?;
    let nodes = plan.nodes();
    let selection = match &opts.only {
        Some(name) => {
            let i = plan.find(name).ok_or_else(|| {
                let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
                Diag::new(Code::E3002, format!("no stage named `{name}`"))
                    .maybe_hint(
                        crate::diag::did_you_mean(name, names.iter().copied()).map(|s| format!("did you mean `{s}`?")),
                    )
                    .hint(format!("stages: {}", names.join(", ")))
            })?;
            plan.closure(i)
        }
        None => plan.order.clone(),
    };
    let keys = cache::keys(nodes, &plan.order, plan.checked.seed, &opts.data_dir);
    let progress = Progress::new(opts.quiet);
    std::fs::create_dir_all(&opts.out)
        .map_err(|e| Diag::new(Code::R1001, format!("cannot create the output folder {}: {e}", opts.out.display())))?;

    let mut artifacts: Vec<Option<artifact::Artifact>> = vec![None; nodes.len()];
    let mut stages = Vec::new();
    let total = selection.len();
    for (k, &i) in selection.iter().enumerate() {
        let node = &nodes[i];
        let started = Instant::now();
        let manifest_path = opts.out.join(&node.name).join("stage.yaml");
        let mut cached = if opts.force { None } else { load_cached(&manifest_path, &keys[i], &opts.out, &device) };
        let mut status_cached = "cached";
        if cached.is_none()
            && !opts.force
            && opts.share_runs
            && adopt_from_sibling_runs(&opts.out, &node.name, &keys[i])
        {
            cached = load_cached(&manifest_path, &keys[i], &opts.out, &device);
            status_cached = "cached (another run)";
        }
        let (manifest, artifact, status) = match cached {
            Some((m, a)) => (m, a, status_cached),
            None => {
                let _ = std::fs::remove_file(&manifest_path);
                let stage = node
                    .builtin
                    .stage
                    .as_ref()
                    .ok_or_else(|| Diag::new(Code::R1002, format!("`{}` is not a stage", node.builtin.name)))?;
                let mut cx = RunCtx {
                    node,
                    run_dir: &opts.out,
                    rng: Rng::derive(plan.checked.seed, &node.name),
                    device: device.clone(),
                    progress,
                    data_dir: opts.data_dir.clone(),
                    artifacts: &artifacts,
                    nodes,
                };
                let out = stage.run(&mut cx)?;
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
                };
                let text = yaml::to_string(&m).map_err(|e| Diag::new(Code::R1001, e))?;
                atomic::write(&manifest_path, text.as_bytes())?;
                (m, out.artifact, "executed")
            }
        };
        let secs = started.elapsed().as_secs_f64();
        if !opts.quiet {
            eprintln!("[{}/{}] {:<16} {:<14} {status} ({secs:.2}s)", k + 1, total, node.name, node.builtin.name);
        }
        artifacts[i] = Some(artifact);
        stages.push(StageReport::new(node, nodes, &manifest, status, secs));
    }
    let report = Report::new(plan, opts, device_name(&device), stages);
    let text = report.to_yaml()?;
    atomic::write(&opts.out.join("report.yaml"), text.as_bytes())?;
    Ok(report)
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

fn load_cached(manifest: &Path, key: &str, run_dir: &Path, device: &Device) -> Option<(Manifest, artifact::Artifact)> {
    let text = std::fs::read_to_string(manifest).ok()?;
    let m: Manifest = yaml::from_str(&text).ok()?;
    if m.key != key || !m.files.iter().all(|f| run_dir.join(f).exists()) {
        return None;
    }
    let a = artifact::Artifact::load(&m.reload, run_dir, device).ok()?;
    Some((m, a))
}
