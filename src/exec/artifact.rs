//! What stages produce, and how each kind is saved to and loaded from its stage folder.

use super::atomic;
use crate::data::Dataset;
use crate::diag::{Code, Diag};
use crate::nn::{LayerSpec, Net};
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

pub struct Trained {
    pub model: Net,
    pub classes: Option<usize>,
}

#[derive(Clone)]
pub enum Artifact {
    Dataset(Arc<Dataset>),
    /// Two datasets from `split`, read as `.first` and `.second`.
    Split(Arc<Dataset>, Arc<Dataset>),
    Trained(Arc<Trained>),
    /// Numbers only; they live in the stage's metrics.
    Metrics,
    /// A written file (figure), relative to the run folder.
    File(String),
}

/// A stage's numbers, in the order the stage reports them.
pub type Metrics = indexmap::IndexMap<String, f64>;

/// What a stage returns to the interpreter.
pub struct Output {
    pub artifact: Artifact,
    pub metrics: Metrics,
    /// Files written, relative to the run folder.
    pub files: Vec<String>,
}

/// Facts needed to reload an artifact, kept in the stage's manifest.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Reload {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<Vec<usize>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<Vec<LayerSpec>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

fn r1002(path: &Path, e: impl std::fmt::Display) -> Diag {
    Diag::new(Code::R1002, format!("cannot read {}: {e}", path.display()))
        .hint("the file is damaged or was written by another program; `--force` rebuilds a run's artifacts")
}

pub fn save_tensors(path: &Path, tensors: &HashMap<String, Tensor>) -> Result<(), Diag> {
    atomic::write_with(path, |tmp| candle_core::safetensors::save(tensors, tmp).map_err(|e| e.to_string()))
}

fn save_dataset(path: &Path, d: &Dataset) -> Result<(), Diag> {
    let fail = |e: candle_core::Error| Diag::new(Code::R1001, e.to_string());
    let mut map = HashMap::new();
    let mut dims = vec![d.n];
    dims.extend_from_slice(&d.shape);
    map.insert("x".to_string(), Tensor::from_vec(d.x.clone(), dims, &Device::Cpu).map_err(fail)?);
    if let Some(y) = &d.y {
        map.insert("y".to_string(), Tensor::from_vec(y.clone(), d.n, &Device::Cpu).map_err(fail)?);
    }
    save_tensors(path, &map)
}

pub fn load_dataset(path: &Path, classes: Option<usize>) -> Result<Dataset, Diag> {
    let map = candle_core::safetensors::load(path, &Device::Cpu).map_err(|e| r1002(path, e))?;
    let x = map.get("x").ok_or_else(|| r1002(path, "no tensor `x`"))?;
    let (n, shape) = match x.dims() {
        [n, rest @ ..] if !rest.is_empty() => (*n, rest.to_vec()),
        other => return Err(r1002(path, format!("tensor `x` has shape {other:?}"))),
    };
    let x: Vec<f32> =
        x.to_dtype(DType::F32).and_then(|t| t.flatten_all()).and_then(|t| t.to_vec1()).map_err(|e| r1002(path, e))?;
    let y = match map.get("y") {
        Some(t) => Some(t.to_vec1::<u32>().map_err(|e| r1002(path, e))?),
        None => None,
    };
    Ok(Dataset { x, n, shape, y, classes })
}

impl Artifact {
    /// Save what is not already a file; returns the reload facts and files written
    /// (relative to `run_dir`).
    pub fn save(&self, run_dir: &Path, stage_dir: &str) -> Result<(Reload, Vec<String>), Diag> {
        let cpu = |t: Tensor| t.to_device(&Device::Cpu).map_err(|e| Diag::new(Code::R1001, e.to_string()));
        match self {
            Artifact::Dataset(d) => {
                let rel = format!("{stage_dir}/data.safetensors");
                save_dataset(&run_dir.join(&rel), d)?;
                let reload = Reload {
                    kind: Some("dataset".into()),
                    classes: d.classes,
                    shape: Some(d.shape.clone()),
                    layers: None,
                    file: Some(rel.clone()),
                };
                Ok((reload, vec![rel]))
            }
            Artifact::Split(a, b) => {
                let (ra, rb) = (format!("{stage_dir}/first.safetensors"), format!("{stage_dir}/second.safetensors"));
                save_dataset(&run_dir.join(&ra), a)?;
                save_dataset(&run_dir.join(&rb), b)?;
                let reload = Reload {
                    kind: Some("split".into()),
                    classes: a.classes,
                    shape: Some(a.shape.clone()),
                    layers: None,
                    file: Some(ra.clone()),
                };
                Ok((reload, vec![ra, rb]))
            }
            Artifact::Trained(t) => {
                let mut map = HashMap::new();
                for (name, tensor) in t.model.named_tensors() {
                    map.insert(name, cpu(tensor)?);
                }
                let rel = format!("{stage_dir}/model.safetensors");
                save_tensors(&run_dir.join(&rel), &map)?;
                let reload = Reload {
                    kind: Some("trained".into()),
                    classes: t.classes,
                    shape: Some(t.model.input.clone()),
                    layers: Some(t.model.specs.clone()),
                    file: Some(rel.clone()),
                };
                Ok((reload, vec![rel]))
            }
            Artifact::Metrics => Ok((Reload { kind: Some("metrics".into()), ..Reload::default() }, vec![])),
            Artifact::File(rel) => {
                Ok((Reload { kind: Some("file".into()), file: Some(rel.clone()), ..Reload::default() }, vec![]))
            }
        }
    }

    pub fn load(reload: &Reload, run_dir: &Path, device: &Device) -> Result<Artifact, Diag> {
        let file = reload.file.as_ref().map(|f| run_dir.join(f));
        match reload.kind.as_deref() {
            Some("dataset") => {
                let path = file.ok_or_else(|| Diag::new(Code::R1002, "dataset manifest names no file"))?;
                Ok(Artifact::Dataset(Arc::new(load_dataset(&path, reload.classes)?)))
            }
            Some("split") => {
                let path = file.ok_or_else(|| Diag::new(Code::R1002, "split manifest names no file"))?;
                let second = path.with_file_name("second.safetensors");
                Ok(Artifact::Split(
                    Arc::new(load_dataset(&path, reload.classes)?),
                    Arc::new(load_dataset(&second, reload.classes)?),
                ))
            }
            Some("trained") => {
                let path = file.ok_or_else(|| Diag::new(Code::R1002, "model manifest names no file"))?;
                let map = candle_core::safetensors::load(&path, device).map_err(|e| r1002(&path, e))?;
                let layers = reload.layers.as_ref().ok_or_else(|| r1002(&path, "manifest has no layers"))?;
                let input = reload.shape.as_ref().ok_or_else(|| r1002(&path, "manifest has no input shape"))?;
                let model = Net::from_tensors(layers, input, &map, device).map_err(|e| r1002(&path, e))?;
                Ok(Artifact::Trained(Arc::new(Trained { model, classes: reload.classes })))
            }
            Some("metrics") => Ok(Artifact::Metrics),
            Some("file") => {
                let rel = reload.file.clone().ok_or_else(|| Diag::new(Code::R1002, "file manifest names no file"))?;
                if !run_dir.join(&rel).exists() {
                    return Err(Diag::new(Code::R1002, format!("{rel} is missing")));
                }
                Ok(Artifact::File(rel))
            }
            other => Err(Diag::new(Code::R1002, format!("unknown artifact kind {other:?}"))),
        }
    }
}
