//! What a running stage sees: its arguments with upstream results resolved, its folder,
//! its random stream, the device and progress reporting.

use super::artifact::{Artifact, Trained};
use super::atomic;
use super::progress::Progress;
use crate::check::{Args, Node, StageRef};
use crate::data::Dataset;
use crate::diag::{Code, Diag};
use crate::nn::LayerSpec;
use crate::rng::Rng;
use candle_core::Device;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A model argument: layers to initialise, or a trained model to continue from.
pub enum ModelArg {
    Layers(Vec<LayerSpec>),
    Trained(Arc<Trained>),
}

/// A model to evaluate: a trained one, or freshly initialised layers.
pub enum ModelRef {
    Trained(Arc<Trained>),
    Fresh(crate::nn::Net),
}

impl std::ops::Deref for ModelRef {
    type Target = crate::nn::Net;
    fn deref(&self) -> &crate::nn::Net {
        match self {
            ModelRef::Trained(t) => &t.model,
            ModelRef::Fresh(n) => n,
        }
    }
}

pub struct RunCtx<'a> {
    pub node: &'a Node,
    pub run_dir: &'a Path,
    /// The stage's random stream, derived from the global seed and the stage's name.
    pub(super) seed: u64,
    /// How many streams `take_rng` has handed out.
    pub(super) streams: usize,
    pub device: Device,
    pub progress: Progress,
    /// Where dataset files are read from.
    pub data_dir: PathBuf,
    pub(super) artifacts: &'a [Option<Artifact>],
    pub(super) nodes: &'a [Node],
    pub(super) warnings: Vec<Diag>,
}

