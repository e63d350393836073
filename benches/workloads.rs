//! The headline workloads, flowline against PyTorch (+ torchdiffeq) on the same machine in
//! the same run: each side runs in its own process, alternately, `ROUNDS` times (default 5),
//! and the table gives the median of each side's medians, their ratio, peak memory, and the
//! result and NFE beside them so that equal work is visible.
//!
//! `FLOWLINE_BENCH_PYTHON=/path/to/venv/bin/python cargo bench --bench workloads [-- NAME...]`
//! (bench/compare.sh does the same). Without a Python that imports torch the PyTorch column
//! says why it is empty. Data: FLOWLINE_DATA (default ../shared/data); the logbarrier
//! workload attacks FLOWLINE_BENCH_MODEL (default runs/mnist_convnet/fit/model.safetensors).
//! One side of one workload: `cargo bench --bench workloads -- --one NAME`.
//! FLOWLINE_BENCH_DEVICE=cuda runs both sides on the GPU (a flowline built with `cuda`).

mod common;

/// The allocator of the `flowline` binary, so that the library runs as users run it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use candle_core::{Device, Tensor};
use flowline::nn::{Activation, LayerSpec, Net, OptimSpec, Optimizer, cross_entropy};
use flowline::ode::{Method, Options, solve};
use flowline::rng::Rng;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

/// Name and what it measures.
const WORKLOADS: [(&str, &str); 11] = [
    ("convnet_step", "std.models convnet (width 16), one Adam step, batch 128"),
    ("example_step", "conv 32/64 example convnet, one Adam step, batch 128"),
    ("convnet_epoch", "`train` stage: one epoch of 10,000 MNIST images, batch 128"),
    ("inference", "convnet logits for 10,000 images, batch 1,000"),
    ("mlp_step", "quickstart mlp(hidden: 64) on 2-D, one Adam step, batch 128"),
    ("node_rk4", "neural ODE 2-64-64-2 tanh, rk4 20 steps, batch 512, fwd+bwd"),
    ("node_dopri5", "neural ODE 2-64-64-2 tanh, dopri5 1e-5, batch 512, fwd+bwd"),
    ("logbarrier", "LogBarrier l2 (10 x 50) on 100 MNIST test images, per image"),
    ("cnf_step", "checkerboard CNF, concat_squash 64-64-64 tanh, exact trace, dopri5 1e-5, batch 100, Adam step"),
    ("cnf_train", "the same CNF trained 100 iterations from initialisation (20,000 points), per iteration"),
    ("cnf_rnode", "cnf_train with kinetic + Jacobian-Frobenius regularization at lambda 0.1, per iteration"),
];

struct Measure {
    ms: f64,
    result: f64,
    /// Function evaluations, or forward/backward ones.
    nfe: Option<String>,
    peak_mb: f64,
}

