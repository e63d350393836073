//! `report.yaml`: the pipeline, seed, device and versions; how the run was started (command
//! line, overrides, profile, time, host, git commit); and for every stage of the pipeline its
//! resolved parameters, metrics, artifacts, wall time, warnings, and what this run did with
//! it (executed, cached, failed, skipped, or not run with its earlier result kept).

use super::RunOptions;
use super::cache::Manifest;
use super::provenance::Provenance;
use super::sweep_table::SweepTable;
use crate::diag::{Code, Diag};
use crate::lang::Node;
use crate::lang::{CVal, Metrics, VKind};
use crate::plan::Plan;
use crate::yaml::{self, Mapping, Value};

pub struct StageReport {
    pub name: String,
    pub builtin: String,
    /// `executed`, `cached`, `cached (another run)`, `failed`, `skipped` or `not run`.
    pub status: &'static str,
    /// Why a stage was skipped, or what the kept result of a stage not run is.
    pub note: Option<String>,
    /// The metrics belong to the stage as the pipeline now defines it.
    pub current: bool,
    pub params: Value,
    pub metrics: Metrics,
    pub artifacts: Vec<String>,
    /// `None` for a stage this run did not touch.
    pub wall_seconds: Option<f64>,
    pub warnings: Vec<Diag>,
    pub error: Option<Diag>,
}

impl StageReport {
    pub fn new(node: &Node, nodes: &[Node], m: &Manifest, status: &'static str, wall_seconds: f64) -> Self {
        let warnings = m
            .warnings
            .iter()
            .map(|w| {
                Diag::warning(Code::parse(&w.code).unwrap_or(Code::W2001), w.message.clone())
                    .at(node.span, format!("in stage `{}`", node.name))
            })
            .collect();
        StageReport {
            metrics: m.metrics.clone(),
            artifacts: m.files.clone(),
            wall_seconds: Some(wall_seconds),
            warnings,
            ..StageReport::not_run(node, nodes, status, None)
        }
    }

    /// A stage without a result from this run.
    pub fn not_run(node: &Node, nodes: &[Node], status: &'static str, note: Option<String>) -> Self {
        let mut params = Mapping::new();
        for (name, v) in &node.args.0 {
            params.insert(yaml::string(name.to_string()), param_value(v, nodes));
        }
        StageReport {
            name: node.name.clone(),
            builtin: node.builtin.to_string(),
            status,
            note,
            current: true,
            params: Value::Mapping(params),
            metrics: Metrics::new(),
            artifacts: Vec::new(),
            wall_seconds: None,
            warnings: Vec::new(),
            error: None,
        }
    }

    /// The stage has a result to report (from this run or kept from an earlier one).
    pub(super) fn has_result(&self) -> bool {
        match self.status {
            "failed" | "skipped" => false,
            "not run" => !(self.artifacts.is_empty() && self.metrics.is_empty()),
            _ => true,
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
                args.insert(yaml::string(n.to_string()), param_value(a, nodes));
            }
            let mut m = Mapping::new();
            m.insert(
                yaml::string(c.builtin.to_string()),
                if args.is_empty() { Value::Null } else { Value::Mapping(args) },
            );
            Value::Mapping(m)
        }
        // The checker maps calls over sweeps; a stage never holds one.
        VKind::Family(f) => Value::Sequence(f.members.iter().map(|m| param_value(&m.value, nodes)).collect()),
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
    /// `--only STAGE`, when the run was restricted to it.
    pub only: Option<String>,
    pub provenance: Provenance,
    /// Every stage of the pipeline, in execution order.
    pub stages: Vec<StageReport>,
    /// `label -> value` for everything named in `report`: metrics, or artifact paths.
    pub reported: Vec<(String, Value)>,
    /// The reported sweeps, as tables (also in `reported`).
    pub sweeps: Vec<SweepTable>,
}

