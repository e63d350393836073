//! The checker on flows: a CNF's field against the data, flows and classifiers kept apart
//! in `train` and `evaluate`, each mistake a diagnostic at the place it was written.

use flowline::CheckOptions;
use flowline::check::Checked;
use flowline::diag::{Code, Diag, SourceMap};

fn check(src: &str) -> Result<Checked, Vec<Diag>> {
    let mut sources = SourceMap::new();
    let id = sources.add("t.flow", None, src);
    flowline::check(&mut sources, id, &CheckOptions { profile: None, sets: vec![], ..Default::default() })
}

/// The diagnostics' codes and the text each points at.
fn found(src: &str) -> Vec<(Code, String)> {
    check(src)
        .err()
        .unwrap_or_default()
        .iter()
        .map(|d| (d.code, d.span.map(|s| src[s.lo as usize..s.hi as usize].to_string()).unwrap_or_default()))
        .collect()
}

const DATA: &str = "let data = toy2d(\"moons\", n: 100)\n";

fn with(body: &str) -> String {
    format!("{DATA}{body}")
}

#[test]
fn a_flow_trains_and_evaluates_with_its_own_measures() {
    let src = with(
        "let flow = cnf(concat_squash(2, 8) |> tanh |> concat_squash(8, 2), t1: 0.5)\n\
         let fit = train(flow, data, regularizers: [kinetic(0.1), jacobian_frobenius(0.1)], iters: 3)\n\
         let score = evaluate(fit, data, metrics: [nll, bits_per_dim, nfe])\n\
         let look = density_plot(fit)\nreport score, fit.nfe_forward, look\n",
    );
    let c = check(&src).unwrap_or_else(|d| panic!("{d:?}"));
    assert_eq!(c.nodes.len(), 4);
}

#[test]
fn a_field_that_does_not_return_the_state_width_is_shown_at_its_layer() {
    let src = with("let fit = train(cnf(concat_squash(2, 8) |> tanh |> concat_squash(8, 3), t1: 1), data)\n");
    assert_eq!(found(&src), vec![(Code::E4001, "concat_squash(8, 3)".into())]);
    let src = with("let fit = train(cnf(concat_squash(3, 8) |> tanh |> concat_squash(8, 2), t1: 1), data)\n");
    assert_eq!(found(&src), vec![(Code::E4001, "concat_squash(3, 8)".into())]);
    let src = with("let fit = train(cnf(concat_squash(2, 8) |> tanh |> tanh |> concat_squash(8, 2), t1: 1), data)\n");
    assert_eq!(found(&src)[0].0, Code::E4001);
    let src = with("let fit = train(cnf(linear(8) |> tanh |> concat_squash(8, 2), t1: 1), data)\n");
    assert_eq!(found(&src), vec![(Code::E4001, "linear(8)".into())]);
}

#[test]
fn the_input_width_of_a_time_dependent_layer_is_inferred() {
    let src = with("let fit = train(cnf(concat_squash(16) |> softplus |> concat_linear(2), t1: 1), data)\n");
    check(&src).unwrap_or_else(|d| panic!("{d:?}"));
}

#[test]
fn flows_and_classifiers_do_not_mix() {
    let flow = "cnf(concat_squash(2, 8) |> tanh |> concat_squash(8, 2), t1: 0.5)";
    // A flow's measures on a classifier, and a classifier's on a flow (the default).
    let src = with("let fit = train(linear(2), data)\nlet s = evaluate(fit, data, metrics: [nll])\n");
    assert_eq!(found(&src), vec![(Code::E2005, "[nll]".into())]);
    let src = with(&format!("let fit = train({flow}, data)\nlet s = evaluate(fit, data)\n"));
    assert_eq!(found(&src)[0].0, Code::E2005);
    // Losses, regularizers and classifier-only arguments.
    let src = with("let fit = train(linear(2), data, loss: nll)\n");
    assert_eq!(found(&src), vec![(Code::E2005, "nll".into())]);
    let src = with("let fit = train(linear(2), data, regularizers: [kinetic(0.1)])\n");
    assert_eq!(found(&src), vec![(Code::E2005, "kinetic(0.1)".into())]);
    let src = with(&format!("let fit = train({flow}, data, regularizers: [input_gradient(0.1)])\n"));
    assert_eq!(found(&src), vec![(Code::E2005, "input_gradient(0.1)".into())]);
    let src = with(&format!("let fit = train({flow}, data, loss: cross_entropy)\n"));
    assert_eq!(found(&src), vec![(Code::E2005, "cross_entropy".into())]);
    let src = with(&format!("let fit = train({flow}, data, valid: data)\n"));
    assert_eq!(found(&src), vec![(Code::E2014, "data".into())]);
    // A time-dependent layer in a classifier.
    let src = with("let fit = train(concat_squash(2, 8) |> linear(2), data)\n");
    assert_eq!(found(&src), vec![(Code::E2005, "concat_squash(2, 8)".into())]);
}

