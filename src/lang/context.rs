//! What a running stage sees, and all it sees: its arguments, name and folder, typed
//! inputs from the stages it uses, its configs lowered, its random stream, the device,
//! progress bars, and diagnostics located at its call. The interpreter builds one per stage
//! execution; how it schedules, caches or stores results stays on its side.

use super::artifact::{Artifact, ArtifactRef, StageDir, downcast};
use super::kind::Kind;
use super::node::Node;
use super::progress::Progress;
use super::registry::Registry;
use super::signature::Meta;
use super::value::{Args, Config, StageRef, VKind};
use crate::diag::{Code, Diag};
use crate::rng::Rng;
use candle_core::{Device, Tensor};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The results of the stages a running stage uses, as the interpreter holds them.
pub trait Upstream {
    /// The result of node `node`, if it has one in this run.
    fn result(&self, node: usize) -> Option<&ArtifactRef>;
    /// Node `node` of the plan (its name, static facts).
    fn node(&self, node: usize) -> Option<&Node>;
}

/// Where the run happens, shared by every stage of it.
pub struct RunEnv<'a> {
    pub registry: &'a Registry,
    pub run_dir: &'a Path,
    pub data_dir: &'a Path,
    pub seed: u64,
    pub device: &'a Device,
    pub progress: Progress,
}

pub struct RunCtx<'a> {
    node: &'a Node,
    env: &'a RunEnv<'a>,
    upstream: &'a dyn Upstream,
    /// How many streams `take_rng` has handed out.
    streams: usize,
    warnings: Vec<Diag>,
    pub device: Device,
    pub progress: Progress,
}

impl<'a> RunCtx<'a> {
    pub fn new(node: &'a Node, env: &'a RunEnv<'a>, upstream: &'a dyn Upstream) -> Self {
        RunCtx {
            node,
            env,
            upstream,
            streams: 0,
            warnings: Vec::new(),
            device: env.device.clone(),
            progress: env.progress,
        }
    }

    pub fn args(&self) -> &Args {
        &self.node.args
    }

    pub fn name(&self) -> &str {
        &self.node.name
    }

