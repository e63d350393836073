//! pest -> AST. One `parse_<rule>` function per grammar rule; syntax errors become
//! diagnostics that say what was expected after which token.

use super::ast::*;
use super::chunks;
use crate::diag::{Code, Diag, Span};
use pest::Parser;
use pest::iterators::Pair;
use pest::pratt_parser::{Assoc, Op, PrattParser};
use std::sync::OnceLock;

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/flowline.pest"]
struct FlowParser;

/// Deeper bracket nesting than this is refused before pest sees it, so that no input can
/// exhaust the stack of the recursive-descent parser.
const MAX_NESTING: i32 = 64;

/// Operators in one expression, for the same reason: the tree is as deep as the chain.
const MAX_OPERATORS: usize = 256;

fn pratt() -> &'static PrattParser<Rule> {
    static PRATT: OnceLock<PrattParser<Rule>> = OnceLock::new();
    PRATT.get_or_init(|| {
        PrattParser::new()
            .op(Op::infix(Rule::pipe, Assoc::Left))
            .op(Op::infix(Rule::add, Assoc::Left) | Op::infix(Rule::sub, Assoc::Left))
            .op(Op::infix(Rule::mul, Assoc::Left) | Op::infix(Rule::div, Assoc::Left))
            .op(Op::prefix(Rule::neg))
            .op(Op::postfix(Rule::member))
    })
}

struct Ctx<'a> {
    file: u32,
    offset: usize,
    text: &'a str,
    diags: Vec<Diag>,
}

impl Ctx<'_> {
    fn span(&self, p: &Pair<Rule>) -> Span {
        let s = p.as_span();
        Span::new(self.file, self.offset + s.start(), self.offset + s.end())
    }
}

/// Parse a whole file. Statements that fail to parse are reported and skipped.
pub fn parse_program(file: u32, text: &str) -> (Program, Vec<Diag>) {
    let mut stmts = Vec::new();
    let mut diags = Vec::new();
    for (lo, hi) in chunks::split(text) {
        let chunk = &text[lo..hi];
        let mut ctx = Ctx { file, offset: lo, text: chunk, diags: Vec::new() };
        if let Some(d) = nesting_error(&ctx) {
            diags.push(d);
            continue;
        }
        match FlowParser::parse(Rule::stmt_only, chunk) {
            Ok(mut pairs) => {
                if let Some(pair) = pairs.next()
                    && let Some(stmt) = parse_stmt(&mut ctx, pair)
                {
                    stmts.push(stmt);
                }
            }
            Err(e) => {
                // Tracking expected tokens slows pest down; only a failing chunk pays for it.
                let e = detailed(Rule::stmt_only, chunk).unwrap_or(e);
                ctx.diags.push(syntax_error(&ctx, &e));
                if let Some(stmt) = poisoned(file, lo, chunk) {
                    stmts.push(stmt);
                }
            }
        }
        diags.extend(ctx.diags);
    }
    (Program { file, stmts }, diags)
}

/// Parse a standalone expression (the value of `--set path=value`).
/// `offset` is where the expression starts inside the source file `file`.
pub fn parse_expr(file: u32, text: &str, offset: usize) -> Result<Expr, Diag> {
    let mut ctx = Ctx { file, offset, text, diags: Vec::new() };
    if let Some(d) = nesting_error(&ctx) {
        return Err(d);
    }
    let expr = match FlowParser::parse(Rule::expr_only, text) {
        Ok(mut pairs) => match pairs.next() {
            Some(p) => parse_expr_pair(&mut ctx, p),
            None => return Err(Diag::new(Code::E0001, "expected a value")),
        },
        Err(e) => return Err(syntax_error(&ctx, &detailed(Rule::expr_only, text).unwrap_or(e))),
    };
    match ctx.diags.into_iter().next() {
        Some(d) => Err(d),
        None => Ok(expr),
    }
}

