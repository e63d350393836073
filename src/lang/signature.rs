//! Signatures of built-ins: parameters with their types, defaults and ranges, the static
//! facts a stage's result carries, and the built-in itself: a stage, or a config of some
//! kind with its typed lowering into the numerical library.

use super::kind::Kind;
use super::registry::Registry;
use super::stage::Stage;
use super::types::Ty;
use super::value::{Args, CVal, StageRef, VKind};
use crate::diag::Span;
use serde::{Deserialize, Serialize};
use std::any::Any;

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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    /// The type of the result (or part) a stage reference names.
    pub type_of: &'a dyn Fn(&StageRef) -> Option<Ty>,
    pub registry: &'a Registry,
}

impl StaticCall<'_> {
    /// The argument was written (a default carries the span of the call itself).
    pub fn given(&self, param: &str) -> bool {
        self.args.get(param).is_some_and(|v| v.span != self.span)
    }
    pub fn meta(&self, param: &str) -> Option<Meta> {
        match self.args.get(param) {
            Some(CVal { kind: VKind::Stage(r), .. }) => (self.meta_of)(r),
            _ => None,
        }
    }
    /// The kind of the value `param` holds: a config's, or the result's a stage reference
    /// names.
    pub fn kind(&self, param: &str) -> Option<&'static Kind> {
        match &self.args.get(param)?.kind {
            VKind::Config(c) => self.registry.kind_of(c),
            VKind::Stage(r) => match (self.type_of)(r)? {
                Ty::Kind(k) => Some(k),
                _ => None,
            },
            _ => None,
        }
    }
    /// The config `param` holds, lowered into the numerical library's value.
    pub fn lower<T: 'static>(&self, param: &str) -> Option<T> {
        self.registry.lower(self.args.config(param)?).ok()
    }
    /// The layers `param` holds, each lowered; `None` unless every one lowers.
    pub fn lower_each<T: 'static>(&self, param: &str) -> Option<Vec<T>> {
        self.registry.lower_each(self.args.get(param)?).ok()
    }
}

/// A config's value in the numerical library, before its type is known.
pub type Lowered = Box<dyn Any + Send + Sync>;
type LowerFn = Box<dyn Fn(&Registry, &Args) -> Result<Lowered, String> + Send + Sync>;

pub enum Body {
    /// Produces an artifact: a node of the stage graph.
    Stage(Box<dyn Stage>),
    /// A value of a config kind, lowered into the numerical library's type for that kind.
    Config { kind: &'static Kind, lower: LowerFn },
}

pub struct Builtin {
    pub name: &'static str,
    pub doc: &'static str,
    pub params: Vec<Param>,
    /// A call with exactly one positional argument binds it to this parameter
    /// (`linear(10)` means `linear(out: 10)`).
    pub single_positional: Option<&'static str>,
    pub body: Body,
}

impl std::fmt::Debug for Builtin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Builtin({})", self.name)
    }
}

impl Builtin {
    /// A config of `kind` whose arguments `lower` turns into the numerical library's value
    /// (the type the kind declares).
    pub fn config<T: Any + Send + Sync>(
        kind: &'static Kind,
        name: &'static str,
        doc: &'static str,
        params: Vec<Param>,
        lower: impl Fn(&Registry, &Args) -> Result<T, String> + Send + Sync + 'static,
    ) -> Self {
        let lower: LowerFn = Box::new(move |r, a| lower(r, a).map(|v| Box::new(v) as Lowered));
        Builtin { name, doc, params, single_positional: None, body: Body::Config { kind, lower } }
    }
    pub fn stage(name: &'static str, doc: &'static str, params: Vec<Param>, s: impl Stage + 'static) -> Self {
        Builtin { name, doc, params, single_positional: None, body: Body::Stage(Box::new(s)) }
    }
    pub fn positional(mut self, param: &'static str) -> Self {
        self.single_positional = Some(param);
        self
    }
    pub fn param(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.name == name)
    }
    pub fn as_stage(&self) -> Option<&dyn Stage> {
        match &self.body {
            Body::Stage(s) => Some(s.as_ref()),
            Body::Config { .. } => None,
        }
    }
    /// The kind of the config this built-in makes; `None` for a stage.
    pub fn config_kind(&self) -> Option<&'static Kind> {
        match &self.body {
            Body::Config { kind, .. } => Some(kind),
            Body::Stage(_) => None,
        }
    }
    /// The heading `flowline stages` lists it under.
    pub fn heading(&self) -> &'static str {
        match self.config_kind().map(|k| &k.role) {
            Some(super::kind::Role::Config { heading, .. }) => heading,
            _ => "stages",
        }
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