    /// The stage's own folder.
    pub fn dir(&self) -> StageDir<'_> {
        StageDir { run_dir: self.env.run_dir, name: &self.node.name, device: &self.device }
    }

    /// Where dataset files are read from (`--data-dir`).
    pub fn data_dir(&self) -> &Path {
        self.env.data_dir
    }

    /// A path the user gave relative to the run folder (a checkpoint to resume from).
    pub fn run_path(&self, rel: &str) -> PathBuf {
        self.env.run_dir.join(rel)
    }

    /// A file of the run folder as the report lists it.
    pub fn relative(&self, path: &Path) -> Option<String> {
        path.strip_prefix(self.env.run_dir).ok().map(|p| p.display().to_string())
    }

    /// The stage's random stream, for code that needs it alongside other borrows of the
    /// context. The first call gives the stage's stream; each later call an independent one
    /// of its own (never a fixed seed that two calls would share).
    pub fn take_rng(&mut self) -> Rng {
        let label = stream_label(self.node.stream(), self.streams);
        self.streams += 1;
        Rng::derive(self.node.seed(self.env.seed), &label)
    }

    /// The argument was written in the pipeline, not defaulted.
    pub fn given(&self, param: &str) -> bool {
        self.args().get(param).is_some_and(|v| v.span != self.node.span)
    }

    /// The static facts the checker knew of the stage `param` names.
    pub fn meta_of(&self, param: &str) -> Option<Meta> {
        let r = self.args().stage(param)?;
        self.upstream.node(r.node).map(|n| n.meta.clone())
    }

    fn missing(&self, param: &str) -> Diag {
        self.internal(&format!("argument `{param}` has no result to read"))
    }

    /// The result a stage reference points at (a part of it for `.field`).
    fn resolve(&self, r: &StageRef, param: &str) -> Result<ArtifactRef, Diag> {
        let whole = self.upstream.result(r.node).ok_or_else(|| self.missing(param))?;
        match &r.field {
            None => Ok(whole.clone()),
            Some(f) => whole.part(f).ok_or_else(|| self.missing(param)),
        }
    }

    fn typed<T: Artifact>(&self, a: &ArtifactRef, param: &str) -> Result<Arc<T>, Diag> {
        downcast::<T>(a).ok_or_else(|| self.internal(&format!("argument `{param}` holds {}", a.kind().describe)))
    }

    /// The result of the stage `param` names, as the artifact type its kind has.
    pub fn input<T: Artifact>(&self, param: &str) -> Result<Arc<T>, Diag> {
        let r = self.args().stage(param).ok_or_else(|| self.missing(param))?;
        self.typed(&self.resolve(r, param)?, param)
    }

    /// The kind of the value `param` holds: a config's, or the result's it names.
    pub fn input_kind(&self, param: &str) -> Option<&'static Kind> {
        match &self.args().get(param)?.kind {
            VKind::Config(c) => self.env.registry.kind_of(c),
            VKind::Stage(r) => self.resolve(r, param).ok().map(|a| a.kind()),
            _ => None,
        }
    }

    /// Like `input`, for an optional argument given as `none`.
    pub fn optional_input<T: Artifact>(&self, param: &str) -> Result<Option<Arc<T>>, Diag> {
        if self.args().stage(param).is_none() { Ok(None) } else { self.input(param).map(Some) }
    }

    /// The name of the stage `param` names (the first, for a list).
    pub fn input_name(&self, param: &str) -> Option<String> {
        let r = self.args().stages(param).into_iter().next()?;
        self.upstream.node(r.node).map(|n| n.name.clone())
    }

    /// The results a list argument names, with the names of their stages.
    pub fn inputs<T: Artifact>(&self, param: &str) -> Result<Vec<(String, Arc<T>)>, Diag> {
        let mut out = Vec::new();
        for r in self.args().stages(param) {
            let name = self.upstream.node(r.node).map(|n| n.name.clone()).unwrap_or_default();
            out.push((name, self.typed(&self.resolve(r, param)?, param)?));
        }
        Ok(out)
    }

    /// The config `param` holds, lowered into the numerical library's value.
    pub fn lower<T: 'static>(&self, param: &str) -> Result<T, Diag> {
        let c = self.args().config(param).ok_or_else(|| self.missing(param))?;
        self.lower_config(c)
    }

    pub fn lower_config<T: 'static>(&self, c: &Config) -> Result<T, Diag> {
        self.env.registry.lower(c).map_err(|e| self.internal(&e))
    }

    /// The layers `param` holds, each lowered.
    pub fn lower_each<T: 'static>(&self, param: &str) -> Result<Vec<T>, Diag> {
        let v = self.args().get(param).ok_or_else(|| self.missing(param))?;
        self.env.registry.lower_each(v).map_err(|e| self.internal(&e))
    }

    /// Write a file into the stage folder atomically; returns its run-relative path.
    pub fn write_file(&self, file: &str, bytes: &[u8]) -> Result<String, Diag> {
        self.dir().write(file, bytes)
    }

    pub fn write_tensors(&self, file: &str, tensors: &HashMap<String, Tensor>) -> Result<String, Diag> {
        self.dir().write_tensors(file, tensors)
    }

    /// A warning located at this stage's call: shown after the run and kept in the report.
    pub fn warn(&mut self, code: Code, message: impl Into<String>) {
        let d = Diag::warning(code, message).at(self.node.span, format!("in stage `{}`", self.node.name));
        self.warnings.push(d);
    }

    /// The warnings given so far (the interpreter takes them when the stage ends).
    pub fn take_warnings(&mut self) -> Vec<Diag> {
        std::mem::take(&mut self.warnings)
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
