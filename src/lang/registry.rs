//! The registry: every built-in with its signature and documentation, composed from one
//! registration function per family, and the kinds their signatures name. It is the single
//! source of truth for the checker, `flowline stages`/`doc` and the interpreter, which are
//! given it; nothing here lists the families.

use super::kind::{Kind, Role};
use super::signature::{Body, Builtin};
use super::stage::Stage;
use super::types::Ty;
use super::value::{Args, CVal, Config, VKind};
use std::any::TypeId;
use std::collections::{BTreeSet, HashMap};

/// Names are looked up for every call and config the checker meets: a fast, fixed hasher.
type ByName = HashMap<&'static str, usize, foldhash::fast::FixedState>;

pub struct Registry {
    all: Vec<Builtin>,
    by_name: ByName,
    symbols: BTreeSet<&'static str>,
    /// Every kind a signature, a result or a supertype names, in the order first seen.
    kinds: Vec<&'static Kind>,
}

impl Registry {
    /// The built-ins of every family, in the order given. A name given twice is a bug in the
    /// families (`duplicates` says which); the first one wins.
    pub fn new(families: impl IntoIterator<Item = Vec<Builtin>>) -> Self {
        let all: Vec<Builtin> = families.into_iter().flatten().collect();
        let mut by_name = ByName::default();
        for (i, b) in all.iter().enumerate() {
            by_name.entry(b.name).or_insert(i);
        }
        let mut symbols = BTreeSet::new();
        let mut named = Vec::new();
        for b in &all {
            for p in &b.params {
                collect_symbols(&p.ty, &mut symbols);
                p.ty.kinds(&mut named);
            }
            match &b.body {
                Body::Config { kind, .. } => named.push(kind),
                Body::Stage(s) => {
                    named.push(s.output());
                    for (_, t) in s.parts(&Args::default()) {
                        t.kinds(&mut named);
                    }
                }
            }
        }
        // In order of first mention, supertypes after the kinds that name them.
        let mut kinds: Vec<&'static Kind> = Vec::new();
        let mut next = 0;
        while let Some(&k) = named.get(next) {
            next += 1;
            if !kinds.iter().any(|x| x.name == k.name) {
                kinds.push(k);
                named.extend(k.supers.iter().copied());
            }
        }
        Registry { all, by_name, symbols, kinds }
    }

    pub fn all(&self) -> &[Builtin] {
        &self.all
    }

    pub fn find(&self, name: &str) -> Option<&Builtin> {
        self.by_name.get(name).map(|&i| &self.all[i])
    }

    /// The behaviour of the stage built-in `name`.
    pub fn stage(&self, name: &str) -> Option<&dyn Stage> {
        self.find(name)?.as_stage()
    }

    /// Bare names that stand for a choice of some argument (`nll`, `accuracy`).
    pub fn is_symbol(&self, name: &str) -> bool {
        self.symbols.contains(name)
    }

    pub fn symbols(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.symbols.iter().copied()
    }

    /// Names defined by more than one family.
    pub fn duplicates(&self) -> Vec<&'static str> {
        let mut seen = BTreeSet::new();
        self.all.iter().map(|b| b.name).filter(|n| !seen.insert(*n)).collect()
    }

    pub fn kinds(&self) -> &[&'static Kind] {
        &self.kinds
    }

    pub fn kind(&self, name: &str) -> Option<&'static Kind> {
        self.kinds.iter().copied().find(|k| k.name == name)
    }

    /// The kind of a config value.
    pub fn kind_of(&self, c: &Config) -> Option<&'static Kind> {
        self.find(&c.builtin)?.config_kind()
    }

    /// The headings of `flowline stages`, stages first, then each config kind's.
    pub fn headings(&self) -> Vec<&'static str> {
        let mut out = vec!["stages"];
        for b in &self.all {
            let h = b.heading();
            if !out.contains(&h) {
                out.push(h);
            }
        }
        out
    }

    /// A config lowered into the numerical library's value for its kind. An error names a
    /// bug (the checker rules out what users can get wrong): an unknown built-in, a type other
    /// than the kind's, or an argument the lowering cannot read.
    pub fn lower<T: 'static>(&self, c: &Config) -> Result<T, String> {
        let b = self.find(&c.builtin).ok_or_else(|| format!("`{}` is not a built-in", c.builtin))?;
        let Body::Config { kind, lower } = &b.body else {
            return Err(format!("`{}` is a stage, not a config", b.name));
        };
        if let Role::Config { lowers_to, lowers_to_name, .. } = kind.role
            && lowers_to() != TypeId::of::<T>()
        {
            return Err(format!(
                "`{}` is {} (lowered into {lowers_to_name}), not {}",
                b.name,
                kind.describe,
                std::any::type_name::<T>()
            ));
        }
        let value = lower(self, &c.args).map_err(|e| format!("`{}`: {e}", b.name))?;
        value.downcast::<T>().map(|v| *v).map_err(|_| format!("`{}` lowered into another type than its kind's", b.name))
    }

    /// Whether a config can be lowered, whatever its kind: the checker asks this of every
    /// config argument, so that what only the lowering can see (an `ensemble` of no
    /// attacks) is reported before the run.
    pub fn lowers(&self, c: &Config) -> Result<(), String> {
        let b = self.find(&c.builtin).ok_or_else(|| format!("`{}` is not a built-in", c.builtin))?;
        match &b.body {
            Body::Config { lower, .. } => lower(self, &c.args).map(|_| ()).map_err(|e| format!("`{}`: {e}", b.name)),
            _ => Ok(()),
        }
    }

    /// Each config of a `|>` chain (or the one config) lowered.
    pub fn lower_each<T: 'static>(&self, v: &CVal) -> Result<Vec<T>, String> {
        let layers = v.layers();
        if layers.is_empty() {
            return Err("not a config or a chain of them".into());
        }
        layers
            .into_iter()
            .map(|l| match &l.kind {
                VKind::Config(c) => self.lower(c),
                _ => Err("not a config".into()),
            })
            .collect()
    }
}

/// The choices of enumerated parameters, bare names anywhere. A union's choices (`data` of
/// `bounds:`) are names only where that parameter is given: a pipeline's own `let data`
/// must stay an ordinary name.
fn collect_symbols(t: &Ty, out: &mut BTreeSet<&'static str>) {
    match t {
        Ty::Enum(items) => out.extend(items.iter().copied()),
        Ty::List(inner) | Ty::Opt(inner) => collect_symbols(inner, out),
        _ => {}
    }
}
