//! Sweeps in the elaborator: a `sweep` (or `--sweep`) elaborates its body once per
//! combination of values with those values in force; a call, list, field or chain given a
//! sweep is elaborated once per member, members of several sweeps joined on the axes they
//! share. Stages made inside are named after their member (`fit[lam=0.1,seed=1]`), draw
//! from the stream they would have without the sweep under the member's seed, and a stage
//! that comes out the same for several members is made once.

use super::{Elab, Scope};
use crate::check::SweepOverride;
use crate::diag::{Code, Diag, Span, did_you_mean};
use crate::lang::{Args, Builtin, CVal, Family, Member, MemberOf, Name, Params, SEED_AXIS, Swept, VKind};
use crate::syntax::ast::{Axis, Expr};
use std::sync::Arc;

/// One axis of a sweep being expanded: per value, what the members see of it.
struct AxisValues<'a> {
    name: String,
    /// The variable's name, for an in-language axis (a borrow of the source, as locals are).
    variable: Option<&'a str>,
    values: Vec<AxisValue<'a>>,
}

struct AxisValue<'a> {
    shown: Swept,
    /// The variable the body reads (an in-language axis).
    local: Option<CVal>,
    /// The argument a `--sweep` member overrides: its path and value.
    applies: Option<(String, &'a Expr)>,
}

impl<'a> Elab<'a> {
    /// `sweep a in [...], b in [...]: body`.
    pub(super) fn sweep(
        &mut self,
        axes: &'a [Axis],
        body: &'a Expr,
        scope: &Scope<'a>,
        path: Option<String>,
    ) -> Option<CVal> {
        let expanded = self.axes_of_sweep(axes, scope)?;
        self.expand_sweep(expanded, body, scope, path, body.span)
    }

    /// A `let` swept from the command line: its own sweep's axes (if it is one), then the
    /// `--sweep` axes.
    pub(super) fn sweep_let(
        &mut self,
        value: &'a Expr,
        swept: &[&'a SweepOverride],
        scope: &Scope<'a>,
        path: String,
    ) -> Option<CVal> {
        use crate::syntax::ast::ExprKind;
        let (mut axes, body) = match &value.kind {
            ExprKind::Sweep { axes, body } => (self.axes_of_sweep(axes, scope)?, body.as_ref()),
            _ => (Vec::new(), value),
        };
        for s in swept {
            if axes.iter().any(|a| a.name == s.axis) {
                self.diags.push(
                    Diag::new(Code::E2015, format!("`{}` already sweeps `{}`", s.let_name, s.axis))
                        .at(s.span, "swept twice")
                        .hint("sweep it in the pipeline or on the command line, not both"),
                );
                return None;
            }
            axes.push(self.axis_of_flag(s)?);
        }
        self.expand_sweep(axes, body, scope, Some(path), value.span)
    }

    fn axes_of_sweep(&mut self, axes: &'a [Axis], scope: &Scope<'a>) -> Option<Vec<AxisValues<'a>>> {
        let mut out: Vec<AxisValues<'a>> = Vec::new();
        for a in axes {
            let name = a.name.name.clone();
            if out.iter().any(|o| o.name == name) || self.ctx.get(&name).is_some() {
                self.diags.push(
                    Diag::new(Code::E2015, format!("`{name}` is swept twice"))
                        .at(a.name.span, "swept again here")
                        .hint("each axis of a sweep needs its own name"),
                );
                return None;
            }
            let list = self.eval(&a.values, scope, None)?;
            let VKind::List(items) = &list.kind else {
                let what = self.describe(&list);
                self.diags.push(
                    Diag::new(Code::E2015, format!("`{name}` sweeps {what}, not a list of values"))
                        .at(a.values.span, "expected a list")
                        .hint(format!("write the values in brackets: `{name} in [0.01, 0.1]`")),
                );
                return None;
            };
            let mut values = Vec::new();
            for (k, item) in items.iter().enumerate() {
                let shown = self.swept_value(&name, item, k, items)?;
                values.push(AxisValue { shown, local: Some(item.clone()), applies: None });
            }
            let mut axis = self.distinct(name, values, a.values.span)?;
            axis.variable = Some(a.name.name.as_str());
            out.push(axis);
        }
        Some(out)
    }

