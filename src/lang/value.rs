//! Values the checker computes. Configs are folded to constants and name their built-in by
//! its name, so a checked pipeline can be written out and read back (a sweep member, a
//! cluster job); a stage result is a reference to a node of the stage graph.

use super::types::Ty;
use crate::diag::Span;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::sync::Arc;

/// A built-in's or a parameter's name: borrowed from the registry, owned when read back.
pub type Name = Cow<'static, str>;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CVal {
    pub kind: VKind,
    pub span: Span,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum VKind {
    Int(i64),
    Float(f64),
    Str(String),
    /// A bare name that is a choice of some enumerated argument (`nll`, `accuracy`).
    Sym(String),
    Bool(bool),
    None,
    List(Vec<CVal>),
    Config(Arc<Config>),
    /// Layers composed with `|>`, flattened.
    Pipe(Vec<CVal>),
    Stage(StageRef),
    /// The members of a sweep; the checker maps calls over it, so no stage receives one.
    Family(Arc<super::family::Family>),
}

/// A call of a config built-in, its arguments resolved.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    pub builtin: Name,
    pub args: Args,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StageRef {
    pub node: usize,
    pub field: Option<String>,
}

/// Arguments in the order of the signature, defaults filled in.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Args(pub Vec<(Name, CVal)>);