impl RunCtx<'_> {
    pub fn args(&self) -> &Args {
        &self.node.args
    }

    /// The stage's random stream, for code that needs it alongside other borrows of the
    /// context. The first call gives the stage's stream; each later call an independent one
    /// of its own (never a fixed seed that two calls would share).
    pub fn take_rng(&mut self) -> Rng {
        let label = stream_label(&self.node.name, self.streams);
        self.streams += 1;
        Rng::derive(self.seed, &label)
    }

    /// The stage folder (relative to the run folder) of another stage this one uses.
    pub fn stage_dir_of(&self, r: &StageRef) -> Option<&str> {
        self.nodes.get(r.node).map(|n| n.name.as_str())
    }

    pub fn name(&self) -> &str {
        &self.node.name
    }

    /// The stage's folder, relative to the run folder (its name).
    pub fn stage_dir(&self) -> &str {
        &self.node.name
    }

    fn missing(&self, param: &str) -> Diag {
        Diag::new(Code::R1006, format!("stage `{}`: argument `{param}` has no result to read", self.node.name))
    }

    fn upstream(&self, param: &str) -> Result<(&StageRef, &Artifact), Diag> {
        let r = self.args().stage(param).ok_or_else(|| self.missing(param))?;
        let a = self.artifacts.get(r.node).and_then(Option::as_ref).ok_or_else(|| self.missing(param))?;
        Ok((r, a))
    }

    pub fn dataset(&self, param: &str) -> Result<Arc<Dataset>, Diag> {
        let (r, _) = self.upstream(param)?;
        self.dataset_at(r, param)
    }

    /// The dataset another stage took as its `param` (the data an `attack` attacked).
    pub fn dataset_of(&self, stage: &StageRef, param: &str) -> Result<Arc<Dataset>, Diag> {
        let r = self.nodes.get(stage.node).and_then(|n| n.args.stage(param)).ok_or_else(|| self.missing(param))?;
        self.dataset_at(r, param)
    }

    fn dataset_at(&self, r: &StageRef, param: &str) -> Result<Arc<Dataset>, Diag> {
        let a = self.artifacts.get(r.node).and_then(Option::as_ref).ok_or_else(|| self.missing(param))?;
        match (r, a) {
            (_, Artifact::Dataset(d)) => Ok(d.clone()),
            (r, Artifact::Split(a, b)) => match r.field.as_deref() {
                Some("first") => Ok(a.clone()),
                Some("second") => Ok(b.clone()),
                _ => Err(self.missing(param)),
            },
            _ => Err(self.missing(param)),
        }
    }

    /// The argument was written in the pipeline, not defaulted.
    pub fn given(&self, param: &str) -> bool {
        self.args().get(param).is_some_and(|v| v.span != self.node.span)
    }

    /// The static facts the checker knew of the stage `param` names.
    pub fn meta_of(&self, param: &str) -> Option<crate::stages::Meta> {
        let r = self.args().stage(param)?;
        self.nodes.get(r.node).map(|n| n.meta.clone())
    }

    pub fn trained(&self, param: &str) -> Result<Arc<Trained>, Diag> {
        match self.upstream(param)? {
            (_, Artifact::Trained(t)) => Ok(t.clone()),
            _ => Err(self.missing(param)),
        }
    }

    pub fn model(&self, param: &str) -> Result<ModelArg, Diag> {
        if self.args().stage(param).is_some() {
            return self.trained(param).map(ModelArg::Trained);
        }
        let v = self.args().get(param).ok_or_else(|| self.missing(param))?;
        crate::stages::layer_specs(v).map(ModelArg::Layers).ok_or_else(|| self.missing(param))
    }

    /// The model `param` names, ready to evaluate on inputs of `shape` (layers are
    /// initialised from `rng`).
    pub fn model_ref(&self, param: &str, shape: &[usize], rng: &mut Rng) -> Result<ModelRef, Diag> {
        Ok(match self.model(param)? {
            ModelArg::Trained(t) => ModelRef::Trained(t),
            ModelArg::Layers(specs) => ModelRef::Fresh(
                crate::nn::Net::init(&specs, shape, rng, &self.device)
                    .map_err(|e| self.error(Code::R1002, format!("cannot build the model: {e}")))?,
            ),
        })
    }

    /// Write a file into the stage folder atomically; returns its run-relative path.
    pub fn write_file(&self, file: &str, bytes: &[u8]) -> Result<String, Diag> {
        let rel = format!("{}/{file}", self.stage_dir());
        atomic::write(&self.run_dir.join(&rel), bytes)?;
        Ok(rel)
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.run_dir.join(rel)
    }

    /// A warning located at this stage's call: shown after the run and kept in the report.
    pub fn warn(&mut self, code: Code, message: impl Into<String>) {
        let d = Diag::warning(code, message).at(self.node.span, format!("in stage `{}`", self.node.name));
        self.warnings.push(d);
    }

    /// A computation that failed inside the tensor library (R1006): `what` says which.
    pub fn compute_error(&self, what: &str, e: impl std::fmt::Display) -> Diag {
        self.error(Code::R1006, format!("{what} failed: {e}"))
    }

    /// An inconsistency the checker should have ruled out (R1006): a bug to report.
    pub fn internal(&self, what: &str) -> Diag {
        self.error(Code::R1006, format!("internal: {what}; the checker should have caught this, please report it"))
    }

    /// A runtime failure located at this stage's call.
    pub fn error(&self, code: Code, message: impl Into<String>) -> Diag {
        Diag::new(code, message).at(self.node.span, format!("in stage `{}`", self.node.name))
    }
}

/// The label of a stage's k-th random stream: its name for the first (as every stage has
/// always drawn), `name#k` for later ones.
fn stream_label(stage: &str, k: usize) -> String {
    if k == 0 { stage.to_string() } else { format!("{stage}#{k}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_stream_a_stage_takes_is_its_own() {
        let draw = |k: usize| Rng::derive(7, &stream_label("fit", k)).uniform();
        assert_eq!(draw(0), Rng::derive(7, "fit").uniform(), "the first stream is the stage's");
        assert_ne!(draw(0), draw(1));
        assert_ne!(draw(1), draw(2));
        assert_ne!(draw(1), Rng::new(0).uniform(), "never the fixed seed-0 stream");
    }
}
