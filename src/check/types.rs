//! The static types of the language. Configs (layers, optimizers) are values known before
//! anything runs; stage results are known only by their type and their static metadata.

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Ty {
    Int,
    Float,
    Str,
    Bool,
    /// A string or bare name from a fixed set (`"moons"`, `cross_entropy`).
    Enum(Vec<&'static str>),
    List(Box<Ty>),
    /// One layer or a `|>` chain of layers.
    Layer,
    Optimizer,
    Schedule,
    Solver,
    /// A built-in analytic vector field.
    Field,
    /// An adversarial attack such as `logbarrier(norm: l2)`.
    Attack,
    /// The result of an `attack` stage.
    Attacked,
    /// Input bounds: `[lo, hi]`, `none` (unbounded) or `data` (what the dataset declares).
    Bounds,
    /// Layers to train, or a trained model to reuse.
    Model,
    Dataset,
    /// Two datasets, read as `.first` and `.second`.
    Splits,
    Trained,
    Metrics,
    Figure,
    Table,
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
    /// The bare names this type accepts as choices (none for most types).
    pub fn choices(&self) -> &[&'static str] {
        match self {
            Ty::Enum(items) => items,
            Ty::Bounds => &["data"],
            Ty::Opt(inner) => inner.choices(),
            _ => &[],
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
            Ty::Enum(items) => {
                let shown: Vec<String> = items.iter().map(|i| format!("`{i}`")).collect();
                write!(f, "one of {}", shown.join(", "))
            }
            Ty::List(t) => write!(f, "a list of {}", plural(t)),
            Ty::Layer => write!(f, "a layer"),
            Ty::Optimizer => write!(f, "an optimizer"),
            Ty::Schedule => write!(f, "a learning-rate schedule"),
            Ty::Solver => write!(f, "an ODE solver such as `dopri5(...)`"),
            Ty::Field => write!(f, "a vector field such as `van_der_pol(mu: 1.0)`"),
            Ty::Attack => write!(f, "an attack such as `logbarrier(norm: l2)`"),
            Ty::Attacked => write!(f, "an `attack` result"),
            Ty::Bounds => write!(f, "input bounds `[lo, hi]`, `none` (unbounded) or `data` (the dataset's own)"),
            Ty::Model => write!(f, "a model (layers or a trained model)"),
            Ty::Dataset => write!(f, "a dataset"),
            Ty::Splits => write!(f, "a split dataset (use `.first` or `.second`)"),
            Ty::Trained => write!(f, "a trained model"),
            Ty::Metrics => write!(f, "metrics"),
            Ty::Figure => write!(f, "a figure"),
            Ty::Table => write!(f, "a table"),
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
