//! AUROC of an OOD score (higher = more out-of-distribution): the probability that a random
//! outlier scores above a random inlier, ties counting one half (the Mann-Whitney U
//! statistic over n_in n_out). 1 separates perfectly, 1/2 is chance, below 1/2 the
//! outliers look more in-distribution than the inliers.

/// AUROC of `outliers` against `inliers` by one sort of both, O((n + m) log(n + m)).
/// NaN scores are refused (None), as are empty sets.
pub fn auroc(inliers: &[f64], outliers: &[f64]) -> Option<f64> {
    if inliers.is_empty() || outliers.is_empty() || inliers.iter().chain(outliers).any(|v| v.is_nan()) {
        return None;
    }
    let mut all: Vec<(f64, bool)> =
        inliers.iter().map(|&v| (v, false)).chain(outliers.iter().map(|&v| (v, true))).collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Rank-sum of the outliers with tied groups given their mean rank (1-based).
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j + 1 < all.len() && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let mean_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += all[i..=j].iter().filter(|(_, out)| *out).count() as f64 * mean_rank;
        i = j + 1;
    }
    let (n_in, n_out) = (inliers.len() as f64, outliers.len() as f64);
    Some((rank_sum - n_out * (n_out + 1.0) / 2.0) / (n_in * n_out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// By hand: inliers {1, 2, 3}, outliers {2.5, 4}: of the six pairs the outlier is higher
    /// in 2 (2.5 > 1, 2) + 3 (4 > all) = 5, so 5/6. With a tie (outlier 2): 1 + 0.5 + 3 = 4.5.
    #[test]
    fn hand_computed_examples() {
        assert!((auroc(&[1.0, 2.0, 3.0], &[2.5, 4.0]).unwrap() - 5.0 / 6.0).abs() < 1e-15);
        assert!((auroc(&[1.0, 2.0, 3.0], &[2.0, 4.0]).unwrap() - 4.5 / 6.0).abs() < 1e-15);
        assert_eq!(auroc(&[0.0, 1.0], &[2.0, 3.0]), Some(1.0));
        assert_eq!(auroc(&[2.0, 3.0], &[0.0, 1.0]), Some(0.0));
        assert_eq!(auroc(&[1.0; 4], &[1.0; 3]), Some(0.5));
        assert_eq!(auroc(&[], &[1.0]), None);
        assert_eq!(auroc(&[1.0], &[f64::NAN]), None);
    }

    /// Against the definition (all pairs) on random scores with many ties.
    #[test]
    fn matches_the_pairwise_definition() {
        let mut rng = Rng::new(9);
        let draw = |rng: &mut Rng, n: usize, shift: f64| -> Vec<f64> {
            (0..n).map(|_| ((rng.normal() + shift) * 4.0).round() / 4.0).collect()
        };
        let (a, b) = (draw(&mut rng, 137, 0.0), draw(&mut rng, 91, 0.7));
        let mut pairs = 0.0;
        for x in &a {
            for y in &b {
                pairs += if y > x {
                    1.0
                } else if y == x {
                    0.5
                } else {
                    0.0
                };
            }
        }
        let want = pairs / (a.len() * b.len()) as f64;
        assert!((auroc(&a, &b).unwrap() - want).abs() < 1e-12);
    }
}
