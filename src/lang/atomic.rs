//! Atomic writes with the interpreter's diagnostics; the writing itself is the numerical
//! library's (`io`), which `data fetch` uses too.

use crate::diag::{Code, Diag};
use flowline_numerics::io;
use std::path::Path;

const WRITABLE: &str = "check that the output folder (`--out`) is writable and the disk is not full";

fn fail(path: &Path, e: impl std::fmt::Display) -> Diag {
    Diag::new(Code::R1001, format!("cannot write {}: {e}", path.display())).hint(WRITABLE)
}

pub fn write(path: &Path, bytes: &[u8]) -> Result<(), Diag> {
    io::write_atomic(path, bytes).map_err(|e| fail(path, e))
}

/// Let `produce` write a file at a temporary path, then move it into place.
pub fn write_with(path: &Path, produce: impl FnOnce(&Path) -> Result<(), String>) -> Result<(), Diag> {
    io::write_atomic_with(path, produce).map_err(|e| fail(path, e))
}
