//! Elaboration: evaluates every `let` to a value, inlining `def`s, folding arithmetic,
//! binding and type-checking arguments against the registry, applying overrides, and
//! turning every stage call into a node of the stage graph.

mod resources;
mod sweep;

use resources::RESOURCES;
use sweep::member_name;

use super::typing::{accepts, check_choice};
use super::{Override, SweepOverride};
use crate::diag::{Code, Diag, Span, did_you_mean};
use crate::lang::{
    Args, Builtin, CVal, Config, Dflt, MemberOf, Meta, Node, Params, Registry, Role, StageRef, StaticCall, Ty, VKind,
    field_type, fields,
};
use crate::syntax::ast::{Arg, BinOp, Expr, ExprKind, Ident, Param};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

pub enum Global<'a> {
    Let { name: &'a Ident, value: &'a Expr },
    Def { name: &'a Ident, params: &'a [Param], body: &'a Expr },
}

impl Global<'_> {
    pub fn span(&self) -> Span {
        match self {
            Global::Let { name, .. } | Global::Def { name, .. } => name.span,
        }
    }
}

enum LetState {
    InProgress,
    Done(CVal),
    Failed,
}

#[derive(Clone, Default)]
struct Scope<'a> {
    locals: HashMap<&'a str, CVal>,
    /// The `let` being elaborated, for naming anonymous stages.
    let_name: Option<&'a str>,
}

pub struct Elab<'a> {
    reg: &'a Registry,
    pub globals: HashMap<&'a str, Global<'a>>,
    lets: HashMap<&'a str, LetState>,
    let_stack: Vec<&'a str>,
    def_stack: Vec<&'a str>,
    pub nodes: Vec<Node>,
    pub diags: Vec<Diag>,
    pub overrides: &'a [Override],
    consumed: Vec<bool>,
    /// Every overridable path seen, for suggestions; collected only when there are overrides.
    valid_paths: Vec<String>,
    anon: HashMap<String, usize>,
    /// `--sweep` axes, each on one `let`.
    pub sweeps: &'a [SweepOverride],
    /// The swept values in force while a member of a sweep is elaborated, outermost first.
    ctx: Params,
    /// What a `--sweep` member overrides: its path and value.
    member_overrides: Vec<(String, &'a Expr)>,
    /// The `--sweep` paths some member applied.
    swept_paths: Vec<String>,
    /// Stages made for members of sweeps, by what they compute: a member that makes a stage
    /// another member made shares it.
    made: HashMap<String, usize>,
}

impl<'a> Elab<'a> {
    pub fn new(
        reg: &'a Registry,
        globals: HashMap<&'a str, Global<'a>>,
        overrides: &'a [Override],
        sweeps: &'a [SweepOverride],
    ) -> Self {
        let consumed = vec![false; overrides.len()];
        Elab {
            reg,
            globals,
            lets: HashMap::new(),
            let_stack: Vec::new(),
            def_stack: Vec::new(),
            nodes: Vec::new(),
            diags: Vec::new(),
            overrides,
            consumed,
            valid_paths: Vec::new(),
            anon: HashMap::new(),
            sweeps,
            ctx: Params::default(),
            member_overrides: Vec::new(),
            swept_paths: Vec::new(),
            made: HashMap::new(),
        }
    }

    /// The value of a global `let`, elaborating it on first use.
    pub fn eval_let(&mut self, name: &'a str) -> Option<CVal> {
        match self.lets.get(name) {
            Some(LetState::Done(v)) => return Some(v.clone()),
            Some(LetState::Failed) => return None,
            Some(LetState::InProgress) => {
                let start = self.let_stack.iter().position(|n| *n == name).unwrap_or(0);
                let mut chain: Vec<&str> = self.let_stack[start..].to_vec();
                chain.push(name);
                let span = self.globals.get(name).map(Global::span).unwrap_or_default();
                self.diags.push(
                    Diag::new(Code::E3001, format!("`{name}` depends on itself"))
                        .at(span, "part of a cycle")
                        .hint(format!("the cycle: {}", chain.join(" -> ")))
                        .hint("a stage can only use results of stages that do not need it"),
                );
                self.lets.insert(name, LetState::Failed);
                return None;
            }
            None => {}
        }
        let Some(Global::Let { value, .. }) = self.globals.get(name) else {
            return None;
        };
        let value: &'a Expr = value;
        self.lets.insert(name, LetState::InProgress);
        self.let_stack.push(name);
        let scope = Scope { locals: HashMap::new(), let_name: Some(name) };
        let path = name.to_string();
        let swept: Vec<&'a SweepOverride> = self.sweeps.iter().filter(|s| s.let_name == name).collect();
        let result = match self.take_override(&path) {
            Some(e) => self.eval(e, &Scope::default(), None),
            None if !swept.is_empty() => self.sweep_let(value, &swept, &scope, path),
            None => self.eval(value, &scope, Some(path)),
        };
        self.let_stack.pop();
        // A cycle found below may already have marked this let as failed.
        let failed = matches!(self.lets.get(name), Some(LetState::Failed));
        match result {
            Some(v) if !failed => {
                self.lets.insert(name, LetState::Done(v.clone()));
                Some(v)
            }
            _ => {
                self.lets.insert(name, LetState::Failed);
                None
            }
        }
    }

