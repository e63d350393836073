//! Values the checker computes. Configs are folded to constants; a stage result is a
//! reference to a node of the stage graph.

use super::types::Ty;
use crate::diag::Span;
use crate::stages::{Builtin, Sort};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct CVal {
    pub kind: VKind,
    pub span: Span,
}

#[derive(Debug, Clone)]
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
}

#[derive(Debug, Clone)]
pub struct Config {
    pub builtin: &'static Builtin,
    pub args: Args,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StageRef {
    pub node: usize,
    pub field: Option<String>,
}

/// Arguments in the order of the signature, defaults filled in.
#[derive(Debug, Clone, Default)]
pub struct Args(pub Vec<(&'static str, CVal)>);

impl Args {
    pub fn get(&self, name: &str) -> Option<&CVal> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
    pub fn int(&self, name: &str) -> Option<i64> {
        match self.get(name)?.kind {
            VKind::Int(v) => Some(v),
            _ => None,
        }
    }
    pub fn float(&self, name: &str) -> Option<f64> {
        match self.get(name)?.kind {
            VKind::Int(v) => Some(v as f64),
            VKind::Float(v) => Some(v),
            _ => None,
        }
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
        match &self.get(name)?.kind {
            VKind::List(items) => Some(
                items
                    .iter()
                    .filter_map(|i| match i.kind {
                        VKind::Int(v) => Some(v as f64),
                        VKind::Float(v) => Some(v),
                        _ => None,
                    })
                    .collect(),
            ),
            _ => None,
        }
    }
    pub fn stage(&self, name: &str) -> Option<&StageRef> {
        match &self.get(name)?.kind {
            VKind::Stage(r) => Some(r),
            _ => None,
        }
    }
    pub fn config(&self, name: &str) -> Option<&Config> {
        match &self.get(name)?.kind {
            VKind::Config(c) => Some(c),
            _ => None,
        }
    }
}

impl CVal {
    pub fn new(kind: VKind, span: Span) -> Self {
        CVal { kind, span }
    }

    pub fn respan(mut self, span: Span) -> Self {
        self.span = span;
        self
    }

    pub fn is_layer(&self) -> bool {
        match &self.kind {
            VKind::Config(c) => c.builtin.sort == Sort::Layer,
            VKind::Pipe(_) => true,
            _ => false,
        }
    }

    /// The layers of a layer or a chain, in order.
    pub fn layers(&self) -> Vec<&CVal> {
        match &self.kind {
            VKind::Pipe(items) => items.iter().collect(),
            _ if self.is_layer() => vec![self],
            _ => Vec::new(),
        }
    }

    /// What to call this value in an error message.
    pub fn describe(&self, stage_ty: impl Fn(&StageRef) -> Option<Ty>) -> String {
        match &self.kind {
            VKind::Int(_) => "an integer".into(),
            VKind::Float(_) => "a number".into(),
            VKind::Str(s) => format!("the string \"{s}\""),
            VKind::Sym(s) => format!("the name `{s}`"),
            VKind::Bool(_) => "a boolean".into(),
            VKind::None => "`none`".into(),
            VKind::List(_) => "a list".into(),
            VKind::Config(c) => match c.builtin.sort {
                Sort::Layer => format!("the layer `{}`", c.builtin.name),
                Sort::Optimizer => format!("the optimizer `{}`", c.builtin.name),
                Sort::Schedule => format!("the schedule `{}`", c.builtin.name),
                Sort::Solver => format!("the solver `{}`", c.builtin.name),
                Sort::Field => format!("the vector field `{}`", c.builtin.name),
                Sort::Attack => format!("the attack `{}`", c.builtin.name),
                Sort::Stage => format!("`{}`", c.builtin.name),
            },
            VKind::Pipe(_) => "a chain of layers".into(),
            VKind::Stage(r) => match stage_ty(r) {
                Some(t) => t.to_string(),
                None => "a stage result".into(),
            },
        }
    }

    /// Every stage this value refers to.
    pub fn stage_refs(&self, out: &mut Vec<StageRef>) {
        match &self.kind {
            VKind::Stage(r) => out.push(r.clone()),
            VKind::List(items) | VKind::Pipe(items) => items.iter().for_each(|i| i.stage_refs(out)),
            VKind::Config(c) => c.args.0.iter().for_each(|(_, v)| v.stage_refs(out)),
            _ => {}
        }
    }
}
