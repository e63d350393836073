//! Does a value fit a parameter's type? Kinds follow their registered subtyping; enumerated
//! choices get their own diagnostic with a suggestion.

use crate::diag::{Code, Diag, did_you_mean};
use crate::lang::{Builtin, CVal, Param, Registry, StageRef, Ty, VKind};

/// `Err` names the innermost value that does not fit, so a bad list element is pointed at
/// directly.
pub fn accepts<'v>(
    reg: &Registry,
    ty: &Ty,
    v: &'v CVal,
    stage_ty: &dyn Fn(&StageRef) -> Option<Ty>,
) -> Result<(), &'v CVal> {
    let ok = match (ty, &v.kind) {
        (Ty::Opt(_) | Ty::Null, VKind::None) => true,
        (Ty::Opt(inner), _) => return accepts(reg, inner, v, stage_ty),
        (Ty::Int, VKind::Int(_)) => true,
        (Ty::Float, VKind::Int(_) | VKind::Float(_)) => true,
        (Ty::Str, VKind::Str(_)) => true,
        (Ty::Bool, VKind::Bool(_)) => true,
        (Ty::Enum(_), VKind::Str(_) | VKind::Sym(_)) => true,
        (Ty::List(inner), VKind::List(items)) => {
            for it in items {
                accepts(reg, inner, it, stage_ty)?;
            }
            true
        }
        // A name fits a union only as one of its choices; a list is judged by the union's
        // list shape, so that a bad element is pointed at.
        (Ty::OneOf(..), VKind::Str(s) | VKind::Sym(s)) => ty.has_choice(s),
        (Ty::OneOf(_, options), VKind::List(_)) => match options.iter().find(|o| matches!(o, Ty::List(_))) {
            Some(list) => return accepts(reg, list, v, stage_ty),
            None => false,
        },
        (Ty::OneOf(_, options), _) => options.iter().any(|o| accepts(reg, o, v, stage_ty).is_ok()),
        (Ty::Kind(k), VKind::Config(c)) => reg.kind_of(c).is_some_and(|ck| ck.is_a(k)),
        // A chain has the kind of its parts (layers).
        (Ty::Kind(_), VKind::Pipe(items)) => items.first().is_some_and(|i| accepts(reg, ty, i, stage_ty).is_ok()),
        (Ty::Kind(k), VKind::Stage(r)) => matches!(stage_ty(r), Some(Ty::Kind(sk)) if sk.is_a(k)),
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
