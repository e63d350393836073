//! Loading a pipeline and everything it imports: `use std.x` (embedded) and
//! `use "relative/path.flow"`. Missing modules and import cycles are diagnostics.

use crate::diag::{Code, Diag, SourceMap, Span, did_you_mean};
use crate::syntax::ast::{Program, StmtKind, UseTarget};
use crate::syntax::parse_program;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub struct Module {
    pub file: u32,
    pub program: Program,
}

pub struct Loaded {
    /// The entry file first, then its imports.
    pub modules: Vec<Module>,
    pub diags: Vec<Diag>,
}

/// Parse `entry` (already in `sources`) and, transitively, what it imports.
pub fn load(sources: &mut SourceMap, entry: u32) -> Loaded {
    let mut loader =
        Loader { sources, keys: HashMap::new(), stack: Vec::new(), modules: Vec::new(), diags: Vec::new() };
    let key = loader.key_of(entry);
    loader.keys.insert(key, entry);
    loader.visit(entry);
    let mut modules = loader.modules;
    // `visit` pushes imports before their importer; the entry is last.
    modules.reverse();
    Loaded { modules, diags: loader.diags }
}

struct Loader<'a> {
    sources: &'a mut SourceMap,
    keys: HashMap<String, u32>,
    stack: Vec<u32>,
    modules: Vec<Module>,
    diags: Vec<Diag>,
}

impl Loader<'_> {
    fn key_of(&self, file: u32) -> String {
        let f = self.sources.get(file);
        match &f.path {
            Some(p) => std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()).display().to_string(),
            None => f.name.clone(),
        }
    }

    fn visit(&mut self, file: u32) {
        self.stack.push(file);
        let text = self.sources.get(file).text.clone();
        let (program, diags) = parse_program(file, &text);
        self.diags.extend(diags);
        for stmt in &program.stmts {
            if let StmtKind::Use(target) = &stmt.kind
                && let Some(dep) = self.resolve(file, target, stmt.span)
            {
                if self.stack.contains(&dep) {
                    let chain: Vec<String> = self.stack[self.stack.iter().position(|&f| f == dep).unwrap_or(0)..]
                        .iter()
                        .chain(std::iter::once(&dep))
                        .map(|&f| self.sources.get(f).name.clone())
                        .collect();
                    self.diags.push(
                        Diag::new(Code::E1004, "import cycle")
                            .at(stmt.span, "this import leads back to the importing file")
                            .hint(format!("the cycle: {}", chain.join(" -> ")))
                            .hint("move the shared definitions into a module that both files import"),
                    );
                } else if !self.modules.iter().any(|m| m.file == dep) {
                    self.visit(dep);
                }
            }
        }
        self.stack.pop();
        self.modules.push(Module { file, program });
    }

    /// The file id of an import, loading its text the first time.
    fn resolve(&mut self, from: u32, target: &UseTarget, span: Span) -> Option<u32> {
        let (key, name, path, text) = match target {
            UseTarget::Std(path) => {
                let name = path.strip_prefix("std.").unwrap_or("");
                let Some(text) = crate::stdlib::get(name).filter(|_| path.starts_with("std.")) else {
                    let known: Vec<String> = crate::stdlib::names().map(|n| format!("std.{n}")).collect();
                    self.diags.push(
                        Diag::new(Code::E1003, format!("no module named `{path}`"))
                            .at(span, "unknown module")
                            .maybe_hint(
                                did_you_mean(path, known.iter().map(String::as_str))
                                    .map(|s| format!("did you mean `{s}`?")),
                            )
                            .hint(format!(
                                "standard modules: {}; files are imported as `use \"path/file.flow\"`",
                                known.join(", ")
                            )),
                    );
                    return None;
                };
                let name = format!("<std>/{name}.flow");
                (name.clone(), name, None, text.to_string())
            }
            UseTarget::File(rel) => {
                let base = self.sources.get(from).path.as_deref().and_then(Path::parent).map(Path::to_path_buf);
                let path: PathBuf = base.unwrap_or_default().join(rel);
                let key = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone()).display().to_string();
                if let Some(&id) = self.keys.get(&key) {
                    return Some(id);
                }
                match std::fs::read_to_string(&path) {
                    Ok(text) => (key, path.display().to_string(), Some(path), text),
                    Err(e) => {
                        self.diags.push(
                            Diag::new(Code::E1003, format!("cannot read module \"{rel}\""))
                                .at(span, format!("{}: {e}", path.display()))
                                .hint("paths are relative to the importing file"),
                        );
                        return None;
                    }
                }
            }
        };
        if let Some(&id) = self.keys.get(&key) {
            return Some(id);
        }
        let id = self.sources.add(name, path.as_deref(), text);
        self.keys.insert(key, id);
        Some(id)
    }
}
