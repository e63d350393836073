//! The standard library: `.flow` files embedded in the binary so that `use std.x` works
//! from any directory, and the documentation of their `def`s (the comment above each), for
//! `flowline stages` and `flowline doc`.

use crate::syntax::ast::StmtKind;

const MODULES: [(&str, &str); 2] =
    [("models", include_str!("../stdlib/models.flow")), ("flows", include_str!("../stdlib/flows.flow"))];

pub fn get(name: &str) -> Option<&'static str> {
    MODULES.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

pub fn names() -> impl Iterator<Item = &'static str> {
    MODULES.iter().map(|(n, _)| *n)
}

/// One `def` of the standard library, as its documentation shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct StdDef {
    /// `std.models`.
    pub module: String,
    pub name: String,
    /// Parameters with their defaults, as written.
    pub params: Vec<(String, String)>,
    /// The comment lines just above the `def`, without `#`.
    pub doc: String,
    /// The body, formatted.
    pub body: String,
}

impl StdDef {
    pub fn signature(&self) -> String {
        let ps: Vec<String> = self.params.iter().map(|(n, d)| format!("{n}: {d}")).collect();
        format!("{}({})", self.name, ps.join(", "))
    }
}

/// Every `def` of every standard module, in file order.
pub fn defs() -> Vec<StdDef> {
    let mut out = Vec::new();
    for (module, text) in MODULES {
        let (program, _) = crate::syntax::parse_program(0, text);
        let comments = crate::syntax::comments(text);
        for stmt in &program.stmts {
            let StmtKind::Def { name, params, body } = &stmt.kind else { continue };
            out.push(StdDef {
                module: format!("std.{module}"),
                name: name.name.clone(),
                params: params
                    .iter()
                    .map(|p| (p.name.name.clone(), crate::syntax::format_expr(&p.default, text)))
                    .collect(),
                doc: doc_above(text, &comments, stmt.span.lo as usize),
                body: crate::syntax::format_expr(body, text),
            });
        }
    }
    out
}

pub fn find_def(name: &str) -> Option<StdDef> {
    defs().into_iter().find(|d| d.name == name)
}

/// The run of whole-line comments that ends on the line just above `offset`.
fn doc_above(text: &str, comments: &[crate::syntax::Comment], offset: usize) -> String {
    let line_of = |o: usize| text[..o].matches('\n').count();
    let mut want = line_of(offset);
    let mut lines = Vec::new();
    for c in comments.iter().rev().filter(|c| c.offset < offset && !c.trailing) {
        if line_of(c.offset) + 1 != want {
            break;
        }
        want -= 1;
        lines.push(c.text.trim_start_matches('#').trim().to_string());
    }
    lines.reverse();
    lines.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdlib_defs_carry_their_parameters_and_the_comment_above_them() {
        let mlp = find_def("mlp").unwrap();
        assert_eq!(mlp.module, "std.models");
        assert_eq!(mlp.signature(), "mlp(hidden: 64, classes: 2)");
        assert!(mlp.doc.starts_with("A multilayer perceptron classifier"), "{}", mlp.doc);
        assert!(mlp.body.starts_with("linear(hidden) |> relu"), "{}", mlp.body);
        let convnet = find_def("convnet").unwrap();
        assert!(convnet.doc.contains("Pooling comes before the ReLU"), "{}", convnet.doc);
        assert!(!defs().iter().any(|d| d.doc.contains("std.models —")), "the module header is no def's doc");
    }
}
