//! The static types of the language: scalars and lists built in, everything else a kind
//! some family registered. Configs are values known before anything runs; stage results
//! are known only by their kind and their static metadata.

use super::kind::Kind;
use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Ty {
    Int,
    Float,
    Str,
    Bool,
    /// Only `none` (a part of a `OneOf`).
    Null,
    /// A string or bare name from a fixed set (`"moons"`, `cross_entropy`).
    Enum(Vec<&'static str>),
    List(Box<Ty>),
    /// A config or stage result of a registered kind, or of one of its subtypes.
    Kind(&'static Kind),
    /// Any of several shapes, described as a whole (`bounds: [lo, hi] | none | data`).
    OneOf(&'static str, Vec<Ty>),
    /// The value may also be `none`.
    Opt(Box<Ty>),
}

impl Ty {
    pub fn list(t: Ty) -> Ty {
        Ty::List(Box::new(t))
    }
    pub fn opt(t: Ty) -> Ty {
        Ty::Opt(Box::new(t))
    }
    pub fn choice(items: &[&'static str]) -> Ty {
        Ty::Enum(items.to_vec())
    }
    pub fn kind(k: &'static Kind) -> Ty {
        Ty::Kind(k)
    }
    /// The type accepts the bare name `name` as one of its choices.
    pub fn has_choice(&self, name: &str) -> bool {
        match self {
            Ty::Enum(items) => items.contains(&name),
            Ty::Opt(inner) => inner.has_choice(name),
            Ty::OneOf(_, options) => options.iter().any(|o| o.has_choice(name)),
            _ => false,
        }
    }
    /// Every kind this type names, for the registry's collection of kinds.
    pub fn kinds(&self, out: &mut Vec<&'static Kind>) {
        match self {
            Ty::Kind(k) => out.push(k),
            Ty::List(inner) | Ty::Opt(inner) => inner.kinds(out),
            Ty::OneOf(_, options) => options.iter().for_each(|o| o.kinds(out)),
            _ => {}
        }
    }
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ty::Int => write!(f, "an integer"),
            Ty::Float => write!(f, "a number"),
            Ty::Str => write!(f, "a string"),
            Ty::Bool => write!(f, "`true` or `false`"),
            Ty::Null => write!(f, "`none`"),
            Ty::Enum(items) => {
                let shown: Vec<String> = items.iter().map(|i| format!("`{i}`")).collect();
                write!(f, "one of {}", shown.join(", "))
            }
            Ty::List(t) => write!(f, "a list of {}", plural(t)),
            Ty::Kind(k) => write!(f, "{}", k.describe),
            Ty::OneOf(describe, _) => write!(f, "{describe}"),
            Ty::Opt(t) => write!(f, "{t} or `none`"),
        }
    }
}

fn plural(t: &Ty) -> String {
    match t {
        Ty::Enum(items) => {
            let shown: Vec<String> = items.iter().map(|i| format!("`{i}`")).collect();
            format!("names from {}", shown.join(", "))
        }
        other => {
            let s = other.to_string();
            s.trim_start_matches("an ").trim_start_matches("a ").to_string() + "s"
        }
    }
}
