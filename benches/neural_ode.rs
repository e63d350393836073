//! Forward + backward of a batched neural ODE (MLP 2-64-64-2 with tanh, batch 512,
//! t in [0, 1]): rk4 with 20 steps and dopri5 at 1e-5, in flowline and in torchdiffeq in
//! the same run. `FLOWLINE_BENCH_PYTHON=/path/to/venv/bin/python cargo bench --bench neural_ode`
//! (torch and torchdiffeq installed there; the Python side is bench/python/neural_ode.py).

use candle_core::{Device, Tensor};
use flowline::nn::{Activation, LayerSpec, Net};
use flowline::ode::{Method, Options, solve};
use flowline::rng::Rng;
use std::time::Instant;

fn field() -> Vec<LayerSpec> {
    vec![
        LayerSpec::Linear { input: None, out: 64 },
        LayerSpec::Act(Activation::Tanh),
        LayerSpec::Linear { input: None, out: 64 },
        LayerSpec::Act(Activation::Tanh),
        LayerSpec::Linear { input: None, out: 2 },
    ]
}

fn time(net: &Net, y0: &Tensor, opts: &Options) -> (f64, usize) {
    let f = |_t: f64, y: &[Tensor]| Ok(vec![net.forward(&y[0])?]);
    let mut times = Vec::new();
    let mut nfe = 0;
    for i in 0..8 {
        let t0 = Instant::now();
        let sol = solve(&f, std::slice::from_ref(y0), &[0.0, 1.0], opts).expect("solve");
        nfe = sol.stats.nfe;
        let _ = sol.ys[1][0].sqr().and_then(|t| t.sum_all()).and_then(|t| t.backward()).expect("backward");
        if i >= 2 {
            times.push(t0.elapsed().as_secs_f64() * 1e3);
        }
    }
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], nfe)
}

fn main() {
    let dev = Device::Cpu;
    let mut rng = Rng::new(0);
    let net = Net::init(&field(), &[2], &mut rng, &dev).expect("model");
    let y: Vec<f32> = (0..1024).map(|_| rng.normal() as f32).collect();
    let y0 = Tensor::from_vec(y, (512, 2), &dev).expect("input");
    let mut rk4 = Options::new(Method::Rk4);
    rk4.step = Some(0.05);
    let mut dopri5 = Options::new(Method::Dopri5);
    dopri5.rtol = 1e-5;
    dopri5.atol = 1e-5;
    let (rk_ms, rk_nfe) = time(&net, &y0, &rk4);
    let (dp_ms, dp_nfe) = time(&net, &y0, &dopri5);
    println!("flowline rk4 (20 steps): {rk_ms:.1} ms, NFE {rk_nfe}");
    println!("flowline dopri5 (1e-5): {dp_ms:.1} ms, NFE {dp_nfe}");
    let python = std::env::var("FLOWLINE_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/python/neural_ode.py");
    match std::process::Command::new(&python).args([script, "2"]).output() {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            let get = |k: &str| text.lines().find_map(|l| l.strip_prefix(k)).and_then(|v| v.trim().parse::<f64>().ok());
            if let (Some(r), Some(d), Some(n)) = (get("rk4_ms="), get("dopri5_ms="), get("dopri5_nfe=")) {
                println!("torchdiffeq rk4: {r:.1} ms; dopri5: {d:.1} ms, NFE {n}");
                println!("ratio flowline / torchdiffeq: rk4 {:.2}x, dopri5 {:.2}x", rk_ms / r, dp_ms / d);
            }
        }
        Ok(o) => println!(
            "torchdiffeq baseline not run ({python}): {}",
            String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or("")
        ),
        Err(e) => println!("torchdiffeq baseline not run ({python}): {e}"),
    }
}
