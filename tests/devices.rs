//! The same computations on every device this build reaches, against flowline's CPU
//! kernels: the CPU with candle's composed ops (the path CUDA takes: fused ops, the
//! max-pool gradient, Adam and activations all fall back to it), and the first CUDA device
//! when flowline is built with `cuda` and a GPU answers (otherwise that column is skipped
//! with the reason printed). Values and gradients must agree: a device that trains with a
//! wrong gradient (candle 0.11's max pooling scales it by maxima / k^2 on every backend)
//! fails here.

mod common;

use candle_core::{DType, Device, Tensor};
use flowline::exec::DeviceChoice;
use flowline::nn::{Activation, LayerSpec, Net, OptimSpec, Optimizer, cross_entropy, kernels};
use flowline::ode::{Method, Options, solve};
use flowline::rng::Rng;
use std::collections::HashMap;
use std::sync::Mutex;

/// The composed-ops switch is process-wide: tests in this file take turns.
static TURN: Mutex<()> = Mutex::new(());

#[derive(Clone, Copy, Debug)]
enum Target {
    Kernels,
    Composed,
    Cuda,
}

/// Runs `f` on each target; returns (target, result) with the CPU kernels first.
fn on_every_target<T>(test: &str, f: impl Fn(&Device) -> T) -> Vec<(Target, T)> {
    let _turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    let mut out = vec![(Target::Kernels, f(&Device::Cpu))];
    kernels::use_composed_ops(true);
    let composed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&Device::Cpu)));
    kernels::use_composed_ops(false);
    out.push((Target::Composed, composed.unwrap_or_else(|p| std::panic::resume_unwind(p))));
    match Device::new_cuda(0) {
        Ok(gpu) => out.push((Target::Cuda, f(&gpu))),
        Err(e) => println!("{test}: cuda skipped ({e})"),
    }
    out
}

fn flat(t: &Tensor) -> Vec<f64> {
    t.to_device(&Device::Cpu).unwrap().to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1().unwrap()
}

/// Named groups of numbers a computation produced.
type Numbers = Vec<(String, Vec<f64>)>;

/// Every target's numbers against the kernels', relative to the largest magnitude of each
/// named group.
fn assert_agree(results: &[(Target, Numbers)], tol: f64) {
    let (_, reference) = &results[0];
    for (target, got) in &results[1..] {
        assert_eq!(got.len(), reference.len());
        for ((name, want), (_, have)) in reference.iter().zip(got) {
            assert_eq!(want.len(), have.len(), "{target:?} {name}: sizes differ");
            let scale = want.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
            let worst = want.iter().zip(have).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
            assert!(worst <= tol * scale, "{target:?} {name}: differs by {worst:e} (scale {scale:e})");
        }
    }
}

/// A network with every fused path (convolution + activation, max pooling + ReLU, the ReLU
/// of convolution, ReLU, pooling moved after the pooling, dense + tanh / sigmoid) from the same weights on each target: logits, loss, every parameter's
/// gradient, and the parameters after two Adam steps.
#[test]
fn a_training_step_agrees_on_every_device() {
    let conv = |out| LayerSpec::Conv2d { input: None, out, kernel: 3, stride: 1, pad: 1 };
    let specs = vec![
        conv(4),
        LayerSpec::MaxPool { kernel: 2, stride: 2 },
        LayerSpec::Act(Activation::Relu),
        conv(6),
        LayerSpec::Act(Activation::Relu),
        LayerSpec::MaxPool { kernel: 2, stride: 2 },
        conv(5),
        LayerSpec::Act(Activation::Tanh),
        LayerSpec::MaxPool { kernel: 2, stride: 2 },
        LayerSpec::Flatten,
        LayerSpec::Linear { input: None, out: 16 },
        LayerSpec::Act(Activation::Sigmoid),
        LayerSpec::Linear { input: None, out: 12 },
        LayerSpec::Act(Activation::Softplus),
        LayerSpec::Linear { input: None, out: 3 },
    ];
    let reference = Net::init(&specs, &[2, 8, 8], &mut Rng::new(5), &Device::Cpu).unwrap();
    let weights: HashMap<String, Tensor> = reference.named_tensors().into_iter().collect();
    let mut rng = Rng::new(6);
    let x: Vec<f32> = (0..5 * 2 * 8 * 8).map(|_| rng.normal() as f32).collect();
    let labels = [0u32, 2, 1, 1, 0];
    let results = on_every_target("a_training_step_agrees_on_every_device", |dev| {
        let net = Net::from_tensors(&specs, &[2, 8, 8], &weights, dev).unwrap();
        let x = Tensor::from_vec(x.clone(), (5, 2, 8, 8), dev).unwrap();
        let mut opt = Optimizer::new(
            OptimSpec::Adam { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0, decoupled: false },
            net.vars(),
        );
        let mut out = Vec::new();
        for step in 0..2 {
            let logits = net.forward_train(&x, &mut Rng::new(0)).unwrap();
            let loss = cross_entropy(&logits, &labels).unwrap();
            let grads = loss.backward().unwrap();
            if step == 0 {
                out.push(("logits".to_string(), flat(&logits)));
                out.push(("loss".to_string(), flat(&loss)));
                for (i, v) in net.vars().iter().enumerate() {
                    out.push((format!("gradient {i}"), flat(grads.get(v).unwrap())));
                }
            }
            opt.step(&grads).unwrap();
        }
        for (name, t) in net.named_tensors() {
            out.push((format!("{name} after Adam"), flat(&t)));
        }
        out
    });
    assert_agree(&results, 1e-4);
}

