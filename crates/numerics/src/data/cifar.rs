//! CIFAR-10 binary batches: records of 1 label byte then 1024 R, 1024 G, 1024 B bytes.

use super::files::{DataError, format_error, read};
use std::path::Path;

const RECORD: usize = 1 + 3 * 32 * 32;

/// Appends the images (scaled to [0, 1], `[3, 32, 32]` each) and labels of one batch file.
pub fn load_batch(path: &Path, x: &mut Vec<f32>, y: &mut Vec<u32>) -> Result<(), DataError> {
    let bytes = read(path)?;
    if bytes.is_empty() || bytes.len() % RECORD != 0 {
        return Err(format_error(
            path,
            format!(
                "{} bytes is not a whole number of CIFAR-10 records of {RECORD} bytes (truncated or not a binary batch)",
                bytes.len()
            ),
        ));
    }
    for rec in bytes.chunks_exact(RECORD) {
        if rec[0] > 9 {
            return Err(format_error(path, format!("label {} is not a CIFAR-10 class (0-9)", rec[0])));
        }
        y.push(rec[0] as u32);
        x.extend(rec[1..].iter().map(|&b| b as f32 / 255.0));
    }
    Ok(())
}
