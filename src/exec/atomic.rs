//! Atomic writes: a temporary file in the same folder, then a rename, so a killed run
//! never leaves a half-written artifact under its final name. Files are created with the
//! usual mode 0666 less the umask (0644 under the common umask 022); a plain temporary
//! file would keep its private 0600 after the rename.

use crate::diag::{Code, Diag};
use std::io::Write;
use std::path::Path;

const WRITABLE: &str = "check that the output folder (`--out`) is writable and the disk is not full";

fn temp_builder() -> tempfile::Builder<'static, 'static> {
    let mut b = tempfile::Builder::new();
    b.prefix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        b.permissions(std::fs::Permissions::from_mode(0o666));
    }
    b
}

pub fn write(path: &Path, bytes: &[u8]) -> Result<(), Diag> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let fail =
        |e: std::io::Error| Diag::new(Code::R1001, format!("cannot write {}: {e}", path.display())).hint(WRITABLE);
    std::fs::create_dir_all(dir).map_err(fail)?;
    let mut tmp = temp_builder().tempfile_in(dir).map_err(fail)?;
    tmp.write_all(bytes).map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

/// Let `produce` write a file at a temporary path, then move it into place.
pub fn write_with(path: &Path, produce: impl FnOnce(&Path) -> Result<(), String>) -> Result<(), Diag> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let fail = |e: String| Diag::new(Code::R1001, format!("cannot write {}: {e}", path.display())).hint(WRITABLE);
    std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
    let tmp = temp_builder().tempfile_in(dir).map_err(|e| fail(e.to_string()))?;
    // The mode the builder gave (0666 less the umask): writers such as safetensors replace
    // the file with a private temporary of their own, so it is put back afterwards.
    let mode = tmp.as_file().metadata().map(|m| m.permissions()).map_err(|e| fail(e.to_string()))?;
    let tmp_path = tmp.into_temp_path();
    produce(&tmp_path).map_err(fail)?;
    std::fs::set_permissions(&tmp_path, mode).map_err(|e| fail(e.to_string()))?;
    tmp_path.persist(path).map_err(|e| fail(e.error.to_string()))?;
    Ok(())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// The process umask, as Linux reports it (no need to change it to read it).
    fn umask() -> u32 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("Umask:")).unwrap();
        u32::from_str_radix(line.split_whitespace().nth(1).unwrap(), 8).unwrap()
    }

    #[test]
    fn written_files_get_the_usual_mode_less_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let want = 0o666 & !umask();
        let a = dir.path().join("a.txt");
        write(&a, b"x").unwrap();
        let b = dir.path().join("b.bin");
        write_with(&b, |p| std::fs::write(p, b"y").map_err(|e| e.to_string())).unwrap();
        // A writer that replaces the file with its own private temporary (as safetensors does).
        let c = dir.path().join("c.safetensors");
        let t = candle_core::Tensor::zeros(2, candle_core::DType::F32, &candle_core::Device::Cpu).unwrap();
        let map = std::collections::HashMap::from([("t".to_string(), t)]);
        write_with(&c, |p| candle_core::safetensors::save(&map, p).map_err(|e| e.to_string())).unwrap();
        for p in [a, b, c] {
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, want, "{}: {mode:o}", p.display());
        }
    }
}
