//! The stage manifest and the cache: a stage whose folder holds a manifest with the current
//! key, whose files all exist and whose artifact its kind's loader reads back is not run
//! again.

use crate::diag::Diag;
use crate::lang::{ArtifactRef, Kind, Metrics, Registry, Role, StageDir};
use crate::yaml;
use candle_core::Device;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Written last into each stage folder.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub key: String,
    pub builtin: String,
    pub metrics: Metrics,
    pub files: Vec<String>,
    pub artifact: StoredArtifact,
    /// Warnings the stage gave when it ran; a cached result shows them again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<StoredDiag>,
    /// What the key hashes, one line per thing the result depends on: `flowline status`
    /// compares it with the pipeline's to say why a stage is stale.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub inputs: String,
}

/// The kind of a stage's artifact and the facts its loader needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredArtifact {
    pub kind: String,
    #[serde(default, skip_serializing_if = "yaml::Value::is_null")]
    pub facts: yaml::Value,
}

/// A diagnostic as a manifest keeps it: its code and message.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoredDiag {
    pub code: String,
    pub message: String,
}

impl From<&Diag> for StoredDiag {
    fn from(d: &Diag) -> Self {
        StoredDiag { code: d.code.as_str().to_string(), message: d.message.clone() }
    }
}

pub fn read_manifest(path: &Path) -> Option<Manifest> {
    yaml::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// The cached result of stage `stage`, if its manifest holds `key`, its artifact is of the
/// kind the stage declares and everything loads.
pub fn load_cached(
    reg: &Registry,
    run_dir: &Path,
    stage: &str,
    declared: &Kind,
    key: &str,
    device: &Device,
) -> Option<(Manifest, ArtifactRef)> {
    let m = read_manifest(&run_dir.join(stage).join("stage.yaml"))?;
    if m.key != key || !m.files.iter().all(|f| run_dir.join(f).exists()) {
        return None;
    }
    let kind = reg.kind(&m.artifact.kind).filter(|k| k.is_a(declared))?;
    let Role::Result { load: Some(load), .. } = kind.role else { return None };
    let dir = StageDir { run_dir, name: stage, device };
    let a = load(kind, &dir, &m.artifact.facts).ok()?;
    Some((m, a))
}

/// The same stage with the same key, already computed by another pipeline in the same
/// runs folder (a shared `use`d definition, same seed and data): copy its folder here. The
/// key covers everything the result depends on, so the copy is that result.
pub fn adopt_from_sibling_runs(out: &Path, stage: &str, key: &str) -> bool {
    let Some(parent) = out.parent() else { return false };
    let Ok(entries) = std::fs::read_dir(parent) else { return false };
    let mut runs: Vec<std::path::PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    runs.sort();
    for run in runs {
        if run == out || !run.is_dir() {
            continue;
        }
        let Some(m) = read_manifest(&run.join(stage).join("stage.yaml")) else { continue };
        if m.key != key || !m.files.iter().all(|f| run.join(f).exists() && f.starts_with(&format!("{stage}/"))) {
            continue;
        }
        let _ = std::fs::remove_dir_all(out.join(stage));
        if copy_dir(&run.join(stage), &out.join(stage)).is_ok() {
            return true;
        }
    }
    false
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let target = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &target)?
        } else {
            std::fs::copy(e.path(), target).map(|_| ())?
        }
    }
    Ok(())
}
