//! A trained flow: its spec, the shape of its examples, its blocks' weights, the record of every training iteration
//! (loss terms, forward and backward NFE, seconds) and a sample of the data it was trained
//! on (for figures), saved into and loaded back from its stage folder.

use super::flows::{FLOW, FlowSpec};
use crate::diag::{Code, Diag};
use crate::flow::{BuiltFlow, FlowRecord};
use crate::lang::{Artifact, ArtifactRef, Kind, Role, Saved, StageDir};
use crate::potential::DualRecord;
use crate::yaml;
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

pub static FLOW_TRAINING: Kind = Kind {
    name: "flow_training",
    describe: "a trained flow (`train` of a `cnf`)",
    supers: &[&FLOW],
    role: Role::Result { load: Some(load), metrics: &[] },
};

/// At most this many training points are kept with the flow for its figures.
pub const KEPT_POINTS: usize = 20_000;

pub struct FlowTrained {
    pub spec: FlowSpec,
    /// The shape of one example: [d] or [c, h, w].
    pub shape: Vec<usize>,
    pub flow: BuiltFlow,
    pub records: TrainingLog,
    /// The first training points, [kept, dim] row-major.
    pub data: Vec<f32>,
}

/// A record per training iteration: maximum likelihood's, or the potentials' dual's.
pub enum TrainingLog {
    Likelihood(Vec<FlowRecord>),
    Dual(Vec<DualRecord>),
}

impl TrainingLog {
    /// Each iteration's value of a curve (`flow_curves`' names), or why it has none:
    /// a dual training records its loss and seconds, not likelihoods or solves.
    pub fn curve(&self, metric: &str, shape: &[usize]) -> Result<Vec<f64>, String> {
        match self {
            TrainingLog::Likelihood(r) => Ok(r.iter().map(|r| likelihood_value(r, metric, shape)).collect()),
            TrainingLog::Dual(r) => match metric {
                "loss" => Ok(r.iter().map(|r| r.loss).collect()),
                "seconds" => Ok(r.iter().map(|r| r.seconds).collect()),
                other => Err(format!(
                    "a flow trained by its potentials' dual solves no ODE in training and records no `{other}`; its curves are `loss` and `seconds`"
                )),
            },
        }
    }
}

/// A likelihood record's value of `metric`; bits per dimension for examples of `shape` (of
/// the 256 levels for images, whose training batches are dequantized), as `evaluate`
/// reports it.
fn likelihood_value(r: &FlowRecord, metric: &str, shape: &[usize]) -> f64 {
    match metric {
        "nfe_forward" => r.nfe_forward as f64,
        "nfe_backward" => r.nfe_backward as f64,
        "nll" => r.nll,
        "bits_per_dim" => super::flow_train::bits_per_dim(r.nll, shape),
        "loss" => r.loss,
        _ => r.seconds,
    }
}

impl FlowTrained {
    /// Values per example.
    pub fn dim(&self) -> usize {
        self.shape.iter().product()
    }
}

#[derive(Serialize, Deserialize)]
struct Facts {
    spec: FlowSpec,
    dim: usize,
    /// Absent in flows trained before image flows: then [dim].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    shape: Vec<usize>,
}

const WEIGHTS: &str = "flow.safetensors";
const CURVES: &str = "iterations.csv";
const HEADER: &str = "iteration,loss,nll,kinetic,jacobian,nfe_forward,nfe_backward,seconds";
const DUAL_HEADER: &str = "iteration,loss,phi_objective,psi_objective,seconds";
const DATA: &str = "data.sample";