impl Report {
    pub fn new(plan: &Plan, opts: &RunOptions, device: &str, stages: Vec<StageReport>, provenance: Provenance) -> Self {
        let nodes = plan.nodes();
        let mut reported = Vec::new();
        let mut sweeps = Vec::new();
        for item in &plan.checked.reports {
            if !item.members.is_empty() {
                let mut table = SweepTable::new(item, nodes, &stages, plan.checked.seed);
                // A figure that cannot be drawn leaves the table without one.
                let _ = table.draw(&opts.out);
                reported.push((item.label.clone(), table.to_value()));
                sweeps.push(table);
                continue;
            }
            let Some(s) = stages.iter().find(|s| s.name == nodes[item.node].name) else {
                continue;
            };
            if !s.has_result() {
                reported.push((item.label.clone(), yaml::string(format!("no result ({})", s.status))));
                continue;
            }
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
            only: opts.only.clone(),
            provenance,
            stages,
            reported,
            sweeps,
        }
    }

    /// The stages that failed, with their diagnostics.
    pub fn failures(&self) -> impl Iterator<Item = (&str, &Diag)> {
        self.stages.iter().filter_map(|s| s.error.as_ref().map(|d| (s.name.as_str(), d)))
    }

    /// Every stage warning of this run, in stage order.
    pub fn warnings(&self) -> impl Iterator<Item = &Diag> {
        self.stages.iter().filter(|s| s.status != "not run").flat_map(|s| s.warnings.iter())
    }

    pub fn to_value(&self) -> Value {
        let mut top = Mapping::new();
        top.insert(yaml::string("pipeline"), yaml::string(self.pipeline.clone()));
        top.insert(yaml::string("flowline"), yaml::string(env!("CARGO_PKG_VERSION")));
        top.insert(yaml::string("candle"), yaml::string(env!("FLOWLINE_CANDLE_VERSION")));
        top.insert(yaml::string("seed"), yaml::int(self.seed as i64));
        top.insert(yaml::string("profile"), self.profile.clone().map(Value::String).unwrap_or(Value::Null));
        top.insert(yaml::string("device"), yaml::string(self.device.clone()));
        top.insert(yaml::string("run"), self.run_value());
        let mut rep = Mapping::new();
        for (k, v) in &self.reported {
            rep.insert(yaml::string(k.clone()), v.clone());
        }
        top.insert(yaml::string("reported"), Value::Mapping(rep));
        let failures: Vec<Value> = self
            .failures()
            .map(|(stage, d)| {
                let mut m = Mapping::new();
                m.insert(yaml::string("stage"), yaml::string(stage));
                m.insert(yaml::string("code"), yaml::string(d.code.as_str()));
                m.insert(yaml::string("message"), yaml::string(d.message.clone()));
                Value::Mapping(m)
            })
            .collect();
        if !failures.is_empty() {
            top.insert(yaml::string("failures"), Value::Sequence(failures));
        }
        let mut stages = Mapping::new();
        for s in &self.stages {
            stages.insert(yaml::string(s.name.clone()), stage_value(s));
        }
        top.insert(yaml::string("stages"), Value::Mapping(stages));
        Value::Mapping(top)
    }

    fn run_value(&self) -> Value {
        let p = &self.provenance;
        let mut m = Mapping::new();
        m.insert(yaml::string("command"), yaml::string(shell_words(&p.command)));
        m.insert(
            yaml::string("overrides"),
            Value::Sequence(p.overrides.iter().map(|o| yaml::string(o.clone())).collect()),
        );
        m.insert(yaml::string("only"), self.only.clone().map(Value::String).unwrap_or(Value::Null));
        m.insert(yaml::string("started"), yaml::string(p.started.clone()));
        m.insert(yaml::string("host"), yaml::string(p.host.clone()));
        let git = match &p.git {
            Some(g) => {
                let mut gm = Mapping::new();
                gm.insert(yaml::string("commit"), yaml::string(g.commit.clone()));
                gm.insert(yaml::string("dirty"), Value::Bool(g.dirty));
                Value::Mapping(gm)
            }
            None => Value::Null,
        };
        m.insert(yaml::string("git"), git);
        Value::Mapping(m)
    }

    pub fn to_yaml(&self) -> Result<String, Diag> {
        yaml::to_string(&self.to_value()).map_err(|e| Diag::new(Code::R1001, e))
    }
}

