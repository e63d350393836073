//! Name resolution, imports, signatures, types and shapes: everything that can be wrong
//! with a pipeline is found here, before any compute is spent.

mod elaborate;
mod modules;
mod typing;

pub use crate::lang::{Args, CVal, Config, Node, StageRef, VKind};

use crate::diag::{Code, Diag, SourceMap, Span, did_you_mean};
use crate::lang::Registry;
use crate::syntax::ast::{Expr, Program, StmtKind};
use elaborate::{Elab, Global};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// `path = value` from `--set` or a profile.
#[derive(Debug, Clone)]
pub struct Override {
    pub path: String,
    pub value: Expr,
    pub span: Span,
}

/// `--sweep fit.optimizer.lr=1e-3,1e-4`: the `let` it makes a sweep of, the axis (the rest of
/// the path; `seed` sets the members' seeds) and one value per member.
#[derive(Debug, Clone)]
pub struct SweepOverride {
    pub let_name: String,
    pub axis: String,
    /// The whole path, which a member overrides with its value (none for `seed`).
    pub path: String,
    pub values: Vec<Expr>,
    /// The values as written (`1e-3`), for names and tables.
    pub shown: Vec<String>,
    pub span: Span,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReportItem {
    pub node: usize,
    pub field: Option<String>,
    /// As written: `score` or `fit.final_loss`.
    pub label: String,
    /// For a sweep: its axes and, per member, its swept values and its stage (`node` is the
    /// first member's). Empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub axes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<(crate::lang::Params, usize)>,
}

/// The checker's result: every stage call with resolved arguments, what to report, the seed.
/// It can be written out and read back (a sweep member, a cluster job); the warnings are
/// the checker's messages to the user, not part of the pipeline.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checked {
    pub nodes: Vec<Node>,
    pub reports: Vec<ReportItem>,
    pub seed: u64,
    pub profile: Option<String>,
    pub profiles: Vec<String>,
    /// The `--set` overrides as given, recorded in the report.
    pub sets: Vec<String>,
    /// Some stage reads the data directory: the pipeline needs real datasets to run.
    pub reads_data_dir: bool,
    /// What every stage asks of a cluster unless it says otherwise (`resources = ...` in a
    /// profile or `--set`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<crate::lang::Resources>,
    /// Diagnostics that do not stop the pipeline (`W` codes).
    #[serde(skip)]
    pub warnings: Vec<Diag>,
}

#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    pub profile: Option<String>,
    /// `path=value` strings from the command line.
    pub sets: Vec<String>,
    /// `path=v1,v2,...` strings from the command line (`--sweep`).
    pub sweeps: Vec<String>,
}

const DEFAULT_SEED: u64 = 0;

/// Check the pipeline in `entry` (already added to `sources`).
pub fn check(reg: &Registry, sources: &mut SourceMap, entry: u32, opts: &CheckOptions) -> Result<Checked, Vec<Diag>> {
    let loaded = modules::load(sources, entry);
    let mut diags = loaded.diags;
    let sets = parse_sets(sources, &opts.sets, &mut diags);
    let sweeps = parse_sweeps(sources, &opts.sweeps, &mut diags);
    let (result, more) = check_modules(reg, sources, &loaded.modules, opts.profile.as_deref(), &sets, &sweeps);
    diags.extend(more);
    finish(result, diags, &opts.sets, &opts.sweeps)
}

/// Check the base pipeline and every profile it defines (what `flowline check` does).
pub fn check_all_profiles(
    reg: &Registry,
    sources: &mut SourceMap,
    entry: u32,
    sets: &[String],
    sweeps: &[String],
) -> Result<Checked, Vec<Diag>> {
    let loaded = modules::load(sources, entry);
    let mut diags = loaded.diags;
    // Parsed once, so that a bad `--set` is one diagnostic however many profiles there are.
    let parsed = parse_sets(sources, sets, &mut diags);
    let swept = parse_sweeps(sources, sweeps, &mut diags);
    let (base, more) = check_modules(reg, sources, &loaded.modules, None, &parsed, &swept);
    diags.extend(more);
    if let Some(b) = &base {
        for p in b.profiles.clone() {
            let (_, more) = check_modules(reg, sources, &loaded.modules, Some(&p), &parsed, &swept);
            diags.extend(more);
        }
    }
    finish(base, diags, sets, sweeps)
}

