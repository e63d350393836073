//! Cache keys: a content hash of everything a stage's result depends on (its built-in,
//! its name, which seeds its random stream, the global seed, its resolved arguments and
//! the keys of the stages it uses), and the manifest that records them.

use super::artifact::Reload;
use crate::check::{CVal, Node, VKind};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt::Write;

/// Written last into each stage folder; a stage whose manifest holds the current key and
/// whose files exist is taken from the cache.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub key: String,
    pub builtin: String,
    pub metrics: super::Metrics,
    pub files: Vec<String>,
    pub reload: Reload,
    /// Warnings the stage gave when it ran; a cached result shows them again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<StoredDiag>,
}

/// A diagnostic as a manifest keeps it: its code and message.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoredDiag {
    pub code: String,
    pub message: String,
}

impl From<&crate::diag::Diag> for StoredDiag {
    fn from(d: &crate::diag::Diag) -> Self {
        StoredDiag { code: d.code.as_str().to_string(), message: d.message.clone() }
    }
}

/// Bumped whenever a change to the shared numerical code changes results, so that runs cached
/// by an older build are recomputed (2: max pooling's gradient corrected; 3: fixed-step ODE
/// solvers keep the user's step whatever the output times). A change confined to one stage
/// bumps that stage's `revision` instead.
const NUMERICS: u32 = 3;

/// The data directory is part of every key: the same pipeline over other files is
/// another result.
pub fn keys(nodes: &[Node], order: &[usize], seed: u64, data_dir: &std::path::Path) -> Vec<String> {
    let mut keys = vec![String::new(); nodes.len()];
    for &i in order {
        let n = &nodes[i];
        let mut text = format!(
            "flowline {} numerics {NUMERICS}.{}\n{}\n{}\nseed {seed}\ndata {}\n",
            env!("CARGO_PKG_VERSION"),
            n.builtin.stage.as_ref().map_or(0, |s| s.revision()),
            n.builtin.name,
            n.name,
            data_dir.display()
        );
        for (name, v) in &n.args.0 {
            let _ = write!(text, "{name}=");
            canonical(v, &keys, &mut text);
            text.push('\n');
        }
        keys[i] = hex(&Sha256::digest(text.as_bytes()));
    }
    keys
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A deterministic spelling of a value; floats in their exact round-trip form.
fn canonical(v: &CVal, keys: &[String], out: &mut String) {
    match &v.kind {
        VKind::Int(i) => {
            let _ = write!(out, "{i}");
        }
        VKind::Float(f) => {
            let _ = write!(out, "{f:?}");
        }
        VKind::Str(s) | VKind::Sym(s) => {
            let _ = write!(out, "{s:?}");
        }
        VKind::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        VKind::None => out.push_str("none"),
        VKind::List(items) | VKind::Pipe(items) => {
            out.push(if matches!(v.kind, VKind::Pipe(_)) { '<' } else { '[' });
            for it in items {
                canonical(it, keys, out);
                out.push(',');
            }
            out.push(']');
        }
        VKind::Config(c) => {
            let _ = write!(out, "{}(", c.builtin.name);
            for (name, a) in &c.args.0 {
                let _ = write!(out, "{name}=");
                canonical(a, keys, out);
                out.push(',');
            }
            out.push(')');
        }
        VKind::Stage(r) => {
            let _ = write!(out, "@{}", keys.get(r.node).map(String::as_str).unwrap_or(""));
            if let Some(f) = &r.field {
                let _ = write!(out, ".{f}");
            }
        }
    }
}