fn stage_value(s: &StageReport) -> Value {
    let mut m = Mapping::new();
    m.insert(yaml::string("kind"), yaml::string(s.builtin.clone()));
    m.insert(yaml::string("status"), yaml::string(s.status));
    if let Some(n) = &s.note {
        m.insert(yaml::string("note"), yaml::string(n.clone()));
    }
    if !s.current {
        m.insert(yaml::string("current"), Value::Bool(false));
    }
    m.insert(yaml::string("params"), s.params.clone());
    let mut metrics = Mapping::new();
    for (k, v) in &s.metrics {
        metrics.insert(yaml::string(k.clone()), yaml::float(*v));
    }
    m.insert(yaml::string("metrics"), Value::Mapping(metrics));
    m.insert(yaml::string("artifacts"), Value::Sequence(s.artifacts.iter().map(|a| yaml::string(a.clone())).collect()));
    if !s.warnings.is_empty() {
        let w = s.warnings.iter().map(|d| yaml::string(format!("{}: {}", d.code.as_str(), d.message))).collect();
        m.insert(yaml::string("warnings"), Value::Sequence(w));
    }
    if let Some(d) = &s.error {
        m.insert(yaml::string("error"), yaml::string(format!("{}: {}", d.code.as_str(), d.message)));
    }
    let wall = s.wall_seconds.map_or(Value::Null, |w| yaml::float((w * 1000.0).round() / 1000.0));
    m.insert(yaml::string("wall_seconds"), wall);
    Value::Mapping(m)
}

/// The command line as one string a shell would read back the same.
fn shell_words(words: &[String]) -> String {
    let quote = |w: &String| {
        let plain = !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+%".contains(c));
        if plain { w.clone() } else { format!("'{}'", w.replace('\'', "'\\''")) }
    };
    words.iter().map(quote).collect::<Vec<_>>().join(" ")
}

/// The artifacts a reported field names: the files whose name (without extension) is the
/// field (`fit.model` is `fit/model.safetensors`, not `fit/model_fit.csv`); all of them when
/// none is.
fn pick_artifacts<'a>(artifacts: &'a [String], field: Option<&str>) -> Vec<&'a String> {
    let stem = |a: &str| {
        let name = a.rsplit('/').next().unwrap_or(a);
        name.split('.').next().unwrap_or(name).to_string()
    };
    let pick: Vec<&String> = match field {
        Some(f) => artifacts.iter().filter(|a| stem(a) == f).collect(),
        None => artifacts.iter().collect(),
    };
    if pick.is_empty() { artifacts.iter().collect() } else { pick }
}

fn artifact_value(s: &StageReport, field: Option<&str>) -> Value {
    let pick = pick_artifacts(&s.artifacts, field);
    match pick.as_slice() {
        [one] => yaml::string((*one).clone()),
        many => Value::Sequence(many.iter().map(|a| yaml::string((*a).clone())).collect()),
    }
}

/// Reported numbers as `label.metric -> value`, in the order of the `report` statement and,
/// within a stage, the order the stage gives them: what the console prints and
/// `flowline test` compares.
pub fn flatten_metrics(report: &Report) -> Metrics {
    let mut out = Metrics::new();
    for (label, v) in &report.reported {
        if let Some(t) = report.sweeps.iter().find(|t| &t.label == label) {
            t.flatten(&mut out);
            continue;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reported_field_names_the_file_of_that_name_only() {
        let files: Vec<String> = ["fit/model_fit.csv", "fit/model.safetensors", "fit/loss_curve.png"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(pick_artifacts(&files, Some("model")), vec!["fit/model.safetensors"]);
        assert_eq!(pick_artifacts(&files, Some("loss_curve")), vec!["fit/loss_curve.png"]);
        assert_eq!(pick_artifacts(&files, Some("nothing")).len(), 3);
    }

    #[test]
    fn command_lines_are_quoted_only_where_a_shell_needs_it() {
        let words: Vec<String> = ["flowline", "run", "p.flow", "--set", "fit.title=a b", "--set", "x='y'"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(shell_words(&words), "flowline run p.flow --set 'fit.title=a b' --set 'x='\\''y'\\'''");
    }
}