fn parse_sets(sources: &mut SourceMap, sets: &[String], diags: &mut Vec<Diag>) -> Vec<Override> {
    let mut out = Vec::new();
    for set in sets {
        match parse_set(sources, set) {
            Ok(o) => out.push(o),
            Err(d) => diags.push(d),
        }
    }
    out
}

fn parse_sweeps(sources: &mut SourceMap, sweeps: &[String], diags: &mut Vec<Diag>) -> Vec<SweepOverride> {
    let mut out: Vec<SweepOverride> = Vec::new();
    for text in sweeps {
        match parse_sweep(sources, text) {
            Ok(s) if out.iter().any(|o| o.path == s.path) => diags.push(
                Diag::new(Code::E2015, format!("`--sweep {}` is given twice", s.path))
                    .at(s.span, "swept again here")
                    .hint("give all the values in one `--sweep`, separated by commas"),
            ),
            Ok(s) => out.push(s),
            Err(d) => diags.push(d),
        }
    }
    out
}

fn finish(
    result: Option<Checked>,
    mut diags: Vec<Diag>,
    sets: &[String],
    sweeps: &[String],
) -> Result<Checked, Vec<Diag>> {
    let mut seen = std::collections::HashSet::new();
    diags.retain(|d| seen.insert((d.code, d.span, d.message.clone())));
    diags.sort_by_key(|d| (d.span.map(|s| (s.file, s.lo)), d.code));
    let (warnings, errors): (Vec<Diag>, Vec<Diag>) = diags.into_iter().partition(Diag::is_warning);
    match result {
        Some(mut c) if errors.is_empty() => {
            c.sets = sets.to_vec();
            c.sets.extend(sweeps.iter().map(|s| format!("sweep {s}")));
            c.warnings = warnings;
            Ok(c)
        }
        _ => Err(errors.into_iter().chain(warnings).collect()),
    }
}

