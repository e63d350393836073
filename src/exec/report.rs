//! `report.yaml`: the pipeline, seed, device and versions, and for every stage that ran
//! its resolved parameters, metrics, artifacts, wall time and whether it came from cache.

use super::RunOptions;
use super::cache::Manifest;
use super::yaml::{self, Mapping, Value};
use crate::check::{CVal, Node, VKind};
use crate::diag::{Code, Diag};
use crate::plan::Plan;
use std::collections::BTreeMap;

pub struct StageReport {
    pub name: String,
    pub builtin: String,
    pub status: &'static str,
    pub params: Value,
    pub metrics: BTreeMap<String, f64>,
    pub artifacts: Vec<String>,
    pub wall_seconds: f64,
}

impl StageReport {
    pub fn new(node: &Node, nodes: &[Node], m: &Manifest, status: &'static str, wall_seconds: f64) -> Self {
        let mut params = Mapping::new();
        for (name, v) in &node.args.0 {
            params.insert(yaml::string(*name), param_value(v, nodes));
        }
        StageReport {
            name: node.name.clone(),
            builtin: node.builtin.name.to_string(),
            status,
            params: Value::Mapping(params),
            metrics: m.metrics.clone(),
            artifacts: m.files.clone(),
            wall_seconds,
        }
    }
}

/// Parameters as a reader wants them: numbers, strings, `{adam: {lr: ...}}`, and
/// references to other stages as `@name.field`.
fn param_value(v: &CVal, nodes: &[Node]) -> Value {
    match &v.kind {
        VKind::Int(i) => yaml::int(*i),
        VKind::Float(f) => yaml::float(*f),
        VKind::Str(s) | VKind::Sym(s) => yaml::string(s.clone()),
        VKind::Bool(b) => Value::Bool(*b),
        VKind::None => Value::Null,
        VKind::List(items) | VKind::Pipe(items) => {
            Value::Sequence(items.iter().map(|i| param_value(i, nodes)).collect())
        }
        VKind::Config(c) => {
            let mut args = Mapping::new();
            for (n, a) in &c.args.0 {
                args.insert(yaml::string(*n), param_value(a, nodes));
            }
            let mut m = Mapping::new();
            m.insert(yaml::string(c.builtin.name), if args.is_empty() { Value::Null } else { Value::Mapping(args) });
            Value::Mapping(m)
        }
        VKind::Stage(r) => {
            let name = nodes.get(r.node).map(|n| n.name.as_str()).unwrap_or("?");
            yaml::string(match &r.field {
                Some(f) => format!("@{name}.{f}"),
                None => format!("@{name}"),
            })
        }
    }
}

pub struct Report {
    pub pipeline: String,
    pub seed: u64,
    pub profile: Option<String>,
    pub device: String,
    pub stages: Vec<StageReport>,
    /// `label -> value` for everything named in `report`: metrics, or artifact paths.
    pub reported: Vec<(String, Value)>,
}

impl Report {
    pub fn new(plan: &Plan, opts: &RunOptions, device: &str, stages: Vec<StageReport>) -> Self {
        let nodes = plan.nodes();
        let mut reported = Vec::new();
        for item in &plan.checked.reports {
            let Some(s) = stages.iter().find(|s| s.name == nodes[item.node].name) else {
                continue;
            };
            match &item.field {
                Some(f) => {
                    let v = match s.metrics.get(f) {
                        Some(x) => yaml::float(*x),
                        None => artifact_value(s, Some(f)),
                    };
                    reported.push((item.label.clone(), v));
                }
                None if !s.metrics.is_empty() => {
                    let mut m = Mapping::new();
                    for (k, v) in &s.metrics {
                        m.insert(yaml::string(k.clone()), yaml::float(*v));
                    }
                    reported.push((item.label.clone(), Value::Mapping(m)));
                }
                None => reported.push((item.label.clone(), artifact_value(s, None))),
            }
        }
        Report {
            pipeline: opts.pipeline.clone(),
            seed: plan.checked.seed,
            profile: plan.checked.profile.clone(),
            device: device.to_string(),
            stages,
            reported,
        }
    }

    pub fn to_value(&self) -> Value {
        let mut top = Mapping::new();
        top.insert(yaml::string("pipeline"), yaml::string(self.pipeline.clone()));
        top.insert(yaml::string("flowline"), yaml::string(env!("CARGO_PKG_VERSION")));
        top.insert(yaml::string("candle"), yaml::string("0.11"));
        top.insert(yaml::string("seed"), yaml::int(self.seed as i64));
        top.insert(yaml::string("profile"), self.profile.clone().map(Value::String).unwrap_or(Value::Null));
        top.insert(yaml::string("device"), yaml::string(self.device.clone()));
        let mut rep = Mapping::new();
        for (k, v) in &self.reported {
            rep.insert(yaml::string(k.clone()), v.clone());
        }
        top.insert(yaml::string("reported"), Value::Mapping(rep));
        let mut stages = Mapping::new();
        for s in &self.stages {
            let mut m = Mapping::new();
            m.insert(yaml::string("kind"), yaml::string(s.builtin.clone()));
            m.insert(yaml::string("status"), yaml::string(s.status));
            m.insert(yaml::string("params"), s.params.clone());
            let mut metrics = Mapping::new();
            for (k, v) in &s.metrics {
                metrics.insert(yaml::string(k.clone()), yaml::float(*v));
            }
            m.insert(yaml::string("metrics"), Value::Mapping(metrics));
            m.insert(
                yaml::string("artifacts"),
                Value::Sequence(s.artifacts.iter().map(|a| yaml::string(a.clone())).collect()),
            );
            m.insert(yaml::string("wall_seconds"), yaml::float((s.wall_seconds * 1000.0).round() / 1000.0));
            stages.insert(yaml::string(s.name.clone()), Value::Mapping(m));
        }
        top.insert(yaml::string("stages"), Value::Mapping(stages));
        Value::Mapping(top)
    }

    pub fn to_yaml(&self) -> Result<String, Diag> {
        yaml::to_string(&self.to_value()).map_err(|e| Diag::new(Code::R1001, e))
    }
}

fn artifact_value(s: &StageReport, field: Option<&str>) -> Value {
    let pick: Vec<&String> = match field {
        Some(f) => s.artifacts.iter().filter(|a| a.contains(f)).collect(),
        None => s.artifacts.iter().collect(),
    };
    let pick = if pick.is_empty() { s.artifacts.iter().collect() } else { pick };
    match pick.as_slice() {
        [one] => yaml::string((*one).clone()),
        many => Value::Sequence(many.iter().map(|a| yaml::string((*a).clone())).collect()),
    }
}

/// Reported numbers as `label.metric -> value`, the form `flowline test` compares.
pub fn flatten_metrics(report: &Report) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for (label, v) in &report.reported {
        match v {
            Value::Number(n) => {
                if let Some(x) = n.as_f64() {
                    out.insert(label.clone(), x);
                }
            }
            Value::Mapping(m) => {
                for (k, v) in m {
                    if let (Value::String(k), Value::Number(n)) = (k, v)
                        && let Some(x) = n.as_f64()
                    {
                        out.insert(format!("{label}.{k}"), x);
                    }
                }
            }
            _ => {}
        }
    }
    out
}
