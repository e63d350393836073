//! Cache keys: a content hash of everything a stage's result depends on (its built-in and
//! that built-in's revision, its name, which seeds its random stream, the global seed, the
//! data directory, its resolved arguments and the keys of the stages it uses). They are a
//! function of the plan and the data directory alone, so any executor computes the same.

use super::Plan;
use crate::lang::Registry;
use sha2::{Digest, Sha256};
use std::fmt::Write;
use std::path::Path;

/// Bumped whenever a change to the shared numerical code changes results, so that runs cached
/// by an older build are recomputed (2: max pooling's gradient corrected; 3: fixed-step ODE
/// solvers keep the user's step whatever the output times; 4: flowline's own convolution,
/// pooling, dense and activation kernels; 5: vectorised activations and pooling, dense
/// products on one thread below 8 million multiply-adds, gemm's AVX-512 kernels; 6: figures
/// drawn by plotters, PNG and SVG, so that cached stages draw them anew). A change confined
/// to one stage bumps that stage's `revision` instead.
pub const NUMERICS: u32 = 6;

/// One key per node. The data directory is part of every key: the same pipeline over other
/// files is another result.
pub fn keys(plan: &Plan, reg: &Registry, data_dir: &Path) -> Vec<String> {
    keyed(plan, reg, data_dir).into_iter().map(|k| k.key).collect()
}

/// A node's cache key and the text it hashes: one line per thing the result depends on
/// (`flowline ...`, the built-in, the name, `seed`, `data`, one line per argument), which a
/// manifest keeps so that `flowline status` can say what changed.
#[derive(Debug, Clone, Default)]
pub struct Keyed {
    pub key: String,
    pub text: String,
}

pub fn keyed(plan: &Plan, reg: &Registry, data_dir: &Path) -> Vec<Keyed> {
    let nodes = plan.nodes();
    let mut keys = vec![Keyed::default(); nodes.len()];
    for &i in &plan.order {
        let n = &nodes[i];
        let mut text = format!(
            "flowline {} numerics {NUMERICS}.{}\n{}\n{}\nseed {}\ndata {}\n",
            env!("CARGO_PKG_VERSION"),
            reg.stage(&n.builtin).map_or(0, |s| s.revision()),
            n.builtin,
            n.name,
            n.seed(plan.checked.seed),
            data_dir.display()
        );
        if let Some(m) = &n.member {
            // A member's random stream is not its name's (see `MemberOf`).
            let _ = writeln!(text, "stream {}", m.stream);
        }
        for (name, v) in &n.args.0 {
            let _ = write!(text, "{name}=");
            v.canonical(&|node| keys.get(node).map(|k| k.key.clone()).unwrap_or_default(), &mut text);
            text.push('\n');
        }
        keys[i] = Keyed { key: hex(&Sha256::digest(text.as_bytes())), text };
    }
    keys
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
