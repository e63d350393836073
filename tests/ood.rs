//! Out-of-distribution evaluation end to end on 2-D data: a flow fitted to two moons scores
//! points far from them as unlikely (AUROC near 1), the max-softmax baseline runs beside
//! it, the scores and histograms are written, and the checker refuses outlier sets of
//! another shape and labels that do not match the sets.

mod common;

use flowline::diag::Code;

fn run_src(src: &str) -> Result<flowline::Report, String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ood.flow");
    std::fs::write(&file, src).unwrap();
    common::run_file(&file, None, &dir.path().join("out"))
}

fn metric(r: &flowline::Report, stage: &str, key: &str) -> f64 {
    r.stages.iter().find(|s| s.name == stage).unwrap().metrics[key]
}

const SETS: &str = "use std.models\nuse std.flows\nseed 3\n\
    let data = toy2d(\"moons\", n: 1000, noise: 0.05)\n\
    let test = toy2d(\"moons\", n: 300, noise: 0.05, seed: 8)\n\
    let far = uniform(dims: 2, n: 300, low: 4.0, high: 6.0)\n\
    let around = uniform(dims: 2, n: 300, low: -3.0, high: 3.0)\n";

#[test]
fn a_flow_finds_far_points_unlikely_and_both_scores_are_reported() {
    let src = format!(
        "{SETS}let flow = train(toy_cnf(), data, iters: 150, batch: 200, optimizer: adam(lr: 1e-2))\n\
         let net = train(mlp(hidden: 32, classes: 2), data, iters: 300, batch: 64, optimizer: adam(lr: 1e-2))\n\
         let by_density = ood(flow, inliers: test, outliers: [far, around], labels: [\"far\", \"around\"])\n\
         let by_softmax = ood(net, inliers: test, outliers: [far, around])\n"
    );
    let r = run_src(&src).unwrap();
    // A density fitted to the moons puts next to no mass on [4, 6]^2.
    let far = metric(&r, "by_density", "far.auroc");
    assert!(far > 0.99, "far points' AUROC {far}");
    assert!(metric(&r, "by_density", "far.nll") > metric(&r, "by_density", "inliers.nll") + 5.0);
    let around = metric(&r, "by_density", "around.auroc");
    assert!(around > 0.7 && around <= far, "uniform around the moons: {around}");
    // The baseline's labels default to the sets' stage names.
    for key in ["far.auroc", "around.auroc", "inliers.one_minus_max_softmax"] {
        let v = metric(&r, "by_softmax", key);
        assert!((0.0..=1.0).contains(&v), "{key} = {v}");
    }
    let stage = r.stages.iter().find(|s| s.name == "by_density").unwrap();
    for file in ["ood.csv", "scores.csv", "histograms.png"] {
        assert!(stage.artifacts.iter().any(|a| a.ends_with(file)), "{file} in {:?}", stage.artifacts);
    }
}

fn codes(src: &str) -> Vec<Code> {
    common::check_codes(src)
}

#[test]
fn outliers_of_another_shape_and_miscounted_labels_are_refused() {
    let base = format!("{SETS}let flow = train(toy_cnf(), data, iters: 5)\nlet wide = uniform(dims: 3, n: 10)\n");
    assert_eq!(codes(&format!("{base}let o = ood(flow, inliers: test, outliers: [far, wide])\n")), vec![Code::E4001]);
    assert_eq!(
        codes(&format!("{base}let o = ood(flow, inliers: test, outliers: [far, around], labels: [\"far\"])\n")),
        vec![Code::E2003]
    );
    assert!(codes(&format!("{base}let o = ood(flow, inliers: test, outliers: [far], labels: [\"far\"])\n")).is_empty());
    // Flipping needs images; synthetic images need an image set to copy the shape of.
    assert_eq!(codes(&format!("{base}let f = flip(test)\n")), vec![Code::E4001]);
    assert_eq!(codes(&format!("{base}let n = noise_images(like: test)\n")), vec![Code::E4001]);
}
