//! An `attack` result: every attacked image's outcome, with the clean and adversarial
//! inputs, saved as `adversarial.csv` and `adversarial.safetensors` and read back from
//! them. `attack_table`, `robustness_plot` and `decision_plot` read it through this type.

use super::attack_outcome::{Outcome, Status, norm_column};
use crate::diag::{Code, Diag};
use crate::lang::{Artifact, ArtifactRef, Kind, Role, Saved, StageDir};
use crate::robust::norms::Norm;
use crate::yaml;
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

pub static ATTACKED: Kind = Kind {
    name: "attacked",
    describe: "an `attack` result",
    supers: &[],
    role: Role::Result { load: Some(load), metrics: &[] },
};

pub struct Attacked {
    /// The norm the attack minimised.
    pub norm: Norm,
    /// The shape of one input.
    pub shape: Vec<usize>,
    /// In image order.
    pub outcomes: Vec<Outcome>,
    /// What the attack cost, and, for an ensemble, what each member cost and won.
    pub cost: Cost,
    pub members: Vec<Cost>,
}

/// Model calls per attacked image and wall time of an attack, or of one member of an
/// ensemble (then with the images it broke and won).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Cost {
    pub label: String,
    pub forwards_per_image: f64,
    pub gradients_per_image: f64,
    pub seconds: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broken: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wins: Option<usize>,
}

impl Cost {
    /// Every model evaluation counts once, with or without its backward pass.
    pub fn calls_per_image(&self) -> f64 {
        self.forwards_per_image + self.gradients_per_image
    }

    pub fn insert_into(&self, m: &mut crate::lang::Metrics, prefix: &str) {
        m.insert(format!("{prefix}gradients_per_image"), self.gradients_per_image);
        m.insert(format!("{prefix}forwards_per_image"), self.forwards_per_image);
        m.insert(format!("{prefix}calls_per_image"), self.calls_per_image());
        m.insert(format!("{prefix}seconds"), self.seconds);
        if let Some(b) = self.broken {
            m.insert(format!("{prefix}broken"), b as f64);
        }
        if let Some(w) = self.wins {
            m.insert(format!("{prefix}wins"), w as f64);
        }
    }
}

/// A label as a metric name: `prox_logbarrier(l1) from fmn(l1)` -> `prox_logbarrier_l1_from_fmn_l1`.
pub fn metric_key(label: &str) -> String {
    let mut out = String::new();
    for c in label.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_end_matches('_').to_string()
}

#[derive(Serialize, Deserialize)]
struct Facts {
    norm: String,
    shape: Vec<usize>,
    #[serde(default)]
    cost: Cost,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    members: Vec<Cost>,
}

const TABLE: &str = "adversarial.csv";
const INPUTS: &str = "adversarial.safetensors";