fn check_modules(
    reg: &Registry,
    sources: &SourceMap,
    modules: &[modules::Module],
    profile: Option<&str>,
    sets: &[Override],
    sweeps: &[SweepOverride],
) -> (Option<Checked>, Vec<Diag>) {
    let mut diags = Vec::new();
    let Some(main) = modules.first() else {
        return (None, diags);
    };

    // Globals of every module share one namespace.
    let mut globals: HashMap<&str, Global> = HashMap::new();
    let mut order: Vec<&str> = Vec::new();
    for m in modules {
        for stmt in &m.program.stmts {
            let (name, g) = match &stmt.kind {
                StmtKind::Let { name, value } => (name, Global::Let { name, value }),
                StmtKind::Def { name, params, body } => (name, Global::Def { name, params, body }),
                StmtKind::Seed(_) | StmtKind::Report(_) | StmtKind::Profile { .. } if m.file != main.file => {
                    diags.push(
                        Diag::new(Code::E1005, "imported modules may only hold `let` and `def`")
                            .at(stmt.span, "not allowed in a module")
                            .hint("put `seed`, `report` and `profile` in the pipeline that imports this file"),
                    );
                    continue;
                }
                _ => continue,
            };
            if let Some(prev) = globals.get(name.name.as_str()) {
                let line = sources.line_of(prev.span().file, prev.span().lo);
                let file = sources.get(prev.span().file).name.clone();
                diags.push(
                    Diag::new(Code::E1002, format!("`{}` is defined twice", name.name))
                        .at(name.span, "defined again here")
                        .hint(format!("the first definition is at {file}:{line}; rename one of them")),
                );
                continue;
            }
            if reg.find(&name.name).is_some() {
                diags.push(
                    Diag::new(Code::E1002, format!("`{}` is the name of a built-in", name.name))
                        .at(name.span, "shadows a built-in")
                        .hint("choose another name; `flowline doc NAME` shows the built-in"),
                );
                continue;
            }
            globals.insert(&name.name, g);
            order.push(&name.name);
        }
    }

    let program: &Program = &main.program;
    let mut seed: Option<u64> = None;
    let mut profiles: Vec<(&str, Span, &[crate::syntax::ast::Assign])> = Vec::new();
    for stmt in &program.stmts {
        match &stmt.kind {
            StmtKind::Seed(s) => {
                if seed.is_some() {
                    diags.push(
                        Diag::new(Code::E1008, "`seed` is given twice")
                            .at(stmt.span, "second seed")
                            .hint("one global seed feeds every random choice; keep one `seed` statement"),
                    );
                }
                match seed_value(s) {
                    Ok(v) => seed = Some(v),
                    Err(d) => diags.push(d),
                }
            }
            StmtKind::Profile { name, assigns } => {
                if profiles.iter().any(|(n, _, _)| *n == name.name) {
                    diags.push(
                        Diag::new(Code::E1002, format!("profile `{}` is defined twice", name.name))
                            .at(name.span, "defined again here"),
                    );
                } else {
                    profiles.push((&name.name, name.span, assigns));
                }
            }
            _ => {}
        }
    }

    // Overrides: the selected profile first, then `--set` (which wins).
    let mut overrides = Vec::new();
    if let Some(p) = profile {
        match profiles.iter().find(|(n, _, _)| *n == p) {
            Some((_, _, assigns)) => {
                for a in assigns.iter() {
                    overrides.push(Override { path: a.path.dotted(), value: a.value.clone(), span: a.span });
                }
            }
            None => {
                let names: Vec<&str> = profiles.iter().map(|(n, _, _)| *n).collect();
                diags.push(
                    Diag::new(Code::E1006, format!("no profile named `{p}`"))
                        .maybe_hint(did_you_mean(p, names.iter().copied()).map(|s| format!("did you mean `{s}`?")))
                        .hint(if names.is_empty() {
                            "this pipeline defines no profiles".to_string()
                        } else {
                            format!("profiles: {}", names.join(", "))
                        }),
                );
            }
        }
    }
    for o in sets {
        overrides.retain(|x: &Override| x.path != o.path);
        overrides.push(o.clone());
    }
    // `seed` is a statement, not an argument; `resources` the default of every stage.
    let mut rest = Vec::new();
    let mut resources = None;
    for o in overrides {
        if o.path == "resources" {
            resources = Some(o);
        } else if o.path == "seed" {
            match seed_value(&o.value) {
                Ok(s) => seed = Some(s),
                Err(d) => diags.push(d),
            }
        } else {
            rest.push(o);
        }
    }

    let mut elab = Elab::new(reg, globals, &rest, sweeps);
    let resources = resources.as_ref().and_then(|o| elab.default_resources(&o.value));
    for name in &order {
        if matches!(elab.globals.get(name), Some(Global::Let { .. })) {
            elab.eval_let(name);
        }
    }
    let main_defs: Vec<&str> = program
        .stmts
        .iter()
        .filter_map(|s| match &s.kind {
            StmtKind::Def { name, .. } => Some(name.name.as_str()),
            _ => None,
        })
        .collect();
    for d in main_defs {
        if elab.globals.contains_key(d) {
            elab.probe_def(d);
        }
    }
    elab.unconsumed_overrides();
    elab.unapplied_sweeps();

    let mut reports = Vec::new();
    for stmt in &program.stmts {
        let StmtKind::Report(paths) = &stmt.kind else {
            continue;
        };
        for path in paths {
            if let Some(item) = report_item(&mut elab, path) {
                reports.push(item);
            }
        }
    }

    diags.append(&mut elab.diags);
    let reads_data_dir = elab.nodes.iter().any(|n| reg.stage(&n.builtin).is_some_and(|s| s.reads_data_dir()));
    let checked = Checked {
        reads_data_dir,
        nodes: elab.nodes,
        reports,
        seed: seed.unwrap_or(DEFAULT_SEED),
        profile: profile.map(str::to_string),
        profiles: profiles.iter().map(|(n, _, _)| n.to_string()).collect(),
        sets: Vec::new(),
        warnings: Vec::new(),
        resources,
    };
    (Some(checked), diags)
}

