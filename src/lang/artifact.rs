//! What stages produce: artifacts, an open set. Each kind of result has one type that the
//! producing stage builds, every consuming stage reads (`RunCtx::input`), and that saves
//! itself into its stage folder and is loaded back from it by its kind's loader when the
//! stage is cached. Nothing else reads a stage's files.

use super::atomic;
use super::kind::Kind;
use crate::diag::{Code, Diag};
use crate::yaml;
use candle_core::{Device, Tensor};
use std::any::Any;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub trait Artifact: Any + Send + Sync {
    /// The kind of result this is (a subtype of what the stage declares).
    fn kind(&self) -> &'static Kind;
    /// Write the artifact into its stage folder: the files written and the facts its kind's
    /// loader needs to read it back.
    fn save(&self, dir: &StageDir) -> Result<Saved, Diag>;
    /// A result inside this one, read as `.field` (a split's `first`).
    fn part(&self, _field: &str) -> Option<ArtifactRef> {
        None
    }
}

pub type ArtifactRef = Arc<dyn Artifact>;

/// The artifact as the concrete type `T`, if it is one.
pub fn downcast<T: Artifact>(a: &ArtifactRef) -> Option<Arc<T>> {
    let any: Arc<dyn Any + Send + Sync> = a.clone();
    any.downcast::<T>().ok()
}

/// What `save` wrote.
#[derive(Debug, Default)]
pub struct Saved {
    /// Files relative to the run folder.
    pub files: Vec<String>,
    /// Small facts the loader needs (shapes, class counts), kept in the stage's manifest.
    pub facts: yaml::Value,
}

/// Reads an artifact of `kind` back from its stage folder, given the facts `save` returned.
pub type Loader = fn(&'static Kind, &StageDir, &yaml::Value) -> Result<ArtifactRef, Diag>;

/// A stage's numbers, in the order the stage reports them.
pub type Metrics = indexmap::IndexMap<String, f64>;

/// What a stage returns to the interpreter.
pub struct Output {
    pub artifact: ArtifactRef,
    pub metrics: Metrics,
    /// Files written besides the artifact's own (figures), relative to the run folder.
    pub files: Vec<String>,
}

impl Output {
    /// Numbers and files only: metrics, a figure, a table.
    pub fn nothing(kind: &'static Kind, metrics: Metrics, files: Vec<String>) -> Self {
        Output { artifact: Arc::new(NoData(kind)), metrics, files }
    }
}

/// A result with no data of its own: its numbers are the stage's metrics, its figures files.
pub struct NoData(pub &'static Kind);

impl Artifact for NoData {
    fn kind(&self) -> &'static Kind {
        self.0
    }
    fn save(&self, _dir: &StageDir) -> Result<Saved, Diag> {
        Ok(Saved::default())
    }
}

pub fn load_nothing(kind: &'static Kind, _dir: &StageDir, _facts: &yaml::Value) -> Result<ArtifactRef, Diag> {
    Ok(Arc::new(NoData(kind)))
}

/// A stage's folder inside the run folder, where its artifact and files live.
pub struct StageDir<'a> {
    pub run_dir: &'a Path,
    /// The stage's name, which is its folder's.
    pub name: &'a str,
    /// Where loaded tensors go.
    pub device: &'a Device,
}

impl StageDir<'_> {
    /// `file` relative to the run folder.
    pub fn rel(&self, file: &str) -> String {
        format!("{}/{file}", self.name)
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.run_dir.join(self.rel(file))
    }

    /// Write a file atomically; returns its run-relative path.
    pub fn write(&self, file: &str, bytes: &[u8]) -> Result<String, Diag> {
        atomic::write(&self.path(file), bytes)?;
        Ok(self.rel(file))
    }

    pub fn write_tensors(&self, file: &str, tensors: &HashMap<String, Tensor>) -> Result<String, Diag> {
        save_tensors(&self.path(file), tensors)?;
        Ok(self.rel(file))
    }

    pub fn read_tensors(&self, file: &str) -> Result<HashMap<String, Tensor>, Diag> {
        let path = self.path(file);
        candle_core::safetensors::load(&path, self.device).map_err(|e| unreadable(&path, e))
    }

    pub fn read_text(&self, file: &str) -> Result<String, Diag> {
        let path = self.path(file);
        std::fs::read_to_string(&path).map_err(|e| unreadable(&path, e))
    }

    /// A file of this folder that cannot be used (R1002).
    pub fn bad(&self, file: &str, why: impl std::fmt::Display) -> Diag {
        unreadable(&self.path(file), why)
    }
}

fn unreadable(path: &Path, e: impl std::fmt::Display) -> Diag {
    Diag::new(Code::R1002, format!("cannot read {}: {e}", path.display()))
        .hint("the file is damaged or was written by another program; `--force` rebuilds a run's artifacts")
}

pub fn save_tensors(path: &Path, tensors: &HashMap<String, Tensor>) -> Result<(), Diag> {
    atomic::write_with(path, |tmp| candle_core::safetensors::save(tensors, tmp).map_err(|e| e.to_string()))
}