impl Artifact for Attacked {
    fn kind(&self) -> &'static Kind {
        &ATTACKED
    }

    fn save(&self, dir: &StageDir) -> Result<Saved, Diag> {
        let norm = self.norm;
        let mut csv = format!("index,label,status,adv_label,distance_{},l0,l1,l2,linf\n", norm.name());
        for o in &self.outcomes {
            let adv = o.adv_label.map_or(String::new(), |l| l.to_string());
            let show =
                |v: f64| if v.is_finite() && o.status == Status::Broken { format!("{v}") } else { String::new() };
            csv.push_str(&format!(
                "{},{},{},{adv},{},{},{},{},{}\n",
                o.index,
                o.label,
                o.status.as_str(),
                show(o.dist[norm_column(norm)]),
                show(o.dist[0]),
                show(o.dist[1]),
                show(o.dist[2]),
                show(o.dist[3])
            ));
        }
        let table = dir.write(TABLE, csv.as_bytes())?;
        // Adversarial inputs [n, ...] (NaN where there is none), the clean inputs, the indices.
        let per: usize = self.shape.iter().product();
        let (mut adv, mut clean) = (Vec::with_capacity(self.outcomes.len() * per), Vec::new());
        for o in &self.outcomes {
            match &o.input {
                Some(v) => adv.extend_from_slice(v),
                None => adv.extend(std::iter::repeat_n(f32::NAN, per)),
            }
            clean.extend_from_slice(&o.clean);
        }
        let mut dims = vec![self.outcomes.len()];
        dims.extend_from_slice(&self.shape);
        let err = |e: candle_core::Error| Diag::new(Code::R1001, e.to_string());
        let idx: Vec<u32> = self.outcomes.iter().map(|o| o.index as u32).collect();
        let tensors = HashMap::from([
            ("inputs".to_string(), Tensor::from_vec(adv, dims.clone(), &Device::Cpu).map_err(err)?),
            ("clean".to_string(), Tensor::from_vec(clean, dims, &Device::Cpu).map_err(err)?),
            ("index".to_string(), Tensor::from_vec(idx, self.outcomes.len(), &Device::Cpu).map_err(err)?),
        ]);
        let inputs = dir.write_tensors(INPUTS, &tensors)?;
        let facts = Facts {
            norm: norm.name().into(),
            shape: self.shape.clone(),
            cost: self.cost.clone(),
            members: self.members.clone(),
        };
        Ok(Saved { files: vec![table, inputs], facts: yaml::to_value(&facts) })
    }
}

fn load(_kind: &'static Kind, dir: &StageDir, facts: &yaml::Value) -> Result<ArtifactRef, Diag> {
    let facts: Facts = yaml::from_value(facts.clone()).map_err(|e| dir.bad("stage.yaml", e))?;
    let norm = Norm::parse(&facts.norm).ok_or_else(|| dir.bad("stage.yaml", format!("no norm `{}`", facts.norm)))?;
    let text = dir.read_text(TABLE)?;
    let tensors = dir.read_tensors(INPUTS)?;
    let rows = |name: &str| -> Result<Vec<Vec<f32>>, Diag> {
        let t = tensors.get(name).ok_or_else(|| dir.bad(INPUTS, format!("no tensor `{name}`")))?;
        let n = t.dims().first().copied().unwrap_or(0);
        t.reshape((n, ())).and_then(|t| t.to_vec2::<f32>()).map_err(|e| dir.bad(INPUTS, e))
    };
    let (inputs, clean) = (rows("inputs")?, rows("clean")?);
    let lines: Vec<&str> = text.lines().skip(1).collect();
    if inputs.len() != lines.len() || clean.len() != lines.len() {
        return Err(dir.bad(INPUTS, format!("{} inputs for {} rows of {TABLE}", inputs.len(), lines.len())));
    }
    let mut outcomes = Vec::with_capacity(lines.len());
    for (n, ((line, input), clean)) in lines.iter().zip(inputs).zip(clean).enumerate() {
        let bad = |why: &str| dir.bad(TABLE, format!("line {}: {why}", n + 2));
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != 9 {
            return Err(bad("not 9 columns"));
        }
        let count = |s: &str| s.parse::<usize>().map_err(|_| bad("not a count"));
        let status = Status::parse(f[2]).ok_or_else(|| bad("no status broken/failed/misclassified"))?;
        let adv_label = if f[3].is_empty() { None } else { Some(count(f[3])?) };
        let dist = match status {
            Status::Broken => {
                let mut d = [0.0; 4];
                for (k, v) in d.iter_mut().enumerate() {
                    *v = f[5 + k].parse().map_err(|_| bad("a broken image without its distances"))?;
                }
                d
            }
            Status::Failed => [f64::INFINITY; 4],
            Status::Misclassified => [0.0; 4],
        };
        let input = (status == Status::Broken).then_some(input);
        outcomes.push(Outcome { index: count(f[0])?, label: count(f[1])?, status, adv_label, dist, input, clean });
    }
    Ok(Arc::new(Attacked { norm, shape: facts.shape, outcomes, cost: facts.cost, members: facts.members }))
}