    /// Check a `def` by elaborating it with its defaults; the stages it would create are
    /// dropped again.
    pub fn probe_def(&mut self, name: &'a str) {
        let mark = self.nodes.len();
        let Some(Global::Def { name: ident, .. }) = self.globals.get(name) else {
            return;
        };
        let span = ident.span;
        let _ = self.call_def(name, &[], span, &Scope::default(), None);
        self.nodes.truncate(mark);
    }

    /// The value `--set`, a profile or a `--sweep` member gives the argument at `path`.
    fn take_override(&mut self, path: &str) -> Option<&'a Expr> {
        if self.overrides.is_empty() && self.sweeps.is_empty() {
            return None;
        }
        self.valid_paths.push(path.to_string());
        if let Some((p, e)) = self.member_overrides.iter().find(|(p, _)| p == path) {
            self.swept_paths.push(p.clone());
            return Some(*e);
        }
        let overrides: &'a [Override] = self.overrides;
        let i = overrides.iter().position(|o| o.path == path)?;
        self.consumed[i] = true;
        Some(&overrides[i].value)
    }

    /// Diagnostics for overrides that matched no argument.
    pub fn unconsumed_overrides(&mut self) {
        for (i, o) in self.overrides.iter().enumerate() {
            if self.consumed[i] {
                continue;
            }
            let suggestion = did_you_mean(&o.path, self.valid_paths.iter().map(String::as_str));
            let mut d = Diag::new(Code::E2009, format!("nothing to override at `{}`", o.path))
                .at(o.span, "unknown path")
                .maybe_hint(suggestion.map(|s| format!("did you mean `{s}`?")));
            if suggestion_is_none(&d) {
                d = d.hint("a path is a `let` name followed by argument names, e.g. `fit.iters`");
            }
            self.diags.push(d);
        }
    }

    /// An argument, read the way its parameter expects: a bare name that is one of the
    /// parameter's choices is that choice, even where a `let` or a built-in has the same
    /// name (`split: train`, `norm: l2`); an integer too large for 64 bits is a float where
    /// a number is expected and out of range where an integer is.
    fn eval_arg(
        &mut self,
        b: &Builtin,
        p: &crate::lang::Param,
        e: &'a Expr,
        scope: &Scope<'a>,
        path: Option<String>,
    ) -> Option<CVal> {
        self.eval_typed(b, p, &p.ty, e, scope, path)
    }

    fn eval_typed(
        &mut self,
        b: &Builtin,
        p: &crate::lang::Param,
        ty: &Ty,
        e: &'a Expr,
        scope: &Scope<'a>,
        path: Option<String>,
    ) -> Option<CVal> {
        let ty = match ty {
            Ty::Opt(inner) => inner.as_ref(),
            t => t,
        };
        match (&e.kind, ty) {
            (ExprKind::Ident(name), t) if t.has_choice(name) => Some(CVal::new(VKind::Sym(name.clone()), e.span)),
            (ExprKind::List(items), Ty::List(inner)) => {
                let mut out = Vec::new();
                let mut ok = true;
                for it in items {
                    match self.eval_typed(b, p, inner, it, scope, None) {
                        Some(x) => out.push(x),
                        None => ok = false,
                    }
                }
                if !ok {
                    return None;
                }
                self.map_families(out, e.span, &mut |_, items| Some(CVal::new(VKind::List(items), e.span)))
            }
            (ExprKind::BigInt(text), Ty::Float) => text.parse::<f64>().ok().map(|f| CVal::new(VKind::Float(f), e.span)),
            (ExprKind::BigInt(text), Ty::Int) => {
                let range = p.range.map(|r| format!(" ({})", r.describe())).unwrap_or_default();
                self.diags.push(
                    Diag::new(
                        Code::E2006,
                        format!("`{}` of `{}` takes an integer{range}; `{text}` is too large", p.name, b.name),
                    )
                    .at(e.span, "does not fit in 64 bits")
                    .hint(format!("`{}`: {}", p.name, p.doc)),
                );
                None
            }
            _ => self.eval(e, scope, path),
        }
    }

    fn eval(&mut self, e: &'a Expr, scope: &Scope<'a>, path: Option<String>) -> Option<CVal> {
        let span = e.span;
        let v = |k| Some(CVal::new(k, span));
        match &e.kind {
            ExprKind::Int(i) => v(VKind::Int(*i)),
            ExprKind::BigInt(text) => {
                self.diags.push(crate::syntax::out_of_range(text, span));
                None
            }
            ExprKind::Float(f) => v(VKind::Float(*f)),
            ExprKind::Str(s) => v(VKind::Str(s.clone())),
            ExprKind::Bool(b) => v(VKind::Bool(*b)),
            ExprKind::None => v(VKind::None),
            ExprKind::Invalid => None,
            ExprKind::Paren(inner) => self.eval(inner, scope, path),
            ExprKind::List(items) => {
                let mut out = Vec::new();
                let mut ok = true;
                for it in items {
                    match self.eval(it, scope, None) {
                        Some(x) => out.push(x),
                        None => ok = false,
                    }
                }
                if ok { self.map_families(out, span, &mut |_, items| v(VKind::List(items))) } else { None }
            }
            ExprKind::Sweep { axes, body } => self.sweep(axes, body, scope, path),
            ExprKind::Ident(name) => self.ident(name, span, scope),
            ExprKind::Call { callee, args } => self.call(callee, args, span, scope, path),
            ExprKind::Member { base, field } => {
                let b = self.eval(base, scope, None)?;
                self.map_families(vec![b], span, &mut |this, mut b| this.member(b.remove(0), field, span))
            }
            ExprKind::Neg(inner) => {
                let x = self.eval(inner, scope, None)?;
                match x.kind {
                    VKind::Int(i) => v(VKind::Int(i.wrapping_neg())),
                    VKind::Float(f) => v(VKind::Float(-f)),
                    _ => {
                        let what = self.describe(&x);
                        self.diags.push(
                            Diag::new(Code::E2011, format!("cannot negate {what}"))
                                .at(inner.span, "not a number")
                                .hint("`-` applies to numbers only"),
                        );
                        None
                    }
                }
            }
            ExprKind::Binary { op: BinOp::Pipe, lhs, rhs } => {
                let l = self.eval(lhs, scope, None);
                let r = self.eval(rhs, scope, None);
                self.map_families(vec![l?, r?], span, &mut |this, sides| this.compose(sides, span))
            }
            ExprKind::Binary { op, lhs, rhs } => {
                let l = self.eval(lhs, scope, None);
                let r = self.eval(rhs, scope, None);
                self.map_families(vec![l?, r?], span, &mut |this, mut x| {
                    let r = x.pop()?;
                    this.arith(*op, x.pop()?, r, span)
                })
            }
        }
    }

    /// `l |> r`: the layers of both sides in one chain.
    fn compose(&mut self, sides: Vec<CVal>, span: Span) -> Option<CVal> {
        let mut items = Vec::new();
        for side in sides {
            if !self.is_layer(&side) {
                let what = self.describe(&side);
                self.diags.push(
                    Diag::new(Code::E2005, format!("`|>` composes layers, but this is {what}"))
                        .at(side.span, "not a layer")
                        .hint("layers are built-ins such as `linear(64)`, `relu`, or `def`s that return them"),
                );
                return None;
            }
            match side.kind {
                VKind::Pipe(inner) => items.extend(inner),
                _ => items.push(side),
            }
        }
        Some(CVal::new(VKind::Pipe(items), span))
    }

    fn arith(&mut self, op: BinOp, l: CVal, r: CVal, span: Span) -> Option<CVal> {
        let num = |x: &CVal| match x.kind {
            VKind::Int(i) => Some(i as f64),
            VKind::Float(f) => Some(f),
            _ => None,
        };
        let (Some(a), Some(b)) = (num(&l), num(&r)) else {
            let bad = if num(&l).is_none() { &l } else { &r };
            let what = self.describe(bad);
            self.diags.push(
                Diag::new(Code::E2011, format!("`{}` needs numbers, found {what}", op.symbol()))
                    .at(bad.span, "not a number")
                    .hint("arithmetic works on integer and float literals, e.g. `8/255`"),
            );
            return None;
        };
        if op == BinOp::Div && b == 0.0 {
            self.diags.push(
                Diag::new(Code::E2011, "division by zero")
                    .at(r.span, "this is zero")
                    .hint("arithmetic is folded before anything runs; a zero divisor is always an error"),
            );
            return None;
        }
        let kind = match (&l.kind, &r.kind, op) {
            (VKind::Int(x), VKind::Int(y), BinOp::Add) => x.checked_add(*y).map(VKind::Int),
            (VKind::Int(x), VKind::Int(y), BinOp::Sub) => x.checked_sub(*y).map(VKind::Int),
            (VKind::Int(x), VKind::Int(y), BinOp::Mul) => x.checked_mul(*y).map(VKind::Int),
            _ => {
                let f = match op {
                    BinOp::Add => a + b,
                    BinOp::Sub => a - b,
                    BinOp::Mul => a * b,
                    _ => a / b,
                };
                f.is_finite().then_some(VKind::Float(f))
            }
        };
        match kind {
            Some(k) => Some(CVal::new(k, span)),
            None => {
                self.diags.push(
                    Diag::new(Code::E2011, "arithmetic overflow")
                        .at(span, "the result does not fit")
                        .hint("integers are 64-bit; use floats (`1e20`) for larger values"),
                );
                None
            }
        }
    }

    fn ident(&mut self, name: &str, span: Span, scope: &Scope<'a>) -> Option<CVal> {
        if let Some(v) = scope.locals.get(name) {
            return Some(v.clone());
        }
        if let Some((&key, g)) = self.globals.get_key_value(name) {
            return match g {
                Global::Let { .. } => self.eval_let(key).map(|v| v.respan(span)),
                Global::Def { .. } => self.call_def(key, &[], span, scope, None),
            };
        }
        if let Some(b) = self.reg.find(name) {
            return self.call_builtin(b, &[], span, scope, None);
        }
        if self.reg.is_symbol(name) {
            return Some(CVal::new(VKind::Sym(name.to_string()), span));
        }
        let mut candidates: Vec<String> = scope.locals.keys().map(|s| s.to_string()).collect();
        candidates.extend(self.globals.keys().map(|s| s.to_string()));
        candidates.extend(self.reg.all().iter().map(|b| b.name.to_string()));
        candidates.extend(self.reg.symbols().map(str::to_string));
        let suggestion = did_you_mean(name, candidates.iter().map(String::as_str));
        self.diags.push(
            Diag::new(Code::E1001, format!("unknown name `{name}`"))
                .at(span, "not defined")
                .maybe_hint(suggestion.map(|s| format!("did you mean `{s}`?")))
                .hint("names come from `let`, `def`, `use`d modules and built-ins (`flowline stages`)"),
        );
        None
    }

    fn call(
        &mut self,
        callee: &'a Ident,
        args: &'a [Arg],
        span: Span,
        scope: &Scope<'a>,
        path: Option<String>,
    ) -> Option<CVal> {
        let name = callee.name.as_str();
        if scope.locals.contains_key(name) || matches!(self.globals.get(name), Some(Global::Let { .. })) {
            self.diags.push(
                Diag::new(Code::E2012, format!("`{name}` is a value, not a function"))
                    .at(callee.span, "cannot be called")
                    .hint(format!("use `{name}` without parentheses")),
            );
            return None;
        }
        if let Some((&key, Global::Def { .. })) = self.globals.get_key_value(name) {
            return self.call_def(key, args, span, scope, path);
        }
        if let Some(b) = self.reg.find(name) {
            return self.call_builtin(b, args, span, scope, path);
        }
        let mut candidates: Vec<&str> =
            self.globals.iter().filter(|(_, g)| matches!(g, Global::Def { .. })).map(|(k, _)| *k).collect();
        candidates.extend(self.reg.all().iter().map(|b| b.name));
        self.diags.push(
            Diag::new(Code::E1001, format!("unknown function `{name}`"))
                .at(callee.span, "no built-in or `def` has this name")
                .maybe_hint(did_you_mean(name, candidates).map(|s| format!("did you mean `{s}`?")))
                .hint("`flowline stages` lists the built-ins"),
        );
        None
    }

    fn member(&mut self, base: CVal, field: &Ident, span: Span) -> Option<CVal> {
        match &base.kind {
            VKind::Stage(StageRef { node, field: None }) => {
                let node = *node;
                let n = &self.nodes[node];
                let fields = self.reg.stage(&n.builtin).map(|s| fields(s, &n.args)).unwrap_or_default();
                if fields.iter().any(|(f, _)| *f == field.name) {
                    return Some(CVal::new(VKind::Stage(StageRef { node, field: Some(field.name.clone()) }), span));
                }
                let names: Vec<&str> = fields.iter().map(|(f, _)| f.as_str()).collect();
                let listed = if names.is_empty() {
                    "none".to_string()
                } else {
                    names.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ")
                };
                self.diags.push(
                    Diag::new(Code::E2008, format!("`{}` has no field `{}`", n.builtin, field.name))
                        .at(field.span, "unknown field")
                        .maybe_hint(
                            did_you_mean(&field.name, names.iter().copied()).map(|s| format!("did you mean `{s}`?")),
                        )
                        .hint(format!("fields of this `{}`: {listed}", n.builtin)),
                );
                None
            }
            VKind::Config(c) => match c.args.get(&field.name) {
                Some(v) => Some(v.clone().respan(span)),
                None => {
                    self.diags.push(
                        Diag::new(Code::E2008, format!("`{}` has no argument `{}`", c.builtin, field.name))
                            .at(field.span, "unknown field")
                            .maybe_hint(
                                did_you_mean(&field.name, c.args.names()).map(|s| format!("did you mean `{s}`?")),
                            ),
                    );
                    None
                }
            },
            _ => {
                let what = self.describe(&base);
                self.diags.push(
                    Diag::new(Code::E2008, format!("{what} has no fields"))
                        .at(field.span, format!("`.{}` cannot be read here", field.name))
                        .hint("fields belong to stage results (`fit.model`) and configs (`opt.lr`)"),
                );
                None
            }
        }
    }

    /// Inline a `def`: bind its parameters, then elaborate its body.
    fn call_def(
        &mut self,
        name: &'a str,
        args: &'a [Arg],
        span: Span,
        scope: &Scope<'a>,
        path: Option<String>,
    ) -> Option<CVal> {
        let Some(Global::Def { params, body, .. }) = self.globals.get(name) else {
            return None;
        };
        let (params, body): (&'a [Param], &'a Expr) = (params, body);
        if matches!(body.kind, ExprKind::Invalid) {
            return None;
        }
        if self.def_stack.contains(&name) {
            self.diags.push(
                Diag::new(Code::E1007, format!("`{name}` calls itself"))
                    .at(span, "recursive call")
                    .hint("a `def` is expanded in place, so it cannot be recursive"),
            );
            return None;
        }
        let names: Vec<&str> = params.iter().map(|p| p.name.name.as_str()).collect();
        let bound = self.bind(name, &names, None, args, None)?;
        let mut locals = HashMap::new();
        let mut ok = true;
        for (i, p) in params.iter().enumerate() {
            let pname = p.name.name.as_str();
            let child = path.as_ref().map(|pp| format!("{pp}.{pname}"));
            let value = match child.as_deref().and_then(|c| self.take_override(c)) {
                Some(e) => self.eval(e, &Scope::default(), None),
                None => match bound[i] {
                    Some(arg) => self.eval(&arg.value, scope, child),
                    None => self.eval(&p.default, &Scope::default(), None),
                },
            };
            match value {
                Some(v) => {
                    locals.insert(pname, v);
                }
                None => ok = false,
            }
        }
        if !ok {
            return None;
        }
        self.def_stack.push(name);
        let inner = Scope { locals, let_name: scope.let_name };
        let result = self.eval(body, &inner, None);
        self.def_stack.pop();
        // The value is used where the def is called; its parts keep their own spans.
        result.map(|v| v.respan(span))
    }

    /// Match arguments to parameter names. Returns, per parameter, the argument given.
    /// `skip` names an argument handled apart (a stage's `resources:`).
    fn bind(
        &mut self,
        callee: &str,
        params: &[&str],
        single: Option<&str>,
        args: &'a [Arg],
        skip: Option<&str>,
    ) -> Option<Vec<Option<&'a Arg>>> {
        let mut bound: Vec<Option<&'a Arg>> = vec![None; params.len()];
        let positional: Vec<&'a Arg> = args.iter().filter(|a| a.name.is_none()).collect();
        let mut ok = true;
        if let (Some(single), [only]) = (single, positional.as_slice()) {
            if let Some(i) = params.iter().position(|p| *p == single) {
                bound[i] = Some(only);
            }
        } else {
            for (i, a) in positional.iter().enumerate() {
                if i < params.len() {
                    bound[i] = Some(a);
                } else {
                    self.diags.push(
                        Diag::new(
                            Code::E2004,
                            format!("`{callee}` takes at most {} positional arguments", params.len()),
                        )
                        .at(a.value.span, "one too many")
                        .hint(format!("parameters: {}", params.join(", "))),
                    );
                    ok = false;
                    break;
                }
            }
        }
        for a in args {
            let Some(n) = &a.name else { continue };
            if Some(n.name.as_str()) == skip {
                continue;
            }
            match params.iter().position(|p| *p == n.name) {
                Some(i) => {
                    if bound[i].is_some() {
                        self.diags.push(
                            Diag::new(Code::E2003, format!("argument `{}` is given twice", n.name))
                                .at(n.span, "given again here")
                                .hint("remove one of the two"),
                        );
                        ok = false;
                    } else {
                        bound[i] = Some(a);
                    }
                }
                None => {
                    self.diags.push(
                        Diag::new(Code::E2001, format!("`{callee}` has no argument `{}`", n.name))
                            .at(n.span, "unknown argument")
                            .maybe_hint(
                                did_you_mean(&n.name, params.iter().copied()).map(|s| format!("did you mean `{s}`?")),
                            )
                            .hint(if params.is_empty() {
                                format!("`{callee}` takes no arguments")
                            } else {
                                format!("`{callee}` takes: {}", params.join(", "))
                            }),
                    );
                    ok = false;
                }
            }
        }
        if ok { Some(bound) } else { None }
    }

    fn call_builtin(
        &mut self,
        b: &'a Builtin,
        args: &'a [Arg],
        span: Span,
        scope: &Scope<'a>,
        path: Option<String>,
    ) -> Option<CVal> {
        let names: Vec<&str> = b.params.iter().map(|p| p.name).collect();
        let is_stage = b.as_stage().is_some() && !names.contains(&RESOURCES);
        let bound = self.bind(b.name, &names, b.single_positional, args, is_stage.then_some(RESOURCES))?;
        let resources = if is_stage { self.stage_resources(args, scope, path.as_deref())? } else { None };
        let mut values = Vec::with_capacity(b.params.len());
        let mut ok = true;
        for (i, p) in b.params.iter().enumerate() {
            let child = path.as_ref().map(|pp| format!("{pp}.{}", p.name));
            let given = match child.as_deref().and_then(|c| self.take_override(c)) {
                Some(e) => Some(self.eval_arg(b, p, e, &Scope::default(), None)),
                None => bound[i].map(|a| self.eval_arg(b, p, &a.value, scope, child.clone())),
            };
            let value = match given {
                // A sweep is checked member by member when the call is mapped over it.
                Some(Some(v)) if matches!(v.kind, VKind::Family(_)) => v,
                Some(Some(v)) => {
                    if !self.check_arg(b, p, &v) {
                        ok = false;
                    }
                    v
                }
                Some(None) => {
                    ok = false;
                    continue;
                }
                None => match self.default_value(&p.default, span, child) {
                    Some(v) => v,
                    None => {
                        let doc = if p.doc.is_empty() { String::new() } else { format!(" ({})", p.doc) };
                        self.diags.push(
                            Diag::new(Code::E2002, format!("`{}` needs the argument `{}`", b.name, p.name))
                                .at(span, format!("`{}` is missing", p.name))
                                .hint(format!("add `{}: ...`: {}{doc}", p.name, p.ty)),
                        );
                        ok = false;
                        continue;
                    }
                },
            };
            values.push((Cow::Borrowed(p.name), value));
        }
        if !ok {
            return None;
        }
        let made = if values.iter().any(|(_, v)| matches!(v.kind, VKind::Family(_))) {
            self.map_call(b, values, span, scope, path)?
        } else {
            self.make(b, Args(values), span, scope, path)?
        };
        if let Some(r) = resources {
            self.attach_resources(&made, &r);
        }
        Some(made)
    }

    /// The node of a stage call, or the config of any other built-in.
    fn make(
        &mut self,
        b: &'a Builtin,
        args: Args,
        span: Span,
        scope: &Scope<'a>,
        path: Option<String>,
    ) -> Option<CVal> {
        match b.as_stage() {
            Some(_) => self.add_node(b, args, span, scope, path),
            None => Some(CVal::new(VKind::Config(Arc::new(Config { builtin: Cow::Borrowed(b.name), args })), span)),
        }
    }

    /// A default config keeps its override path, so `fit.optimizer.lr` works even when
    /// the optimizer was not written out.
    fn default_value(&mut self, d: &Dflt, span: Span, path: Option<String>) -> Option<CVal> {
        let k = match d {
            Dflt::Required => return None,
            Dflt::None => VKind::None,
            Dflt::Int(v) => VKind::Int(*v),
            Dflt::Float(v) => VKind::Float(*v),
            Dflt::Str(s) => VKind::Str(s.to_string()),
            Dflt::Sym(s) => VKind::Sym(s.to_string()),
            Dflt::Bool(b) => VKind::Bool(*b),
            Dflt::Syms(items) => {
                VKind::List(items.iter().map(|s| CVal::new(VKind::Sym(s.to_string()), span)).collect())
            }
            Dflt::Config(name) => {
                let b = self.reg.find(name)?;
                return self.call_builtin(b, &[], span, &Scope::default(), path);
            }
        };
        Some(CVal::new(k, span))
    }

    fn check_arg(&mut self, b: &Builtin, p: &crate::lang::Param, v: &CVal) -> bool {
        let (nodes, reg) = (&self.nodes, self.reg);
        let stage_ty = |r: &StageRef| stage_type(reg, nodes, r);
        if let Err(at) = accepts(reg, &p.ty, v, &stage_ty) {
            let found_what = self.describe(at);
            let doc = if p.doc.is_empty() { String::new() } else { format!("`{}`: {}", p.name, p.doc) };
            let mut d =
                Diag::new(Code::E2005, format!("`{}` of `{}` expects {}, found {found_what}", p.name, b.name, p.ty))
                    .at(at.span, format!("expected {}", p.ty));
            if !doc.is_empty() {
                d = d.hint(doc);
            }
            if let VKind::Stage(r) = &at.kind
                && matches!(stage_ty(r), Some(Ty::Int | Ty::Float))
            {
                d = d.hint(
                    "a number a stage computes can be reported (`report stage.field`), not passed on: write the value",
                );
            }
            self.diags.push(d);
            return false;
        }
        if let Err(d) = check_choice(b, p, v) {
            self.diags.push(d);
            return false;
        }
        if let (Some(range), Some(x)) = (p.range, v.number())
            && !range.contains(x)
        {
            self.diags.push(
                Diag::new(
                    Code::E2006,
                    format!("`{}` of `{}` must be {}, got {}", p.name, b.name, range.describe(), show_number(v)),
                )
                .at(v.span, "out of range")
                .hint(format!("`{}`: {}", p.name, p.doc)),
            );
            return false;
        }
        true
    }

    fn add_node(
        &mut self,
        b: &'a Builtin,
        args: Args,
        span: Span,
        scope: &Scope<'a>,
        path: Option<String>,
    ) -> Option<CVal> {
        let stage = b.as_stage()?;
        let name = match path {
            Some(p) => p,
            None => {
                // Each member of a sweep counts its own anonymous stages, so that they are
                // the same stream in every member.
                let base = format!("{}{}.{}", scope.let_name.unwrap_or("anon"), self.ctx.bracket_or_empty(), b.name);
                let n = self.anon.entry(base.clone()).or_insert(0);
                *n += 1;
                format!("{}.{}{n}", scope.let_name.unwrap_or("anon"), b.name)
            }
        };
        let member = (!self.ctx.0.is_empty()).then(|| MemberOf {
            params: self.ctx.clone(),
            stream: name.clone(),
            seed: self.ctx.seed(),
        });
        let identity = member.as_ref().map(|m| self.identity(b.name, &args, m));
        if let Some(&shared) = identity.as_ref().and_then(|id| self.made.get(id)) {
            self.share(shared, scope.let_name);
            return Some(CVal::new(VKind::Stage(StageRef { node: shared, field: None }), span));
        }
        let name = match &member {
            Some(m) => member_name(&m.stream, scope.let_name, &m.params),
            None => name,
        };
        let nodes = &self.nodes;
        let meta_of = |r: &StageRef| node_meta(nodes, r);
        let reg = self.reg;
        let type_of = |r: &StageRef| stage_type(reg, nodes, r);
        let cx = StaticCall { args: &args, span, meta_of: &meta_of, type_of: &type_of, registry: self.reg };
        let mut diags = stage.check(&cx);
        if diags.iter().all(|d| d.is_warning()) {
            for (_, v) in &args.0 {
                unlowerable(self.reg, v, &mut diags);
            }
        }
        let meta = stage.meta(&cx);
        let failed = diags.iter().any(|d| !d.is_warning());
        self.diags.extend(diags);
        if failed {
            return None;
        }
        let mut refs = Vec::new();
        for (_, v) in &args.0 {
            v.stage_refs(&mut refs);
        }
        let mut deps: Vec<usize> = refs.into_iter().map(|r| r.node).collect();
        deps.sort_unstable();
        deps.dedup();
        self.nodes.push(Node { name, builtin: Cow::Borrowed(b.name), args, span, meta, deps, member, resources: None });
        if let Some(id) = identity {
            self.made.insert(id, self.nodes.len() - 1);
        }
        Some(CVal::new(VKind::Stage(StageRef { node: self.nodes.len() - 1, field: None }), span))
    }

    pub fn describe(&self, v: &CVal) -> String {
        let noun = |c: &Config| match self.reg.kind_of(c).map(|k| &k.role) {
            Some(Role::Config { noun, .. }) => format!("the {noun} `{}`", c.builtin),
            _ => format!("`{}`", c.builtin),
        };
        v.describe(noun, |r| stage_type(self.reg, &self.nodes, r))
    }

    /// A layer, or a chain of them: what `|>` composes.
    fn is_layer(&self, v: &CVal) -> bool {
        match &v.kind {
            VKind::Pipe(_) => true,
            VKind::Config(c) => self.reg.kind_of(c).is_some_and(|k| k.chains()),
            _ => false,
        }
    }

    /// The fields `.name` may read of node `node`.
    pub fn fields_of(&self, node: usize) -> Vec<(String, Ty)> {
        let n = &self.nodes[node];
        self.reg.stage(&n.builtin).map(|s| fields(s, &n.args)).unwrap_or_default()
    }
}