impl Artifact for FlowTrained {
    fn kind(&self) -> &'static Kind {
        &FLOW_TRAINING
    }

    fn save(&self, dir: &StageDir) -> Result<Saved, Diag> {
        let bad = |e: candle_core::Error| Diag::new(Code::R1001, e.to_string());
        let mut map = HashMap::new();
        for (name, t) in self.flow.named_tensors() {
            map.insert(name, t.to_device(&Device::Cpu).map_err(bad)?);
        }
        let dim = self.dim();
        let rows = self.data.len() / dim.max(1);
        map.insert(DATA.into(), Tensor::from_vec(self.data.clone(), (rows, dim), &Device::Cpu).map_err(bad)?);
        let csv = match &self.records {
            TrainingLog::Likelihood(records) => {
                let mut csv = format!("{HEADER}\n");
                for (i, r) in records.iter().enumerate() {
                    csv.push_str(&format!(
                        "{i},{},{},{},{},{},{},{}\n",
                        r.loss, r.nll, r.kinetic, r.jacobian, r.nfe_forward, r.nfe_backward, r.seconds
                    ));
                }
                csv
            }
            TrainingLog::Dual(records) => {
                let mut csv = format!("{DUAL_HEADER}\n");
                for (i, r) in records.iter().enumerate() {
                    csv.push_str(&format!("{i},{},{},{},{}\n", r.loss, r.phi, r.psi, r.seconds));
                }
                csv
            }
        };
        let files = vec![dir.write_tensors(WEIGHTS, &map)?, dir.write(CURVES, csv.as_bytes())?];
        let shape = if self.shape.len() == 1 { Vec::new() } else { self.shape.clone() };
        let facts = Facts { spec: self.spec.clone(), dim: self.dim(), shape };
        Ok(Saved { files, facts: yaml::to_value(&facts) })
    }
}

fn load(_kind: &'static Kind, dir: &StageDir, facts: &yaml::Value) -> Result<ArtifactRef, Diag> {
    let facts: Facts = yaml::from_value(facts.clone()).map_err(|e| dir.bad("stage.yaml", e))?;
    let map = dir.read_tensors(WEIGHTS)?;
    let shape = if facts.shape.is_empty() { vec![facts.dim] } else { facts.shape };
    let mut flow =
        facts.spec.build(&shape, &mut crate::rng::Rng::new(0), dir.device).map_err(|e| dir.bad(WEIGHTS, e))?;
    flow.set_tensors(&map).map_err(|e| dir.bad(WEIGHTS, e))?;
    let data = map
        .get(DATA)
        .ok_or_else(|| dir.bad(WEIGHTS, format!("no `{DATA}`")))?
        .to_dtype(DType::F32)
        .and_then(|t| t.flatten_all()?.to_vec1::<f32>())
        .map_err(|e| dir.bad(WEIGHTS, e))?;
    let records = read_records(dir)?;
    Ok(Arc::new(FlowTrained { spec: facts.spec, shape, flow, records, data }))
}

fn read_records(dir: &StageDir) -> Result<TrainingLog, Diag> {
    let text = dir.read_text(CURVES)?;
    let mut lines = text.lines();
    let header = lines.next();
    let cells = |line: &str| -> Vec<f64> { line.split(',').filter_map(|c| c.parse::<f64>().ok()).collect() };
    if header == Some(DUAL_HEADER) {
        let mut out = Vec::new();
        for (n, line) in lines.enumerate() {
            let [_, loss, phi, psi, seconds] = cells(line)[..] else {
                return Err(dir.bad(CURVES, format!("line {} is not five numbers", n + 2)));
            };
            out.push(DualRecord { loss, phi, psi, seconds });
        }
        return Ok(TrainingLog::Dual(out));
    }
    if header != Some(HEADER) {
        return Err(dir.bad(CURVES, "unexpected header"));
    }
    let mut out = Vec::new();
    for (n, line) in lines.enumerate() {
        let cells: Vec<f64> = cells(line);
        let [_, loss, nll, kinetic, jacobian, f, b, seconds] = cells[..] else {
            return Err(dir.bad(CURVES, format!("line {} is not eight numbers", n + 2)));
        };
        out.push(FlowRecord {
            loss,
            nll,
            kinetic,
            jacobian,
            nfe_forward: f as usize,
            nfe_backward: b as usize,
            seconds,
        });
    }
    Ok(TrainingLog::Likelihood(out))
}
