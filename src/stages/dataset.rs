//! Datasets as results: the `dataset` kind and a split's two parts, saved to and loaded
//! from their stage folders in one place.

use crate::data::Dataset;
use crate::diag::{Code, Diag};
use crate::lang::{Artifact, ArtifactRef, Kind, Metrics, Output, Role, Saved, StageDir};
use crate::yaml;
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

pub static DATASET: Kind = Kind {
    name: "dataset",
    describe: "a dataset",
    supers: &[],
    role: Role::Result { load: Some(load_one), metrics: &["n", "features", "classes"] },
};

/// Two datasets from `split`, read as `.first` and `.second`.
pub static SPLITS: Kind = Kind {
    name: "splits",
    describe: "a split dataset (use `.first` or `.second`)",
    supers: &[],
    role: Role::Result { load: Some(load_split), metrics: &[] },
};

#[derive(Serialize, Deserialize)]
struct Facts {
    classes: Option<usize>,
    /// Class names, where the data has them (absent in manifests written before them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    names: Option<Vec<String>>,
}

impl Artifact for Dataset {
    fn kind(&self) -> &'static Kind {
        &DATASET
    }
    fn save(&self, dir: &StageDir) -> Result<Saved, Diag> {
        let files = vec![save(dir, "data.safetensors", self)?];
        Ok(Saved { files, facts: yaml::to_value(&Facts { classes: self.classes, names: self.names.clone() }) })
    }
}

pub struct Split(pub Arc<Dataset>, pub Arc<Dataset>);

impl Artifact for Split {
    fn kind(&self) -> &'static Kind {
        &SPLITS
    }
    fn save(&self, dir: &StageDir) -> Result<Saved, Diag> {
        let files = vec![save(dir, "first.safetensors", &self.0)?, save(dir, "second.safetensors", &self.1)?];
        Ok(Saved { files, facts: yaml::to_value(&Facts { classes: self.0.classes, names: self.0.names.clone() }) })
    }
    fn part(&self, field: &str) -> Option<ArtifactRef> {
        match field {
            "first" => Some(self.0.clone()),
            "second" => Some(self.1.clone()),
            _ => None,
        }
    }
}

/// A dataset stage's result: the data and the numbers every dataset reports.
pub fn dataset_output(d: Dataset) -> Output {
    let mut metrics = Metrics::new();
    metrics.insert("n".into(), d.n as f64);
    metrics.insert("features".into(), d.features() as f64);
    if let Some(k) = d.classes {
        metrics.insert("classes".into(), k as f64);
    }
    Output { artifact: Arc::new(d), metrics, files: vec![] }
}

fn save(dir: &StageDir, file: &str, d: &Dataset) -> Result<String, Diag> {
    let fail = |e: candle_core::Error| Diag::new(Code::R1001, e.to_string());
    let mut map = HashMap::new();
    let mut dims = vec![d.n];
    dims.extend_from_slice(&d.shape);
    map.insert("x".to_string(), Tensor::from_vec(d.x.clone(), dims, &Device::Cpu).map_err(fail)?);
    if let Some(y) = &d.y {
        map.insert("y".to_string(), Tensor::from_vec(y.clone(), d.n, &Device::Cpu).map_err(fail)?);
    }
    dir.write_tensors(file, &map)
}

fn read(dir: &StageDir, file: &str, facts: &Facts) -> Result<Dataset, Diag> {
    let map = dir.read_tensors(file)?;
    let x = map.get("x").ok_or_else(|| dir.bad(file, "no tensor `x`"))?;
    let (n, shape) = match x.dims() {
        [n, rest @ ..] if !rest.is_empty() => (*n, rest.to_vec()),
        other => return Err(dir.bad(file, format!("tensor `x` has shape {other:?}"))),
    };
    let x: Vec<f32> =
        x.to_dtype(DType::F32).and_then(|t| t.flatten_all()).and_then(|t| t.to_vec1()).map_err(|e| dir.bad(file, e))?;
    let y = match map.get("y") {
        Some(t) => Some(t.to_vec1::<u32>().map_err(|e| dir.bad(file, e))?),
        None => None,
    };
    if y.as_ref().is_some_and(|y| y.len() != n) {
        return Err(dir.bad(file, "labels and examples differ in number"));
    }
    Ok(Dataset { x, n, shape, y, classes: facts.classes, names: facts.names.clone() })
}

/// A dataset file as a `dataset` stage saves it (`<stage>/data.safetensors`).
pub fn load_dataset(path: &std::path::Path, classes: Option<usize>) -> Result<Dataset, Diag> {
    let (folder, file) = (path.parent().unwrap_or(path), path.file_name().and_then(|f| f.to_str()).unwrap_or(""));
    let dir = StageDir { run_dir: folder, name: ".", device: &Device::Cpu };
    read(&dir, file, &Facts { classes, names: None })
}

fn facts(dir: &StageDir, facts: &yaml::Value) -> Result<Facts, Diag> {
    yaml::from_value::<Facts>(facts.clone()).map_err(|e| dir.bad("stage.yaml", e))
}

fn load_one(_kind: &'static Kind, dir: &StageDir, f: &yaml::Value) -> Result<ArtifactRef, Diag> {
    Ok(Arc::new(read(dir, "data.safetensors", &facts(dir, f)?)?))
}

fn load_split(_kind: &'static Kind, dir: &StageDir, f: &yaml::Value) -> Result<ArtifactRef, Diag> {
    let k = facts(dir, f)?;
    let (a, b) = (read(dir, "first.safetensors", &k)?, read(dir, "second.safetensors", &k)?);
    Ok(Arc::new(Split(Arc::new(a), Arc::new(b))))
}
