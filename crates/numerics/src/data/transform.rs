//! Dataset transforms: downsampling, uniform dequantization and the logit transform (for
//! flows), and splitting.

use super::Dataset;
use crate::rng::Rng;

/// Average pooling by `factor` over the spatial dimensions (28x28 -> 14x14 for 2).
pub fn downsample(d: &Dataset, factor: usize) -> Result<Dataset, String> {
    let [c, h, w] = d.shape[..] else {
        return Err(format!("downsampling needs images [channels, height, width], not shape {:?}", d.shape));
    };
    if factor == 0 || h % factor != 0 || w % factor != 0 {
        return Err(format!("{h}x{w} images cannot be downsampled by {factor}"));
    }
    let (oh, ow) = (h / factor, w / factor);
    let norm = (factor * factor) as f32;
    let mut x = Vec::with_capacity(d.n * c * oh * ow);
    for i in 0..d.n {
        let img = d.row(i);
        for ch in 0..c {
            for r in 0..oh {
                for col in 0..ow {
                    let mut s = 0.0;
                    for dr in 0..factor {
                        for dc in 0..factor {
                            s += img[ch * h * w + (r * factor + dr) * w + col * factor + dc];
                        }
                    }
                    x.push(s / norm);
                }
            }
        }
    }
    Ok(Dataset { x, n: d.n, shape: vec![c, oh, ow], y: d.y.clone(), classes: d.classes, names: d.names.clone() })
}

/// Uniform dequantization of [0, 1] data with `levels` grey levels: (k + u) / levels with
/// k the level index and u ~ U[0, 1), so that a density on [0, 1] is well defined.
pub fn dequantize(d: &Dataset, levels: usize, rng: &mut Rng) -> Dataset {
    let l = levels.max(2) as f64;
    let x = d.x.iter().map(|&v| (((v as f64 * (l - 1.0)).round() + rng.uniform()) / l) as f32).collect();
    Dataset { x, ..d.clone() }
}

/// logit(alpha + (1 - 2 alpha) x), the usual pre-processing of images for flows (RealNVP).
pub fn logit(d: &Dataset, alpha: f64) -> Dataset {
    let x =
        d.x.iter()
            .map(|&v| {
                let p = alpha + (1.0 - 2.0 * alpha) * (v as f64).clamp(0.0, 1.0);
                (p / (1.0 - p)).ln() as f32
            })
            .collect();
    Dataset { x, ..d.clone() }
}

/// A seeded shuffle, then the first `fraction` of the examples and the rest.
pub fn split(d: &Dataset, fraction: f64, rng: &mut Rng) -> (Dataset, Dataset) {
    let order = rng.permutation(d.n);
    let k = ((d.n as f64) * fraction).round() as usize;
    let k = k.min(d.n);
    (d.subset(&order[..k]), d.subset(&order[k..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img() -> Dataset {
        Dataset {
            x: (0..16).map(|v| v as f32 / 16.0).collect(),
            n: 1,
            shape: vec![1, 4, 4],
            y: Some(vec![3]),
            classes: Some(10),
            names: None,
        }
    }

    #[test]
    fn downsample_averages_blocks() {
        let d = downsample(&img(), 2).unwrap();
        assert_eq!(d.shape, vec![1, 2, 2]);
        // top-left block: 0, 1, 4, 5 -> mean 2.5 / 16
        assert!((d.x[0] - 2.5 / 16.0).abs() < 1e-6);
        assert!(downsample(&img(), 3).is_err());
    }

    #[test]
    fn dequantize_stays_in_the_level_and_logit_inverts() {
        let mut rng = Rng::new(0);
        let d = img();
        let q = dequantize(&d, 256, &mut rng);
        for (a, b) in d.x.iter().zip(&q.x) {
            let k = (*a as f64 * 255.0).round();
            assert!((*b as f64) >= k / 256.0 && (*b as f64) < (k + 1.0) / 256.0);
        }
        let l = logit(&d, 0.05);
        for (a, y) in d.x.iter().zip(&l.x) {
            let back = (1.0 / (1.0 + (-(*y as f64)).exp()) - 0.05) / 0.9;
            assert!((back - *a as f64).abs() < 1e-5);
        }
    }

    #[test]
    fn split_partitions_the_examples() {
        let d = Dataset {
            x: (0..10).map(|v| v as f32).collect(),
            n: 10,
            shape: vec![1],
            y: Some((0..10).collect()),
            classes: Some(10),
            names: None,
        };
        let (a, b) = split(&d, 0.7, &mut Rng::new(1));
        assert_eq!((a.n, b.n), (7, 3));
        let mut all: Vec<u32> = a.y.unwrap().into_iter().chain(b.y.unwrap()).collect();
        all.sort();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
    }
}
