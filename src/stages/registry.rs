//! The registry: every built-in with its signature and documentation. It is the single
//! source of truth for the checker, `flowline stages`/`doc` and the interpreter.

use crate::check::{Args, CVal, StageRef, Ty};
use crate::diag::{Diag, Span};
use crate::exec::{Output, RunCtx};
use std::collections::{BTreeSet, HashMap};
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// Produces an artifact; a node of the stage graph.
    Stage,
    Layer,
    Optimizer,
    Schedule,
    Solver,
    Field,
    Attack,
}

impl Sort {
    /// Every sort, in the order `flowline stages` lists them. `index` makes a sort added to
    /// the enum but not here a compile error.
    pub const ALL: [Sort; 7] =
        [Sort::Stage, Sort::Layer, Sort::Optimizer, Sort::Schedule, Sort::Solver, Sort::Field, Sort::Attack];

    pub fn index(self) -> usize {
        match self {
            Sort::Stage => 0,
            Sort::Layer => 1,
            Sort::Optimizer => 2,
            Sort::Schedule => 3,
            Sort::Solver => 4,
            Sort::Field => 5,
            Sort::Attack => 6,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Sort::Stage => "stage",
            Sort::Layer => "layer",
            Sort::Optimizer => "optimizer",
            Sort::Schedule => "schedule",
            Sort::Solver => "solver",
            Sort::Field => "vector field",
            Sort::Attack => "attack",
        }
    }
}

/// A parameter's default.
#[derive(Debug, Clone)]
pub enum Dflt {
    Required,
    None,
    Int(i64),
    Float(f64),
    Str(&'static str),
    Sym(&'static str),
    Bool(bool),
    /// A config built from the named built-in with its own defaults (`adam()`).
    Config(&'static str),
    /// A list of bare-name choices.
    Syms(&'static [&'static str]),
}

#[derive(Debug, Clone, Copy)]
pub struct Range {
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// The minimum itself is excluded (`lr > 0`).
    pub min_open: bool,
}

impl Range {
    pub fn contains(&self, v: f64) -> bool {
        let lo_ok = match self.min {
            Some(m) if self.min_open => v > m,
            Some(m) => v >= m,
            None => true,
        };
        lo_ok && self.max.is_none_or(|m| v <= m)
    }

    pub fn describe(&self) -> String {
        let lo = self.min.map(|m| format!("{} {}", if self.min_open { ">" } else { ">=" }, fmt_num(m)));
        let hi = self.max.map(|m| format!("<= {}", fmt_num(m)));
        match (lo, hi) {
            (Some(l), Some(h)) => format!("{l} and {h}"),
            (Some(l), None) => l,
            (None, Some(h)) => h,
            (None, None) => "any value".into(),
        }
    }
}

fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 { format!("{}", v as i64) } else { format!("{v}") }
}

#[derive(Debug, Clone)]
pub struct Param {
    pub name: &'static str,
    pub ty: Ty,
    pub default: Dflt,
    pub range: Option<Range>,
    pub doc: &'static str,
}

impl Param {
    pub fn new(name: &'static str, ty: Ty, default: Dflt, doc: &'static str) -> Self {
        Param { name, ty, default, range: None, doc }
    }
    /// Inclusive bounds.
    pub fn within(mut self, min: Option<f64>, max: Option<f64>) -> Self {
        self.range = Some(Range { min, max, min_open: false });
        self
    }
    /// Strictly positive.
    pub fn positive(mut self) -> Self {
        self.range = Some(Range { min: Some(0.0), max: None, min_open: true });
        self
    }
    pub fn required(&self) -> bool {
        matches!(self.default, Dflt::Required)
    }
}

/// Static facts about a stage's result, known before anything runs (shapes, classes).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Meta {
    /// Shape of one example of a dataset, or the input shape a model expects.
    pub shape: Option<Vec<usize>>,
    /// Number of classes of a labelled dataset, or output width of a model.
    pub classes: Option<usize>,
    /// Number of examples of a dataset, where it is known before anything runs.
    pub n: Option<usize>,
    /// The box a dataset's values live in, where the dataset declares one (images: [0, 1]).
    pub bounds: Option<(f64, f64)>,
}

/// What a stage's static hooks can see.
pub struct StaticCall<'a> {
    pub args: &'a Args,
    pub span: Span,
    pub meta_of: &'a dyn Fn(&StageRef) -> Option<Meta>,
}

