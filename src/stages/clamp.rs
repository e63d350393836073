//! Arguments that ask for more than the data holds (`count: 5000` on 300 points) are
//! clamped, never silently: a W2001 warning, from the checker where the data's size is
//! known before anything runs and from the stage otherwise. Both say the same words, so the
//! command line shows one of them.

use crate::diag::{Code, Diag};
use crate::lang::StaticCall;

pub fn message(param: &str, asked: usize, have: usize) -> String {
    format!("`{param}: {asked}` asks for more than the {have} examples the data holds: {have} are used")
}

/// The check-time warning, when `data`'s size is known statically and the argument was
/// written (a default that the data cannot fill is not the user's request).
pub fn check(cx: &StaticCall, param: &str, data: &str) -> Option<Diag> {
    if !cx.given(param) {
        return None;
    }
    let asked = cx.args.int(param)? as usize;
    let have = cx.meta(data)?.n?;
    (asked > have).then(|| {
        let span = cx.args.get(param).map_or(cx.span, |v| v.span);
        Diag::new(Code::W2001, message(param, asked, have))
            .at(span, "more than the data holds")
            .hint(format!("write `{param}: {have}` or less to say what runs"))
    })
}
