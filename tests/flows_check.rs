//! The checker on flows: a CNF's field against the data, flows and classifiers kept apart
//! in `train` and `evaluate`, each mistake a diagnostic at the place it was written.

use flowline::CheckOptions;
use flowline::check::Checked;
use flowline::diag::{Code, Diag, SourceMap};

fn check(src: &str) -> Result<Checked, Vec<Diag>> {
    let mut sources = SourceMap::new();
    let id = sources.add("t.flow", None, src);
    flowline::check(&mut sources, id, &CheckOptions { profile: None, sets: vec![] })
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
    assert_eq!(found(&src), vec![(Code::E2005, "[kinetic(0.1)]".into())]);
    let src = with(&format!("let fit = train({flow}, data, loss: cross_entropy)\n"));
    assert_eq!(found(&src), vec![(Code::E2005, "cross_entropy".into())]);
    let src = with(&format!("let fit = train({flow}, data, valid: data)\n"));
    assert_eq!(found(&src), vec![(Code::E2014, "data".into())]);
    // A time-dependent layer in a classifier.
    let src = with("let fit = train(concat_squash(2, 8) |> linear(2), data)\n");
    assert_eq!(found(&src), vec![(Code::E2005, "concat_squash(2, 8)".into())]);
}

#[test]
fn a_flow_needs_vector_data_and_time_running_forward() {
    let src = "let data = mnist()\nlet fit = train(cnf(concat_squash(2, 8) |> concat_squash(8, 2), t1: 1), data)\n";
    assert_eq!(found(src), vec![(Code::E4001, "data".into())]);
    let src = with("let fit = train(cnf(concat_squash(2, 8) |> concat_squash(8, 2), t0: 1, t1: 0.5), data)\n");
    assert_eq!(found(&src)[0].0, Code::E2006);
}
