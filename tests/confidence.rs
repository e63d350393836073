//! Calibrated confidence end to end on two moons: histograms are fitted on the calibration
//! data only (a shifted test set shows in the calibration error), MC dropout needs dropout
//! layers, and the checker refuses to score histograms on the data they were fitted on.

mod common;

use flowline::diag::Code;

fn run_src(src: &str) -> Result<flowline::Report, String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("conf.flow");
    std::fs::write(&file, src).unwrap();
    common::run_file(&file, None, &dir.path().join("out"))
}

const MODEL: &str = "use std.models\nseed 2\nlet data = toy2d(\"moons\", n: 600, noise: 0.05)\n\
    let fit = train(mlp(hidden: 16, classes: 2), data, iters: 300, batch: 64, optimizer: adam(lr: 1e-2))\n";

fn metric(r: &flowline::Report, stage: &str, key: &str) -> f64 {
    r.stages.iter().find(|s| s.name == stage).unwrap().metrics[key]
}

/// Calibrated on clean moons (nearly all correct), tested on very noisy ones: the stored
/// probabilities are near 1, the test accuracy is not, and the calibration error says so.
/// Fitted on the test data instead, it would be near 0.
#[test]
fn histograms_are_fitted_on_calibration_data_only() {
    let src = format!(
        "{MODEL}let clean = toy2d(\"moons\", n: 1000, noise: 0.05, seed: 5)\nlet noisy = toy2d(\"moons\", n: 1000, noise: 0.6, seed: 6)\n\
         let conf = confidence(fit, calibration: clean, test: noisy, scores: [neg_log_pmax, entropy], bins: 5, k: [1])\n\
         let again = confidence(fit, calibration: noisy, test: clean, scores: [neg_log_pmax], bins: 5, k: [1])\n\
         let self_check = confidence(fit, calibration: noisy, test: toy2d(\"moons\", n: 1000, noise: 0.6, seed: 7), scores: [neg_log_pmax], bins: 5, k: [1])\n"
    );
    let r = run_src(&src).unwrap();
    let shifted = metric(&r, "conf", "neg_log_pmax_top1_ece");
    let matched = metric(&r, "self_check", "neg_log_pmax_top1_ece");
    assert!(metric(&r, "conf", "accuracy_top1") < 0.9, "the noisy moons should be hard");
    assert!(shifted > 0.1, "stored probabilities from clean data on noisy data: ECE {shifted}");
    assert!(matched < 0.05, "same distribution, fresh draws: ECE {matched}");
    assert!(metric(&r, "again", "neg_log_pmax_top1_ece") > 0.1);
    // A useful score is more predictive than the prior: E[BR] > 1.
    assert!(metric(&r, "self_check", "neg_log_pmax_top1_ebr") > 1.2);
}

#[test]
fn calibration_and_test_must_differ_and_mc_dropout_needs_dropout() {
    let src =
        format!("{MODEL}let conf = confidence(fit, calibration: data, test: data, scores: [neg_log_pmax], k: [1])\n");
    let mut sources = flowline::diag::SourceMap::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("conf.flow");
    std::fs::write(&file, &src).unwrap();
    let file_id = flowline::load(&mut sources, &file).unwrap();
    let diags = flowline::check::check_all_profiles(flowline::registry(), &mut sources, file_id, &[], &[]).unwrap_err();
    assert_eq!(diags.iter().map(|d| d.code).collect::<Vec<_>>(), vec![Code::E2006]);
    let src = format!(
        "{MODEL}let conf = confidence(fit, calibration: data, test: toy2d(\"moons\", n: 50), scores: [mc_dropout], k: [1])\n"
    );
    let Err(e) = run_src(&src) else { panic!("MC dropout ran on a model without dropout") };
    assert!(e.contains("MC dropout needs dropout layers"), "{e}");
}

/// -log of the top-1 mass is -log p_max: `confidence` stores it once, as `neg_log_pmax`, and
/// `confident_predict` asked for `neg_log_topk` at k = 1 reads that histogram.
#[test]
fn the_top1_mass_score_is_read_from_the_p_max_histogram() {
    let src = format!(
        "{MODEL}let held = toy2d(\"moons\", n: 400, noise: 0.3, seed: 8)\nlet halves = split(held, fraction: 0.5)\n\
         let conf = confidence(fit, calibration: halves.first, test: halves.second, scores: [neg_log_pmax, neg_log_topk], bins: 4, k: [1])\n\
         let by_mass = confident_predict(fit, histogram: conf, data: halves.second, score: neg_log_topk, k: 1)\n\
         let by_pmax = confident_predict(fit, histogram: conf, data: halves.second, score: neg_log_pmax, k: 1)\n"
    );
    let r = run_src(&src).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(metric(&r, "by_mass", "mean_probability"), metric(&r, "by_pmax", "mean_probability"));
}
