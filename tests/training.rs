//! Training machinery end to end: checkpoints and resume, validation, loading weights
//! written under another naming scheme.

mod common;

use flowline::CheckOptions;
use flowline::diag::SourceMap;
use std::path::Path;

fn run(src: &str, sets: &[String], out: &Path) -> flowline::Report {
    let mut sources = SourceMap::new();
    let id = sources.add("t.flow", None, src);
    let opts = CheckOptions { profile: None, sets: sets.to_vec(), ..Default::default() };
    let plan = match flowline::check(&mut sources, id, &opts).and_then(flowline::plan) {
        Ok(p) => p,
        Err(d) => panic!("{}", common::render(&d, &sources)),
    };
    flowline::run(&plan, &common::run_opts(out, "t.flow"))
        .unwrap_or_else(|f| panic!("{}", common::render(&f.diags, &sources)))
}

const PIPELINE: &str = "seed 3\nlet data = toy2d(\"circles\", n: 256)\n\
    let fit = train(linear(16) |> tanh |> linear(2), data, optimizer: adam(lr: 1e-2), batch: 32, iters: 40, checkpoint_every: 20)\n";

#[test]
fn resuming_from_a_checkpoint_reproduces_the_uninterrupted_run() {
    let a = tempfile::tempdir().unwrap();
    let full = run(PIPELINE, &[], a.path());
    let ckpt = a.path().join("fit/checkpoints/step_20.safetensors");
    assert!(ckpt.exists() && a.path().join("fit/checkpoints/step_40.yaml").exists());
    let b = tempfile::tempdir().unwrap();
    let resumed = run(PIPELINE, &[format!("fit.resume=\"{}\"", ckpt.display())], b.path());
    let final_loss = |r: &flowline::Report| r.stages.iter().find(|s| s.name == "fit").unwrap().metrics["final_loss"];
    assert_eq!(final_loss(&full), final_loss(&resumed));
    let wa = std::fs::read(a.path().join("fit/model.safetensors")).unwrap();
    let wb = std::fs::read(b.path().join("fit/model.safetensors")).unwrap();
    assert_eq!(wa, wb, "the resumed run ends with the same weights, bit for bit");
    let steps = resumed.stages.iter().find(|s| s.name == "fit").unwrap().metrics["steps"];
    assert_eq!(steps, 20.0);
}

/// A relative `resume:` path is read from the run folder, as the docs say, not from the
/// folder flowline was started in.
#[test]
fn a_relative_resume_path_is_read_from_the_run_folder() {
    let a = tempfile::tempdir().unwrap();
    let full = run(PIPELINE, &[], a.path());
    let resumed = run(PIPELINE, &["fit.resume=\"fit/checkpoints/step_20.safetensors\"".to_string()], a.path());
    let fit = |r: &flowline::Report| r.stages.iter().find(|s| s.name == "fit").unwrap().metrics.clone();
    assert_eq!(fit(&resumed)["steps"], 20.0);
    assert_eq!(fit(&full)["final_loss"], fit(&resumed)["final_loss"]);
}