fn suggestion_is_none(d: &Diag) -> bool {
    d.hints.is_empty()
}

fn stage_type(reg: &Registry, nodes: &[Node], r: &StageRef) -> Option<Ty> {
    let n = nodes.get(r.node)?;
    field_type(reg.stage(&n.builtin)?, &n.args, r.field.as_deref())
}

fn node_meta(nodes: &[Node], r: &StageRef) -> Option<Meta> {
    nodes.get(r.node).map(|n| n.meta.clone())
}

fn show_number(v: &CVal) -> String {
    match v.kind {
        VKind::Int(i) => i.to_string(),
        VKind::Float(f) => format!("{f}"),
        _ => String::new(),
    }
}

/// A config argument (or one in a list) whose lowering fails: E2006 at it. A lowering's
/// message may carry its hint after a line break.
fn unlowerable(reg: &Registry, v: &CVal, diags: &mut Vec<Diag>) {
    match &v.kind {
        VKind::Config(c) => {
            if let Err(e) = reg.lowers(c) {
                let (message, hint) = e.split_once('\n').unwrap_or((&e, "`flowline doc NAME` lists its arguments"));
                diags.push(Diag::new(Code::E2006, message).at(v.span, "cannot be built").hint(hint));
            }
        }
        VKind::List(items) => items.iter().for_each(|it| unlowerable(reg, it, diags)),
        _ => {}
    }
}
