//! Does a value fit a parameter's type? Enumerated choices get their own diagnostic with
//! a suggestion.

use super::types::Ty;
use super::value::{CVal, StageRef, VKind};
use crate::diag::{Code, Diag, did_you_mean};
use crate::stages::{Builtin, Param, Sort};

/// `Err` names the innermost value that does not fit, so a bad list element is pointed at
/// directly.
pub fn accepts<'v>(ty: &Ty, v: &'v CVal, stage_ty: &dyn Fn(&StageRef) -> Option<Ty>) -> Result<(), &'v CVal> {
    let ok = match (ty, &v.kind) {
        (Ty::Opt(_), VKind::None) => true,
        (Ty::Opt(inner), _) => return accepts(inner, v, stage_ty),
        (Ty::Int, VKind::Int(_)) => true,
        (Ty::Float, VKind::Int(_) | VKind::Float(_)) => true,
        (Ty::Str, VKind::Str(_)) => true,
        (Ty::Bool, VKind::Bool(_)) => true,
        (Ty::Enum(_), VKind::Str(_) | VKind::Sym(_)) => true,
        (Ty::List(inner), VKind::List(items)) => {
            for it in items {
                accepts(inner, it, stage_ty)?;
            }
            true
        }
        (Ty::Bounds, VKind::None) => true,
        (Ty::Bounds, VKind::Sym(s) | VKind::Str(s)) => s == "data",
        (Ty::Bounds, VKind::List(items)) => {
            for it in items {
                accepts(&Ty::Float, it, stage_ty)?;
            }
            true
        }
        (Ty::Layer, _) => v.is_layer(),
        (Ty::Optimizer, VKind::Config(c)) => c.builtin.sort == Sort::Optimizer,
        (Ty::Schedule, VKind::Config(c)) => c.builtin.sort == Sort::Schedule,
        (Ty::Solver, VKind::Config(c)) => c.builtin.sort == Sort::Solver,
        (Ty::Field, VKind::Config(c)) => c.builtin.sort == Sort::Field,
        (Ty::Attack, VKind::Config(c)) => c.builtin.sort == Sort::Attack,
        (Ty::Model, VKind::Stage(r)) => matches!(stage_ty(r), Some(Ty::Trained | Ty::Model)),
        (Ty::Model, _) => v.is_layer(),
        (want, VKind::Stage(r)) => stage_ty(r).as_ref() == Some(want),
        _ => false,
    };
    if ok { Ok(()) } else { Err(v) }
}

/// Strings and bare names given to an enumerated parameter must be one of its choices.
pub fn check_choice(b: &Builtin, p: &Param, v: &CVal) -> Result<(), Diag> {
    let choices = match &p.ty {
        Ty::Enum(c) => c,
        Ty::Opt(inner) | Ty::List(inner) => match inner.as_ref() {
            Ty::Enum(c) => c,
            _ => return Ok(()),
        },
        _ => return Ok(()),
    };
    let items: Vec<&CVal> = match &v.kind {
        VKind::List(items) => items.iter().collect(),
        _ => vec![v],
    };
    for it in items {
        if let VKind::Str(s) | VKind::Sym(s) = &it.kind
            && !choices.contains(&s.as_str())
        {
            let listed: Vec<String> = choices.iter().map(|c| format!("`{c}`")).collect();
            return Err(Diag::new(Code::E2007, format!("`{}` of `{}` has no choice `{s}`", p.name, b.name))
                .at(it.span, "unknown choice")
                .maybe_hint(did_you_mean(s, choices.iter().copied()).map(|c| format!("did you mean `{c}`?")))
                .hint(format!("choices: {}", listed.join(", "))));
        }
    }
    Ok(())
}
