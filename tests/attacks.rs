//! Every attack on a small random convnet: each returned point lies in the bounds and is
//! misclassified when the model is run on it again through `predict_classes`, a code path
//! independent of the attacks' oracle; a top-2 attack moves the label out of the top two.

use candle_core::{Device, Tensor};
use flowline::nn::{Activation, LayerSpec, Net, predict_classes};
use flowline::rng::Rng;
use flowline::robust::attack::Attack;
use flowline::robust::cw::CwConfig;
use flowline::robust::ddn::DdnConfig;
use flowline::robust::ensemble::Ensemble;
use flowline::robust::fmn::FmnConfig;
use flowline::robust::logbarrier::LogBarrierConfig;
use flowline::robust::norms::Norm;
use flowline::robust::oracle::{Criterion, Oracle};
use flowline::robust::pgd::PgdConfig;
use flowline::robust::proxlogbarrier::ProxConfig;

fn small_convnet() -> (Net, Vec<Vec<f64>>) {
    let specs = vec![
        LayerSpec::Conv2d { input: None, out: 4, kernel: 3, stride: 1, pad: 1 },
        LayerSpec::Act(Activation::Relu),
        LayerSpec::MaxPool { kernel: 2, stride: 2 },
        LayerSpec::Flatten,
        LayerSpec::Linear { input: None, out: 5 },
    ];
    let mut rng = Rng::new(4);
    let net = Net::init(&specs, &[1, 8, 8], &mut rng, &Device::Cpu).unwrap();
    let xs = (0..6).map(|_| (0..64).map(|_| rng.uniform()).collect()).collect();
    (net, xs)
}

fn predictions(net: &Net, rows: &[Vec<f64>]) -> Vec<Vec<f32>> {
    rows.iter()
        .map(|r| {
            let t =
                Tensor::from_vec(r.iter().map(|v| *v as f32).collect::<Vec<_>>(), (1, 1, 8, 8), &Device::Cpu).unwrap();
            net.forward(&t).unwrap().flatten_all().unwrap().to_vec1().unwrap()
        })
        .collect()
}

fn attacks() -> Vec<(&'static str, Attack)> {
    let short = |norm| LogBarrierConfig { outer: 6, inner: 60, ..LogBarrierConfig::paper(norm) };
    let prox = |norm| ProxConfig { outer: 10, inner: 15, ..ProxConfig::paper(norm) };
    vec![
        ("logbarrier l2", Attack::LogBarrier(short(Norm::L2))),
        ("logbarrier linf", Attack::LogBarrier(short(Norm::Linf))),
        ("prox l0", Attack::ProxLogBarrier(prox(Norm::L0))),
        ("prox l1", Attack::ProxLogBarrier(prox(Norm::L1))),
        ("prox l2", Attack::ProxLogBarrier(prox(Norm::L2))),
        ("prox linf", Attack::ProxLogBarrier(prox(Norm::Linf))),
        (
            "pgd l2",
            Attack::Pgd(PgdConfig { norm: Norm::L2, steps: 20, restarts: 1, eps_max: Some(8.0), bisections: 8 }),
        ),
        (
            "pgd linf",
            Attack::Pgd(PgdConfig { norm: Norm::Linf, steps: 20, restarts: 1, eps_max: Some(1.0), bisections: 8 }),
        ),
        ("cw", Attack::CarliniWagner(CwConfig { steps: 100, ..CwConfig::default() })),
        ("ddn", Attack::Ddn(DdnConfig::default())),
        ("fmn l0", Attack::Fmn(FmnConfig::paper(Norm::L0))),
        ("fmn l1", Attack::Fmn(FmnConfig::paper(Norm::L1))),
        ("fmn l2", Attack::Fmn(FmnConfig::paper(Norm::L2))),
        ("fmn linf", Attack::Fmn(FmnConfig::paper(Norm::Linf))),
        (
            "prox l1 from fmn l1",
            Attack::Warm {
                start: Box::new(Attack::Fmn(FmnConfig::paper(Norm::L1))),
                refine: Box::new(Attack::ProxLogBarrier(prox(Norm::L1))),
            },
        ),
        (
            "logbarrier linf from pgd linf",
            Attack::Warm {
                start: Box::new(Attack::Pgd(PgdConfig::baseline(Norm::Linf, Some(1.0)))),
                refine: Box::new(Attack::LogBarrier(short(Norm::Linf))),
            },
        ),
        (
            "ensemble l2",
            Attack::Ensemble(Ensemble {
                norm: Norm::L2,
                members: vec![Attack::Ddn(DdnConfig::default()), Attack::Fmn(FmnConfig::paper(Norm::L2))],
            }),
        ),
    ]
}

