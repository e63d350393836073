//! Diagnostics -> text through miette, without colour and at a fixed width so that
//! snapshots are stable.

use super::{Diag, SourceMap};
use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceCode};
use std::fmt;

struct Rendered<'a> {
    diag: &'a Diag,
    source: Option<NamedSource<String>>,
    help: Option<String>,
}

impl fmt::Debug for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.diag.message)
    }
}

impl fmt::Display for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.diag.message)
    }
}

impl std::error::Error for Rendered<'_> {}

impl miette::Diagnostic for Rendered<'_> {
    fn severity(&self) -> Option<miette::Severity> {
        Some(if self.diag.is_warning() { miette::Severity::Warning } else { miette::Severity::Error })
    }
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.diag.code.as_str()))
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h.clone()) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.source.as_ref().map(|s| s as &dyn SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = self.diag.span?;
        self.source.as_ref()?;
        let label = if self.diag.label.is_empty() { None } else { Some(self.diag.label.clone()) };
        let len = (span.hi - span.lo) as usize;
        Some(Box::new(std::iter::once(LabeledSpan::new(label, span.lo as usize, len))))
    }
}

/// Render one diagnostic. `width` fixes line wrapping; colour is never used.
pub fn render(diag: &Diag, sources: &SourceMap, width: usize) -> String {
    let source = diag.span.map(|s| {
        let f = sources.get(s.file);
        NamedSource::new(f.name.clone(), f.text.clone())
    });
    let help =
        if diag.hints.is_empty() { diag.code.default_hint().map(str::to_string) } else { Some(diag.hints.join("\n")) };
    let rendered = Rendered { diag, source, help };
    let handler = GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor()).with_width(width);
    let mut out = String::new();
    if handler.render_report(&mut out, &rendered).is_err() {
        let kind = if diag.is_warning() { "warning" } else { "error" };
        out = format!("{kind}[{}]: {}\n", diag.code.as_str(), diag.message);
    }
    out
}

pub fn render_all(diags: &[Diag], sources: &SourceMap, width: usize) -> String {
    diags.iter().map(|d| render(d, sources, width)).collect::<Vec<_>>().join("\n")
}
