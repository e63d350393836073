//! `flowline status` and `run --dry-run`: for every stage of a plan, whether its result in
//! the run folder is current (cached), and if not, whether it was never run, is incomplete,
//! or is stale and why: which of the things its key hashes changed (an argument, an input
//! stage, the seed, the data folder, flowline's numerics). Nothing is executed.

use super::RunOptions;
use super::cache::read_manifest;
use crate::lang::Registry;
use crate::plan::Plan;
use std::fmt::Write;

#[derive(Debug, Clone, PartialEq)]
pub enum State {
    /// Its result is there and current: a run takes it from the cache.
    Cached,
    /// No result in the run folder.
    New,
    /// The manifest is current but files it lists are missing.
    Incomplete,
    /// A result computed from something else; the reasons, one per changed input.
    Stale(Vec<String>),
}

pub struct StageStatus {
    pub name: String,
    pub builtin: String,
    pub state: State,
}

impl StageStatus {
    pub fn would_run(&self) -> bool {
        self.state != State::Cached
    }
}

/// The status of the stages `opts` selects (all, or `--only`'s), in execution order.
pub fn status(reg: &Registry, plan: &Plan, opts: &RunOptions) -> Result<Vec<StageStatus>, crate::diag::Diag> {
    let selection = match &opts.only {
        Some(name) => plan.select(name)?,
        None => plan.order.clone(),
    };
    let keyed = crate::plan::keyed(plan, reg, &opts.data_dir);
    let nodes = plan.nodes();
    Ok(selection
        .into_iter()
        .map(|i| {
            let node = &nodes[i];
            let dir = opts.out.join(&node.name);
            let state = match read_manifest(&dir.join("stage.yaml")) {
                None => State::New,
                Some(m) if m.key == keyed[i].key => {
                    if m.files.iter().all(|f| opts.out.join(f).exists()) {
                        State::Cached
                    } else {
                        State::Incomplete
                    }
                }
                Some(m) => State::Stale(changes(&m.inputs, &keyed[i].text)),
            };
            StageStatus { name: node.name.clone(), builtin: node.builtin.to_string(), state }
        })
        .collect())
}

/// What differs between the inputs a result was computed from and the pipeline's now.
fn changes(before: &str, now: &str) -> Vec<String> {
    if before.is_empty() {
        return vec!["computed by an older flowline that did not record its inputs".into()];
    }
    let field = |text: &str, prefix: &str| text.lines().find(|l| l.starts_with(prefix)).map(str::to_string);
    let (old_lines, new_lines): (Vec<&str>, Vec<&str>) = (before.lines().collect(), now.lines().collect());
    let mut out = Vec::new();
    if old_lines.first() != new_lines.first() {
        out.push(format!(
            "flowline changed ({} -> {})",
            old_lines.first().unwrap_or(&""),
            new_lines.first().unwrap_or(&"")
        ));
    }
    for prefix in ["seed ", "data ", "stream "] {
        let (a, b) = (field(before, prefix), field(now, prefix));
        if a != b {
            let what = prefix.trim();
            out.push(format!(
                "{what} changed: {} -> {}",
                a.as_deref().map_or("none", |l| &l[prefix.len()..]),
                b.as_deref().map_or("none", |l| &l[prefix.len()..])
            ));
        }
    }
    // Arguments: `name=value` lines after the header.
    let args = |lines: &[&str]| -> Vec<(String, String)> {
        lines
            .iter()
            .skip(3)
            .filter(|l| !["seed ", "data ", "stream "].iter().any(|p| l.starts_with(p)))
            .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
            .collect()
    };
    let (old_args, new_args) = (args(&old_lines), args(&new_lines));
    for (k, v) in &new_args {
        match old_args.iter().find(|(ok, _)| ok == k) {
            None => out.push(format!("argument `{k}` is new")),
            Some((_, ov)) if ov != v => {
                if ov.contains('@') || v.contains('@') {
                    out.push(format!("input `{k}` changed"));
                } else {
                    out.push(format!("argument `{k}` changed: {} -> {}", short(ov), short(v)));
                }
            }
            Some(_) => {}
        }
    }
    for (k, _) in &old_args {
        if !new_args.iter().any(|(nk, _)| nk == k) {
            out.push(format!("argument `{k}` was removed"));
        }
    }
    if out.is_empty() {
        out.push("its definition changed".into());
    }
    out
}

fn short(v: &str) -> String {
    if v.chars().count() > 48 { format!("{}...", v.chars().take(45).collect::<String>()) } else { v.to_string() }
}

/// The table `flowline status` prints.
pub fn render(stages: &[StageStatus]) -> String {
    let width = stages.iter().map(|s| s.name.len()).max().unwrap_or(0).max(5);
    let mut out = String::new();
    for s in stages {
        let (what, why) = match &s.state {
            State::Cached => ("cached", String::new()),
            State::New => ("would run", "no result yet".to_string()),
            State::Incomplete => ("would run", "files of its result are missing".to_string()),
            State::Stale(reasons) => ("would run", format!("stale: {}", reasons.join("; "))),
        };
        let line = format!("{:<width$}  {:<14} {what:<10} {why}", s.name, s.builtin);
        let _ = writeln!(out, "{}", line.trim_end());
    }
    let running = stages.iter().filter(|s| s.would_run()).count();
    let _ = writeln!(out, "{} stages: {} cached, {running} would run", stages.len(), stages.len() - running);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_changed_is_named() {
        let before = "flowline 0.1.0 numerics 6.0\ntrain\nfit\nseed 7\ndata d\nmodel=@abc\niters=100\nlr=0.1\n";
        let now = "flowline 0.1.0 numerics 6.0\ntrain\nfit\nseed 8\ndata d\nmodel=@def\niters=200\nbatch=5\n";
        let c = changes(before, now);
        assert_eq!(
            c,
            [
                "seed changed: 7 -> 8",
                "input `model` changed",
                "argument `iters` changed: 100 -> 200",
                "argument `batch` is new",
                "argument `lr` was removed"
            ]
        );
        let bumped = changes(before, &before.replace("numerics 6.0", "numerics 7.0"));
        assert_eq!(bumped, ["flowline changed (flowline 0.1.0 numerics 6.0 -> flowline 0.1.0 numerics 7.0)"]);
        assert_eq!(changes("", now).len(), 1);
    }
}