/// Parse again with pest's expected-token tracking on, for the error message. The switch
/// is process-wide and stays on: turning it off again could race with another thread's
/// error report.
fn detailed(rule: Rule, text: &str) -> Option<pest::error::Error<Rule>> {
    pest::set_error_detail(true);
    FlowParser::parse(rule, text).err()
}

/// A `let` or `def` whose statement failed to parse still defines its name, so that its
/// uses do not add "unknown name" errors on top of the syntax error.
fn poisoned(file: u32, lo: usize, chunk: &str) -> Option<Stmt> {
    let (kw, rest) = chunk.split_once(|c: char| c.is_whitespace())?;
    let name: String = rest.trim_start().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let at = lo + kw.len() + (rest.len() - rest.trim_start().len()) + 1;
    let span = Span::new(file, at, at + name.len());
    let ident = Ident { name, span };
    let invalid = Expr { kind: ExprKind::Invalid, span };
    let kind = match kw {
        "let" => StmtKind::Let { name: ident, value: invalid },
        "def" => StmtKind::Def { name: ident, params: Vec::new(), body: invalid },
        _ => return None,
    };
    Some(Stmt { kind, span })
}

fn nesting_error(ctx: &Ctx) -> Option<Diag> {
    let mut depth = 0;
    for (i, c) in ctx.text.char_indices() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            _ => {}
        }
        if depth > MAX_NESTING {
            let at = Span::new(ctx.file, ctx.offset + i, ctx.offset + i + 1);
            return Some(
                Diag::new(Code::E0001, format!("brackets nested more than {MAX_NESTING} deep"))
                    .at(at, "too deep")
                    .hint("split the expression into several `let` statements"),
            );
        }
    }
    None
}

/// End of the last token in `text`: pest's statement spans may run on over trailing
/// whitespace and comments, which belong to what follows.
fn trim_trivia(text: &str) -> usize {
    let mut end = text.len();
    loop {
        let trimmed = text[..end].trim_end();
        end = trimmed.len();
        let line_start = trimmed.rfind('\n').map(|i| i + 1).unwrap_or(0);
        match crate::syntax::comments(&trimmed[line_start..]).first() {
            Some(c) => end = line_start + c.offset,
            None => return end,
        }
    }
}

fn parse_stmt(ctx: &mut Ctx, pair: Pair<Rule>) -> Option<Stmt> {
    let mut span = ctx.span(&pair);
    let start = pair.as_span().start();
    span.hi = (ctx.offset + start + trim_trivia(pair.as_str())) as u32;
    let kind = match pair.as_rule() {
        Rule::use_stmt => parse_use(pair)?,
        Rule::seed_stmt => StmtKind::Seed(parse_expr_pair(ctx, pair.into_inner().next()?)),
        Rule::let_stmt => parse_let(ctx, pair)?,
        Rule::def_stmt => parse_def(ctx, pair)?,
        Rule::report_stmt => StmtKind::Report(pair.into_inner().map(|p| parse_path(ctx, p)).collect()),
        Rule::profile_stmt => parse_profile(ctx, pair)?,
        Rule::unknown_stmt => {
            // A statement that fails only because of a name outside ASCII falls through to
            // the catch-all; say what is wrong with the name.
            let at = pair.as_span().start();
            if let Some(pos) = first_non_ascii_letter(pair.as_str())
                && let Some(d) = non_ascii_name(ctx, at + pos)
            {
                ctx.diags.push(d);
                return None;
            }
            let word: String = pair.as_str().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            let shown = if word.is_empty() { pair.as_str().chars().take(12).collect() } else { word };
            ctx.diags.push(
                Diag::new(Code::E0002, format!("`{shown}` does not start a statement"))
                    .at(span, "not a statement")
                    .hint(statement_keywords_hint())
                    .maybe_hint(
                        crate::diag::did_you_mean(&shown, super::chunks::KEYWORDS)
                            .map(|s| format!("did you mean `{s}`?")),
                    ),
            );
            return None;
        }
        _ => return None,
    };
    Some(Stmt { kind, span })
}

