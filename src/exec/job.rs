//! One stage as a job of its own (a cluster job): the run folder holds the serialised plan
//! and how to run it (`.flowline/job.yaml`); `flowline worker RUN --stage NAME` reads it,
//! takes the stage's inputs from the run folder's cache, runs the stage as a local run would
//! and records its result there, or its failure in `.flowline/failed/NAME.yaml`. The run
//! folder is the hand-off between jobs.

use super::cache::{self, StoredDiag};
use super::session::{Results, Session};
use super::{DeviceChoice, RunOptions};
use crate::diag::{Code, Diag};
use crate::lang::{Progress, Registry};
use crate::plan::Plan;
use crate::yaml;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What every job of a run reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobFile {
    pub plan: Plan,
    pub data_dir: PathBuf,
    /// `cpu` or `cuda`.
    pub device: String,
    pub force: bool,
}

/// A failed job's diagnostic, as the worker leaves it for the run that submitted it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Failure {
    pub code: String,
    pub message: String,
    #[serde(default)]
    pub hints: Vec<String>,
}

impl Failure {
    pub fn to_diag(&self) -> Diag {
        let code = Code::parse(&self.code).unwrap_or(Code::R1006);
        self.hints.iter().fold(Diag::new(code, self.message.clone()), |d, h| d.hint(h.clone()))
    }
}

/// `<run>/.flowline`: the job file, job scripts, logs and failures.
pub fn control_dir(out: &Path) -> PathBuf {
    out.join(".flowline")
}

pub fn job_file(out: &Path) -> PathBuf {
    control_dir(out).join("job.yaml")
}

pub fn failure_file(out: &Path, stage: &str) -> PathBuf {
    control_dir(out).join("failed").join(format!("{stage}.yaml"))
}

pub fn log_file(out: &Path, stage: &str) -> PathBuf {
    control_dir(out).join("logs").join(format!("{stage}.log"))
}

pub fn write_job_file(out: &Path, job: &JobFile) -> Result<(), Diag> {
    let text = yaml::to_string(job).map_err(|e| Diag::new(Code::R1001, e))?;
    std::fs::create_dir_all(control_dir(out).join("failed"))
        .and_then(|()| std::fs::create_dir_all(control_dir(out).join("logs")))
        .map_err(|e| Diag::new(Code::R1001, format!("cannot create {}: {e}", control_dir(out).display())))?;
    crate::lang::write_atomic(&job_file(out), text.as_bytes())
}

/// The worker: run stage `stage` of the run in `out`. Its failure is also left in the run
/// folder for the submitting run to read.
pub fn work(reg: &Registry, out: &Path, stage: &str) -> Result<(), Diag> {
    let result = run_one(reg, out, stage);
    if let Err(d) = &result {
        let f = Failure { code: d.code.as_str().to_string(), message: d.message.clone(), hints: d.hints.clone() };
        if let Ok(text) = yaml::to_string(&f) {
            let _ = crate::lang::write_atomic(&failure_file(out, stage), text.as_bytes());
        }
    }
    result
}

fn run_one(reg: &Registry, out: &Path, stage: &str) -> Result<(), Diag> {
    let path = job_file(out);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Diag::new(Code::R1004, format!("cannot read the job file {}: {e}", path.display())))?;
    let job: JobFile = yaml::from_str(&text)
        .map_err(|e| Diag::new(Code::R1002, format!("the job file {} is malformed: {e}", path.display())))?;
    let plan = &job.plan;
    let i = plan.find(stage).ok_or_else(|| Diag::new(Code::E3002, format!("the plan has no stage `{stage}`")))?;
    let choice = if job.device == "cuda" { DeviceChoice::Cuda } else { DeviceChoice::Cpu };
    let device = super::device(choice)?;
    let opts = RunOptions {
        out: out.to_path_buf(),
        device: choice,
        force: job.force,
        quiet: true,
        data_dir: job.data_dir.clone(),
        ..Default::default()
    };
    let (keys, inputs) = crate::plan::keyed(plan, reg, &opts.data_dir).into_iter().map(|k| (k.key, k.text)).unzip();
    let session = Session {
        plan,
        registry: reg,
        opts: &opts,
        keys,
        inputs,
        device: device.clone(),
        progress: Progress::new(true),
    };
    let nodes = plan.nodes();
    let mut artifacts = vec![None; nodes.len()];
    for &d in &nodes[i].deps {
        let dep = &nodes[d];
        let declared = reg
            .stage(&dep.builtin)
            .map(|s| s.output_for(&dep.args))
            .ok_or_else(|| Diag::new(Code::R1006, format!("internal: `{}` is not a stage", dep.builtin)))?;
        let (_, a) = cache::load_cached(reg, out, &dep.name, declared, &session.keys[d], &device).ok_or_else(|| {
            Diag::new(
                Code::R1004,
                format!("the input `{}` of `{stage}` has no current result in {}", dep.name, out.display()),
            )
            .hint("the job of that stage did not finish; run the pipeline again to resubmit it")
        })?;
        artifacts[d] = Some(a);
    }
    session.run_stage(i, &Results { nodes, artifacts: &artifacts }).map(|_| ())
}

impl From<&Diag> for Failure {
    fn from(d: &Diag) -> Self {
        let stored = StoredDiag::from(d);
        Failure { code: stored.code, message: stored.message, hints: d.hints.clone() }
    }
}