/// A neural ODE (MLP field, tanh) through rk4 and dopri5: final state, NFE, and the
/// parameters' gradients of a loss on it.
#[test]
fn a_neural_ode_and_its_gradients_agree_on_every_device() {
    let specs = vec![
        LayerSpec::Linear { input: None, out: 16 },
        LayerSpec::Act(Activation::Tanh),
        LayerSpec::Linear { input: None, out: 2 },
    ];
    let reference = Net::init(&specs, &[2], &mut Rng::new(7), &Device::Cpu).unwrap();
    let weights: HashMap<String, Tensor> = reference.named_tensors().into_iter().collect();
    let mut rng = Rng::new(8);
    let y0: Vec<f32> = (0..64).map(|_| rng.normal() as f32).collect();
    for (method, step) in [(Method::Rk4, Some(0.1)), (Method::Dopri5, None)] {
        let results = on_every_target("a_neural_ode_and_its_gradients_agree_on_every_device", |dev| {
            let net = Net::from_tensors(&specs, &[2], &weights, dev).unwrap();
            let f = |_t: f64, y: &[Tensor]| Ok(vec![net.forward(&y[0])?]);
            let y0 = Tensor::from_vec(y0.clone(), (32, 2), dev).unwrap();
            let opts = Options { step, rtol: 1e-5, atol: 1e-5, ..Options::new(method) };
            let sol = solve(&f, std::slice::from_ref(&y0), &[0.0, 1.0], &opts).unwrap();
            let grads = sol.ys[1][0].sqr().unwrap().sum_all().unwrap().backward().unwrap();
            let mut out =
                vec![("state".to_string(), flat(&sol.ys[1][0])), ("nfe".to_string(), vec![sol.stats.nfe as f64])];
            for (i, v) in net.vars().iter().enumerate() {
                out.push((format!("gradient {i}"), flat(grads.get(v).unwrap())));
            }
            out
        });
        assert_agree(&results, 1e-4);
    }
}

/// The quickstart pipeline's smoke profile, every stage (data, training, evaluation, the
/// attack, figures), on each target: the same results.
#[test]
fn the_quickstart_pipeline_agrees_on_every_device() {
    let path = common::root().join("pipelines/quickstart.flow");
    let results = on_every_target("the_quickstart_pipeline_agrees_on_every_device", |dev| {
        let out = tempfile::tempdir().unwrap();
        let device = if dev.is_cuda() { DeviceChoice::Cuda } else { DeviceChoice::Cpu };
        let report = common::run_file_on(&path, Some("smoke"), out.path(), device).unwrap_or_else(|e| panic!("{e}"));
        let mut metrics: Vec<(String, Vec<f64>)> = Vec::new();
        for stage in &report.stages {
            for (k, v) in &stage.metrics {
                // Timings, and the work an attack did before it stopped (a count that a
                // rounding difference moves by an iteration), are not results.
                if !k.contains("seconds") && !k.ends_with("_per_image") {
                    metrics.push((format!("{}.{k}", stage.name), vec![*v]));
                }
            }
        }
        metrics
    });
    for (target, m) in &results {
        println!("{target:?}: {} metrics", m.len());
    }
    assert!(results[0].1.len() > 5, "the report has metrics");
    assert_agree(&results, 2e-3);
}
