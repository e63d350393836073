//! Image sets used as out-of-distribution tests for a model of images in [0, 1]: the
//! same images inverted (1 - x) or flipped, and synthetic uniform noise or constant images
//! of the same shape (Nalisnick et al. 2019's tests of likelihood models).

use super::Dataset;
use crate::rng::Rng;

/// 1 - x for every pixel: MNIST becomes black digits on white.
pub fn invert(d: &Dataset) -> Dataset {
    Dataset { x: d.x.iter().map(|v| 1.0 - v).collect(), ..d.clone() }
}

/// Each image mirrored left-right (`vertical` false) or upside down (`vertical` true).
pub fn flip(d: &Dataset, vertical: bool) -> Result<Dataset, String> {
    let [c, h, w] = d.shape[..] else {
        return Err(format!("flipping needs images [channels, height, width], not shape {:?}", d.shape));
    };
    let mut x = Vec::with_capacity(d.x.len());
    for i in 0..d.n {
        let img = d.row(i);
        for ch in 0..c {
            for r in 0..h {
                for col in 0..w {
                    let (sr, sc) = if vertical { (h - 1 - r, col) } else { (r, w - 1 - col) };
                    x.push(img[ch * h * w + sr * w + sc]);
                }
            }
        }
    }
    Ok(Dataset { x, ..d.clone() })
}

/// n images of `shape` whose pixels are independent 8-bit levels drawn uniformly (k / 255).
pub fn noise_images(n: usize, shape: &[usize], rng: &mut Rng) -> Dataset {
    let d: usize = shape.iter().product();
    let x = (0..n * d).map(|_| ((rng.uniform() * 256.0).floor().min(255.0) / 255.0) as f32).collect();
    unlabelled(x, n, shape)
}

/// n images of `shape`, each one 8-bit level drawn uniformly for all its pixels.
pub fn constant_images(n: usize, shape: &[usize], rng: &mut Rng) -> Dataset {
    let d: usize = shape.iter().product();
    let mut x = Vec::with_capacity(n * d);
    for _ in 0..n {
        let v = ((rng.uniform() * 256.0).floor().min(255.0) / 255.0) as f32;
        x.extend(std::iter::repeat_n(v, d));
    }
    unlabelled(x, n, shape)
}

fn unlabelled(x: Vec<f32>, n: usize, shape: &[usize]) -> Dataset {
    Dataset { x, n, shape: shape.to_vec(), y: None, classes: None, names: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img() -> Dataset {
        Dataset {
            x: (0..12).map(|v| v as f32 / 11.0).collect(),
            n: 1,
            shape: vec![1, 3, 4],
            y: Some(vec![2]),
            classes: Some(10),
            names: None,
        }
    }

    #[test]
    fn flips_mirror_rows_or_columns_and_keep_labels() {
        let d = img();
        let lr = flip(&d, false).unwrap();
        assert_eq!(lr.row(0)[..4], [3.0 / 11.0, 2.0 / 11.0, 1.0 / 11.0, 0.0]);
        let ud = flip(&d, true).unwrap();
        assert_eq!(ud.row(0)[..4], [8.0 / 11.0, 9.0 / 11.0, 10.0 / 11.0, 1.0]);
        assert_eq!(flip(&lr, false).unwrap().x, d.x);
        assert_eq!(ud.y, Some(vec![2]));
        assert!(flip(&Dataset { shape: vec![12], ..d }, true).is_err());
    }

    #[test]
    fn inversion_maps_x_to_one_minus_x() {
        let d = invert(&img());
        assert_eq!(d.row(0)[0], 1.0);
        assert_eq!(d.row(0)[11], 0.0);
    }

    /// Noise pixels are 8-bit levels spread over [0, 1]; constant images have one level each.
    #[test]
    fn synthetic_sets_are_8_bit_levels_of_the_shape() {
        let mut rng = Rng::new(3);
        let noise = noise_images(50, &[1, 4, 4], &mut rng);
        assert_eq!((noise.n, noise.x.len()), (50, 800));
        assert!(noise.x.iter().all(|v| (0.0..=1.0).contains(v) && ((v * 255.0).round() - v * 255.0).abs() < 1e-4));
        let mean = noise.x.iter().sum::<f32>() / 800.0;
        assert!((mean - 0.5).abs() < 0.05, "{mean}");
        let flat = constant_images(20, &[1, 4, 4], &mut rng);
        for i in 0..20 {
            assert!(flat.row(i).iter().all(|v| *v == flat.row(i)[0]));
        }
        assert!(flat.y.is_none());
    }
}
