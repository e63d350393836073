//! A trained flow: its spec, its field's weights, the record of every training iteration
//! (loss terms, forward and backward NFE, seconds) and a sample of the data it was trained
//! on (for figures), saved into and loaded back from its stage folder.

use super::flows::{FLOW, FlowSpec};
use crate::diag::{Code, Diag};
use crate::flow::{Cnf, FlowRecord, TimeNet};
use crate::lang::{Artifact, ArtifactRef, Kind, Role, Saved, StageDir};
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
    /// Dimension of the state.
    pub dim: usize,
    pub field: TimeNet,
    pub records: Vec<FlowRecord>,
    /// The first training points, [kept, dim] row-major.
    pub data: Vec<f32>,
}

impl FlowTrained {
    /// The flow, borrowing the trained field.
    pub fn cnf(&self) -> Cnf<&TimeNet> {
        Cnf { field: &self.field, t0: self.spec.t0, t1: self.spec.t1, trace: self.spec.trace }
    }
}

#[derive(Serialize, Deserialize)]
struct Facts {
    spec: FlowSpec,
    dim: usize,
}

const WEIGHTS: &str = "flow.safetensors";
const CURVES: &str = "iterations.csv";
const HEADER: &str = "iteration,loss,nll,kinetic,jacobian,nfe_forward,nfe_backward,seconds";
const DATA: &str = "data.sample";

impl Artifact for FlowTrained {
    fn kind(&self) -> &'static Kind {
        &FLOW_TRAINING
    }

    fn save(&self, dir: &StageDir) -> Result<Saved, Diag> {
        let bad = |e: candle_core::Error| Diag::new(Code::R1001, e.to_string());
        let mut map = HashMap::new();
        for (name, t) in self.field.named_tensors() {
            map.insert(name, t.to_device(&Device::Cpu).map_err(bad)?);
        }
        let rows = self.data.len() / self.dim.max(1);
        map.insert(DATA.into(), Tensor::from_vec(self.data.clone(), (rows, self.dim), &Device::Cpu).map_err(bad)?);
        let mut csv = format!("{HEADER}\n");
        for (i, r) in self.records.iter().enumerate() {
            csv.push_str(&format!(
                "{i},{},{},{},{},{},{},{}\n",
                r.loss, r.nll, r.kinetic, r.jacobian, r.nfe_forward, r.nfe_backward, r.seconds
            ));
        }
        let files = vec![dir.write_tensors(WEIGHTS, &map)?, dir.write(CURVES, csv.as_bytes())?];
        Ok(Saved { files, facts: yaml::to_value(&Facts { spec: self.spec.clone(), dim: self.dim }) })
    }
}

fn load(_kind: &'static Kind, dir: &StageDir, facts: &yaml::Value) -> Result<ArtifactRef, Diag> {
    let facts: Facts = yaml::from_value(facts.clone()).map_err(|e| dir.bad("stage.yaml", e))?;
    let map = dir.read_tensors(WEIGHTS)?;
    let field =
        TimeNet::from_tensors(&facts.spec.field, facts.dim, &map, dir.device).map_err(|e| dir.bad(WEIGHTS, e))?;
    let data = map
        .get(DATA)
        .ok_or_else(|| dir.bad(WEIGHTS, format!("no `{DATA}`")))?
        .to_dtype(DType::F32)
        .and_then(|t| t.flatten_all()?.to_vec1::<f32>())
        .map_err(|e| dir.bad(WEIGHTS, e))?;
    let records = read_records(dir)?;
    Ok(Arc::new(FlowTrained { spec: facts.spec, dim: facts.dim, field, records, data }))
}

fn read_records(dir: &StageDir) -> Result<Vec<FlowRecord>, Diag> {
    let text = dir.read_text(CURVES)?;
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Err(dir.bad(CURVES, "unexpected header"));
    }
    let mut out = Vec::new();
    for (n, line) in lines.enumerate() {
        let cells: Vec<f64> = line.split(',').filter_map(|c| c.parse::<f64>().ok()).collect();
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
    Ok(out)
}
