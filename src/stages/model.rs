//! Models as values: the `model` kind (layers or a trained model), trained models and
//! training runs as results, with the one save and load every stage that makes or reads
//! them uses.

use crate::diag::{Code, Diag};
use crate::lang::{Artifact, ArtifactRef, Kind, Role, RunCtx, Saved, StageDir};
use crate::nn::{LayerSpec, Net, Validation};
use crate::rng::Rng;
use crate::yaml;
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// Layers to initialise, or a trained model.
pub static MODEL: Kind =
    Kind { name: "model", describe: "a model (layers or a trained model)", supers: &[], role: Role::Abstract };

pub static TRAINED: Kind = Kind {
    name: "trained",
    describe: "a trained model",
    supers: &[&MODEL],
    role: Role::Result { load: Some(load), metrics: &[] },
};

/// A model with the curves of the training that made it (`train`'s result).
pub static TRAINING: Kind = Kind {
    name: "training",
    describe: "a `train` result",
    supers: &[&TRAINED],
    role: Role::Result { load: Some(load), metrics: &[] },
};

/// The per-step record of a training.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Curves {
    /// Minibatch loss and accuracy at every step.
    pub loss: Vec<f64>,
    pub accuracy: Vec<f64>,
    pub validations: Vec<Validation>,
}

pub struct Trained {
    pub model: Net,
    pub classes: Option<usize>,
    /// Present for a model `train` made.
    pub curves: Option<Curves>,
}

/// The facts a trained model's manifest keeps.
#[derive(Serialize, Deserialize)]
struct Facts {
    classes: Option<usize>,
    input: Vec<usize>,
    layers: Vec<LayerSpec>,
}

const WEIGHTS: &str = "model.safetensors";
const CURVE: &str = "loss_curve.csv";
const VALIDATION: &str = "validation.csv";

impl Artifact for Trained {
    fn kind(&self) -> &'static Kind {
        if self.curves.is_some() { &TRAINING } else { &TRAINED }
    }

    fn save(&self, dir: &StageDir) -> Result<Saved, Diag> {
        let cpu = |t: Tensor| t.to_device(&Device::Cpu).map_err(|e| Diag::new(Code::R1001, e.to_string()));
        let mut map = HashMap::new();
        for (name, tensor) in self.model.named_tensors() {
            map.insert(name, cpu(tensor)?);
        }
        let mut files = vec![dir.write_tensors(WEIGHTS, &map)?];
        if let Some(c) = &self.curves {
            let mut csv = String::from("step,loss,accuracy\n");
            for (i, (l, acc)) in c.loss.iter().zip(&c.accuracy).enumerate() {
                csv.push_str(&format!("{i},{l},{acc}\n"));
            }
            files.push(dir.write(CURVE, csv.as_bytes())?);
            if !c.validations.is_empty() {
                let mut csv = String::from("step,loss,accuracy\n");
                for v in &c.validations {
                    csv.push_str(&format!("{},{},{}\n", v.step, v.loss, v.accuracy));
                }
                files.push(dir.write(VALIDATION, csv.as_bytes())?);
            }
        }
        let facts = Facts { classes: self.classes, input: self.model.input.clone(), layers: self.model.specs.clone() };
        Ok(Saved { files, facts: yaml::to_value(&facts) })
    }
}

fn load(kind: &'static Kind, dir: &StageDir, facts: &yaml::Value) -> Result<ArtifactRef, Diag> {
    let facts: Facts = yaml::from_value(facts.clone()).map_err(|e| dir.bad("stage.yaml", e))?;
    let map = dir.read_tensors(WEIGHTS)?;
    let model = Net::from_tensors(&facts.layers, &facts.input, &map, dir.device).map_err(|e| dir.bad(WEIGHTS, e))?;
    let curves = if kind.is_a(&TRAINING) { Some(read_curves(dir)?) } else { None };
    Ok(Arc::new(Trained { model, classes: facts.classes, curves }))
}

fn read_curves(dir: &StageDir) -> Result<Curves, Diag> {
    let rows = |file: &str| -> Result<Vec<(f64, f64, f64)>, Diag> {
        let text = dir.read_text(file)?;
        let mut out = Vec::new();
        for (n, line) in text.lines().enumerate().skip(1) {
            let cells: Vec<Result<f64, _>> = line.split(',').map(str::parse::<f64>).collect();
            match cells.as_slice() {
                [Ok(a), Ok(b), Ok(c)] => out.push((*a, *b, *c)),
                _ => return Err(dir.bad(file, format!("line {} is not three numbers", n + 1))),
            }
        }
        Ok(out)
    };
    let steps = rows(CURVE)?;
    let validations = if dir.path(VALIDATION).exists() {
        rows(VALIDATION)?
            .into_iter()
            .map(|(s, loss, accuracy)| Validation { step: s as usize, loss, accuracy })
            .collect()
    } else {
        Vec::new()
    };
    Ok(Curves { loss: steps.iter().map(|r| r.1).collect(), accuracy: steps.iter().map(|r| r.2).collect(), validations })
}

/// A model argument: layers to initialise, or a trained model to continue from.
pub enum ModelArg {
    Layers(Vec<LayerSpec>),
    Trained(Arc<Trained>),
}

/// What a `model`-kind argument holds.
pub fn model_arg(cx: &RunCtx, param: &str) -> Result<ModelArg, Diag> {
    if cx.args().stage(param).is_some() {
        return cx.input::<Trained>(param).map(ModelArg::Trained);
    }
    let layers: Vec<Vec<LayerSpec>> = cx.lower_each(param)?;
    Ok(ModelArg::Layers(layers.into_iter().flatten().collect()))
}

/// A model to evaluate: a trained one, or freshly initialised layers.
pub enum ModelRef {
    Trained(Arc<Trained>),
    Fresh(Net),
}

impl std::ops::Deref for ModelRef {
    type Target = Net;
    fn deref(&self) -> &Net {
        match self {
            ModelRef::Trained(t) => &t.model,
            ModelRef::Fresh(n) => n,
        }
    }
}

/// The model `param` names, ready to evaluate on inputs of `shape` (layers are initialised
/// from `rng`).
pub fn model_ref(cx: &RunCtx, param: &str, shape: &[usize], rng: &mut Rng) -> Result<ModelRef, Diag> {
    Ok(match model_arg(cx, param)? {
        ModelArg::Trained(t) => ModelRef::Trained(t),
        ModelArg::Layers(specs) => ModelRef::Fresh(
            Net::init(&specs, shape, rng, &cx.device)
                .map_err(|e| cx.error(Code::R1002, format!("cannot build the model: {e}")))?,
        ),
    })
}
