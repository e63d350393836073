//! Atomic writes: a temporary file in the same folder, then a rename, so a killed run
//! never leaves a half-written artifact under its final name.

use crate::diag::{Code, Diag};
use std::io::Write;
use std::path::Path;

const WRITABLE: &str = "check that the output folder (`--out`) is writable and the disk is not full";

pub fn write(path: &Path, bytes: &[u8]) -> Result<(), Diag> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let fail =
        |e: std::io::Error| Diag::new(Code::R1001, format!("cannot write {}: {e}", path.display())).hint(WRITABLE);
    std::fs::create_dir_all(dir).map_err(fail)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
    tmp.write_all(bytes).map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

/// Let `produce` write a file at a temporary path, then move it into place.
pub fn write_with(path: &Path, produce: impl FnOnce(&Path) -> Result<(), String>) -> Result<(), Diag> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let fail = |e: String| {
        Diag::new(Code::R1001, format!("cannot write {}: {e}", path.display()))
            .hint("check that the output folder (`--out`) is writable and the disk is not full")
    };
    std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
    let tmp = tempfile::Builder::new().prefix(".tmp").tempfile_in(dir).map_err(|e| fail(e.to_string()))?;
    let tmp_path = tmp.into_temp_path();
    produce(&tmp_path).map_err(fail)?;
    tmp_path.persist(path).map_err(|e| fail(e.error.to_string()))?;
    Ok(())
}
