//! Atomic writes: a temporary file in the same folder, then a rename, so a killed run
//! never leaves a half-written file under its final name. Files are created with the usual
//! mode 0666 less the umask (0644 under the common umask 022); a plain temporary file would
//! keep its private 0600 after the rename.

use std::io::Write;
use std::path::Path;

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

fn folder(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = folder(path);
    std::fs::create_dir_all(dir)?;
    let mut tmp = temp_builder().tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Let `produce` write a file at a temporary path, then move it into place.
pub fn write_atomic_with(path: &Path, produce: impl FnOnce(&Path) -> Result<(), String>) -> Result<(), String> {
    let dir = folder(path);
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let tmp = temp_builder().tempfile_in(dir).map_err(|e| e.to_string())?;
    // The mode the builder gave (0666 less the umask): writers such as safetensors replace
    // the file with a private temporary of their own, so it is put back afterwards.
    let mode = tmp.as_file().metadata().map(|m| m.permissions()).map_err(|e| e.to_string())?;
    let tmp_path = tmp.into_temp_path();
    produce(&tmp_path)?;
    std::fs::set_permissions(&tmp_path, mode).map_err(|e| e.to_string())?;
    tmp_path.persist(path).map_err(|e| e.error.to_string())?;
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
        write_atomic(&a, b"x").unwrap();
        let b = dir.path().join("b.bin");
        write_atomic_with(&b, |p| std::fs::write(p, b"y").map_err(|e| e.to_string())).unwrap();
        // A writer that replaces the file with its own private temporary (as safetensors does).
        let c = dir.path().join("c.safetensors");
        let t = candle_core::Tensor::zeros(2, candle_core::DType::F32, &candle_core::Device::Cpu).unwrap();
        let map = std::collections::HashMap::from([("t".to_string(), t)]);
        write_atomic_with(&c, |p| candle_core::safetensors::save(&map, p).map_err(|e| e.to_string())).unwrap();
        for p in [a, b, c] {
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, want, "{}: {mode:o}", p.display());
        }
    }
}