fn report_item<'a>(elab: &mut Elab<'a>, path: &crate::syntax::ast::Path) -> Option<ReportItem> {
    let first = path.segments.first()?;
    let is_let = matches!(elab.globals.get(first.name.as_str()), Some(Global::Let { .. }));
    if !is_let {
        let lets: Vec<&str> =
            elab.globals.iter().filter(|(_, g)| matches!(g, Global::Let { .. })).map(|(k, _)| *k).collect();
        elab.diags.push(
            Diag::new(Code::E1001, format!("cannot report `{}`: no `let` has this name", first.name))
                .at(first.span, "unknown name")
                .maybe_hint(did_you_mean(&first.name, lets).map(|s| format!("did you mean `{s}`?"))),
        );
        return None;
    }
    let key: &'a str = elab.globals.get_key_value(first.name.as_str()).map(|(k, _)| *k)?;
    let value = elab.eval_let(key)?;
    // A sweep is reported as a table: one row per member.
    let (axes, members) = match &value.kind {
        VKind::Family(f) => {
            let mut rows = Vec::new();
            for m in &f.members {
                match &m.value.kind {
                    VKind::Stage(StageRef { node, field: None }) => rows.push((m.params.clone(), *node)),
                    _ => return not_reportable(elab, &first.name, &m.value, path.span),
                }
            }
            (f.axes.clone(), rows)
        }
        _ => (Vec::new(), Vec::new()),
    };
    let node = match (&value.kind, members.first()) {
        (_, Some((_, node))) => *node,
        (VKind::Stage(StageRef { node, field: None }), None) => *node,
        _ => return not_reportable(elab, &first.name, &value, path.span),
    };
    let field = match path.segments.get(1) {
        None => None,
        Some(f) => {
            let fields = elab.fields_of(node);
            if !fields.iter().any(|(name, _)| *name == f.name) {
                let names: Vec<&str> = fields.iter().map(|(x, _)| x.as_str()).collect();
                elab.diags.push(
                    Diag::new(Code::E2008, format!("`{}` has no field `{}`", elab.nodes[node].builtin, f.name))
                        .at(f.span, "unknown field")
                        .maybe_hint(
                            did_you_mean(&f.name, names.iter().copied()).map(|s| format!("did you mean `{s}`?")),
                        )
                        .hint(format!("fields: {}", names.join(", "))),
                );
                return None;
            }
            if path.segments.len() > 2 {
                elab.diags.push(
                    Diag::new(Code::E2008, "reports go at most one field deep")
                        .at(path.segments[2].span, "too deep")
                        .hint("report `stage` or `stage.field`"),
                );
                return None;
            }
            Some(f.name.clone())
        }
    };
    Some(ReportItem { node, field, label: path.dotted(), axes, members })
}

fn not_reportable(elab: &mut Elab, name: &str, value: &CVal, span: Span) -> Option<ReportItem> {
    let what = elab.describe(value);
    elab.diags.push(
        Diag::new(Code::E2013, format!("`{name}` is {what}, not a stage result"))
            .at(span, "nothing to report")
            .hint("reports list stage results, such as `score` or `fit.final_loss`"),
    );
    None
}

/// The global seed: a whole number from 0 to 2^63 - 1, written as a literal.
fn seed_value(e: &Expr) -> Result<u64, Diag> {
    use crate::syntax::ast::ExprKind;
    let fix = "write a whole number from 0 to 9223372036854775807, e.g. `seed 7`";
    let bad = |code: Code, message: String, label: &str| Err(Diag::new(code, message).at(e.span, label).hint(fix));
    match &e.kind {
        ExprKind::Int(i) if *i >= 0 => Ok(*i as u64),
        ExprKind::Paren(inner) => seed_value(inner),
        ExprKind::Neg(inner) if matches!(inner.kind, ExprKind::Int(0)) => Ok(0),
        ExprKind::Neg(inner) if matches!(inner.kind, ExprKind::Int(_) | ExprKind::BigInt(_)) => {
            bad(Code::E2006, "`seed` must be non-negative".into(), "negative")
        }
        ExprKind::Float(f) => bad(Code::E2005, format!("`seed` must be a whole number; got {f}"), "not a whole number"),
        ExprKind::Neg(inner) if matches!(inner.kind, ExprKind::Float(_)) => {
            bad(Code::E2005, "`seed` must be a non-negative whole number".into(), "not a whole number")
        }
        ExprKind::BigInt(t) => bad(Code::E2006, format!("`seed {t}` is too large"), "does not fit in 63 bits"),
        _ => bad(Code::E2005, "`seed` must be an integer literal".into(), "not an integer"),
    }
}