#[test]
fn robust_training_terms_are_checked() {
    let ok = "let fit = train(linear(2), data, regularizers: [input_gradient(0.1, h: 0.001, norm: l1), adversarial(pgd(norm: linf, steps: 3), eps: 0.1, mode: join)])\n";
    check(&with(ok)).unwrap_or_else(|d| panic!("{d:?}"));
    let src = with("let fit = train(linear(2), data, regularizers: [input_gradient(0.1), input_gradient(1.0)])\n");
    assert_eq!(found(&src), vec![(Code::E2014, "input_gradient(1.0)".into())]);
    let src = with("let fit = train(linear(2), data, regularizers: [adversarial(cw(), eps: 0.1)])\n");
    assert_eq!(found(&src)[0].0, Code::E2005);
    let src = with(
        "let fit = train(linear(4) |> batchnorm |> linear(2), data, regularizers: [input_gradient(0.1, exact: true)])\n",
    );
    assert_eq!(found(&src), vec![(Code::E2005, "input_gradient(0.1, exact: true)".into())]);
    let src = with("let fit = train(linear(2), data, regularizers: [input_gradient(0.1, h: 0)])\n");
    assert_eq!(found(&src)[0].0, Code::E2006);
}

#[test]
fn a_flow_needs_time_running_forward() {
    let src = with("let fit = train(cnf(concat_squash(2, 8) |> concat_squash(8, 2), t0: 1, t1: 0.5), data)\n");
    assert_eq!(found(&src)[0].0, Code::E2006);
}

#[test]
fn image_flows_check_their_fields_layouts_and_pixels() {
    // A dense field on images is shown at its first layer.
    let src = "let data = mnist()\nlet fit = train(cnf(concat_squash(2, 8) |> concat_squash(8, 2), t1: 1), data)\n";
    assert_eq!(found(src), vec![(Code::E4001, "concat_squash(2, 8)".into())]);
    // A convolutional field back to the image's channel, chained, trained in bits/dim.
    let ok = "let data = mnist()\n\
              let fit = train(cnf(concat_conv2d(8) |> softplus |> concat_conv2d(1), t1: 1, blocks: 2), data, loss: bits_per_dim)\n\
              let s = evaluate(fit, data, metrics: [bits_per_dim, nfe])\nlet g = sample_grid(fit, count: 16)\n";
    check(ok).unwrap_or_else(|d| panic!("{d:?}"));
    // One that returns eight channels, and an even kernel.
    let src =
        "let data = mnist()\nlet fit = train(cnf(concat_conv2d(8) |> softplus |> concat_conv2d(4), t1: 1), data)\n";
    assert_eq!(found(src), vec![(Code::E4001, "concat_conv2d(4)".into())]);
    let src = "let data = mnist()\nlet fit = train(cnf(concat_conv2d(8, k: 2) |> concat_conv2d(1), t1: 1), data)\n";
    assert_eq!(found(src), vec![(Code::E4001, "concat_conv2d(8, k: 2)".into())]);
    // Multiscale: 28x28 takes three scales, 14x14 does not; vectors take none.
    check("let data = mnist()\nlet fit = train(multiscale_cnf(), data, loss: bits_per_dim)\n")
        .unwrap_or_else(|d| panic!("{d:?}"));
    let src = "let small = downsample(mnist(), factor: 2)\nlet fit = train(multiscale_cnf(scales: 3), small)\n";
    assert_eq!(found(src), vec![(Code::E4001, "small".into())]);
    assert_eq!(found(&with("let fit = train(multiscale_cnf(), data)\n")), vec![(Code::E4001, "data".into())]);
    // MRCNF: 14x14 takes two resolutions (7x7 and 14x14), not three; vectors take none.
    check("let small = downsample(mnist(), factor: 2)\nlet fit = train(mrcnf(scales: 2), small, loss: bits_per_dim)\n")
        .unwrap_or_else(|d| panic!("{d:?}"));
    let src = "let small = downsample(mnist(), factor: 2)\nlet fit = train(mrcnf(scales: 3), small)\n";
    assert_eq!(found(src), vec![(Code::E4001, "small".into())]);
    assert_eq!(found(&with("let fit = train(mrcnf(), data)\n")), vec![(Code::E4001, "data".into())]);
    // The flow takes pixels: not logit(...) of them.
    let src = "let data = logit(mnist())\nlet fit = train(cnf(concat_conv2d(8) |> concat_conv2d(1), t1: 1), data)\n";
    assert_eq!(found(src), vec![(Code::E4001, "data".into())]);
    // bits/dim is for images; the adjoint for single blocks on vectors.
    let flow = "cnf(concat_squash(2, 8) |> tanh |> concat_squash(8, 2), t1: 0.5";
    assert_eq!(
        found(&with(&format!("let fit = train({flow}), data, loss: bits_per_dim)\n"))),
        vec![(Code::E2005, "bits_per_dim".into())]
    );
    assert_eq!(
        found(&with(&format!("let fit = train({flow}, adjoint: true, blocks: 2), data)\n"))),
        vec![(Code::E2005, format!("{flow}, adjoint: true, blocks: 2)"))]
    );
}