impl StaticCall<'_> {
    /// The argument was written (a default carries the span of the call itself).
    pub fn given(&self, param: &str) -> bool {
        self.args.get(param).is_some_and(|v| v.span != self.span)
    }
    pub fn meta(&self, param: &str) -> Option<Meta> {
        match self.args.get(param) {
            Some(CVal { kind: crate::check::VKind::Stage(r), .. }) => (self.meta_of)(r),
            _ => None,
        }
    }
}

/// Behaviour of a built-in that produces an artifact.
pub trait Stage: Send + Sync {
    /// The type of the whole result.
    fn output(&self) -> Ty;
    /// Fields reachable with `.name`, given the arguments. Every dataset has `n`,
    /// `features` and `classes`.
    fn fields(&self, _args: &Args) -> Vec<(String, Ty)> {
        match self.output() {
            Ty::Dataset => ["n", "features", "classes"].iter().map(|f| (f.to_string(), Ty::Int)).collect(),
            _ => Vec::new(),
        }
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

pub struct Builtin {
    pub name: &'static str,
    pub sort: Sort,
    pub doc: &'static str,
    pub params: Vec<Param>,
    /// A call with exactly one positional argument binds it to this parameter
    /// (`linear(10)` means `linear(out: 10)`).
    pub single_positional: Option<&'static str>,
    pub stage: Option<Box<dyn Stage>>,
}

impl std::fmt::Debug for Builtin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Builtin({})", self.name)
    }
}

impl Builtin {
    pub fn new(name: &'static str, sort: Sort, doc: &'static str, params: Vec<Param>) -> Self {
        Builtin { name, sort, doc, params, single_positional: None, stage: None }
    }
    pub fn stage(name: &'static str, doc: &'static str, params: Vec<Param>, s: impl Stage + 'static) -> Self {
        Builtin { name, sort: Sort::Stage, doc, params, single_positional: None, stage: Some(Box::new(s)) }
    }
    pub fn param(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.name == name)
    }
    /// `name(a, b: 1)` as shown by `flowline stages`.
    pub fn signature(&self) -> String {
        let ps: Vec<String> = self
            .params
            .iter()
            .map(|p| match &p.default {
                Dflt::Required => p.name.to_string(),
                d => format!("{}: {}", p.name, show_default(d)),
            })
            .collect();
        format!("{}({})", self.name, ps.join(", "))
    }
}

pub fn show_default(d: &Dflt) -> String {
    match d {
        Dflt::Required => "required".into(),
        Dflt::None => "none".into(),
        Dflt::Int(v) => v.to_string(),
        Dflt::Float(v) => format!("{v:?}"),
        Dflt::Str(s) => format!("\"{s}\""),
        Dflt::Sym(s) => s.to_string(),
        Dflt::Bool(b) => b.to_string(),
        Dflt::Config(c) => format!("{c}()"),
        Dflt::Syms(items) => format!("[{}]", items.join(", ")),
    }
}

struct Registry {
    all: Vec<Builtin>,
    by_name: HashMap<&'static str, usize>,
    symbols: BTreeSet<&'static str>,
}

fn registry() -> &'static Registry {
    static REG: OnceLock<Registry> = OnceLock::new();
    REG.get_or_init(|| {
        let mut all = Vec::new();
        all.extend(super::data::builtins());
        all.extend(super::datasets::builtins());
        all.extend(super::layers::builtins());
        all.extend(super::optim::builtins());
        all.extend(super::train::builtins());
        all.extend(super::load::builtins());
        all.extend(super::evaluate::builtins());
        all.extend(super::plots::builtins());
        all.extend(super::ode::builtins());
        all.extend(super::attacks::builtins());
        all.extend(super::attack_reports::builtins());
        let by_name = all.iter().enumerate().map(|(i, b)| (b.name, i)).collect();
        let mut symbols = BTreeSet::new();
        for b in &all {
            for p in &b.params {
                collect_symbols(&p.ty, &mut symbols);
            }
        }
        Registry { all, by_name, symbols }
    })
}

fn collect_symbols(t: &Ty, out: &mut BTreeSet<&'static str>) {
    match t {
        Ty::Enum(items) => out.extend(items.iter().copied()),
        Ty::List(inner) | Ty::Opt(inner) => collect_symbols(inner, out),
        _ => {}
    }
}

pub fn all() -> &'static [Builtin] {
    &registry().all
}

pub fn find(name: &str) -> Option<&'static Builtin> {
    let r = registry();
    r.by_name.get(name).map(|&i| &r.all[i])
}

/// Bare names that stand for a choice of some argument (`nll`, `accuracy`).
pub fn is_symbol(name: &str) -> bool {
    registry().symbols.contains(name)
}

pub fn symbols() -> impl Iterator<Item = &'static str> {
    registry().symbols.iter().copied()
}