/// `fit.iters=50` -> an override whose value is parsed as an expression.
fn parse_set(sources: &mut SourceMap, set: &str) -> Result<Override, Diag> {
    let file = sources.add("<--set>", None, set.to_string());
    let whole = Span::new(file, 0, set.len());
    let Some(eq) = set.find('=') else {
        return Err(Diag::new(Code::E2010, format!("`--set {set}` has no `=`"))
            .at(whole, "expected `path=value`")
            .hint("write `--set fit.iters=50`"));
    };
    let path = set[..eq].trim();
    let valid = !path.is_empty()
        && path.split('.').all(|seg| {
            seg.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && seg.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
    if !valid {
        return Err(Diag::new(Code::E2010, format!("`{path}` is not a path"))
            .at(Span::new(file, 0, eq), "expected names separated by `.`")
            .hint("write `--set fit.iters=50`"));
    }
    let text = &set[eq + 1..];
    if let Some(values) = sweep_values(text) {
        return Err(Diag::new(Code::E2010, format!("`--set {path}={text}` gives {} values", values.len()))
            .at(Span::new(file, eq + 1, set.len()), "several values")
            .hint(format!("to run once per value, sweep it: `--sweep {path}={text}`"))
            .hint(format!("a parameter that takes a list is written in brackets: `--set {path}=[{text}]`")));
    }
    let value = crate::syntax::parse_expr(file, text, eq + 1)?;
    Ok(Override { path: path.to_string(), value, span: whole })
}

/// `fit.optimizer.lr=1e-3,1e-4` -> the values of a sweep of `fit` over `optimizer.lr`.
fn parse_sweep(sources: &mut SourceMap, text: &str) -> Result<SweepOverride, Diag> {
    let file = sources.add("<--sweep>", None, text.to_string());
    let whole = Span::new(file, 0, text.len());
    let example = "write `--sweep fit.optimizer.lr=1e-3,1e-4` or `--sweep fit.seed=1,2,3`";
    let Some(eq) = text.find('=') else {
        return Err(Diag::new(Code::E2010, format!("`--sweep {text}` has no `=`"))
            .at(whole, "expected `path=value,value,...`")
            .hint(example));
    };
    let path = text[..eq].trim();
    let segments: Vec<&str> = path.split('.').collect();
    let valid = segments.iter().all(|seg| {
        seg.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && seg.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    });
    if !valid || segments.len() < 2 {
        return Err(Diag::new(Code::E2010, format!("`{path}` is not the path of an argument"))
            .at(Span::new(file, 0, eq), "expected `let.argument`")
            .hint("a sweep varies one argument of a `let` (or its `seed`)")
            .hint(example));
    }
    let rest = &text[eq + 1..];
    let (mut values, mut shown) = (Vec::new(), Vec::new());
    for part in sweep_values(rest).unwrap_or_else(|| vec![rest.trim()]) {
        if part.is_empty() {
            return Err(Diag::new(Code::E2010, format!("`--sweep {text}` has an empty value"))
                .at(Span::new(file, eq + 1, text.len()), "empty value")
                .hint(example));
        }
        // Each value is a slice of `text`: its offset there places its spans.
        let offset = part.as_ptr() as usize - text.as_ptr() as usize;
        values.push(crate::syntax::parse_expr(file, part, offset)?);
        shown.push(part.to_string());
    }
    Ok(SweepOverride {
        let_name: segments[0].to_string(),
        axis: segments[1..].join("."),
        path: path.to_string(),
        values,
        shown,
        span: whole,
    })
}

/// `1,2,3` (a Hydra-style sweep): the values separated by commas outside brackets and
/// strings, when there are several.
fn sweep_values(text: &str) -> Option<Vec<&str>> {
    let (mut depth, mut quoted, mut start) = (0i32, false, 0);
    let mut parts = Vec::new();
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '(' | '[' | '{' if !quoted => depth += 1,
            ')' | ']' | '}' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                parts.push(text[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(text[start..].trim());
    (parts.len() > 1 && parts.iter().filter(|p| !p.is_empty()).count() > 1).then_some(parts)
}
