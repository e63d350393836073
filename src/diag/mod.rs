//! Errors as data: a code, a message, a span and hints. Rendering happens at the edge
//! (`render.rs`), so the checker never formats terminal output.

mod codes;
mod render;
mod source;
mod suggest;

pub use codes::Code;
pub use render::{render, render_all};
pub use source::{SourceMap, Span};
pub use suggest::did_you_mean;

/// Errors stop a check or a stage; warnings are shown and recorded, and nothing stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Severity {
    #[default]
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Diag {
    pub code: Code,
    pub severity: Severity,
    pub message: String,
    pub span: Option<Span>,
    pub label: String,
    pub hints: Vec<String>,
}

impl Diag {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        let severity = if code.is_warning() { Severity::Warning } else { Severity::Error };
        Diag { code, severity, message: message.into(), span: None, label: String::new(), hints: Vec::new() }
    }

    /// A diagnostic that does not stop anything, whatever its code (an R2002 solve failure
    /// kept by `on_failure: "return"` is a warning).
    pub fn warning(code: Code, message: impl Into<String>) -> Self {
        Diag { severity: Severity::Warning, ..Diag::new(code, message) }
    }

    pub fn is_warning(&self) -> bool {
        self.severity == Severity::Warning
    }

    pub fn at(mut self, span: Span, label: impl Into<String>) -> Self {
        self.span = Some(span);
        self.label = label.into();
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }

    pub fn maybe_hint(self, hint: Option<String>) -> Self {
        match hint {
            Some(h) => self.hint(h),
            None => self,
        }
    }
}

impl std::fmt::Display for Diag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for Diag {}
