//! Canonical formatting: one statement per line (long ones broken at `|>` or between
//! arguments), comments kept in place, at most one blank line between statements.
//! Literals keep their spelling (`1e-5` stays `1e-5`). Formatting its own output is a no-op.

use super::ast::*;
use super::comments::{Comment, comments};

const WIDTH: usize = 100;
const INDENT: &str = "    ";

pub fn format_program(program: &Program, text: &str) -> String {
    let comments = comments(text);
    let line_of = |offset: usize| text.as_bytes()[..offset.min(text.len())].iter().filter(|&&b| b == b'\n').count();
    let mut out = String::new();
    let mut next_comment = 0;
    let mut last_line: Option<usize> = None;

    let emit_gap = |out: &mut String, start: usize, last: &mut Option<usize>| {
        if let Some(prev) = *last
            && start > prev + 1
            && blank_between(text, prev, start)
        {
            out.push('\n');
        }
    };

    let mut stmts: Vec<&Stmt> = program.stmts.iter().collect();
    stmts.sort_by_key(|s| s.span.lo);
    for stmt in stmts {
        let (lo, hi) = (stmt.span.lo as usize, stmt.span.hi as usize);
        let end_line = line_of(hi);
        // Comments before the statement, and those inside it that are not on its last line.
        let mut trailing: Option<&Comment> = None;
        while next_comment < comments.len() {
            let c = &comments[next_comment];
            let cl = line_of(c.offset);
            if c.offset < lo || (c.offset < hi && cl < end_line) {
                emit_gap(&mut out, cl, &mut last_line);
                out.push_str(&c.text);
                out.push('\n');
                last_line = Some(cl);
                next_comment += 1;
            } else if c.trailing && cl == end_line && c.offset >= lo {
                trailing = Some(c);
                next_comment += 1;
                break;
            } else {
                break;
            }
        }
        emit_gap(&mut out, line_of(lo), &mut last_line);
        let mut s = format_stmt(stmt, text);
        if let Some(c) = trailing {
            s.push_str("  ");
            s.push_str(&c.text);
        }
        out.push_str(&s);
        out.push('\n');
        last_line = Some(end_line);
    }
    for c in &comments[next_comment..] {
        let cl = line_of(c.offset);
        emit_gap(&mut out, cl, &mut last_line);
        out.push_str(&c.text);
        out.push('\n');
        last_line = Some(cl);
    }
    out
}

fn blank_between(text: &str, from_line: usize, to_line: usize) -> bool {
    text.lines().skip(from_line + 1).take(to_line.saturating_sub(from_line + 1)).any(|l| l.trim().is_empty())
}

fn format_stmt(stmt: &Stmt, text: &str) -> String {
    match &stmt.kind {
        StmtKind::Use(UseTarget::Std(m)) => format!("use {m}"),
        StmtKind::Use(UseTarget::File(f)) => format!("use {}", quote(f)),
        StmtKind::Seed(s) => format!("seed {}", expr(s, text)),
        StmtKind::Let { name, value: Expr { kind: ExprKind::Sweep { axes, body }, .. } } => {
            let head = format!("let {} = {}: ", name.name, sweep_head(axes, text));
            let one = broken(&head, body, text);
            if one.lines().count() == 1 && one.len() <= WIDTH {
                one
            } else {
                // The body on lines of its own, indented under the sweep.
                let body = broken("", body, text).replace('\n', &format!("\n{INDENT}"));
                format!("{}\n{INDENT}{body}", head.trim_end())
            }
        }
        StmtKind::Let { name, value } => broken(&format!("let {} = ", name.name), value, text),
        StmtKind::Def { name, params, body } => {
            let ps: Vec<String> =
                params.iter().map(|p| format!("{}: {}", p.name.name, expr(&p.default, text))).collect();
            broken(&format!("def {}({}) = ", name.name, ps.join(", ")), body, text)
        }
        StmtKind::Report(paths) => {
            format!("report {}", paths.iter().map(Path::dotted).collect::<Vec<_>>().join(", "))
        }
        StmtKind::Profile { name, assigns } => {
            let items: Vec<String> =
                assigns.iter().map(|a| format!("{} = {}", a.path.dotted(), expr(&a.value, text))).collect();
            let one = format!("profile {} {{ {} }}", name.name, items.join(", "));
            if items.is_empty() {
                format!("profile {} {{}}", name.name)
            } else if one.len() <= WIDTH {
                one
            } else {
                format!("profile {} {{\n{INDENT}{}\n}}", name.name, items.join(&format!(",\n{INDENT}")))
            }
        }
    }
}