fn parse_use(pair: Pair<Rule>) -> Option<StmtKind> {
    let target = pair.into_inner().next()?;
    Some(StmtKind::Use(match target.as_rule() {
        Rule::string => UseTarget::File(unescape(target.into_inner().next()?.as_str())),
        _ => UseTarget::Std(target.as_str().to_string()),
    }))
}

fn parse_let(ctx: &mut Ctx, pair: Pair<Rule>) -> Option<StmtKind> {
    let mut inner = pair.into_inner();
    let name = parse_ident(ctx, inner.next()?);
    let value = inner.next()?;
    let value = match value.as_rule() {
        Rule::sweep => parse_sweep(ctx, value)?,
        _ => parse_expr_pair(ctx, value),
    };
    Some(StmtKind::Let { name, value })
}

fn parse_sweep(ctx: &mut Ctx, pair: Pair<Rule>) -> Option<Expr> {
    let span = ctx.span(&pair);
    let mut axes = Vec::new();
    let mut body = None;
    for p in pair.into_inner() {
        match p.as_rule() {
            Rule::axis => {
                let mut a = p.into_inner();
                let name = parse_ident(ctx, a.next()?);
                let values = parse_expr_pair(ctx, a.next()?);
                axes.push(Axis { name, values });
            }
            _ => body = Some(Box::new(parse_expr_pair(ctx, p))),
        }
    }
    Some(Expr { kind: ExprKind::Sweep { axes, body: body? }, span })
}

fn parse_def(ctx: &mut Ctx, pair: Pair<Rule>) -> Option<StmtKind> {
    let mut inner = pair.into_inner().peekable();
    let name = parse_ident(ctx, inner.next()?);
    let mut params = Vec::new();
    let mut body = None;
    for p in inner {
        match p.as_rule() {
            Rule::param => {
                let mut pi = p.into_inner();
                let pname = parse_ident(ctx, pi.next()?);
                let default = parse_expr_pair(ctx, pi.next()?);
                params.push(Param { name: pname, default });
            }
            _ => body = Some(parse_expr_pair(ctx, p)),
        }
    }
    Some(StmtKind::Def { name, params, body: body? })
}

fn parse_profile(ctx: &mut Ctx, pair: Pair<Rule>) -> Option<StmtKind> {
    let mut inner = pair.into_inner();
    let name = parse_ident(ctx, inner.next()?);
    let mut assigns = Vec::new();
    for a in inner {
        let span = ctx.span(&a);
        let mut ai = a.into_inner();
        let path = parse_path(ctx, ai.next()?);
        let value = parse_expr_pair(ctx, ai.next()?);
        assigns.push(Assign { path, value, span });
    }
    Some(StmtKind::Profile { name, assigns })
}

fn parse_path(ctx: &mut Ctx, pair: Pair<Rule>) -> Path {
    let span = ctx.span(&pair);
    let segments = pair.into_inner().map(|p| parse_ident(ctx, p)).collect();
    Path { segments, span }
}

fn parse_ident(ctx: &mut Ctx, pair: Pair<Rule>) -> Ident {
    Ident { name: pair.as_str().to_string(), span: ctx.span(&pair) }
}

