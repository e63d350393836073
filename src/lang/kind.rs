//! Kinds: the named types that families register, an open set. A config kind (`optimizer`,
//! `solver`) is a value folded before anything runs; a result kind (`dataset`, `trained`)
//! is what a stage produces, with the loader that reads it back from a stage folder.

use super::artifact::Loader;
use std::fmt;

pub struct Kind {
    pub name: &'static str,
    /// How messages and docs name one value of the kind: "a dataset".
    pub describe: &'static str,
    /// Kinds whose parameters also accept this one: a trained model is a model.
    pub supers: &'static [&'static Kind],
    pub role: Role,
}

pub enum Role {
    /// Built by calling a built-in of the kind, folded to a constant by the checker.
    Config {
        /// "the {noun} `adam`".
        noun: &'static str,
        /// The heading of the kind's built-ins in `flowline stages`.
        heading: &'static str,
        /// The numerical library's type every built-in of the kind lowers into
        /// (`TypeId::of::<OptimSpec>`), checked when a config is lowered.
        lowers_to: fn() -> std::any::TypeId,
        lowers_to_name: &'static str,
        /// Values compose with `|>` into a chain of this kind (layers).
        chains: bool,
    },
    /// Produced by a stage; `load` reads it back from the stage folder when it is cached.
    Result {
        load: Option<Loader>,
        /// Numbers every result of the kind reports (a dataset's size), readable as fields.
        metrics: &'static [&'static str],
    },
    /// A supertype only, such as `model` (layers or a trained model).
    Abstract,
}

impl Kind {
    /// The kind is `other` or one of its subtypes.
    pub fn is_a(&self, other: &Kind) -> bool {
        self.name == other.name || self.supers.iter().any(|s| s.is_a(other))
    }

    /// Values of the kind compose with `|>`.
    pub fn chains(&self) -> bool {
        matches!(self.role, Role::Config { chains: true, .. })
    }

    /// Numbers every result of this kind reports.
    pub fn metrics(&self) -> &'static [&'static str] {
        match self.role {
            Role::Result { metrics, .. } => metrics,
            _ => &[],
        }
    }
}

impl PartialEq for Kind {
    fn eq(&self, other: &Kind) -> bool {
        self.name == other.name
    }
}

impl fmt::Debug for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Kind({})", self.name)
    }
}

/// The kinds every family may produce: numbers only, a figure, a table.
pub static METRICS: Kind = Kind {
    name: "metrics",
    describe: "metrics",
    supers: &[],
    role: Role::Result { load: Some(super::artifact::load_nothing), metrics: &[] },
};

pub static FIGURE: Kind = Kind {
    name: "figure",
    describe: "a figure",
    supers: &[],
    role: Role::Result { load: Some(super::artifact::load_nothing), metrics: &[] },
};

pub static TABLE: Kind = Kind {
    name: "table",
    describe: "a table",
    supers: &[],
    role: Role::Result { load: Some(super::artifact::load_nothing), metrics: &[] },
};

#[cfg(test)]
mod tests {
    use super::*;

    static ANIMAL: Kind = Kind { name: "animal", describe: "an animal", supers: &[], role: Role::Abstract };
    static DOG: Kind =
        Kind { name: "dog", describe: "a dog", supers: &[&ANIMAL], role: Role::Result { load: None, metrics: &[] } };
    static PUPPY: Kind =
        Kind { name: "puppy", describe: "a puppy", supers: &[&DOG], role: Role::Result { load: None, metrics: &[] } };

    #[test]
    fn subtyping_is_transitive_and_one_way() {
        assert!(PUPPY.is_a(&ANIMAL) && PUPPY.is_a(&DOG) && PUPPY.is_a(&PUPPY));
        assert!(!ANIMAL.is_a(&DOG) && !DOG.is_a(&PUPPY));
    }
}
