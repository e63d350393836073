//! One attacked image's outcome and the summary of many: success, distances (a failure is an
//! infinite distance) and robust accuracy.

use crate::lang::Metrics;
use crate::robust::norms::Norm;

/// What became of one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The attack found an input, re-verified, that the model gets wrong.
    Broken,
    /// The attack found none.
    Failed,
    /// The model got the image wrong to begin with: not attacked.
    Misclassified,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Broken => "broken",
            Status::Failed => "failed",
            Status::Misclassified => "misclassified",
        }
    }
    pub fn parse(s: &str) -> Option<Status> {
        [Status::Broken, Status::Failed, Status::Misclassified].into_iter().find(|x| x.as_str() == s)
    }
}

/// `robust_0p5` for eps 0.5, `robust_0p0314` for 8/255: the radius to three significant
/// digits, `.` written `p`, a name member access can reach.
pub fn robust_metric(eps: f64) -> String {
    let rounded: f64 = format!("{eps:.2e}").parse().unwrap_or(eps);
    format!("robust_{}", format!("{rounded}").replace('.', "p"))
}

pub const SUMMARY: [&str; 16] = [
    "count",
    "attacked",
    "misclassified_at_start",
    "broken",
    "success_rate",
    "median",
    "mean",
    "mean_success",
    "median_l0",
    "median_l1",
    "median_l2",
    "median_linf",
    "gradients_per_image",
    "forwards_per_image",
    "calls_per_image",
    "seconds",
];

/// One image's outcome, a row of `adversarial.csv`.
pub struct Outcome {
    pub index: usize,
    pub label: usize,
    pub status: Status,
    pub adv_label: Option<usize>,
    /// l0, l1, l2, linf.
    pub dist: [f64; 4],
    /// The adversarial input, for a broken image.
    pub input: Option<Vec<f32>>,
    /// The image attacked.
    pub clean: Vec<f32>,
}

pub fn norm_column(norm: Norm) -> usize {
    match norm {
        Norm::L0 => 0,
        Norm::L1 => 1,
        Norm::L2 => 2,
        Norm::Linf => 3,
    }
}

/// The median; NaN for no values. Infinite values (failures) sort last.
pub fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 { v[m] } else { 0.5 * (v[m - 1] + v[m]) }
}

/// The mean; NaN for no values, infinite when one is.
pub fn mean(v: &[f64]) -> f64 {
    if v.is_empty() { f64::NAN } else { v.iter().sum::<f64>() / v.len() as f64 }
}

/// Success rate and distances over the attacked images (those correctly classified at the
/// start), a failed image counting as an infinite distance (the convention of foolbox and
/// the papers): an attack that fails on half the images has an infinite median, never the
/// median of the few it broke. `mean` is then infinite too, so `mean_success` gives the
/// mean over the broken images, labelled as such. Robust accuracy at each eps is over all
/// `count` images: correct at the start and not broken within eps.
pub fn summary(outcomes: &[Outcome], norm: Norm, eps: &[f64]) -> Metrics {
    let attacked: Vec<&Outcome> = outcomes.iter().filter(|o| o.status != Status::Misclassified).collect();
    let broken: Vec<&Outcome> = attacked.iter().copied().filter(|o| o.status == Status::Broken).collect();
    let all = |k: usize| -> Vec<f64> {
        attacked.iter().map(|o| if o.status == Status::Broken { o.dist[k] } else { f64::INFINITY }).collect()
    };
    let own = norm_column(norm);
    let mut m = Metrics::new();
    m.insert("count".into(), outcomes.len() as f64);
    m.insert("attacked".into(), attacked.len() as f64);
    m.insert("misclassified_at_start".into(), (outcomes.len() - attacked.len()) as f64);
    m.insert("broken".into(), broken.len() as f64);
    m.insert("success_rate".into(), broken.len() as f64 / attacked.len().max(1) as f64);
    m.insert("median".into(), median(&mut all(own)));
    m.insert("mean".into(), mean(&all(own)));
    m.insert("mean_success".into(), mean(&broken.iter().map(|o| o.dist[own]).collect::<Vec<_>>()));
    for (k, n) in Norm::ALL.iter().enumerate() {
        m.insert(format!("median_{}", n.name()), median(&mut all(k)));
    }
    for &e in eps {
        let survive = attacked.iter().filter(|o| o.status != Status::Broken || o.dist[norm_column(norm)] > e).count();
        m.insert(robust_metric(e), survive as f64 / outcomes.len().max(1) as f64);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(status: &str, l2: f64) -> Outcome {
        let status = Status::parse(status).unwrap();
        Outcome { index: 0, label: 0, status, adv_label: None, dist: [1.0, 1.0, l2, 1.0], input: None, clean: vec![] }
    }

    /// A failed image is an infinite distance: an attack breaking 2 of 5 images has an
    /// infinite median and mean, not the median of its two successes.
    #[test]
    fn failures_count_as_infinite_distances_in_medians_and_means() {
        let o = vec![
            outcome("broken", 0.5),
            outcome("broken", 1.5),
            outcome("failed", f64::INFINITY),
            outcome("failed", f64::INFINITY),
            outcome("failed", f64::INFINITY),
        ];
        let m = summary(&o, Norm::L2, &[]);
        assert_eq!(m["success_rate"], 0.4);
        assert_eq!(m["median"], f64::INFINITY);
        assert_eq!(m["median_l2"], f64::INFINITY);
        assert_eq!(m["mean"], f64::INFINITY);
        assert_eq!(m["mean_success"], 1.0);
        // With one failure in five the median is still finite: the third smallest distance.
        let o = vec![
            outcome("broken", 0.5),
            outcome("broken", 1.5),
            outcome("broken", 2.5),
            outcome("broken", 3.5),
            outcome("failed", f64::INFINITY),
        ];
        let m = summary(&o, Norm::L2, &[]);
        assert_eq!(m["median"], 2.5);
        assert_eq!(m["mean_success"], 2.0);
    }

    #[test]
    fn robust_metrics_are_named_by_three_significant_digits() {
        assert_eq!(robust_metric(0.25), "robust_0p25");
        assert_eq!(robust_metric(8.0 / 255.0), "robust_0p0314");
        assert_eq!(robust_metric(1.0), "robust_1");
        assert_eq!(robust_metric(0.1), "robust_0p1");
        assert_eq!(robust_metric(0.0), "robust_0");
    }

    /// Success and distances count attacked images only; robust accuracy is over all
    /// images, a misclassified one never counting as robust.
    #[test]
    fn summary_separates_images_misclassified_at_the_start() {
        let o = vec![
            outcome("broken", 0.5),
            outcome("broken", 1.5),
            outcome("broken", 2.5),
            outcome("failed", f64::INFINITY),
            outcome("misclassified", 0.0),
        ];
        let m = summary(&o, Norm::L2, &[1.0, 2.0]);
        assert_eq!(m["attacked"], 4.0);
        assert_eq!(m["misclassified_at_start"], 1.0);
        assert_eq!(m["success_rate"], 0.75);
        // The failed image sorts last: the median of 0.5, 1.5, 2.5, inf is 2.0.
        assert_eq!(m["median"], 2.0);
        assert_eq!(m["mean"], f64::INFINITY);
        assert_eq!(m["mean_success"], 1.5);
        // Within 1.0 only the 0.5 image is broken: 3 of 5 stay correct; within 2.0, 2 of 5.
        assert_eq!(m[&robust_metric(1.0)], 0.6);
        assert_eq!(m[&robust_metric(2.0)], 0.4);
        assert_eq!(robust_metric(0.25), "robust_0p25");
    }
}
