//! A stage's `resources:` argument (and the override `<let>.resources`), and the pipeline's
//! default `resources` from a profile or `--set`: checked here, attached to the stages'
//! nodes, left out of their arguments and so of their cache keys.

use super::{Elab, Scope};
use crate::diag::{Code, Diag};
use crate::lang::{CVal, Resources, VKind, valid_mem, valid_time};
use crate::syntax::ast::{Arg, Expr};

/// The argument every stage takes besides its own.
pub(super) const RESOURCES: &str = "resources";

impl<'a> Elab<'a> {
    /// The `resources:` of a stage call, from its override path or its arguments.
    pub(super) fn stage_resources(
        &mut self,
        args: &'a [Arg],
        scope: &Scope<'a>,
        path: Option<&str>,
    ) -> Option<Option<Resources>> {
        let over = path.and_then(|p| self.take_override(&format!("{p}.{RESOURCES}")));
        let value = match over {
            Some(e) => self.eval(e, &Scope::default(), None),
            None => match args.iter().find(|a| a.name.as_ref().is_some_and(|n| n.name == RESOURCES)) {
                Some(a) => self.eval(&a.value, scope, None),
                None => return Some(None),
            },
        }?;
        self.resources_of(&value).map(Some)
    }

    /// The pipeline's default resources: `resources = resources(...)` in a profile or `--set`.
    pub fn default_resources(&mut self, e: &'a Expr) -> Option<Resources> {
        let v = self.eval(e, &Scope::default(), None)?;
        self.resources_of(&v)
    }

    fn resources_of(&mut self, v: &CVal) -> Option<Resources> {
        let VKind::Config(c) = &v.kind else {
            return self.not_resources(v);
        };
        if c.builtin != RESOURCES {
            return self.not_resources(v);
        }
        let r = Resources::from_args(&c.args);
        let bad = |what: &str, noun: &str, s: &str| {
            let at = c.args.get(what).map_or(v.span, |a| a.span);
            Diag::new(Code::E2006, format!("`{what}: \"{s}\"` is not a {noun} Slurm reads")).at(at, "not understood")
        };
        if let Some(m) = r.mem.as_deref().filter(|m| !valid_mem(m)) {
            self.diags.push(bad("mem", "memory size", m).hint("write a whole number with K, M, G or T: `4G`, `500M`"));
            return None;
        }
        if let Some(t) = r.time.as_deref().filter(|t| !valid_time(t)) {
            let hint = "write minutes, `HH:MM:SS` or `D-HH:MM:SS`: `30`, `2:00:00`, `1-00:00:00`";
            self.diags.push(bad("time", "time limit", t).hint(hint));
            return None;
        }
        Some(r)
    }

    fn not_resources(&mut self, v: &CVal) -> Option<Resources> {
        let what = self.describe(v);
        self.diags.push(
            Diag::new(Code::E2005, format!("`resources` expects `resources(...)`, found {what}"))
                .at(v.span, "expected resources")
                .hint("write `resources: resources(cpus: 4, mem: \"8G\", time: \"2:00:00\")`"),
        );
        None
    }

    /// Gives the stages `made` is (a stage, or a sweep of them) these resources.
    pub(super) fn attach_resources(&mut self, made: &CVal, r: &Resources) {
        match &made.kind {
            VKind::Stage(s) => self.nodes[s.node].resources = Some(r.clone()),
            VKind::Family(f) => {
                for m in &f.members {
                    self.attach_resources(&m.value, r);
                }
            }
            _ => {}
        }
    }
}