/// The device both sides run on: FLOWLINE_BENCH_DEVICE, `cpu` (default) or `cuda`.
fn dev() -> Device {
    match std::env::var("FLOWLINE_BENCH_DEVICE").as_deref() {
        Ok("cuda") => Device::new_cuda(0).unwrap_or_else(|e| panic!("no CUDA device: {e}")),
        _ => Device::Cpu,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The median time of `reps` calls after `warmup` untimed ones, and the last result.
fn timed(reps: usize, warmup: usize, mut f: impl FnMut() -> f64) -> (f64, f64) {
    let mut times = Vec::new();
    let mut out = 0.0;
    for i in 0..reps + warmup {
        let t0 = Instant::now();
        out = f();
        if i >= warmup {
            times.push(t0.elapsed().as_secs_f64() * 1e3);
        }
    }
    (median(times), out)
}

fn example_convnet() -> Vec<LayerSpec> {
    let conv = |out| LayerSpec::Conv2d { input: None, out, kernel: 3, stride: 1, pad: 0 };
    vec![
        conv(32),
        LayerSpec::Act(Activation::Relu),
        conv(64),
        LayerSpec::Act(Activation::Relu),
        LayerSpec::MaxPool { kernel: 2, stride: 2 },
        LayerSpec::Dropout { p: 0.25 },
        LayerSpec::Flatten,
        LayerSpec::Linear { input: None, out: 128 },
        LayerSpec::Act(Activation::Relu),
        LayerSpec::Dropout { p: 0.5 },
        LayerSpec::Linear { input: None, out: 10 },
    ]
}

fn mlp() -> Vec<LayerSpec> {
    vec![
        LayerSpec::Linear { input: None, out: 64 },
        LayerSpec::Act(Activation::Relu),
        LayerSpec::Linear { input: None, out: 64 },
        LayerSpec::Act(Activation::Relu),
        LayerSpec::Linear { input: None, out: 2 },
    ]
}

fn uniform(rng: &mut Rng, shape: &[usize]) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec((0..n).map(|_| rng.uniform() as f32).collect::<Vec<_>>(), shape, &dev()).expect("input")
}

/// One training step (forward, backward, Adam) of `specs` on a fixed batch.
fn step(specs: &[LayerSpec], x: &Tensor, classes: usize, reps: usize) -> (f64, f64) {
    let mut rng = Rng::new(0);
    let input = &x.dims()[1..];
    let net = Net::init(specs, input, &mut rng, &dev()).expect("model");
    let mut opt = Optimizer::new(
        OptimSpec::Adam { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0, decoupled: false },
        net.vars(),
    );
    let y: Vec<u32> = (0..x.dim(0).expect("batch")).map(|_| rng.below(classes) as u32).collect();
    timed(reps, 3, || {
        let loss = cross_entropy(&net.forward_train(x, &mut rng).expect("forward"), &y).expect("loss");
        let grads = loss.backward().expect("backward");
        opt.step(&grads).expect("step");
        loss.to_scalar::<f32>().expect("loss") as f64
    })
}

fn data_dir() -> PathBuf {
    std::env::var("FLOWLINE_DATA").map(PathBuf::from).unwrap_or_else(|_| PathBuf::from("../shared/data"))
}

/// The whole `train` stage as a user runs it (a fresh run folder each time, the data stage
/// before it not counted): its wall time and the training-set loss it reports.
fn convnet_epoch() -> (f64, f64) {
    let src = "use std.models\nseed 0\nlet d = mnist(split: \"train\", limit: 10000)\n\
               let fit = train(normalize(mean: [0.1307], std: [0.3081]) |> convnet(classes: 10, width: 16), d, \
               optimizer: adam(lr: 2e-3), batch: 128, epochs: 1)\n";
    let mut sources = flowline::diag::SourceMap::new();
    let id = sources.add("epoch.flow", None, src.to_string());
    let plan = flowline::check(&mut sources, id, &Default::default()).and_then(flowline::plan).expect("pipeline");
    let mut times = Vec::new();
    let mut loss = 0.0;
    for _ in 0..3 {
        let out = tempfile::tempdir().expect("temporary folder");
        let opts = flowline::RunOptions {
            out: out.path().to_path_buf(),
            quiet: true,
            data_dir: data_dir(),
            pipeline: "epoch.flow".into(),
            device: if dev().is_cuda() {
                flowline::exec::DeviceChoice::Cuda
            } else {
                flowline::exec::DeviceChoice::Cpu
            },
            ..Default::default()
        };
        let report = flowline::run(&plan, &opts).unwrap_or_else(|f| panic!("{f:?}"));
        let fit = report.stages.iter().find(|s| s.name == "fit").expect("fit");
        times.push(fit.wall_seconds.unwrap_or(f64::NAN) * 1e3);
        loss = fit.metrics["final_loss"];
    }
    (median(times), loss)
}

fn inference() -> (f64, f64) {
    let mut rng = Rng::new(0);
    let net = Net::init(&common::mnist_convnet(), &[1, 28, 28], &mut rng, &dev()).expect("model");
    let x = uniform(&mut rng, &[10000, 1, 28, 28]);
    timed(5, 1, || {
        let mut sum = 0.0;
        for k in 0..10 {
            let chunk = x.narrow(0, k * 1000, 1000).expect("chunk");
            sum += net.forward(&chunk).and_then(|l| l.sum_all()).and_then(|s| s.to_scalar::<f32>()).expect("forward")
                as f64;
        }
        sum / 100_000.0
    })
}

fn neural_ode(opts: &Options) -> (f64, f64, usize) {
    let dev = dev();
    let mut rng = Rng::new(0);
    let field = vec![
        LayerSpec::Linear { input: None, out: 64 },
        LayerSpec::Act(Activation::Tanh),
        LayerSpec::Linear { input: None, out: 64 },
        LayerSpec::Act(Activation::Tanh),
        LayerSpec::Linear { input: None, out: 2 },
    ];
    let net = Net::init(&field, &[2], &mut rng, &dev).expect("model");
    let y: Vec<f32> = (0..1024).map(|_| rng.normal() as f32).collect();
    let y0 = Tensor::from_vec(y, (512, 2), &dev).expect("input");
    let f = |_t: f64, y: &[Tensor]| Ok(vec![net.forward(&y[0])?]);
    let mut nfe = 0;
    let (ms, loss) = timed(6, 2, || {
        let sol = solve(&f, std::slice::from_ref(&y0), &[0.0, 1.0], opts).expect("solve");
        nfe = sol.stats.nfe;
        let loss = sol.ys[1][0].sqr().and_then(|t| t.sum_all()).expect("loss");
        let _ = loss.backward().expect("backward");
        loss.to_scalar::<f32>().expect("loss") as f64
    });
    (ms, loss, nfe)
}

/// One training iteration of the RNODE paper's checkerboard CNF without regularizers (the
/// CNF issue's benchmark): batches of 100 from 2,000 points, t1 = 0.5, the forward NFE of
/// the last timed iteration beside the loss.
/// The RNODE checkerboard setup: n points, the concat_squash 64-64-64 tanh CNF with t1 = 0.5
/// and the exact trace, Adam (1e-3, weight decay 1e-5), dopri5 at 1e-5, and the rng after
/// drawing them.
type CnfSetup = (Tensor, flowline::flow::Cnf<flowline::flow::TimeNet>, OptimSpec, Options, Rng);

fn checkerboard_cnf(n: usize) -> CnfSetup {
    use flowline::flow::{Cnf, TimeNet, Trace};
    let dev = dev();
    let mut rng = Rng::new(0);
    let data = flowline::data::toy2d("checkerboard", n, None, &mut rng).expect("data");
    let x = Tensor::from_vec(data.x.clone(), (data.n, 2), &dev).expect("data");
    let field = TimeNet::squash_mlp(&[2, 64, 64, 64, 2], Activation::Tanh, &mut rng, candle_core::DType::F32, &dev)
        .expect("field");
    let flow = Cnf { field, t0: 0.0, t1: 0.5, trace: Trace::Exact };
    let adam = OptimSpec::Adam { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 1e-5, decoupled: false };
    let opts = Options { rtol: 1e-5, atol: 1e-5, ..Options::new(Method::Dopri5) };
    (x, flow, adam, opts, rng)
}

fn cnf_step() -> (f64, f64, usize) {
    use flowline::flow::TangentField;
    let (x, flow, adam, opts, mut rng) = checkerboard_cnf(2000);
    let mut opt = Optimizer::new(adam, flow.field.vars());
    let (mut nfe, mut k) = (0, 0);
    let (ms, loss) = timed(20, 3, || {
        let batch = x.narrow(0, (k * 100) % 1900, 100).expect("batch");
        k += 1;
        let l = flow.log_likelihood(&batch, &opts, &mut rng).expect("solve");
        nfe = l.stats.nfe;
        let loss = l.log_p.neg().and_then(|t| t.mean_all()).expect("loss");
        opt.step(&loss.backward().expect("backward")).expect("step");
        loss.to_scalar::<f32>().expect("loss") as f64
    });
    (ms, loss, nfe)
}

/// `iters` training iterations of the checkerboard CNF from initialisation, plain or with
/// RNODE's two regularizers at `lambda`, through `train`'s own loop (fit_flow): ms per
/// iteration (over all of them: NFE grows as training goes on, so a median would hide it),
/// the batch NLL over the last fifth, and the mean forward/backward NFE per iteration.
fn cnf_train(lambda: f64, iters: usize) -> (f64, f64, String) {
    use flowline::flow::{FlowFit, fit_flow};
    let (x, flow, adam, opts, mut rng) = checkerboard_cnf(20000);
    let cfg = FlowFit {
        iters,
        batch: 100,
        optimizer: adam,
        kinetic: lambda,
        jacobian: lambda,
        adjoint: false,
        dequantize: false,
        bits_per_dim: false,
    };
    let t0 = Instant::now();
    let records = fit_flow(&flow, &x, &cfg, &opts, &mut rng).expect("training");
    let ms = t0.elapsed().as_secs_f64() * 1e3 / iters as f64;
    let tail = &records[records.len() - (iters / 5).max(1)..];
    let nll = tail.iter().map(|r| r.nll).sum::<f64>() / tail.len() as f64;
    let mean = |f: fn(&flowline::flow::FlowRecord) -> usize| {
        records.iter().map(|r| f(r) as f64).sum::<f64>() / records.len() as f64
    };
    (ms, nll, format!("{:.0}/{:.0}", mean(|r| r.nfe_forward), mean(|r| r.nfe_backward)))
}

fn logbarrier() -> Result<(f64, f64), String> {
    use flowline::robust::{
        attack::Attack,
        logbarrier::LogBarrierConfig,
        norms::{Norm, distance},
        oracle::{Criterion, Oracle},
    };
    let model_path = std::env::var("FLOWLINE_BENCH_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from("runs/mnist_convnet/fit/model.safetensors"));
    let mnist = data_dir().join("mnist");
    let (images, labels) = (mnist.join("t10k-images-idx3-ubyte.gz"), mnist.join("t10k-labels-idx1-ubyte.gz"));
    if !model_path.exists() || !images.exists() {
        return Err(format!(
            "needs {} (run pipelines/mnist_convnet.flow) and {}",
            model_path.display(),
            images.display()
        ));
    }
    let dev = dev();
    let tensors = candle_core::safetensors::load(&model_path, &dev).map_err(|e| e.to_string())?;
    let net = Net::from_tensors(&common::mnist_convnet(), &[1, 28, 28], &tensors, &dev).map_err(|e| e.to_string())?;
    let (x, _, y, n) = flowline::data::idx::load_pair(&images, &labels, Some(400)).map_err(|e| e.to_string())?;
    let t = Tensor::from_vec(x.clone(), (n, 1, 28, 28), &dev).map_err(|e| e.to_string())?;
    let pred = net.forward(&t).and_then(|l| l.argmax(1)).and_then(|p| p.to_vec1::<u32>()).map_err(|e| e.to_string())?;
    let chosen: Vec<usize> = (0..n).filter(|&i| pred[i] == y[i]).take(100).collect();
    let xs: Vec<Vec<f64>> =
        chosen.iter().map(|&i| x[i * 784..(i + 1) * 784].iter().map(|v| *v as f64).collect()).collect();
    let ys: Vec<usize> = chosen.iter().map(|&i| y[i] as usize).collect();
    let model = |t: &Tensor| net.forward_input_grad(t);
    let oracle = Oracle::new(&model, &[1, 28, 28], (0.0, 1.0), Criterion { top: 1 }, &dev);
    let attack = Attack::LogBarrier(LogBarrierConfig { outer: 10, inner: 50, ..LogBarrierConfig::paper(Norm::L2) });
    let t0 = Instant::now();
    let found = attack.run(&oracle, &xs, &ys, &mut Rng::new(0)).map_err(|e| e.to_string())?;
    let ms = t0.elapsed().as_secs_f64() * 1e3 / xs.len() as f64;
    let d: Vec<f64> = found.iter().zip(&xs).filter_map(|(f, x)| f.as_ref().map(|f| distance(Norm::L2, f, x))).collect();
    Ok((ms, median(d)))
}

/// Peak resident memory of this process, in MB.
fn peak_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok());
    kb.map_or(f64::NAN, |k| k / 1024.0)
}