impl Args {
    pub fn get(&self, name: &str) -> Option<&CVal> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(n, _)| n.as_ref())
    }
    pub fn int(&self, name: &str) -> Option<i64> {
        match self.get(name)?.kind {
            VKind::Int(v) => Some(v),
            _ => None,
        }
    }
    pub fn float(&self, name: &str) -> Option<f64> {
        self.get(name)?.number()
    }
    pub fn bool(&self, name: &str) -> Option<bool> {
        match self.get(name)?.kind {
            VKind::Bool(v) => Some(v),
            _ => None,
        }
    }
    /// A string or a bare-name choice.
    pub fn text(&self, name: &str) -> Option<&str> {
        match &self.get(name)?.kind {
            VKind::Str(s) | VKind::Sym(s) => Some(s),
            _ => None,
        }
    }
    pub fn texts(&self, name: &str) -> Vec<String> {
        match self.get(name).map(|v| &v.kind) {
            Some(VKind::List(items)) => items
                .iter()
                .filter_map(|i| match &i.kind {
                    VKind::Str(s) | VKind::Sym(s) => Some(s.clone()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }
    /// A list of numbers; `None` when the argument is absent or not a list.
    pub fn floats(&self, name: &str) -> Option<Vec<f64>> {
        self.get(name)?.numbers()
    }
    pub fn stage(&self, name: &str) -> Option<&StageRef> {
        match &self.get(name)?.kind {
            VKind::Stage(r) => Some(r),
            _ => None,
        }
    }
    /// The stages a list argument names, in order.
    /// The configs a list argument holds, each with its span (a list of attacks or
    /// regularizers).
    pub fn configs(&self, name: &str) -> Vec<(&Config, Span)> {
        match self.get(name).map(|v| &v.kind) {
            Some(VKind::List(items)) => items
                .iter()
                .filter_map(|it| match &it.kind {
                    VKind::Config(c) => Some((c.as_ref(), it.span)),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    pub fn stages(&self, name: &str) -> Vec<&StageRef> {
        match self.get(name).map(|v| &v.kind) {
            Some(VKind::List(items)) => items
                .iter()
                .filter_map(|i| match &i.kind {
                    VKind::Stage(r) => Some(r),
                    _ => None,
                })
                .collect(),
            Some(VKind::Stage(r)) => vec![r],
            _ => Vec::new(),
        }
    }
    pub fn config(&self, name: &str) -> Option<&Config> {
        match &self.get(name)?.kind {
            VKind::Config(c) => Some(c),
            _ => None,
        }
    }

    // The checker fills every argument in, so inside a lowering a missing or mistyped one is
    // a bug: these say which argument, instead of falling back to some default.

    pub fn need_float(&self, name: &str) -> Result<f64, String> {
        self.float(name).ok_or_else(|| missing(name, "a number"))
    }
    pub fn need_int(&self, name: &str) -> Result<i64, String> {
        self.int(name).ok_or_else(|| missing(name, "an integer"))
    }
    pub fn need_usize(&self, name: &str) -> Result<usize, String> {
        let v = self.need_int(name)?;
        usize::try_from(v).map_err(|_| format!("argument `{name}` is {v}, not a count"))
    }
    pub fn need_bool(&self, name: &str) -> Result<bool, String> {
        self.bool(name).ok_or_else(|| missing(name, "`true` or `false`"))
    }
    pub fn need_text(&self, name: &str) -> Result<&str, String> {
        self.text(name).ok_or_else(|| missing(name, "a string"))
    }
    pub fn need(&self, name: &str) -> Result<&CVal, String> {
        self.get(name).ok_or_else(|| missing(name, "a value"))
    }
}

fn missing(name: &str, what: &str) -> String {
    format!("argument `{name}` is not {what}")
}

impl CVal {
    pub fn new(kind: VKind, span: Span) -> Self {
        CVal { kind, span }
    }

    pub fn respan(mut self, span: Span) -> Self {
        self.span = span;
        self
    }

    pub fn number(&self) -> Option<f64> {
        match self.kind {
            VKind::Int(v) => Some(v as f64),
            VKind::Float(v) => Some(v),
            _ => None,
        }
    }

    /// A list of numbers; `None` when the value is not a list.
    pub fn numbers(&self) -> Option<Vec<f64>> {
        match &self.kind {
            VKind::List(items) => Some(items.iter().filter_map(CVal::number).collect()),
            _ => None,
        }
    }

    /// The configs of a `|>` chain, or the one config, in order (the checker has made sure
    /// that they are layers where layers are expected).
    pub fn layers(&self) -> Vec<&CVal> {
        match &self.kind {
            VKind::Pipe(items) => items.iter().collect(),
            VKind::Config(_) => vec![self],
            _ => Vec::new(),
        }
    }

    /// What to call this value in an error message; `noun` names a config's kind.
    pub fn describe(&self, noun: impl Fn(&Config) -> String, stage_ty: impl Fn(&StageRef) -> Option<Ty>) -> String {
        match &self.kind {
            VKind::Int(_) => "an integer".into(),
            VKind::Float(_) => "a number".into(),
            VKind::Str(s) => format!("the string \"{s}\""),
            VKind::Sym(s) => format!("the name `{s}`"),
            VKind::Bool(_) => "a boolean".into(),
            VKind::None => "`none`".into(),
            VKind::List(_) => "a list".into(),
            VKind::Config(c) => noun(c),
            VKind::Pipe(_) => "a chain of layers".into(),
            VKind::Stage(r) => match stage_ty(r) {
                Some(t @ (Ty::Int | Ty::Float)) => format!("{t} computed when the pipeline runs"),
                Some(t) => t.to_string(),
                None => "a stage result".into(),
            },
            VKind::Family(f) => format!("a sweep over {}", f.axes.join(", ")),
        }
    }

    /// A deterministic spelling of the value (floats in their exact round-trip form, spans
    /// left out), with `stage` spelling a reference to a node: what a cache key hashes.
    pub fn canonical(&self, stage: &dyn Fn(usize) -> String, out: &mut String) {
        use std::fmt::Write;
        match &self.kind {
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
                out.push(if matches!(self.kind, VKind::Pipe(_)) { '<' } else { '[' });
                for it in items {
                    it.canonical(stage, out);
                    out.push(',');
                }
                out.push(']');
            }
            VKind::Config(c) => {
                let _ = write!(out, "{}(", c.builtin);
                for (name, a) in &c.args.0 {
                    let _ = write!(out, "{name}=");
                    a.canonical(stage, out);
                    out.push(',');
                }
                out.push(')');
            }
            VKind::Family(f) => {
                out.push('{');
                for m in &f.members {
                    let _ = write!(out, "{}:", m.params.bracket());
                    m.value.canonical(stage, out);
                    out.push(',');
                }
                out.push('}');
            }
            VKind::Stage(r) => {
                let _ = write!(out, "@{}", stage(r.node));
                if let Some(f) = &r.field {
                    let _ = write!(out, ".{f}");
                }
            }
        }
    }

    /// Every stage this value refers to.
    pub fn stage_refs(&self, out: &mut Vec<StageRef>) {
        match &self.kind {
            VKind::Stage(r) => out.push(r.clone()),
            VKind::List(items) | VKind::Pipe(items) => items.iter().for_each(|i| i.stage_refs(out)),
            VKind::Config(c) => c.args.0.iter().for_each(|(_, v)| v.stage_refs(out)),
            VKind::Family(f) => f.members.iter().for_each(|m| m.value.stage_refs(out)),
            _ => {}
        }
    }
}
