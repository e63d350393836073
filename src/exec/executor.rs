//! Executors: how the selected stages of a plan are scheduled. Each runs stages through
//! `Session::run_stage` and returns what became of each; the local executor runs them one
//! after another in plan order; `Parallel` (parallel.rs) several at a time.

use super::session::{Done, Results, Session};
use crate::diag::Diag;
use crate::lang::ArtifactRef;
use std::time::Instant;

pub enum Outcome {
    /// A result from this run: executed or taken from the cache.
    Done {
        done: Box<Done>,
        secs: f64,
    },
    Failed {
        diag: Diag,
        secs: f64,
    },
    /// Not run because a stage it needs failed; `note` says which.
    Skipped {
        note: String,
    },
}

pub trait Executor {
    /// Run `selection` (node indices in plan order, each after what it uses); one slot per
    /// node of the plan, `None` for the stages not selected.
    fn execute(&self, session: &Session, selection: &[usize]) -> Vec<Option<Outcome>>;
}

/// Why a stage is skipped: it needs `dep`, which failed (`why` is `dep`) or was skipped
/// because `why` failed.
pub fn skip_note(dep: &str, why: &str) -> String {
    if why == dep {
        format!("needs `{why}`, which failed")
    } else {
        format!("needs `{dep}`, skipped because `{why}` failed")
    }
}

/// One stage after another, in plan order. A failing stage does not stop the others: what
/// depends on it is skipped, everything else runs.
pub struct Local;

impl Executor for Local {
    fn execute(&self, session: &Session, selection: &[usize]) -> Vec<Option<Outcome>> {
        let nodes = session.nodes();
        let mut artifacts: Vec<Option<ArtifactRef>> = vec![None; nodes.len()];
        // Why a stage has no result in this run: its own failure, or a failed stage it needs.
        let mut broken: Vec<Option<String>> = vec![None; nodes.len()];
        let mut outcomes: Vec<Option<Outcome>> = (0..nodes.len()).map(|_| None).collect();
        let total = selection.len();
        for (k, &i) in selection.iter().enumerate() {
            let node = &nodes[i];
            if let Some(&d) = node.deps.iter().find(|&&d| broken[d].is_some()) {
                let why = broken[d].clone().unwrap_or_default();
                let note = skip_note(&nodes[d].name, &why);
                broken[i] = Some(why);
                session.announce(k, total, node, &format!("skipped ({note})"));
                outcomes[i] = Some(Outcome::Skipped { note });
                continue;
            }
            let started = Instant::now();
            let result = session.run_stage(i, &Results { nodes, artifacts: &artifacts });
            let secs = started.elapsed().as_secs_f64();
            outcomes[i] = Some(match result {
                Ok(done) => {
                    session.announce(k, total, node, &format!("{} ({secs:.2}s)", done.status));
                    artifacts[i] = Some(done.artifact.clone());
                    Outcome::Done { done: Box::new(done), secs }
                }
                Err(diag) => {
                    session.announce(k, total, node, &format!("failed ({secs:.2}s)"));
                    broken[i] = Some(node.name.clone());
                    Outcome::Failed { diag, secs }
                }
            });
        }
        outcomes
    }
}