#[test]
fn every_attack_returns_in_bounds_points_that_are_misclassified_when_rerun() {
    let (net, xs) = small_convnet();
    let flat: Vec<f32> = xs.iter().flatten().map(|v| *v as f32).collect();
    let labels: Vec<usize> =
        predict_classes(&net, &flat, &Device::Cpu).unwrap().into_iter().map(|v| v as usize).collect();
    let model = |t: &Tensor| net.forward_input_grad(t);
    let oracle = Oracle::new(&model, &[1, 8, 8], (0.0, 1.0), Criterion { top: 1 }, &Device::Cpu);
    for (name, attack) in attacks() {
        let mut rng = Rng::new(9);
        let found = attack.run(&oracle, &xs, &labels, &mut rng).unwrap();
        let broken: Vec<Vec<f64>> = found.iter().flatten().cloned().collect();
        assert!(broken.len() >= xs.len() - 1, "{name}: broke only {} of {}", broken.len(), xs.len());
        for (i, adv) in found.iter().enumerate() {
            let Some(adv) = adv else { continue };
            assert!(adv.iter().all(|v| (0.0..=1.0).contains(v)), "{name} image {i}: out of bounds");
            let flat: Vec<f32> = adv.iter().map(|v| *v as f32).collect();
            let pred = predict_classes(&net, &flat, &Device::Cpu).unwrap()[0] as usize;
            assert_ne!(pred, labels[i], "{name} image {i}: still classified as its label");
            let moved = Norm::L2.of(&adv.iter().zip(&xs[i]).map(|(a, b)| a - b).collect::<Vec<_>>());
            assert!(moved > 0.0, "{name} image {i}: did not move");
        }
    }
}

#[test]
fn a_top_2_attack_moves_the_label_out_of_the_top_two() {
    let (net, xs) = small_convnet();
    let clean = predictions(&net, &xs);
    let labels: Vec<usize> =
        clean.iter().map(|l| (0..l.len()).max_by(|&a, &b| l[a].total_cmp(&l[b])).unwrap()).collect();
    let model = |t: &Tensor| net.forward_input_grad(t);
    let oracle = Oracle::new(&model, &[1, 8, 8], (0.0, 1.0), Criterion { top: 2 }, &Device::Cpu);
    let attack = Attack::LogBarrier(LogBarrierConfig { outer: 6, inner: 60, ..LogBarrierConfig::paper(Norm::L2) });
    let found = attack.run(&oracle, &xs, &labels, &mut Rng::new(2)).unwrap();
    let found: Vec<(usize, Vec<f64>)> = found.into_iter().enumerate().filter_map(|(i, f)| f.map(|v| (i, v))).collect();
    assert!(found.len() >= xs.len() - 1);
    for (i, adv) in &found {
        let l = &predictions(&net, std::slice::from_ref(adv))[0];
        let above = l.iter().filter(|v| **v > l[labels[*i]]).count();
        assert!(above >= 2, "image {i}: only {above} classes above the label");
    }
}

/// Check, plan and run a pipeline given as text, into `out`.
fn run_source(src: &str, out: &std::path::Path) -> flowline::Report {
    let mut sources = flowline::diag::SourceMap::new();
    let id = sources.add("t.flow", None, src);
    let plan = flowline::check(&mut sources, id, &flowline::CheckOptions::default()).and_then(flowline::plan).unwrap();
    let opts = flowline::exec::RunOptions { out: out.to_path_buf(), quiet: true, ..Default::default() };
    flowline::run(&plan, &opts).unwrap()
}