fn parse_expr_pair(ctx: &mut Ctx, pair: Pair<Rule>) -> Expr {
    let operators = pair
        .clone()
        .into_inner()
        .filter(|p| matches!(p.as_rule(), Rule::pipe | Rule::add | Rule::sub | Rule::mul | Rule::div | Rule::neg))
        .count();
    if operators > MAX_OPERATORS {
        let span = ctx.span(&pair);
        ctx.diags.push(
            Diag::new(Code::E0001, format!("expression with {operators} operators (at most {MAX_OPERATORS})"))
                .at(span, "too long")
                .hint("split it into several `let` statements or `def`s"),
        );
        return Expr { kind: ExprKind::Invalid, span };
    }
    let pairs = pair.into_inner();
    // The Pratt closures need shared access to the context; collect diagnostics in a cell.
    let cell = std::cell::RefCell::new(&mut *ctx);

    pratt()
        .map_primary(|p| {
            let mut c = cell.borrow_mut();
            parse_primary(&mut c, p)
        })
        .map_prefix(|op, rhs| {
            let c = cell.borrow();
            let s = c.span(&op).to(rhs.span);
            Expr { kind: ExprKind::Neg(Box::new(rhs)), span: s }
        })
        .map_postfix(|lhs, op| {
            let mut c = cell.borrow_mut();
            let s = lhs.span.to(c.span(&op));
            let field = match op.into_inner().next() {
                Some(f) => parse_ident(&mut c, f),
                None => Ident { name: String::new(), span: s },
            };
            Expr { kind: ExprKind::Member { base: Box::new(lhs), field }, span: s }
        })
        .map_infix(|lhs, op, rhs| {
            let op = match op.as_rule() {
                Rule::pipe => BinOp::Pipe,
                Rule::add => BinOp::Add,
                Rule::sub => BinOp::Sub,
                Rule::mul => BinOp::Mul,
                _ => BinOp::Div,
            };
            let s = lhs.span.to(rhs.span);
            Expr { kind: ExprKind::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs) }, span: s }
        })
        .parse(pairs)
}

/// E0004, the one diagnostic for a number literal beyond its type: a float beyond f64 (found
/// here), or an integer beyond i64 where an integer is meant (found by the checker, since a
/// large integer is fine where a float is expected).
pub fn out_of_range(text: &str, span: Span) -> Diag {
    let integer = !text.contains(['.', 'e', 'E']);
    Diag::new(Code::E0004, format!("number `{text}` is out of range"))
        .at(span, if integer { "does not fit in 64 bits" } else { "not a finite 64-bit float" })
        .hint("integers go up to 9223372036854775807 and floats to about 1.8e308; where a large number is meant, write a float such as `1e20`")
}

fn parse_primary(ctx: &mut Ctx, pair: Pair<Rule>) -> Expr {
    let span = ctx.span(&pair);
    let kind = match pair.as_rule() {
        Rule::int => match pair.as_str().parse::<i64>() {
            Ok(v) => ExprKind::Int(v),
            Err(_) => ExprKind::BigInt(pair.as_str().to_string()),
        },
        Rule::float => match pair.as_str().parse::<f64>() {
            Ok(v) if v.is_finite() => ExprKind::Float(v),
            _ => {
                ctx.diags.push(out_of_range(pair.as_str(), span));
                ExprKind::Invalid
            }
        },
        Rule::string => ExprKind::Str(pair.into_inner().next().map(|p| unescape(p.as_str())).unwrap_or_default()),
        Rule::unterminated_string => {
            ctx.diags.push(
                Diag::new(Code::E0003, "string is not closed")
                    .at(span, "this string has no closing `\"` on its line")
                    .hint("add a `\"` at the end of the string"),
            );
            ExprKind::Str(pair.as_str().trim_start_matches('"').to_string())
        }
        Rule::boolean => ExprKind::Bool(pair.as_str() == "true"),
        Rule::none => ExprKind::None,
        Rule::list => ExprKind::List(pair.into_inner().map(|p| parse_expr_pair(ctx, p)).collect()),
        Rule::ident => ExprKind::Ident(pair.as_str().to_string()),
        Rule::paren => match pair.into_inner().next() {
            Some(p) => ExprKind::Paren(Box::new(parse_expr_pair(ctx, p))),
            None => ExprKind::None,
        },
        Rule::call => {
            let mut inner = pair.into_inner();
            let callee = match inner.next() {
                Some(p) => parse_ident(ctx, p),
                None => Ident { name: String::new(), span },
            };
            let args = inner.map(|a| parse_arg(ctx, a)).collect();
            ExprKind::Call { callee, args }
        }
        _ => ExprKind::None,
    };
    Expr { kind, span }
}

