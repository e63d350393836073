//! The syntax tree: what the user wrote, with a span on every node.

use crate::diag::Span;

#[derive(Debug, Clone)]
pub struct Program {
    pub file: u32,
    pub stmts: Vec<Stmt>,
}

#[derive(Debug, Clone)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum StmtKind {
    Use(UseTarget),
    /// The checker requires a non-negative integer.
    Seed(Expr),
    Let {
        name: Ident,
        value: Expr,
    },
    Def {
        name: Ident,
        params: Vec<Param>,
        body: Expr,
    },
    Report(Vec<Path>),
    Profile {
        name: Ident,
        assigns: Vec<Assign>,
    },
}

#[derive(Debug, Clone)]
pub enum UseTarget {
    /// `use std.flows`
    Std(String),
    /// `use "lib/mine.flow"`
    File(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct Param {
    pub name: Ident,
    pub default: Expr,
}

#[derive(Debug, Clone)]
pub struct Path {
    pub segments: Vec<Ident>,
    pub span: Span,
}

impl Path {
    pub fn dotted(&self) -> String {
        self.segments.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(".")
    }
}

#[derive(Debug, Clone)]
pub struct Assign {
    pub path: Path,
    pub value: Expr,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Pipe,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Pipe => "|>",
        }
    }
    /// Binding strength, used by the formatter to decide on parentheses.
    pub fn precedence(self) -> u8 {
        match self {
            BinOp::Pipe => 1,
            BinOp::Add | BinOp::Sub => 2,
            BinOp::Mul | BinOp::Div => 3,
        }
    }
}

/// One swept parameter: its name and the expression of its values (a list).
#[derive(Debug, Clone)]
pub struct Axis {
    pub name: Ident,
    pub values: Expr,
}

#[derive(Debug, Clone)]
pub struct Arg {
    pub name: Option<Ident>,
    pub value: Expr,
}

#[derive(Debug, Clone)]
pub enum ExprKind {
    Int(i64),
    /// An integer literal beyond 64 bits, kept as written: the checker decides, from the
    /// parameter it is given to, whether it is a float or out of range.
    BigInt(String),
    Float(f64),
    Str(String),
    Bool(bool),
    None,
    List(Vec<Expr>),
    Ident(String),
    Call {
        callee: Ident,
        args: Vec<Arg>,
    },
    Member {
        base: Box<Expr>,
        field: Ident,
    },
    Binary {
        op: BinOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    Neg(Box<Expr>),
    /// Kept so the formatter can round-trip explicit grouping.
    Paren(Box<Expr>),
    /// `sweep lam in [0, 0.1], seed in [1, 2]: body`: the body once per combination of the
    /// axes' values (the first axis varies slowest); the whole value of a `let`.
    Sweep {
        axes: Vec<Axis>,
        body: Box<Expr>,
    },
    /// Stands in for a statement that failed to parse; elaborates silently to nothing.
    Invalid,
}