/// One side of one workload, in this process.
fn run_one(name: &str) -> Result<Measure, String> {
    let mut rng = Rng::new(0);
    let (ms, result, nfe) = match name {
        "convnet_step" => {
            let (ms, r) = step(&common::mnist_convnet(), &uniform(&mut rng, &[128, 1, 28, 28]), 10, 20);
            (ms, r, None)
        }
        "example_step" => {
            let (ms, r) = step(&example_convnet(), &uniform(&mut rng, &[128, 1, 28, 28]), 10, 10);
            (ms, r, None)
        }
        "convnet_epoch" => {
            let (ms, r) = convnet_epoch();
            (ms, r, None)
        }
        "inference" => {
            let (ms, r) = inference();
            (ms, r, None)
        }
        "mlp_step" => {
            let x: Vec<f32> = (0..256).map(|_| rng.normal() as f32).collect();
            let x = Tensor::from_vec(x, (128, 2), &dev()).map_err(|e| e.to_string())?;
            let (ms, r) = step(&mlp(), &x, 2, 200);
            (ms, r, None)
        }
        "node_rk4" => {
            let opts = Options { step: Some(0.05), ..Options::new(Method::Rk4) };
            let (ms, r, nfe) = neural_ode(&opts);
            (ms, r, Some(nfe.to_string()))
        }
        "node_dopri5" => {
            let opts = Options { rtol: 1e-5, atol: 1e-5, ..Options::new(Method::Dopri5) };
            let (ms, r, nfe) = neural_ode(&opts);
            (ms, r, Some(nfe.to_string()))
        }
        "logbarrier" => {
            let (ms, r) = logbarrier()?;
            (ms, r, None)
        }
        "cnf_step" => {
            let (ms, r, nfe) = cnf_step();
            (ms, r, Some(nfe.to_string()))
        }
        "cnf_train" => {
            let (ms, r, nfe) = cnf_train(0.0, 100);
            (ms, r, Some(nfe))
        }
        "cnf_rnode" => {
            let (ms, r, nfe) = cnf_train(0.1, 100);
            (ms, r, Some(nfe))
        }
        other => return Err(format!("unknown workload `{other}`")),
    };
    Ok(Measure { ms, result, nfe, peak_mb: peak_mb() })
}

