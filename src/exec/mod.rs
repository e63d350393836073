//! The interpreter: runs a plan's stages through an executor (the local one by default),
//! reusing cached results, and writes the report.

mod cache;
mod dag_svg;
mod executor;
mod html;
mod job;
mod lock;
mod parallel;
mod provenance;
mod report;
mod session;
mod slurm;
mod status;
mod sweep_table;

/// Formatting and writing helpers the CLI shares with the stages.
pub use crate::lang::{Metrics, show_number, write_atomic};
/// The YAML module, as the report's readers use it.
pub use crate::yaml;
pub use executor::{Executor, Local, Outcome};
pub use job::{JobFile, work};
pub use lock::RunLock;
pub use parallel::Parallel;
pub use provenance::{Git, Provenance};
pub use report::{Report, StageReport, flatten_metrics};
pub use session::{Done, Session};
pub use slurm::{INTERRUPTED, Slurm};
pub use status::{StageStatus, State as StageState, render as render_status, status};
pub use sweep_table::{SweepRow, SweepTable};

use crate::diag::{Code, Diag};
use crate::lang::{Progress, Registry};
use crate::plan::Plan;
use candle_core::Device;
use std::path::{Path, PathBuf};
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
    /// Stages run at the same time (`--jobs`); 0 and 1 run one after another.
    pub jobs: usize,
    /// Where the stages run.
    pub executor: ExecutorChoice,
}

/// `--executor`: this machine, or one Slurm job per stage.
#[derive(Debug, Clone, Default)]
pub enum ExecutorChoice {
    #[default]
    Local,
    Slurm {
        /// The flowline executable the jobs run.
        worker: PathBuf,
        /// Where Slurm's commands are (else PATH).
        bin: Option<PathBuf>,
    },
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

/// Execute the plan with the local executor; returns the report (also written to
/// `out/report.yaml`). A failing stage does not stop the run: every stage that does not
/// depend on it still runs, the report records the failure, and the result is a `RunFailure`.
pub fn execute(reg: &Registry, plan: &Plan, opts: &RunOptions) -> Result<Report, RunFailure> {
    if let ExecutorChoice::Slurm { worker, bin } = &opts.executor {
        let slurm = Slurm { worker: worker.clone(), bin: bin.clone(), poll: std::time::Duration::from_millis(500) };
        return execute_with(&slurm, reg, plan, opts);
    }
    if opts.jobs > 1 {
        execute_with(&Parallel::within(opts.jobs, rayon::current_num_threads()), reg, plan, opts)
    } else {
        execute_with(&Local, reg, plan, opts)
    }
}

/// Execute the plan with `executor`.
pub fn execute_with(
    executor: &dyn Executor,
    reg: &Registry,
    plan: &Plan,
    opts: &RunOptions,
) -> Result<Report, RunFailure> {
    let device = device(opts.device)?;
    let selection = match &opts.only {
        Some(name) => plan.select(name)?,
        None => plan.order.clone(),
    };
    let provenance = Provenance::now(&opts.command, &plan.checked.sets, Path::new(&opts.pipeline));
    std::fs::create_dir_all(&opts.out)
        .map_err(|e| Diag::new(Code::R1001, format!("cannot create the output folder {}: {e}", opts.out.display())))?;
    let _lock = RunLock::acquire(&opts.out)?;
    let (keys, inputs) = crate::plan::keyed(plan, reg, &opts.data_dir).into_iter().map(|k| (k.key, k.text)).unzip();
    // Bars of stages running side by side would overwrite each other.
    let progress = Progress::new(opts.quiet || opts.jobs > 1);
    let session = Session { plan, registry: reg, opts, keys, inputs, device: device.clone(), progress };
    let outcomes = executor.execute(&session, &selection);

    let nodes = plan.nodes();
    let mut failures = Vec::new();
    let mut slots: Vec<Option<StageReport>> = Vec::with_capacity(nodes.len());
    for (i, outcome) in outcomes.into_iter().enumerate() {
        let node = &nodes[i];
        slots.push(Some(match outcome {
            Some(Outcome::Done { done, secs }) => StageReport::new(node, nodes, &done.manifest, done.status, secs),
            Some(Outcome::Failed { diag, secs }) => {
                let mut r = StageReport::not_run(node, nodes, "failed", None);
                r.error = Some(diag.clone());
                r.wall_seconds = Some(secs);
                failures.push(diag);
                r
            }
            Some(Outcome::Skipped { note }) => StageReport::not_run(node, nodes, "skipped", Some(note)),
            // `--only`: the stages it did not run keep their last results in the report.
            None => kept_result(node, nodes, &opts.out, &session.keys[i]),
        }));
    }
    // The report lists the stages in execution order.
    let stages = plan.order.iter().filter_map(|&i| slots[i].take()).collect();
    let report = Report::new(plan, opts, device_name(&device), stages, provenance);
    let written = report
        .to_yaml()
        .and_then(|text| crate::lang::write_atomic(&opts.out.join("report.yaml"), text.as_bytes()))
        .and_then(|()| html::write(plan, &report, &opts.out));
    if let Err(d) = written {
        failures.push(d);
    }
    if failures.is_empty() { Ok(report) } else { Err(RunFailure { diags: failures, report: Some(Box::new(report)) }) }
}

/// A stage this run did not touch, with the result its folder holds from an earlier run.
fn kept_result(node: &crate::lang::Node, nodes: &[crate::lang::Node], out: &Path, key: &str) -> StageReport {
    match cache::read_manifest(&out.join(&node.name).join("stage.yaml")) {
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
