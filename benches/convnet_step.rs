//! One training step (forward, backward, Adam) of the MNIST convnet of `std.models`
//! (width 16, batch 128) in flowline, and the same network in PyTorch in the same run.
//! `FLOWLINE_BENCH_PYTHON=/path/to/venv/bin/python cargo bench --bench convnet_step`
//! (PyTorch must be installed there; the Python side is bench/python/convnet_step.py).

mod common;

use candle_core::{Device, Tensor};
use flowline::nn::{Net, OptimSpec, Optimizer, cross_entropy};
use flowline::rng::Rng;
use std::time::Instant;

fn main() {
    let steps = 20;
    let dev = Device::Cpu;
    let mut rng = Rng::new(0);
    let net = Net::init(&common::mnist_convnet(), &[1, 28, 28], &mut rng, &dev).expect("model");
    let mut opt = Optimizer::new(
        OptimSpec::Adam { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0, decoupled: false },
        net.vars(),
    );
    let x: Vec<f32> = (0..128 * 784).map(|_| rng.uniform() as f32).collect();
    let x = Tensor::from_vec(x, (128, 1, 28, 28), &dev).expect("input");
    let y: Vec<u32> = (0..128).map(|_| rng.below(10) as u32).collect();
    let mut times = Vec::new();
    for i in 0..steps + 3 {
        let t0 = Instant::now();
        let loss = cross_entropy(&net.forward_train(&x, &mut rng).expect("forward"), &y).expect("loss");
        let grads = loss.backward().expect("backward");
        opt.step(&grads).expect("step");
        if i >= 3 {
            times.push(t0.elapsed().as_secs_f64() * 1e3);
        }
    }
    times.sort_by(f64::total_cmp);
    let ours = times[times.len() / 2];
    println!("flowline convnet step (batch 128): median {ours:.1} ms over {steps} steps");
    let python = std::env::var("FLOWLINE_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/python/convnet_step.py");
    match std::process::Command::new(&python).args([script, &steps.to_string(), "2"]).output() {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            print!("{text}");
            if let Some(ms) =
                text.lines().find_map(|l| l.strip_prefix("torch_step_ms=")).and_then(|v| v.trim().parse::<f64>().ok())
            {
                println!("ratio flowline / pytorch: {:.2}x", ours / ms);
            }
        }
        Ok(o) => println!(
            "PyTorch baseline not run ({python}): {}",
            String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or("")
        ),
        Err(e) => println!("PyTorch baseline not run ({python}): {e}"),
    }
}