    fn axis_of_flag(&mut self, s: &'a SweepOverride) -> Option<AxisValues<'a>> {
        let mut values = Vec::new();
        for (k, (e, text)) in s.values.iter().zip(&s.shown).enumerate() {
            let shown = Swept { shown: text.clone(), number: text.parse::<f64>().ok() };
            let applies = (s.axis != SEED_AXIS).then(|| (s.path.clone(), e));
            if s.axis == SEED_AXIS {
                // A seed is read here, not by an argument.
                let v = self.eval(e, &Scope::default(), None)?;
                self.swept_value(SEED_AXIS, &v, k, std::slice::from_ref(&v))?;
            }
            values.push(AxisValue { shown, local: None, applies });
        }
        self.distinct(s.axis.clone(), values, s.span)
    }

    /// How a swept value is shown in names and tables; a sweep runs over constants only.
    fn swept_value(&mut self, axis: &str, v: &CVal, k: usize, all: &[CVal]) -> Option<Swept> {
        let shown = match &v.kind {
            VKind::Int(i) => Swept { shown: i.to_string(), number: Some(*i as f64) },
            VKind::Float(f) => Swept { shown: crate::lang::show_number(*f), number: Some(*f) },
            VKind::Str(s) | VKind::Sym(s) => Swept { shown: s.clone(), number: None },
            VKind::Bool(b) => Swept { shown: b.to_string(), number: None },
            VKind::None => Swept { shown: "none".into(), number: None },
            VKind::List(items) if items.iter().all(|i| i.number().is_some()) => {
                let parts: Vec<String> = items.iter().filter_map(CVal::number).map(crate::lang::show_number).collect();
                Swept { shown: parts.join("x"), number: None }
            }
            // Configs by their built-in, or by position where two share one.
            VKind::Config(c) => {
                let same = all.iter().filter(|o| matches!(&o.kind, VKind::Config(x) if x.builtin == c.builtin)).count();
                let shown = if same > 1 { format!("{}{k}", c.builtin) } else { c.builtin.to_string() };
                Swept { shown, number: None }
            }
            VKind::Pipe(_) | VKind::List(_) => Swept { shown: format!("{k}"), number: None },
            // Results of other stages (datasets, say) by the stage's name.
            VKind::Stage(r) => {
                let name = self.nodes.get(r.node).map(|n| n.name.clone()).unwrap_or_default();
                let shown = match &r.field {
                    Some(f) => format!("{name}.{f}"),
                    None => name,
                };
                Swept { shown, number: None }
            }
            VKind::Family(_) => {
                let what = self.describe(v);
                self.diags.push(
                    Diag::new(Code::E2015, format!("`{axis}` sweeps {what}"))
                        .at(v.span, "not a constant")
                        .hint("a sweep runs over values: numbers, names, strings, configs or stage results")
                        .hint("to combine two sweeps, use both in one call: their members are joined"),
                );
                return None;
            }
        };
        if axis == SEED_AXIS && !matches!(v.kind, VKind::Int(i) if i >= 0) {
            self.diags.push(
                Diag::new(Code::E2015, "a swept `seed` takes whole numbers from 0")
                    .at(v.span, "not a seed")
                    .hint("write `seed in [1, 2, 3]`"),
            );
            return None;
        }
        Some(shown)
    }

    /// The axis, if its values are distinct and there is at least one.
    fn distinct(&mut self, name: String, values: Vec<AxisValue<'a>>, span: Span) -> Option<AxisValues<'a>> {
        if values.is_empty() {
            self.diags.push(
                Diag::new(Code::E2015, format!("`{name}` sweeps no values"))
                    .at(span, "empty")
                    .hint("give at least one value"),
            );
            return None;
        }
        for (i, v) in values.iter().enumerate() {
            if values[..i].iter().any(|o| o.shown.shown == v.shown.shown) {
                self.diags.push(
                    Diag::new(Code::E2015, format!("`{name}` sweeps `{}` twice", v.shown.shown))
                        .at(span, "a value given twice")
                        .hint("each value makes one member; give each once"),
                );
                return None;
            }
        }
        Some(AxisValues { name, variable: None, values })
    }

    /// The body once per combination of the axes' values, the first axis varying slowest.
    fn expand_sweep(
        &mut self,
        axes: Vec<AxisValues<'a>>,
        body: &'a Expr,
        scope: &Scope<'a>,
        path: Option<String>,
        span: Span,
    ) -> Option<CVal> {
        let mut members = Vec::new();
        let mut at = vec![0usize; axes.len()];
        loop {
            let mark = self.ctx.0.len();
            let overrides = self.member_overrides.len();
            let mut locals = scope.locals.clone();
            for (a, &k) in axes.iter().zip(&at) {
                let v = &a.values[k];
                self.ctx.0.push((a.name.clone(), v.shown.clone()));
                if let (Some(var), Some(local)) = (a.variable, &v.local) {
                    locals.insert(var, local.clone());
                }
                if let Some((p, e)) = &v.applies {
                    self.member_overrides.push((p.clone(), e));
                }
            }
            let inner = Scope { locals, let_name: scope.let_name };
            let value = self.eval(body, &inner, path.clone());
            if let Some(v) = value.clone() {
                self.collect(v, &mut members);
            }
            self.ctx.0.truncate(mark);
            self.member_overrides.truncate(overrides);
            // One member's mistakes are every member's: stop at the first.
            value?;
            // The next combination: the last axis fastest.
            let mut i = axes.len();
            loop {
                if i == 0 {
                    return Some(self.family(members, span));
                }
                i -= 1;
                at[i] += 1;
                if at[i] < axes[i].values.len() {
                    break;
                }
                at[i] = 0;
            }
        }
    }

    fn family(&self, members: Vec<Member>, span: Span) -> CVal {
        CVal::new(VKind::Family(Arc::new(Family { axes: Family::axes_of(&members), members })), span)
    }

    /// A value made under the swept values in force: one member, or the members of the
    /// family it is.
    fn collect(&self, v: CVal, out: &mut Vec<Member>) {
        match &v.kind {
            VKind::Family(f) => out.extend(f.members.iter().cloned()),
            _ => out.push(Member { params: self.ctx.clone(), value: v }),
        }
    }

    /// A built-in called with a sweep among its arguments: called once per member, each
    /// member's arguments checked as any call's.
    pub(super) fn map_call(
        &mut self,
        b: &'a Builtin,
        values: Vec<(Name, CVal)>,
        span: Span,
        scope: &Scope<'a>,
        path: Option<String>,
    ) -> Option<CVal> {
        let swept: Vec<bool> = values.iter().map(|(_, v)| matches!(v.kind, VKind::Family(_))).collect();
        let (names, vals): (Vec<Name>, Vec<CVal>) = values.into_iter().unzip();
        self.map_families(vals, span, &mut |this, vals| {
            let mut ok = true;
            for ((p, v), &s) in b.params.iter().zip(&vals).zip(&swept) {
                if s && !this.check_arg(b, p, v) {
                    ok = false;
                }
            }
            if !ok {
                return None;
            }
            let args = Args(names.iter().cloned().zip(vals).collect());
            this.make(b, args, span, scope, path.clone())
        })
    }

    /// `make` of the values, once per combination of members where some are sweeps: the
    /// members that agree with each other and with the swept values in force.
    pub(super) fn map_families(
        &mut self,
        mut vals: Vec<CVal>,
        span: Span,
        make: &mut dyn FnMut(&mut Self, Vec<CVal>) -> Option<CVal>,
    ) -> Option<CVal> {
        let families: Vec<(usize, Arc<Family>)> = vals
            .iter()
            .enumerate()
            .filter_map(|(i, v)| match &v.kind {
                VKind::Family(f) => Some((i, f.clone())),
                _ => None,
            })
            .collect();
        if families.is_empty() {
            return make(self, vals);
        }
        let mut members = Vec::new();
        self.expand(&families, &mut vals, &mut members, make)?;
        if members.is_empty() {
            let shown: Vec<String> = families
                .iter()
                .map(|(_, f)| {
                    let brackets: Vec<String> = f.members.iter().map(|m| m.params.bracket()).collect();
                    brackets.join(" ")
                })
                .collect();
            self.diags.push(
                Diag::new(Code::E2015, "these sweeps have no member in common")
                    .at(span, "no combination of members agrees on the shared axes")
                    .hint(format!("members: {}", shown.join("; ")))
                    .hint("sweeps are joined on the axes they share: give them the same values"),
            );
            return None;
        }
        Some(self.family(members, span))
    }

    fn expand(
        &mut self,
        families: &[(usize, Arc<Family>)],
        vals: &mut Vec<CVal>,
        out: &mut Vec<Member>,
        make: &mut dyn FnMut(&mut Self, Vec<CVal>) -> Option<CVal>,
    ) -> Option<()> {
        let Some(((slot, family), rest)) = families.split_first() else {
            let v = make(self, vals.clone())?;
            self.collect(v, out);
            return Some(());
        };
        for m in &family.members {
            if !self.ctx.agrees_with(&m.params) {
                continue;
            }
            let mark = self.ctx.0.len();
            for (a, v) in &m.params.0 {
                if self.ctx.get(a).is_none() {
                    self.ctx.0.push((a.clone(), v.clone()));
                }
            }
            vals[*slot] = m.value.clone();
            let done = self.expand(rest, vals, out, make);
            self.ctx.0.truncate(mark);
            done?;
        }
        Some(())
    }

    /// What a stage made for a member computes: a second member with the same identity
    /// shares the first one's node.
    pub(super) fn identity(&self, builtin: &str, args: &Args, m: &MemberOf) -> String {
        let mut text = format!("{builtin}\n{}\n{:?}\n", m.stream, m.seed);
        for (name, v) in &args.0 {
            text.push_str(name);
            text.push('=');
            v.canonical(&|node| format!("#{node}"), &mut text);
            text.push('\n');
        }
        text
    }

    /// Node `node`, made for one member, is also another's: it keeps only the swept values
    /// its members agree on, and its name says so.
    pub(super) fn share(&mut self, node: usize, let_name: Option<&str>) {
        let ctx = self.ctx.clone();
        let Some(m) = self.nodes[node].member.as_mut() else { return };
        m.params.0.retain(|(a, v)| ctx.get(a) == Some(v));
        let name = member_name(&m.stream, let_name, &m.params);
        if !self.nodes.iter().any(|n| n.name == name) {
            self.nodes[node].name = name;
        }
    }

    /// `--sweep` paths that no member applied.
    pub fn unapplied_sweeps(&mut self) {
        let lets: Vec<&str> =
            self.globals.iter().filter(|(_, g)| matches!(g, super::Global::Let { .. })).map(|(k, _)| *k).collect();
        let sweeps: &'a [SweepOverride] = self.sweeps;
        for s in sweeps {
            if !lets.contains(&s.let_name.as_str()) {
                self.diags.push(
                    Diag::new(Code::E2009, format!("no `let` named `{}` to sweep", s.let_name))
                        .at(s.span, "unknown name")
                        .maybe_hint(
                            did_you_mean(&s.let_name, lets.iter().copied()).map(|n| format!("did you mean `{n}`?")),
                        ),
                );
            } else if s.axis != SEED_AXIS && !self.swept_paths.contains(&s.path) {
                let suggestion = did_you_mean(&s.path, self.valid_paths.iter().map(String::as_str));
                self.diags.push(
                    Diag::new(Code::E2009, format!("nothing to sweep at `{}`", s.path))
                        .at(s.span, "unknown path")
                        .maybe_hint(suggestion.map(|p| format!("did you mean `{p}`?")))
                        .hint("a path is a `let` name followed by argument names, e.g. `fit.optimizer.lr`"),
                );
            }
        }
    }
}

/// `fit[lam=0.1].toy2d1` for the stage `fit.toy2d1` of member `[lam=0.1]` of `fit`.
pub(super) fn member_name(stream: &str, let_name: Option<&str>, params: &Params) -> String {
    let bracket = params.bracket_or_empty();
    match let_name {
        Some(l) if stream == l || stream.starts_with(&format!("{l}.")) => {
            format!("{l}{bracket}{}", &stream[l.len()..])
        }
        _ => format!("{stream}{bracket}"),
    }
}