#[test]
fn validation_keeps_the_best_model_and_writes_curves() {
    let src = "seed 1\nlet data = toy2d(\"moons\", n: 400)\nlet parts = split(data, fraction: 0.75)\n\
        let fit = train(linear(32) |> relu |> linear(2), parts.first, valid: parts.second, optimizer: sgd(lr: 0.1, momentum: 0.9),\n\
        schedule: cosine(), warmup: 5, clip: 1.0, batch: 50, epochs: 6, eval_every: 3, patience: 100)\n\
        let score = evaluate(fit, parts.second)\nreport score, fit.best_valid_accuracy\n";
    let out = tempfile::tempdir().unwrap();
    let r = run(src, &[], out.path());
    let fit = r.stages.iter().find(|s| s.name == "fit").unwrap();
    let best = fit.metrics["best_valid_accuracy"];
    let score = r.stages.iter().find(|s| s.name == "score").unwrap().metrics["accuracy"];
    assert_eq!(best, score, "the kept model is the best validated one");
    let csv = std::fs::read_to_string(out.path().join("fit/validation.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 6 * 6 / 3, "{csv}");
    let best = std::fs::read_to_string(out.path().join("fit/checkpoints/best.yaml")).unwrap();
    assert!(best.contains(&format!("valid_accuracy: {score}")), "{best}");
    for f in ["loss_curve.png", "accuracy_curve.png", "loss_curve.csv", "checkpoints/best.safetensors"] {
        assert!(out.path().join("fit").join(f).exists());
    }
}

#[test]
fn weights_with_pytorch_names_load_through_the_name_map() {
    let out = tempfile::tempdir().unwrap();
    run(PIPELINE, &[], out.path());
    // Re-save the trained weights as a PyTorch nn.Sequential inside a `net` attribute
    // would name them: net.0.weight, net.0.bias, net.2.weight, net.2.bias.
    let ours =
        candle_core::safetensors::load(out.path().join("fit/model.safetensors"), &candle_core::Device::Cpu).unwrap();
    let theirs: std::collections::HashMap<String, candle_core::Tensor> =
        ours.iter().map(|(k, v)| (k.replace("layers.", "net."), v.clone())).collect();
    let file = out.path().join("torch.safetensors");
    candle_core::safetensors::save(&theirs, &file).unwrap();
    let src = format!(
        "seed 3\nlet data = toy2d(\"circles\", n: 256)\nlet m = load_model(path: \"{}\", arch: linear(16) |> tanh |> linear(2), input: [2], prefix: \"net.\")\nlet score = evaluate(m, data)\n",
        file.display()
    );
    let fresh = tempfile::tempdir().unwrap();
    let r = run(&src, &[], fresh.path());
    let loaded = r.stages.iter().find(|s| s.name == "score").unwrap().metrics["loss"];
    let src2 = format!("{PIPELINE}let score = evaluate(fit, data)\n");
    let r2 = run(&src2, &[], out.path());
    let original = r2.stages.iter().find(|s| s.name == "score").unwrap().metrics["loss"];
    assert_eq!(loaded, original);
    // A wrong prefix is a runtime data error naming the file's tensors.
    let bad = src.replace("prefix: \"net.\"", "prefix: \"model.\"");
    let mut sources = SourceMap::new();
    let id = sources.add("t.flow", None, bad);
    let plan = flowline::check(&mut sources, id, &CheckOptions::default()).and_then(flowline::plan).unwrap();
    let err = flowline::run(&plan, &common::run_opts(fresh.path(), "t.flow")).err().unwrap().diags.remove(0);
    assert_eq!(err.code.as_str(), "R1002");
    assert!(err.hints.iter().any(|h| h.contains("net.0.weight")));
}

/// A neural ODE block inside a classifier trains (gradients flow through the solver) and
/// its field must keep the state's width.
#[test]
fn a_neural_ode_classifier_trains() {
    // Moons, not circles: a flow of the plane cannot pull nested circles apart.
    let src = "seed 2\nlet data = toy2d(\"moons\", n: 256)\n\
        let fit = train(neural_ode(linear(16) |> tanh |> linear(2), t1: 1.0, solver: rk4(step: 0.25)) |> linear(2), data,\n\
                  optimizer: adam(lr: 2e-2), batch: 64, iters: 100)\n";
    let out = tempfile::tempdir().unwrap();
    let r = run(src, &[], out.path());
    let curve = std::fs::read_to_string(out.path().join("fit/loss_curve.csv")).unwrap();
    let losses: Vec<f64> = curve.lines().skip(1).filter_map(|l| l.split(',').nth(1)?.parse().ok()).collect();
    let early: f64 = losses[..10].iter().sum::<f64>() / 10.0;
    let late: f64 = losses[losses.len() - 10..].iter().sum::<f64>() / 10.0;
    assert!(late < 0.6 * early, "loss should fall: {early} -> {late}");
    assert!(r.stages.iter().any(|s| s.name == "fit"));
    // The same through the language with the adjoint method.
    let adjoint = src.replace("rk4(step: 0.25))", "rk4(step: 0.25), adjoint: true)");
    assert_ne!(adjoint, src);
    let out2 = tempfile::tempdir().unwrap();
    let r2 = run(&adjoint, &[], out2.path());
    let fit2 = &r2.stages.iter().find(|s| s.name == "fit").unwrap().metrics;
    let fit1 = &r.stages.iter().find(|s| s.name == "fit").unwrap().metrics;
    assert!((fit1["final_loss"] - fit2["final_loss"]).abs() < 0.05, "{} vs {}", fit1["final_loss"], fit2["final_loss"]);

    let bad = "let data = toy2d(\"circles\")\nlet fit = train(neural_ode(linear(3)) |> linear(2), data)\n";
    let mut sources = SourceMap::new();
    let id = sources.add("t.flow", None, bad);
    let err = flowline::check(&mut sources, id, &CheckOptions::default()).err().unwrap();
    assert_eq!(err[0].code.as_str(), "E4001");
    assert!(err[0].message.contains("neural ODE"), "{}", err[0].message);
}

/// `neural_ode(adjoint: true)` gives the same parameter and input gradients as
/// backpropagation through the solver's steps.
#[test]
fn adjoint_and_backprop_gradients_of_a_neural_ode_block_agree() {
    use candle_core::{Device, Tensor, Var};
    use flowline::nn::{Activation, LayerSpec, Net};
    let block = |adjoint: bool| {
        vec![
            LayerSpec::NeuralOde {
                field: vec![
                    LayerSpec::Linear { input: None, out: 8 },
                    LayerSpec::Act(Activation::Tanh),
                    LayerSpec::Linear { input: None, out: 2 },
                ],
                t1: 1.0,
                method: flowline::ode::Method::Dopri5,
                step: None,
                rtol: 1e-6,
                atol: 1e-6,
                max_steps: 10_000,
                first_step: None,
                min_step: 0.0,
                max_step: None,
                adjoint,
            },
            LayerSpec::Linear { input: None, out: 3 },
        ]
    };
    let dev = Device::Cpu;
    let plain = Net::init(&block(false), &[2], &mut flowline::rng::Rng::new(1), &dev).unwrap();
    let tensors = plain.named_tensors().into_iter().collect();
    let adj = Net::from_tensors(&block(true), &[2], &tensors, &dev).unwrap();
    let x = Var::new(&[[0.3f32, -0.8], [1.1, 0.4], [-0.5, 0.9]], &dev).unwrap();
    let grads = |net: &Net| {
        let out = net.forward(x.as_tensor()).unwrap();
        let g = out.sqr().unwrap().sum_all().unwrap().backward().unwrap();
        let mut all: Vec<Tensor> =
            net.vars().iter().map(|v| g.get(v.as_tensor()).expect("every parameter gets a gradient").clone()).collect();
        all.push(g.get(x.as_tensor()).expect("the input gets a gradient").clone());
        all
    };
    for (a, b) in grads(&plain).iter().zip(grads(&adj)) {
        let diff: f32 = (a - &b).unwrap().abs().unwrap().max_all().unwrap().to_scalar().unwrap();
        let scale: f32 = a.abs().unwrap().max_all().unwrap().to_scalar().unwrap();
        assert!(diff < 1e-3 * (1.0 + scale), "adjoint and backprop differ by {diff} (scale {scale})");
    }
}

/// A checkpoint whose weights hold NaN is damaged: resuming from it is R1002 naming the
/// tensor, not a training run that diverges at its first step.
#[test]
fn a_checkpoint_with_nan_weights_is_rejected_by_name() {
    let a = tempfile::tempdir().unwrap();
    run(PIPELINE, &[], a.path());
    let ckpt = a.path().join("fit/checkpoints/step_20.safetensors");
    let mut map = candle_core::safetensors::load(&ckpt, &candle_core::Device::Cpu).unwrap();
    let w = map.get("layers.0.weight").unwrap().clone();
    let nan = (w.ones_like().unwrap() * f64::NAN).unwrap();
    map.insert("layers.0.weight".into(), nan);
    candle_core::safetensors::save(&map, &ckpt).unwrap();
    let mut sources = SourceMap::new();
    let id = sources.add("t.flow", None, PIPELINE);
    let opts = CheckOptions {
        profile: None,
        sets: vec!["fit.resume=\"fit/checkpoints/step_20.safetensors\"".into()],
        ..Default::default()
    };
    let plan = flowline::check(&mut sources, id, &opts).and_then(flowline::plan).unwrap();
    let err = flowline::run(&plan, &common::run_opts(a.path(), "t.flow")).err().unwrap().diags.remove(0);
    assert_eq!(err.code.as_str(), "R1002");
    assert!(err.message.contains("`layers.0.weight` holds NaN"), "{}", err.message);
}