/// Attacks on unbounded 2-D data (two moons spread over about [-1, 2] x [-0.5, 1]): with
/// `bounds: none` every point is broken; forcing the old default box [0, 1]^2 on the same
/// data leaves most points out of reach, which is why the box must now be given.
#[test]
fn attacks_on_unbounded_data_break_every_point_only_without_a_wrong_box() {
    let src = "use std.models\nseed 2\nlet data = toy2d(\"moons\", n: 400, noise: 0.1)\n\
        let fit = train(mlp(hidden: 32, classes: 2), data, optimizer: adam(lr: 1e-2), epochs: 20)\n\
        let free = attack(fit, data, using: pgd(norm: l2, eps_max: 4.0), count: 16, only_correct: true, bounds: none)\n\
        let lb = attack(fit, data, using: logbarrier(norm: l2, outer: 4, inner: 50), count: 16, only_correct: true, bounds: none)\n\
        let boxed = attack(fit, data, using: pgd(norm: l2), count: 16, only_correct: true, bounds: [0.0, 1.0])\n";
    let out = tempfile::tempdir().unwrap();
    let r = run_source(src, out.path());
    let m = |name: &str| r.stages.iter().find(|s| s.name == name).unwrap().metrics.clone();
    assert_eq!(m("free")["success_rate"], 1.0, "{:?}", m("free"));
    assert_eq!(m("lb")["success_rate"], 1.0, "{:?}", m("lb"));
    assert!(m("free")["median"].is_finite());
    assert!(m("boxed")["success_rate"] < 1.0, "{:?}", m("boxed"));
    assert_eq!(m("boxed")["median"].is_infinite(), m("boxed")["success_rate"] <= 0.5);
}

/// An ensemble through the language: it breaks every point, its members' wins add up to
/// the points broken, it is never above its best member run alone on the same points
/// (`fmn(l2)` as a stage of its own draws no random numbers, so it reproduces the member),
/// and `attack_report` puts it beside the single attacks with their wins and calls.
#[test]
fn an_ensemble_keeps_its_best_member_and_the_report_counts_wins_and_calls() {
    let src = "use std.models\nseed 2\nlet data = toy2d(\"moons\", n: 400, noise: 0.1)\n\
        let fit = train(mlp(hidden: 32, classes: 2), data, optimizer: adam(lr: 1e-2), epochs: 20)\n\
        def on(using: ddn()) = attack(fit, data, using: using, count: 16, only_correct: true, bounds: none)\n\
        let fmn2 = on(using: fmn(norm: l2))\n\
        let ddn2 = on(using: ddn())\n\
        let ens = on(using: ensemble(attacks: [ddn(), fmn(norm: l2), prox_logbarrier(norm: l2, outer: 5, inner: 10, start: fmn(norm: l2))]))\n\
        let rep = attack_report([fmn2, ddn2, ens], labels: [\"fmn\", \"ddn\", \"ensemble\"])\n";
    let out = tempfile::tempdir().unwrap();
    let r = run_source(src, out.path());
    // A `def` call's stage is named after its `let` and the built-in it makes.
    let m = |name: &str| {
        let full = if name == "rep" { name.to_string() } else { format!("{name}.attack1") };
        r.stages.iter().find(|s| s.name == full).unwrap().metrics.clone()
    };
    let ens = m("ens");
    assert_eq!(ens["success_rate"], 1.0, "{ens:?}");
    let wins: f64 =
        ["ddn", "fmn_l2", "prox_logbarrier_l2_from_fmn_l2"].iter().map(|k| ens[&format!("members.{k}.wins")]).sum();
    assert_eq!(wins, ens["broken"]);
    assert!(ens["median"] <= m("fmn2")["median"], "{} vs {}", ens["median"], m("fmn2")["median"]);
    // The shared FMN start is not run twice: the ensemble costs less than its members would alone.
    let alone = m("fmn2")["calls_per_image"] + m("ddn2")["calls_per_image"];
    assert!(ens["members.prox_logbarrier_l2_from_fmn_l2.calls_per_image"] < ens["calls_per_image"] - alone * 0.9);
    let rep = m("rep");
    assert_eq!(rep["l2.fmn.median"], m("fmn2")["median"]);
    // Every image is won by one of the two (ties by both).
    assert!(rep["l2.fmn.wins"] + rep["l2.ddn.wins"] >= 16.0, "{rep:?}");
    assert!(!rep.contains_key("l2.ensemble.wins"));
    assert_eq!(rep["l2.ensemble.calls_per_image"], ens["calls_per_image"]);
    let md = std::fs::read_to_string(out.path().join("rep/report.md")).unwrap();
    assert!(md.contains("### Inside ensemble") && md.contains("prox_logbarrier(l2) from fmn(l2)"), "{md}");
}