fn parse_arg(ctx: &mut Ctx, pair: Pair<Rule>) -> Arg {
    let mut name = None;
    let mut value = None;
    for p in pair.into_inner() {
        match p.as_rule() {
            Rule::field_name => name = Some(parse_ident(ctx, p)),
            _ => value = Some(parse_expr_pair(ctx, p)),
        }
    }
    let value = value.unwrap_or(Expr { kind: ExprKind::None, span: Span::default() });
    Arg { name, value }
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The byte range of the first string in `text` whose line ends before its closing quote.
fn unclosed_string(text: &str) -> Option<(usize, usize)> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let mut open: Option<usize> = None;
        let mut escaped = false;
        for (i, c) in line.char_indices() {
            match open {
                Some(_) if escaped => escaped = false,
                Some(_) if c == '\\' => escaped = true,
                Some(_) if c == '"' => open = None,
                Some(_) => {}
                None if c == '#' => break,
                None if c == '"' => open = Some(i),
                None => {}
            }
        }
        if let Some(i) = open {
            return Some((offset + i, offset + line.trim_end().len()));
        }
        offset += line.len();
    }
    None
}

/// Turn a pest error into "expected X after `Y`, found `Z`".
fn syntax_error(ctx: &Ctx, err: &pest::error::Error<Rule>) -> Diag {
    if let Some((lo, hi)) = unclosed_string(ctx.text) {
        return Diag::new(Code::E0003, "string is not closed")
            .at(Span::new(ctx.file, ctx.offset + lo, ctx.offset + hi), "this string has no closing `\"` on its line")
            .hint("add a `\"` where the string should end");
    }
    let pos = match err.location {
        pest::error::InputLocation::Pos(p) => p,
        pest::error::InputLocation::Span((s, _)) => s,
    };
    let pos = pos.min(ctx.text.len());
    if let Some(d) = non_ascii_name(ctx, pos) {
        return d;
    }
    let mut expected: Vec<String> = Vec::new();
    if let pest::error::ErrorVariant::ParsingError { positives, .. } = &err.variant {
        for r in positives {
            if let Some(label) = rule_label(*r) {
                push_unique(&mut expected, label);
            }
        }
    }
    if let Some(attempts) = err.parse_attempts() {
        for t in attempts.expected_tokens() {
            // Literal tokens such as `)` or `=`; ranges and built-in rules are not shown.
            let token = t.to_string();
            if !token.is_empty() && token != "#" && token != "_" && token.chars().all(|c| c.is_ascii_punctuation()) {
                push_unique(&mut expected, format!("`{token}`"));
            }
        }
    }
    // A value is what is missing; drop the token-level noise of its alternatives.
    if expected.iter().any(|e| e == "a value") {
        expected.retain(|e| e == "a value" || !e.starts_with('`') || e == "`)`" || e == "`]`");
    }
    // After a complete value an operator could always follow; what the user most likely
    // missed is a separator or a closing bracket.
    const OPERATORS: [&str; 10] = ["an operator", "`.field`", "`*`", "`+`", "`-`", "`/`", "`|>`", "`.`", "`(`", "`:`"];
    let closers: Vec<String> = expected.iter().filter(|e| !OPERATORS.contains(&e.as_str())).cloned().collect();
    if closers.len() < expected.len() && !closers.is_empty() {
        expected = closers;
    }
    let found = found_token(ctx.text, pos);
    let prev = previous_token(ctx.text, pos);
    let what = match expected.len() {
        0 => "something else".to_string(),
        1 => expected[0].clone(),
        _ => {
            let last = expected.pop().unwrap_or_default();
            format!("{} or {}", expected.join(", "), last)
        }
    };
    let message = match &prev {
        Some(p) => format!("expected {what} after `{p}`"),
        None => format!("expected {what}"),
    };
    let lo = ctx.offset + pos;
    let hi = lo + found.as_ref().map(|f| f.len()).unwrap_or(0);
    let label = match &found {
        Some(f) => format!("found `{f}`"),
        None => "the statement ends here".to_string(),
    };
    let mut d = Diag::new(Code::E0001, message).at(Span::new(ctx.file, lo, hi), label);
    if let Some(h) = syntax_hint(prev.as_deref(), found.as_deref()) {
        d = d.hint(h);
    }
    d
}

