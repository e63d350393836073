//! The UCI optical digits as scikit-learn ships them: CSV rows of 64 pixels (0-16) and a label.

use super::files::{DataError, format_error, read};
use std::path::Path;

pub fn load(path: &Path) -> Result<(Vec<f32>, Vec<u32>), DataError> {
    let bytes = read(path)?;
    let text = String::from_utf8(bytes).map_err(|_| format_error(path, "not UTF-8 text"))?;
    let mut x = Vec::new();
    let mut y = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != 65 {
            return Err(format_error(
                path,
                format!("line {}: {} fields, expected 64 pixels and a label", i + 1, fields.len()),
            ));
        }
        for f in &fields[..64] {
            let v: f32 = f.parse().map_err(|_| format_error(path, format!("line {}: `{f}` is not a number", i + 1)))?;
            if !(0.0..=16.0).contains(&v) {
                return Err(format_error(path, format!("line {}: pixel {v} outside 0..16", i + 1)));
            }
            x.push(v / 16.0);
        }
        let label: u32 = fields[64]
            .parse()
            .map_err(|_| format_error(path, format!("line {}: bad label `{}`", i + 1, fields[64])))?;
        if label > 9 {
            return Err(format_error(path, format!("line {}: label {label} is not a digit", i + 1)));
        }
        y.push(label);
    }
    if y.is_empty() {
        return Err(format_error(path, "no rows"));
    }
    Ok((x, y))
}
