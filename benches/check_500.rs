//! parse + check + plan of a generated 500-stage pipeline (target: under 50 ms).
//! `cargo bench --bench check_500`

use flowline::CheckOptions;
use flowline::diag::SourceMap;
use std::time::Instant;

/// 100 groups of five stages: data, train, evaluate, scatter plot, decision plot.
fn pipeline(groups: usize) -> String {
    let mut s =
        String::from("use std.models\nseed 1\ndef net(h: 32) = linear(h) |> relu |> linear(h) |> tanh |> linear(2)\n");
    for i in 0..groups {
        s.push_str(&format!(
            "let d{i} = toy2d(\"moons\", n: {n}, noise: 0.1)\n\
             let f{i} = train(net(h: {h}), d{i}, optimizer: adam(lr: 1e-3 * 2), batch: 64, epochs: 3)\n\
             let e{i} = evaluate(f{i}, d{i}, metrics: [accuracy, loss])\n\
             let s{i} = scatter_plot(d{i})\n\
             let p{i} = decision_plot(f{i}, d{i}, grid: 50)\n",
            n = 100 + i,
            h = 16 + i % 8
        ));
    }
    s.push_str("report e0, f0.final_loss\nprofile smoke { f0.epochs = 1, d0.n = 50 }\n");
    s
}

fn main() {
    let text = pipeline(100);
    let mut times = Vec::new();
    let mut stages = 0;
    for _ in 0..30 {
        let start = Instant::now();
        let mut sources = SourceMap::new();
        let id = sources.add("bench.flow", None, text.clone());
        let plan = flowline::check(&mut sources, id, &CheckOptions::default()).and_then(flowline::plan);
        let plan = match plan {
            Ok(p) => p,
            Err(d) => panic!("{}", flowline::diag::render_all(&d, &sources, 100)),
        };
        times.push(start.elapsed().as_secs_f64() * 1e3);
        stages = plan.nodes().len();
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "parse+check+plan, {stages} stages, {} lines: median {median:.2} ms, min {:.2} ms, max {:.2} ms (30 runs)",
        text.lines().count(),
        times[0],
        times[times.len() - 1]
    );
}
