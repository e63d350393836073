//! How predictive a stored histogram is on data it was not fitted on: the expected Bayes
//! ratio (Finlay & Oberman), the expected calibration error and the Brier score.

use super::histogram::Histogram;

/// p / (1 - p).
pub fn odds(p: f64) -> f64 {
    p / (1.0 - p)
}

/// max(O(p_bin) / O(prior), O(prior) / O(p_bin)), at most `cap` (a bin that is all correct
/// or all wrong has infinite odds). 1 where the prior says everything or nothing is correct.
pub fn bayes_ratio(p_bin: f64, prior: f64, cap: f64) -> f64 {
    if prior <= 0.0 || prior >= 1.0 {
        return 1.0;
    }
    let (a, b) = (odds(p_bin), odds(prior));
    let r = if a >= b { a / b } else { b / a };
    if r.is_finite() { r.min(cap) } else { cap }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    /// Mean over the examples of their bin's Bayes ratio.
    pub expected_bayes_ratio: f64,
    /// sum over bins of (share of examples) |fraction correct here - stored P(correct | bin)|.
    pub ece: f64,
    /// Mean of (stored P(correct | bin) - correct)^2.
    pub brier: f64,
    /// The examples' fraction correct.
    pub accuracy: f64,
}

/// The histogram's measures on (score, correct) pairs; it must not have been fitted on them.
pub fn score(hist: &Histogram, scores: &[f64], correct: &[bool], cap: f64) -> Scored {
    let n = scores.len().max(1) as f64;
    let bins = hist.counts.len();
    let (mut count, mut hits) = (vec![0usize; bins], vec![0usize; bins]);
    let (mut br, mut brier) = (0.0, 0.0);
    for (s, c) in scores.iter().zip(correct) {
        let b = hist.bin(*s);
        count[b] += 1;
        hits[b] += usize::from(*c);
        let p = hist.correct[b];
        br += bayes_ratio(p, hist.prior, cap);
        brier += (p - if *c { 1.0 } else { 0.0 }).powi(2);
    }
    let ece = (0..bins)
        .filter(|&b| count[b] > 0)
        .map(|b| count[b] as f64 / n * (hits[b] as f64 / count[b] as f64 - hist.correct[b]).abs())
        .sum();
    Scored {
        expected_bayes_ratio: br / n,
        ece,
        brier: brier / n,
        accuracy: correct.iter().filter(|c| **c).count() as f64 / n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn bayes_ratios_follow_the_odds() {
        // Prior 0.5 (odds 1): a bin at 0.8 has odds 4, one at 0.2 odds 1/4: both 4.
        assert!((bayes_ratio(0.8, 0.5, 100.0) - 4.0).abs() < 1e-12);
        assert!((bayes_ratio(0.2, 0.5, 100.0) - 4.0).abs() < 1e-12);
        // Prior 0.9 (odds 9), bin 0.99 (odds 99): 11.
        assert!((bayes_ratio(0.99, 0.9, 100.0) - 11.0).abs() < 1e-9);
        assert_eq!(bayes_ratio(1.0, 0.9, 50.0), 50.0);
        assert_eq!(bayes_ratio(0.0, 0.9, 50.0), 50.0);
        assert_eq!(bayes_ratio(0.3, 1.0, 50.0), 1.0);
    }

    /// Two bins by hand: calibration says 0.75 and 0.25 around a prior of 0.5; the test
    /// examples fall 3 and 1 in them.
    #[test]
    fn the_measures_match_a_hand_computation() {
        let hist = Histogram { edges: vec![0.5], correct: vec![0.75, 0.25], counts: vec![4, 4], prior: 0.5 };
        let scores = [0.1, 0.2, 0.3, 0.9];
        let correct = [true, true, false, false];
        let s = score(&hist, &scores, &correct, 100.0);
        // Every bin's ratio is 3 (odds 3 and 1/3 against 1).
        assert!((s.expected_bayes_ratio - 3.0).abs() < 1e-12);
        // Bin 0: 2 of 3 correct against 0.75; bin 1: 0 of 1 against 0.25.
        let ece = 0.75 * (2.0 / 3.0 - 0.75f64).abs() + 0.25 * 0.25;
        assert!((s.ece - ece).abs() < 1e-12);
        let brier = (0.25f64.powi(2) * 2.0 + 0.75f64.powi(2) + 0.25f64.powi(2)) / 4.0;
        assert!((s.brier - brier).abs() < 1e-12);
        assert_eq!(s.accuracy, 0.5);
    }

    /// Scores with a known P(correct | score) = 1 - s: the binned estimates converge to it,
    /// and a predictor calibrated by construction has an ECE near 0 on fresh draws.
    #[test]
    fn binned_estimates_converge_and_a_calibrated_predictor_has_no_calibration_error() {
        let draw = |n: usize, seed: u64| {
            let mut rng = Rng::new(seed);
            let s: Vec<f64> = (0..n).map(|_| rng.uniform()).collect();
            let c: Vec<bool> = s.iter().map(|s| rng.uniform() < 1.0 - s).collect();
            (s, c)
        };
        let mut worst = Vec::new();
        for n in [2_000, 200_000] {
            let (s, c) = draw(n, 1);
            let h = Histogram::fit(&s, &c, 20);
            let mut edges = vec![0.0];
            edges.extend(&h.edges);
            edges.push(1.0);
            let err = (0..h.correct.len())
                .map(|b| (h.correct[b] - (1.0 - 0.5 * (edges[b] + edges[b + 1]))).abs())
                .fold(0.0, f64::max);
            worst.push(err);
        }
        assert!(worst[1] < 0.01 && worst[1] < worst[0] / 3.0, "{worst:?}");
        let (s, c) = draw(200_000, 1);
        let h = Histogram::fit(&s, &c, 20);
        let (ts, tc) = draw(200_000, 2);
        let scored = score(&h, &ts, &tc, 100.0);
        assert!(scored.ece < 0.01, "{scored:?}");
    }
}
