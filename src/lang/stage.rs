//! The behaviour of a built-in that produces an artifact: the checker asks it for its kind,
//! fields, checks and static facts; the interpreter runs it.

use super::artifact::Output;
use super::context::RunCtx;
use super::kind::Kind;
use super::signature::{Meta, StaticCall};
use super::types::Ty;
use super::value::Args;
use crate::diag::Diag;

pub trait Stage: Send + Sync {
    /// The kind of the result.
    fn output(&self) -> &'static Kind;
    /// The kind of the result of a call with these arguments, where it depends on them
    /// (`train` on layers makes a `training`, on a flow a `flow_training`).
    fn output_for(&self, _args: &Args) -> &'static Kind {
        self.output()
    }
    /// Results inside the result, reachable with `.name` (a split's `first`, a training's
    /// `model`).
    fn parts(&self, _args: &Args) -> Vec<(String, Ty)> {
        Vec::new()
    }
    /// The numbers the stage reports besides those every result of its kind reports. They
    /// are declared once, here: they are its numeric fields, and a stage that emits another
    /// fails a debug assertion.
    fn metrics(&self, _args: &Args) -> Vec<String> {
        Vec::new()
    }
    /// Checks beyond the signature (shapes, exclusive arguments).
    fn check(&self, _cx: &StaticCall) -> Vec<Diag> {
        Vec::new()
    }
    fn meta(&self, _cx: &StaticCall) -> Meta {
        Meta::default()
    }
    /// The stage reads files from the data directory (`--data-dir`).
    fn reads_data_dir(&self) -> bool {
        false
    }
    /// Part of the cache key: bumped when the stage's own code changes its results.
    fn revision(&self) -> u32 {
        0
    }
    fn run(&self, cx: &mut RunCtx) -> Result<Output, Diag>;
}

/// Every number the stage reports: its kind's, then its own.
pub fn metric_names(stage: &dyn Stage, args: &Args) -> Vec<String> {
    let mut names: Vec<String> = stage.output_for(args).metrics().iter().map(|m| m.to_string()).collect();
    for m in stage.metrics(args) {
        if !names.contains(&m) {
            names.push(m);
        }
    }
    names
}

/// Everything `.name` reads of a stage's result: its parts, then its numbers.
pub fn fields(stage: &dyn Stage, args: &Args) -> Vec<(String, Ty)> {
    let mut f = stage.parts(args);
    for m in metric_names(stage, args) {
        if !f.iter().any(|(n, _)| *n == m) {
            f.push((m, Ty::Float));
        }
    }
    f
}

/// The type of `.field` of a stage's result (the whole result when `None`).
pub fn field_type(stage: &dyn Stage, args: &Args, field: Option<&str>) -> Option<Ty> {
    match field {
        None => Some(Ty::Kind(stage.output_for(args))),
        Some(f) => fields(stage, args).into_iter().find(|(n, _)| n == f).map(|(_, t)| t),
    }
}
