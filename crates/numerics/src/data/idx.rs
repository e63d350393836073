//! The IDX format of MNIST and its relatives: big-endian magic (0x0000, type 0x08 = u8,
//! rank), dimensions, then the bytes.

use super::files::{DataError, format_error, read};
use std::path::Path;

#[derive(Debug)]
pub struct Idx {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

pub fn parse(path: &Path, bytes: &[u8]) -> Result<Idx, DataError> {
    if bytes.len() < 4 {
        return Err(format_error(path, format!("truncated: {} bytes, not even an IDX header", bytes.len())));
    }
    if bytes[0] != 0 || bytes[1] != 0 || bytes[2] != 0x08 {
        return Err(format_error(
            path,
            format!(
                "wrong magic number {:02x}{:02x}{:02x}{:02x}: not an unsigned-byte IDX file (expected 000008xx)",
                bytes[0], bytes[1], bytes[2], bytes[3]
            ),
        ));
    }
    let rank = bytes[3] as usize;
    if rank == 0 || rank > 4 {
        return Err(format_error(path, format!("IDX rank {rank} is not 1 to 4")));
    }
    let header = 4 + 4 * rank;
    if bytes.len() < header {
        return Err(format_error(path, "truncated in the IDX header"));
    }
    let dims: Vec<usize> = (0..rank)
        .map(|i| u32::from_be_bytes([bytes[4 + 4 * i], bytes[5 + 4 * i], bytes[6 + 4 * i], bytes[7 + 4 * i]]) as usize)
        .collect();
    let want = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| format_error(path, "IDX dimensions overflow"))?;
    let have = bytes.len() - header;
    if have < want {
        return Err(format_error(
            path,
            format!("truncated: header announces {dims:?} ({want} bytes) but {have} bytes follow"),
        ));
    }
    Ok(Idx { dims, data: bytes[header..header + want].to_vec() })
}

/// Labels must name one of `classes` classes.
pub fn check_labels(path: &Path, labels: &[u32], classes: usize) -> Result<(), DataError> {
    match labels.iter().position(|&l| l as usize >= classes) {
        Some(i) => Err(format_error(
            path,
            format!("label {} of example {i} is not below {classes}, the number of classes", labels[i]),
        )),
        None => Ok(()),
    }
}

/// Images scaled to [0, 1], their per-example shape `[1, rows, cols]`, labels, count.
pub type Loaded = (Vec<f32>, Vec<usize>, Vec<u32>, usize);

pub fn load_pair(images: &Path, labels: &Path, limit: Option<usize>) -> Result<Loaded, DataError> {
    let img = parse(images, &read(images)?)?;
    let lab = parse(labels, &read(labels)?)?;
    if img.dims.len() != 3 {
        return Err(format_error(
            images,
            format!("expected images of rank 3 [n, rows, cols], found dimensions {:?}", img.dims),
        ));
    }
    if lab.dims.len() != 1 {
        return Err(format_error(labels, format!("expected labels of rank 1 [n], found dimensions {:?}", lab.dims)));
    }
    if img.dims.contains(&0) {
        return Err(format_error(
            images,
            format!("dimensions {:?}: an image file needs at least one image of at least one pixel", img.dims),
        ));
    }
    if img.dims[0] != lab.dims[0] {
        return Err(format_error(
            labels,
            format!("{} labels for {} images in {}: the counts must match", lab.dims[0], img.dims[0], images.display()),
        ));
    }
    let n = limit.map_or(img.dims[0], |l| l.min(img.dims[0]));
    let per = img.dims[1] * img.dims[2];
    let x = img.data[..n * per].iter().map(|&b| b as f32 / 255.0).collect();
    let y: Vec<u32> = lab.data[..n].iter().map(|&b| b as u32).collect();
    Ok((x, vec![1, img.dims[1], img.dims[2]], y, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(rank: u8, dims: &[u32]) -> Vec<u8> {
        let mut v = vec![0, 0, 8, rank];
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v
    }

    #[test]
    fn parses_and_rejects() {
        let p = Path::new("x");
        let mut ok = header(2, &[2, 3]);
        ok.extend_from_slice(&[1, 2, 3, 4, 5, 6]);
        let idx = parse(p, &ok).unwrap();
        assert_eq!(idx.dims, vec![2, 3]);
        assert_eq!(idx.data, vec![1, 2, 3, 4, 5, 6]);
        let mut bad = ok.clone();
        bad[2] = 0x0d;
        assert!(parse(p, &bad).unwrap_err().to_string().contains("wrong magic number"));
        assert!(parse(p, &ok[..ok.len() - 1]).unwrap_err().to_string().contains("truncated"));
        assert!(parse(p, &ok[..3]).unwrap_err().to_string().contains("truncated"));
    }
}
