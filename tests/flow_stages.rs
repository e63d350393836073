//! Flow stages' numbers against each other on built-in data: one formula for bits per
//! dimension wherever it is reported.

mod common;

use common::{render, run_opts};
use flowline::CheckOptions;
use flowline::diag::SourceMap;

/// On vector data bits/dim is nll / (d ln 2) (no 8-bit levels): `flow_curves` reports it
/// over the same last tenth of iterations as `train`'s `final_nll`.
#[test]
fn flow_curves_bits_per_dim_of_a_vector_flow_is_nats_over_d_ln_2() {
    let src = "seed 3\nlet data = toy2d(\"moons\", n: 64)\n\
               let fit = train(cnf(concat_squash(8) |> tanh |> concat_squash(2), t1: 0.5), data, iters: 10, batch: 16)\n\
               let bits = flow_curves([fit], metric: bits_per_dim)\n";
    let mut sources = SourceMap::new();
    let id = sources.add("t.flow", None, src.to_string());
    let plan = flowline::check(&mut sources, id, &CheckOptions::default())
        .and_then(flowline::plan)
        .unwrap_or_else(|d| panic!("{}", render(&d, &sources)));
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = run_opts(tmp.path(), "t.flow");
    opts.quiet = true;
    let report = flowline::run(&plan, &opts).unwrap_or_else(|f| panic!("{}", render(&f.diags, &sources)));
    let metric = |stage: &str, name: &str| report.stages.iter().find(|s| s.name == stage).unwrap().metrics[name];
    let want = metric("fit", "final_nll") / (2.0 * std::f64::consts::LN_2);
    let got = metric("bits", "fit.bits_per_dim");
    assert!((got - want).abs() < 1e-9 * want.abs().max(1.0), "{got} vs {want}");
}
