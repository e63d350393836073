//! Opening dataset files: a data directory, standard file names, `.gz` or raw, and errors
//! that name the file and what is wrong with it.

use flate2::read::GzDecoder;
use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq)]
pub enum DataError {
    /// None of the candidate files exists.
    Missing {
        tried: Vec<PathBuf>,
    },
    Io {
        path: PathBuf,
        message: String,
    },
    /// The bytes are not what the format says (magic number, truncation, counts).
    Format {
        path: PathBuf,
        message: String,
    },
}

impl std::fmt::Display for DataError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DataError::Missing { tried } => {
                let names: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
                write!(f, "data file not found; looked for {}", names.join(", "))
            }
            DataError::Io { path, message } => write!(f, "cannot read {}: {message}", path.display()),
            DataError::Format { path, message } => write!(f, "{}: {message}", path.display()),
        }
    }
}

pub fn format_error(path: &Path, message: impl Into<String>) -> DataError {
    DataError::Format { path: path.to_path_buf(), message: message.into() }
}

/// The first of `names` (each also tried with `.gz`) that exists under `dir`.
pub fn find(dir: &Path, names: &[&str]) -> Result<PathBuf, DataError> {
    let mut tried = Vec::new();
    for n in names {
        for candidate in [dir.join(n), dir.join(format!("{n}.gz"))] {
            if candidate.is_file() {
                return Ok(candidate);
            }
            tried.push(candidate);
        }
    }
    Err(DataError::Missing { tried })
}

/// No dataset file this reads is near this size unpacked (MNIST's training images are
/// 47 MB); a gzip stream that claims more is damaged or hostile.
const MAX_UNPACKED: u64 = 1 << 30;

/// The whole file, gunzipped when it is gzip (by its magic bytes, not its name).
pub fn read(path: &Path) -> Result<Vec<u8>, DataError> {
    let io = |e: std::io::Error| DataError::Io { path: path.to_path_buf(), message: e.to_string() };
    let raw = std::fs::read(path).map_err(io)?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        GzDecoder::new(&raw[..])
            .take(MAX_UNPACKED + 1)
            .read_to_end(&mut out)
            .map_err(|e| format_error(path, format!("corrupt gzip stream: {e}")))?;
        if out.len() as u64 > MAX_UNPACKED {
            return Err(format_error(path, "the gzip stream unpacks to more than 1 GiB: not a dataset file"));
        }
        Ok(out)
    } else {
        Ok(raw)
    }
}
