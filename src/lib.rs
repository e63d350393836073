//! flowline: a pipeline language for continuous-time generative models and adversarial
//! robustness. The compiler's stages, one public function per edge:
//!
//! text --[`parse`]--> AST --[`check`]--> checked nodes --[`plan`]--> DAG --[`run`]--> report
//!
//! See docs/ARCHITECTURE.md for the table of stages and modules.

pub mod allocator;
pub mod check;
pub mod compare;
pub mod diag;
pub mod exec;
pub mod help;
pub mod lang;
pub mod plan;
pub mod snapshot;
pub mod stages;
pub mod stdlib;
pub mod syntax;
pub mod yaml;

/// The numerical library, its own crate (`crates/numerics`): it cannot reach the language.
pub use flowline_numerics::{
    calib, certify, csv, data, flow, io, nn, ode, ood, plots, potential, rng, robust, threads,
};

use diag::{Code, Diag, SourceMap};
use lang::Registry;
use std::path::Path;
use std::sync::OnceLock;

pub use check::{CheckOptions, Checked};
pub use exec::{Report, RunFailure, RunOptions};
pub use plan::Plan;

/// The built-ins of every family (`stages::registry`), built once.
pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(stages::registry)
}

/// Read a pipeline file into the source map.
pub fn load(sources: &mut SourceMap, path: &Path) -> Result<u32, Diag> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Diag::new(Code::E1003, format!("cannot read the pipeline {}: {e}", path.display()))
            .hint("check the path of the pipeline file")
    })?;
    Ok(sources.add(path.display().to_string(), Some(path), text))
}

/// text -> AST (syntax errors only).
pub fn parse(sources: &SourceMap, file: u32) -> (syntax::ast::Program, Vec<Diag>) {
    syntax::parse_program(file, &sources.get(file).text)
}

/// AST (with imports) -> checked stage nodes, against the built-in registry.
pub fn check(sources: &mut SourceMap, file: u32, opts: &CheckOptions) -> Result<Checked, Vec<Diag>> {
    check::check(registry(), sources, file, opts)
}

/// Checked nodes -> DAG in execution order.
pub fn plan(checked: Checked) -> Result<Plan, Vec<Diag>> {
    plan::plan(checked)
}

/// DAG -> executed stages and the report, by the local executor. A failing stage does not
/// stop the others; the failure carries every stage's diagnostic and the report that
/// records them.
pub fn run(plan: &Plan, opts: &RunOptions) -> Result<Report, RunFailure> {
    exec::execute(registry(), plan, opts)
}

/// `parse -> check -> plan` for a file on disk.
pub fn compile(sources: &mut SourceMap, path: &Path, opts: &CheckOptions) -> Result<Plan, Vec<Diag>> {
    let file = load(sources, path).map_err(|d| vec![d])?;
    plan(check(sources, file, opts)?)
}

/// The process exit code for a set of diagnostics: 1 for runtime failures, 2 for pipeline
/// errors, 0 when there are only warnings.
pub fn exit_code(diags: &[Diag]) -> i32 {
    let errors: Vec<&Diag> = diags.iter().filter(|d| !d.is_warning()).collect();
    if errors.is_empty() {
        0
    } else if errors.iter().all(|d| d.code.is_runtime()) {
        1
    } else {
        2
    }
}
