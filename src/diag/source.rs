//! Source files and byte spans into them.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, serde::Serialize, serde::Deserialize)]
pub struct Span {
    pub file: u32,
    pub lo: u32,
    pub hi: u32,
}

impl Span {
    pub fn new(file: u32, lo: usize, hi: usize) -> Self {
        Span { file, lo: lo as u32, hi: hi as u32 }
    }
    pub fn to(self, other: Span) -> Span {
        Span { file: self.file, lo: self.lo.min(other.lo), hi: self.hi.max(other.hi) }
    }
}

#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Name shown in diagnostics (a path, `<std>/models.flow`, or `<--set>`).
    pub name: String,
    /// Where the file lives on disk, for resolving relative imports.
    pub path: Option<PathBuf>,
    pub text: String,
}

#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, name: impl Into<String>, path: Option<&Path>, text: impl Into<String>) -> u32 {
        self.files.push(SourceFile { name: name.into(), path: path.map(Path::to_path_buf), text: text.into() });
        (self.files.len() - 1) as u32
    }

    pub fn get(&self, id: u32) -> &SourceFile {
        &self.files[id as usize]
    }

    pub fn text(&self, span: Span) -> &str {
        let text = &self.get(span.file).text;
        text.get(span.lo as usize..span.hi as usize).unwrap_or("")
    }

    /// 1-based line of a byte offset.
    pub fn line_of(&self, file: u32, offset: u32) -> usize {
        let text = &self.get(file).text;
        let end = (offset as usize).min(text.len());
        text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
    }

    pub fn find(&self, path: &Path) -> Option<u32> {
        self.files.iter().position(|f| f.path.as_deref() == Some(path)).map(|i| i as u32)
    }
}
