//! A stage call as the checker leaves it: a node of the stage graph, serialisable.

use super::family::MemberOf;
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
    /// For a stage made for one member of a sweep: its swept values, stream and seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<MemberOf>,
    /// What it asks of a cluster (`resources:`); the pipeline's defaults fill the rest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<super::resources::Resources>,
}

impl Node {
    /// The label of the stage's random stream: its name, or for a member of a sweep the name
    /// it would have without the sweep.
    pub fn stream(&self) -> &str {
        self.member.as_ref().map_or(&self.name, |m| &m.stream)
    }

    /// The seed its random stream starts from: a member's own, else the pipeline's.
    pub fn seed(&self, pipeline_seed: u64) -> u64 {
        self.member.as_ref().and_then(|m| m.seed).unwrap_or(pipeline_seed)
    }
}