/// A name with a letter outside ASCII (`let données`): names are ASCII, so say which
/// letter is the problem and offer the name without it.
fn non_ascii_name(ctx: &Ctx, pos: usize) -> Option<Diag> {
    let text = ctx.text;
    let c = text.get(pos..)?.chars().next()?;
    if c.is_ascii() || !c.is_alphanumeric() {
        return None;
    }
    let word_char = |c: char| c.is_alphanumeric() || c == '_';
    let lo = text[..pos].char_indices().rev().take_while(|(_, c)| word_char(*c)).last().map_or(pos, |(i, _)| i);
    let hi = pos + text[pos..].char_indices().find(|(_, c)| !word_char(*c)).map_or(text.len() - pos, |(i, _)| i);
    let word = &text[lo..hi];
    let folded: String = word.chars().map(ascii_fold).collect();
    let span = Span::new(ctx.file, ctx.offset + lo, ctx.offset + hi);
    let mut d = Diag::new(Code::E0001, format!("`{word}` is not a valid name: `{c}` is not an ASCII letter"))
        .at(span, "names use ASCII letters, digits and `_`");
    if !folded.is_empty() && folded.chars().next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_') {
        d = d.hint(format!("write `{folded}` instead"));
    } else {
        d = d.hint("rename it with ASCII letters, digits and `_`; strings (\"...\") may hold any text");
    }
    Some(d)
}

/// "statements start with `use`, `seed`, ... or `profile`".
fn statement_keywords_hint() -> String {
    let k: Vec<String> = super::chunks::KEYWORDS.iter().map(|k| format!("`{k}`")).collect();
    let (last, rest) = k.split_last().map(|(l, r)| (l.clone(), r.join(", "))).unwrap_or_default();
    format!("statements start with {rest} or {last}")
}

/// The first letter outside ASCII that is not inside a string or a comment.
fn first_non_ascii_letter(text: &str) -> Option<usize> {
    let mut quoted = false;
    let mut comment = false;
    let mut prev = ' ';
    for (i, c) in text.char_indices() {
        match c {
            '\n' => comment = false,
            _ if comment => {}
            '"' if prev != '\\' => quoted = !quoted,
            '#' if !quoted => comment = true,
            c if !quoted && !c.is_ascii() && c.is_alphanumeric() => return Some(i),
            _ => {}
        }
        prev = c;
    }
    None
}

/// The ASCII letters a Latin letter with a diacritic is usually written as.
fn ascii_fold(c: char) -> String {
    let s = match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' => "a",
        'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' | 'Ā' => "A",
        'æ' => "ae",
        'Æ' => "AE",
        'ç' | 'ć' | 'č' => "c",
        'Ç' | 'Ć' | 'Č' => "C",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ě' => "e",
        'È' | 'É' | 'Ê' | 'Ë' | 'Ē' | 'Ě' => "E",
        'ì' | 'í' | 'î' | 'ï' | 'ī' => "i",
        'Ì' | 'Í' | 'Î' | 'Ï' | 'Ī' => "I",
        'ñ' | 'ń' | 'ň' => "n",
        'Ñ' | 'Ń' | 'Ň' => "N",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' => "o",
        'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' | 'Ō' => "O",
        'œ' => "oe",
        'Œ' => "OE",
        'ß' => "ss",
        'š' | 'ś' => "s",
        'Š' | 'Ś' => "S",
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' => "u",
        'Ù' | 'Ú' | 'Û' | 'Ü' | 'Ū' | 'Ů' => "U",
        'ý' | 'ÿ' => "y",
        'Ý' => "Y",
        'ž' | 'ź' | 'ż' => "z",
        'Ž' | 'Ź' | 'Ż' => "Z",
        c if c.is_ascii() => return c.to_string(),
        _ => "",
    };
    s.to_string()
}