/// `head` followed by the expression, broken over lines when it is too long.
fn broken(head: &str, e: &Expr, text: &str) -> String {
    let one = format!("{head}{}", expr(e, text));
    if one.len() <= WIDTH && !one.contains('\n') {
        return one;
    }
    let mut parts = Vec::new();
    flatten_pipe(e, &mut parts);
    if parts.len() > 1 {
        let mut s = format!("{head}{}", expr(parts[0], text));
        for p in &parts[1..] {
            s.push_str(&format!("\n{INDENT}|> {}", expr(p, text)));
        }
        return s;
    }
    if let ExprKind::Call { callee, args } = &e.kind
        && !args.is_empty()
    {
        let items: Vec<String> = args.iter().map(|a| arg(a, text)).collect();
        return format!("{head}{}(\n{INDENT}{},\n)", callee.name, items.join(&format!(",\n{INDENT}")));
    }
    one
}

fn flatten_pipe<'a>(e: &'a Expr, out: &mut Vec<&'a Expr>) {
    match &e.kind {
        ExprKind::Binary { op: BinOp::Pipe, lhs, rhs } => {
            flatten_pipe(lhs, out);
            out.push(rhs);
        }
        _ => out.push(e),
    }
}

fn arg(a: &Arg, text: &str) -> String {
    match &a.name {
        Some(n) => format!("{}: {}", n.name, expr(&a.value, text)),
        None => expr(&a.value, text),
    }
}

fn literal(e: &Expr, text: &str) -> Option<String> {
    text.get(e.span.lo as usize..e.span.hi as usize).map(str::to_string)
}

pub fn expr(e: &Expr, text: &str) -> String {
    match &e.kind {
        ExprKind::Int(v) => literal(e, text).filter(|s| s.parse::<i64>().is_ok()).unwrap_or_else(|| v.to_string()),
        ExprKind::BigInt(s) => s.clone(),
        ExprKind::Float(v) => literal(e, text).filter(|s| s.parse::<f64>().is_ok()).unwrap_or_else(|| format!("{v:?}")),
        ExprKind::Str(s) => quote(s),
        ExprKind::Bool(b) => b.to_string(),
        ExprKind::None | ExprKind::Invalid => "none".into(),
        ExprKind::List(items) => {
            format!("[{}]", items.iter().map(|i| expr(i, text)).collect::<Vec<_>>().join(", "))
        }
        ExprKind::Ident(n) => n.clone(),
        ExprKind::Call { callee, args } => {
            format!("{}({})", callee.name, args.iter().map(|a| arg(a, text)).collect::<Vec<_>>().join(", "))
        }
        ExprKind::Member { base, field } => format!("{}.{}", operand(base, 4, text), field.name),
        ExprKind::Neg(inner) => format!("-{}", operand(inner, 4, text)),
        ExprKind::Paren(inner) => format!("({})", expr(inner, text)),
        ExprKind::Sweep { axes, body } => format!("{}: {}", sweep_head(axes, text), expr(body, text)),
        ExprKind::Binary { op, lhs, rhs } => {
            let p = op.precedence();
            // Left-associative: the right operand needs parentheses at equal precedence.
            format!("{} {} {}", operand(lhs, p, text), op.symbol(), operand(rhs, p + 1, text))
        }
    }
}

/// `sweep lam in [0, 0.1], seed in [1, 2]`
fn sweep_head(axes: &[Axis], text: &str) -> String {
    let axes: Vec<String> = axes.iter().map(|a| format!("{} in {}", a.name.name, expr(&a.values, text))).collect();
    format!("sweep {}", axes.join(", "))
}

fn operand(e: &Expr, min_prec: u8, text: &str) -> String {
    let s = expr(e, text);
    match &e.kind {
        ExprKind::Binary { op, .. } if op.precedence() < min_prec => format!("({s})"),
        ExprKind::Neg(_) if min_prec > 4 => format!("({s})"),
        _ => s,
    }
}

fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
