//! LogBarrier l2 on the first 100 correctly classified MNIST test images, attacking the
//! trained convnet of pipelines/mnist_convnet.flow, in flowline and in a PyTorch
//! implementation of the same algorithm with the same iteration counts, same machine, same
//! run: time per image and median l2 distance.
//!
//! `cargo run --release -- run pipelines/mnist_convnet.flow --data-dir ../shared/data` first, then
//! `FLOWLINE_BENCH_PYTHON=/path/to/venv/bin/python cargo bench --bench logbarrier`
//! (bench/python/logbarrier.py; PyTorch and numpy must be installed there). Optional:
//! FLOWLINE_BENCH_MODEL (the .safetensors), FLOWLINE_DATA (the data folder),
//! FLOWLINE_BENCH_ITERS=outer,inner (default 10,50).

mod common;

use candle_core::{Device, Tensor};
use flowline::nn::Net;
use flowline::rng::Rng;
use flowline::robust::attack::Attack;
use flowline::robust::logbarrier::LogBarrierConfig;
use flowline::robust::norms::{Norm, distance};
use flowline::robust::oracle::{Criterion, Oracle};
use std::path::PathBuf;
use std::time::Instant;

fn main() {
    let model_path = std::env::var("FLOWLINE_BENCH_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from("runs/mnist_convnet/fit/model.safetensors"));
    let data = std::env::var("FLOWLINE_DATA").map(PathBuf::from).unwrap_or_else(|_| PathBuf::from("../shared/data"));
    let images = data.join("mnist/t10k-images-idx3-ubyte.gz");
    let labels = data.join("mnist/t10k-labels-idx1-ubyte.gz");
    if !model_path.exists() || !images.exists() {
        println!("skipped: needs {} (run pipelines/mnist_convnet.flow) and {}", model_path.display(), images.display());
        return;
    }
    let (outer, inner) = std::env::var("FLOWLINE_BENCH_ITERS")
        .ok()
        .and_then(|v| v.split_once(',').and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?))))
        .unwrap_or((10usize, 50usize));
    let dev = Device::Cpu;
    let tensors = candle_core::safetensors::load(&model_path, &dev).expect("weights");
    let net = Net::from_tensors(&common::mnist_convnet(), &[1, 28, 28], &tensors, &dev).expect("model");
    let (x, _, y, n) = flowline::data::idx::load_pair(&images, &labels, Some(400)).expect("MNIST test images");
    let t = Tensor::from_vec(x.clone(), (n, 1, 28, 28), &dev).expect("input");
    let pred = net.forward(&t).and_then(|l| l.argmax(1)).and_then(|p| p.to_vec1::<u32>()).expect("predict");
    let chosen: Vec<usize> = (0..n).filter(|&i| pred[i] == y[i]).take(100).collect();
    let xs: Vec<Vec<f64>> =
        chosen.iter().map(|&i| x[i * 784..(i + 1) * 784].iter().map(|v| *v as f64).collect()).collect();
    let ys: Vec<usize> = chosen.iter().map(|&i| y[i] as usize).collect();
    let model = |t: &Tensor| net.forward_input_grad(t);
    let oracle = Oracle::new(&model, &[1, 28, 28], (0.0, 1.0), Criterion { top: 1 }, &dev);
    let attack = Attack::LogBarrier(LogBarrierConfig { outer, inner, ..LogBarrierConfig::paper(Norm::L2) });
    let t0 = Instant::now();
    let found = attack.run(&oracle, &xs, &ys, &mut Rng::new(0)).expect("attack");
    let secs = t0.elapsed().as_secs_f64();
    let mut d: Vec<f64> =
        found.iter().zip(&xs).filter_map(|(f, x)| f.as_ref().map(|f| distance(Norm::L2, f, x))).collect();
    d.sort_by(f64::total_cmp);
    let per_image = secs / xs.len() as f64 * 1e3;
    let (forwards, gradients) = oracle.evaluations();
    println!(
        "flowline logbarrier l2 ({outer} x {inner}): {per_image:.1} ms/image, median l2 {:.4}, broken {}/{}, \
         {:.0} gradients and {:.0} forwards per image",
        d[d.len() / 2],
        d.len(),
        xs.len(),
        gradients as f64 / xs.len() as f64,
        forwards as f64 / xs.len() as f64
    );
    let python = std::env::var("FLOWLINE_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/python/logbarrier.py");
    let args = [
        script.to_string(),
        model_path.display().to_string(),
        data.join("mnist").display().to_string(),
        outer.to_string(),
        inner.to_string(),
        "2".to_string(),
    ];
    match std::process::Command::new(&python).args(&args).output() {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            print!("{text}");
            if let Some(ms) = text
                .lines()
                .find_map(|l| l.strip_prefix("torch_ms_per_image="))
                .and_then(|v| v.trim().parse::<f64>().ok())
            {
                println!("ratio flowline / pytorch (time per image): {:.2}x", per_image / ms);
            }
        }
        Ok(o) => println!(
            "PyTorch baseline not run ({python}): {}",
            String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or("")
        ),
        Err(e) => println!("PyTorch baseline not run ({python}): {e}"),
    }
}