fn push_unique(v: &mut Vec<String>, s: String) {
    if !v.contains(&s) {
        v.push(s);
    }
}

fn rule_label(r: Rule) -> Option<String> {
    Some(
        match r {
            Rule::expr
            | Rule::float
            | Rule::int
            | Rule::string
            | Rule::boolean
            | Rule::none
            | Rule::list
            | Rule::call
            | Rule::paren
            | Rule::neg
            | Rule::unterminated_string => "a value",
            Rule::ident | Rule::path | Rule::field_name => "a name",
            Rule::module_path => "a module (`std.models` or \"file.flow\")",
            Rule::param => "a parameter `name: default`",
            Rule::assign => "an assignment `path = value`",
            Rule::arg => "an argument",
            Rule::sweep => "a sweep `sweep name in [values]: ...`",
            Rule::axis => "a swept parameter `name in [values]`",
            Rule::EOI => "the end of the statement",
            Rule::pipe | Rule::add | Rule::sub | Rule::mul | Rule::div => "an operator",
            Rule::member => "`.field`",
            _ => return None,
        }
        .to_string(),
    )
}

fn found_token(text: &str, pos: usize) -> Option<String> {
    let rest = text.get(pos..)?;
    let rest = rest.trim_end();
    let c = rest.chars().next()?;
    if c.is_alphanumeric() || c == '_' {
        Some(rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '.').collect())
    } else if rest.starts_with("|>") {
        Some("|>".into())
    } else {
        Some(c.to_string())
    }
}

fn previous_token(text: &str, pos: usize) -> Option<String> {
    let before = text.get(..pos)?;
    // Skip whitespace and whole-line comments backwards.
    let mut end = before.len();
    loop {
        let trimmed = before[..end].trim_end();
        end = trimmed.len();
        let line_start = trimmed.rfind('\n').map(|i| i + 1).unwrap_or(0);
        match crate::syntax::comments(&trimmed[line_start..]).first() {
            Some(c) => end = line_start + c.offset,
            None => break,
        }
        if end == 0 {
            return None;
        }
    }
    let trimmed = &before[..end];
    let c = trimmed.chars().last()?;
    if c == '"' {
        let open = trimmed[..trimmed.len() - 1].rfind('"')?;
        return Some(trimmed[open..].to_string());
    }
    if c.is_alphanumeric() || c == '_' {
        let start = trimmed
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_alphanumeric() || *c == '_' || *c == '.')
            .last()
            .map(|(i, _)| i)
            .unwrap_or(0);
        Some(trimmed[start..].to_string())
    } else if trimmed.ends_with("|>") {
        Some("|>".into())
    } else {
        Some(c.to_string())
    }
}

fn syntax_hint(prev: Option<&str>, found: Option<&str>) -> Option<String> {
    match (prev, found) {
        (Some(":"), _) => Some("write a value after `:`, e.g. `n: 1000`".into()),
        (Some("="), _) => Some("write a value after `=`".into()),
        (Some(","), None) => Some("remove the trailing `,` or add the missing value".into()),
        (_, Some("=")) => Some("arguments are written `name: value`, not `name = value`".into()),
        (_, None) => Some("a bracket may be missing: every `(`, `[` and `{` needs its closing partner".into()),
        (_, Some(f)) if f.chars().next().is_some_and(|c| c.is_alphanumeric()) => {
            Some("separate arguments and list items with `,`".into())
        }
        _ => None,
    }
}