fn parse(line: &str) -> Option<Measure> {
    let get = |k: &str| line.split_whitespace().find_map(|w| w.strip_prefix(k)).map(str::to_string);
    Some(Measure {
        ms: get("median_ms=")?.parse().ok()?,
        result: get("result=")?.parse().ok()?,
        nfe: get("nfe=").filter(|v| v != "-" && v != "None"),
        peak_mb: get("peak_mb=")?.parse().ok()?,
    })
}

fn show(m: &Measure, name: &str) -> String {
    let nfe = m.nfe.as_deref().unwrap_or("-");
    format!("workload={name} median_ms={:.4} result={:.6} nfe={nfe} peak_mb={:.1}", m.ms, m.result, m.peak_mb)
}

/// A side measured in a child process, so that each has its own peak memory.
fn child(cmd: &mut Command) -> Result<Measure, String> {
    let o = cmd.output().map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&o.stdout);
    match text.lines().rev().find_map(parse) {
        Some(m) if o.status.success() => Ok(m),
        _ => Err(String::from_utf8_lossy(&o.stderr).lines().chain(text.lines()).last().unwrap_or("failed").to_string()),
    }
}

fn main() {
    // As the `flowline` binary does. SAFETY: nothing else runs yet.
    unsafe { flowline::threads::pin_thread_count() };
    flowline::allocator::keep_freed_memory();
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    if let Some(i) = args.iter().position(|a| a == "--one") {
        let name = args.get(i + 1).map(String::as_str).unwrap_or("");
        match run_one(name) {
            Ok(m) => println!("{}", show(&m, name)),
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        }
        return;
    }
    let rounds: usize = std::env::var("ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let python = std::env::var("FLOWLINE_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let root = std::env::var_os("FLOWLINE_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let script = root.join("bench/python/workloads.py");
    let me = std::env::current_exe().expect("this benchmark's path");
    let chosen: Vec<&(&str, &str)> =
        WORKLOADS.iter().filter(|(n, _)| args.is_empty() || args.iter().any(|a| a == n)).collect();
    println!("{rounds} alternating rounds per side, 2 threads; times are medians of each side's medians");
    println!(
        "{:<14} {:>12} {:>12} {:>7} {:>9} {:>9} {:>11} {:>11} {:>7} | {:<7}  what",
        "workload",
        "flowline ms",
        "pytorch ms",
        "ratio",
        "ours MB",
        "torch MB",
        "our result",
        "torch res.",
        "NFE",
        "torch"
    );
    for (name, what) in chosen {
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        let mut why = None;
        for _ in 0..rounds {
            match child(Command::new(&me).args(["--one", name])) {
                Ok(m) => ours.push(m),
                Err(e) => {
                    why = Some(format!("flowline: {e}"));
                    break;
                }
            }
            match child(Command::new(&python).arg(&script).args([name, "2"])) {
                Ok(m) => theirs.push(m),
                Err(e) => why = why.or(Some(format!("pytorch: {e}"))),
            }
        }
        let med = |v: &[Measure], f: fn(&Measure) -> f64| {
            if v.is_empty() { f64::NAN } else { median(v.iter().map(f).collect()) }
        };
        let (a, b) = (med(&ours, |m| m.ms), med(&theirs, |m| m.ms));
        let nfe = |v: &[Measure]| v.last().and_then(|m| m.nfe.clone()).unwrap_or_else(|| "-".to_string());
        println!(
            "{:<14} {:>12.2} {:>12.2} {:>6.2}x {:>9.0} {:>9.0} {:>11.5} {:>11.5} {:>7} | {:<7}  {what}",
            name,
            a,
            b,
            a / b,
            med(&ours, |m| m.peak_mb),
            med(&theirs, |m| m.peak_mb),
            ours.last().map_or(f64::NAN, |m| m.result),
            theirs.last().map_or(f64::NAN, |m| m.result),
            nfe(&ours),
            nfe(&theirs),
        );
        if let Some(w) = why {
            println!("{:<14} not complete: {w}", "");
        }
    }
}
