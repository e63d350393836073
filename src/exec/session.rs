//! One run of a plan as every executor shares it (registry, options, cache keys, device),
//! and the job each executor runs per stage: take the stage from the cache, or execute it
//! and record its artifact, files, metrics and warnings in its manifest.

use super::RunOptions;
use super::cache::{self, Manifest, StoredArtifact, StoredDiag};
use crate::diag::{Code, Diag};
use crate::lang::Node;
use crate::lang::{ArtifactRef, Progress, Registry, RunCtx, RunEnv, StageDir, Upstream, metric_names};
use crate::plan::Plan;
use crate::yaml;
use candle_core::Device;

pub struct Session<'a> {
    pub plan: &'a Plan,
    pub registry: &'a Registry,
    pub opts: &'a RunOptions,
    /// One cache key per node of the plan.
    pub keys: Vec<String>,
    /// What each key hashes.
    pub inputs: Vec<String>,
    pub device: Device,
    pub progress: Progress,
}

/// A stage with a result in this run.
pub struct Done {
    pub manifest: Manifest,
    pub artifact: ArtifactRef,
    /// `executed`, `cached` or `cached (another run)`.
    pub status: &'static str,
}

/// The results a run holds so far, one slot per node of the plan.
pub struct Results<'a> {
    pub nodes: &'a [Node],
    pub artifacts: &'a [Option<ArtifactRef>],
}

impl Upstream for Results<'_> {
    fn result(&self, node: usize) -> Option<&ArtifactRef> {
        self.artifacts.get(node)?.as_ref()
    }
    fn node(&self, node: usize) -> Option<&Node> {
        self.nodes.get(node)
    }
}

impl Session<'_> {
    pub fn nodes(&self) -> &[Node] {
        self.plan.nodes()
    }

    /// A line on the console as a stage ends: `[k/total] name builtin what`.
    pub fn announce(&self, k: usize, total: usize, node: &Node, what: &str) {
        if !self.opts.quiet {
            eprintln!("[{}/{}] {:<16} {:<14} {what}", k + 1, total, node.name, node.builtin);
        }
    }

    /// Stage `i`'s current result in the run folder (or a sibling run's, copied here).
    pub fn from_cache(&self, i: usize) -> Option<Done> {
        let node = &self.nodes()[i];
        let (out, key) = (&self.opts.out, &self.keys[i]);
        let declared = self.registry.stage(&node.builtin)?.output_for(&node.args);
        let cached = || cache::load_cached(self.registry, out, &node.name, declared, key, &self.device);
        if let Some((manifest, artifact)) = cached() {
            return Some(Done { manifest, artifact, status: "cached" });
        }
        if self.opts.share_runs
            && cache::adopt_from_sibling_runs(out, &node.name, key)
            && let Some((manifest, artifact)) = cached()
        {
            return Some(Done { manifest, artifact, status: "cached (another run)" });
        }
        None
    }

    /// Stage `i`, from the cache (this run folder's, or a sibling's) or executed; `upstream`
    /// holds the results of the stages it uses.
    pub fn run_stage(&self, i: usize, upstream: &dyn Upstream) -> Result<Done, Diag> {
        let node = &self.nodes()[i];
        let (out, key) = (&self.opts.out, &self.keys[i]);
        let stage = self.registry.stage(&node.builtin).ok_or_else(|| {
            Diag::new(Code::R1006, format!("internal: `{}` is not a stage of this flowline", node.builtin))
        })?;
        if !self.opts.force
            && let Some(done) = self.from_cache(i)
        {
            return Ok(done);
        }
        let manifest_path = out.join(&node.name).join("stage.yaml");
        let _ = std::fs::remove_file(&manifest_path);
        let env = RunEnv {
            registry: self.registry,
            run_dir: out,
            data_dir: &self.opts.data_dir,
            seed: self.plan.checked.seed,
            device: &self.device,
            progress: self.progress,
        };
        let mut cx = RunCtx::new(node, &env, upstream);
        let result = stage.run(&mut cx)?;
        if cfg!(debug_assertions) {
            // Every number a stage emits is one it declares (a field, `fit.final_loss`), except
            // the cells of a table (`label.metric`), which are reported with the whole stage.
            let names = metric_names(stage, &node.args);
            let undeclared: Vec<&String> =
                result.metrics.keys().filter(|k| !k.contains('.') && !names.contains(k)).collect();
            assert!(undeclared.is_empty(), "`{}` emits undeclared metrics {undeclared:?}", node.builtin);
            let made = result.artifact.kind();
            let declared = stage.output_for(&node.args);
            assert!(made.is_a(declared), "`{}` makes {} but declares {}", node.builtin, made.name, declared.name);
        }
        let warnings = cx.take_warnings();
        let dir = StageDir { run_dir: out, name: &node.name, device: &self.device };
        let saved = result.artifact.save(&dir)?;
        let mut files = saved.files;
        files.extend(result.files);
        files.sort();
        files.dedup();
        let manifest = Manifest {
            key: key.clone(),
            builtin: node.builtin.to_string(),
            metrics: result.metrics,
            files,
            artifact: StoredArtifact { kind: result.artifact.kind().name.to_string(), facts: saved.facts },
            warnings: warnings.iter().map(StoredDiag::from).collect(),
            inputs: self.inputs[i].clone(),
        };
        let text = yaml::to_string(&manifest).map_err(|e| Diag::new(Code::R1001, e))?;
        crate::lang::write_atomic(&manifest_path, text.as_bytes())?;
        Ok(Done { manifest, artifact: result.artifact, status: "executed" })
    }
}
