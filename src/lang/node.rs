//! A stage call as the checker leaves it: a node of the stage graph, serialisable.

use super::signature::Meta;
use super::value::{Args, Name};
use crate::diag::Span;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Node {
    /// The `let` name, or `let.argument` / `let.builtinN` for stages nested in expressions.
    pub name: String,
    /// The built-in called, by name (the registry has its behaviour).
    pub builtin: Name,
    pub args: Args,
    pub span: Span,
    pub meta: Meta,
    /// Nodes whose results this one uses.
    pub deps: Vec<usize>,
}
