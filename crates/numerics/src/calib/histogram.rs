//! A stored histogram of an uncertainty score: equal-mass bins fitted on calibration data,
//! each holding the fraction of its examples that were classified correctly. Looking up a
//! new example's score gives its calibrated probability of being correct.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Upper edges of every bin but the last (increasing); a score goes to the first bin whose
    /// edge is at least the score.
    pub edges: Vec<f64>,
    /// P(correct | bin) on the calibration data.
    pub correct: Vec<f64>,
    /// Calibration examples per bin.
    pub counts: Vec<usize>,
    /// The calibration data's overall fraction correct (the prior).
    pub prior: f64,
}

impl Histogram {
    /// Equal-mass bins over `scores` (at most `bins`; fewer where ties make quantiles
    /// coincide), with the fraction of `correct` examples in each.
    pub fn fit(scores: &[f64], correct: &[bool], bins: usize) -> Histogram {
        let mut sorted: Vec<f64> = scores.iter().copied().filter(|s| s.is_finite()).collect();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let mut edges: Vec<f64> = Vec::new();
        for b in 1..bins.max(1) {
            let at = (b * n) / bins;
            if at == 0 || at >= n {
                continue;
            }
            // The edge between two neighbours: a tie stays in one bin.
            let edge = sorted[at - 1];
            if edges.last().is_none_or(|&e| edge > e) && edge < sorted[n - 1] {
                edges.push(edge);
            }
        }
        let mut hist = Histogram {
            correct: vec![0.0; edges.len() + 1],
            counts: vec![0; edges.len() + 1],
            edges,
            prior: correct.iter().filter(|c| **c).count() as f64 / correct.len().max(1) as f64,
        };
        let mut hits = vec![0usize; hist.counts.len()];
        for (s, c) in scores.iter().zip(correct) {
            let b = hist.bin(*s);
            hist.counts[b] += 1;
            hits[b] += usize::from(*c);
        }
        hist.correct = hits
            .iter()
            .zip(&hist.counts)
            .map(|(h, n)| if *n > 0 { *h as f64 / *n as f64 } else { hist.prior })
            .collect();
        hist
    }

    /// The bin a score falls in (NaN and +inf to the last).
    pub fn bin(&self, score: f64) -> usize {
        if score.is_nan() {
            return self.edges.len();
        }
        self.edges.partition_point(|e| *e < score)
    }

    /// The calibrated probability that an example with this score is correct.
    pub fn probability(&self, score: f64) -> f64 {
        self.correct[self.bin(score)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_hold_equal_mass_and_ties_stay_together() {
        let scores: Vec<f64> = (0..100).map(|i| i as f64).collect();
        let correct: Vec<bool> = (0..100).map(|i| i < 30).collect();
        let h = Histogram::fit(&scores, &correct, 10);
        assert_eq!(h.counts, vec![10; 10]);
        assert_eq!(h.correct[..3], [1.0, 1.0, 1.0]);
        assert_eq!(h.correct[3..], [0.0; 7]);
        assert!((h.prior - 0.3).abs() < 1e-12);
        assert_eq!(h.bin(-5.0), 0);
        assert_eq!(h.bin(9.0), 0);
        assert_eq!(h.bin(9.5), 1);
        assert_eq!(h.bin(1e9), 9);
        // Many equal scores: fewer bins, never an empty one.
        let tied: Vec<f64> = (0..100).map(|i| if i < 80 { 0.0 } else { i as f64 }).collect();
        let h = Histogram::fit(&tied, &correct, 10);
        assert!(h.counts.iter().all(|c| *c > 0), "{:?}", h.counts);
        assert_eq!(h.counts[0], 80);
    }
}
