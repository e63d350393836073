//! Image flows: FFJORD's multiscale chain (logit, convolutional CNF blocks, squeeze, factor
//! out) and the multi-resolution flow (MRCNF) against the change-of-variables formula with
//! the whole map's Jacobian determinant from central differences, their inverses, samples,
//! and training in bits per dimension.

use candle_core::{DType, Device, Tensor};
use flowline::flow::{
    FlowChain, FlowFit, FlowModel, FlowRecord, Mrcnf, Multiscale, TangentField, TimeNet, Trace, conv_field_specs,
    fit_flow,
};
use flowline::nn::{Activation, OptimSpec};
use flowline::ode::{Method, Options};
use flowline::rng::Rng;

fn tight() -> Options {
    let mut o = Options::new(Method::Dopri5);
    (o.rtol, o.atol) = (1e-10, 1e-10);
    o
}

/// Two scales over 1x4x4 images: logit, a block, squeeze, a block, factor out, a block.
fn chain(dtype: DType, trace: Trace) -> FlowChain {
    let m = Multiscale {
        scales: 2,
        blocks: 1,
        hidden: vec![4],
        act: Activation::Softplus,
        kernel: 3,
        alpha: 0.05,
        t0: 0.0,
        t1: 0.5,
        trace,
    };
    FlowChain::multiscale(&[1, 4, 4], &m, &mut Rng::new(3), dtype, &Device::Cpu).unwrap()
}

fn images(n: usize, seed: u64) -> Tensor {
    let mut rng = Rng::new(seed);
    let v: Vec<f64> = (0..n * 16).map(|_| 0.1 + 0.8 * rng.uniform()).collect();
    Tensor::from_vec(v, (n, 16), &Device::Cpu).unwrap()
}

/// log|det A| by Gaussian elimination with partial pivoting.
fn log_abs_det(mut a: Vec<Vec<f64>>) -> f64 {
    let n = a.len();
    let mut total = 0.0;
    for c in 0..n {
        let p = (c..n).max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs())).unwrap();
        a.swap(c, p);
        total += a[c][c].abs().ln();
        let (top, rest) = a.split_at_mut(c + 1);
        let pivot = &top[c];
        for row in rest.iter_mut() {
            let f = row[c] / pivot[c];
            for (x, p) in row[c..].iter_mut().zip(&pivot[c..]) {
                *x -= f * p;
            }
        }
    }
    total
}

#[test]
fn the_multiscale_pieces_are_laid_out_as_ffjord_s() {
    let c = chain(DType::F64, Trace::Exact);
    let shapes: Vec<Vec<usize>> = c.blocks().map(|b| b.field.shape.clone()).collect();
    assert_eq!(shapes, vec![vec![1, 4, 4], vec![4, 2, 2], vec![2, 2, 2]]);
    let err = FlowChain::multiscale(
        &[1, 6, 6],
        &Multiscale { scales: 3, ..Multiscale::mnist(0.5, Trace::Exact) },
        &mut Rng::new(0),
        DType::F32,
        &Device::Cpu,
    )
    .err()
    .unwrap();
    assert!(err.contains("not divisible by 4"), "{err}");
}

/// log p(x) = log N(T(x)) + log|det dT/dx| for two 1x4x4 images, T the flow's whole map
/// from the image to its base point, the Jacobian by central differences.
fn assert_change_of_variables(flow: &dyn FlowModel, x: &Tensor) {
    let opts = tight();
    let l = flow.log_likelihood_counted(x, &opts, &mut Rng::new(0), None).unwrap();
    let encode = |x: &Tensor| flow.log_likelihood_counted(x, &opts, &mut Rng::new(0), None).unwrap().z;
    let got = l.log_p.to_vec1::<f64>().unwrap();
    let z = l.z.to_vec2::<f64>().unwrap();
    let h = 1e-5;
    for r in 0..2 {
        let row = x.narrow(0, r, 1).unwrap();
        let mut jac = vec![vec![0.0; 16]; 16];
        for i in 0..16 {
            let mut e = vec![0.0; 16];
            e[i] = h;
            let e = Tensor::from_vec(e, (1, 16), &Device::Cpu).unwrap();
            let plus = encode(&(&row + &e).unwrap()).to_vec2::<f64>().unwrap();
            let minus = encode(&(&row - &e).unwrap()).to_vec2::<f64>().unwrap();
            for (j, col) in jac.iter_mut().enumerate() {
                col[i] = (plus[0][j] - minus[0][j]) / (2.0 * h);
            }
        }
        let log_n: f64 = z[r].iter().map(|v| -0.5 * v * v - 0.5 * (2.0 * std::f64::consts::PI).ln()).sum();
        let want = log_n + log_abs_det(jac);
        assert!((got[r] - want).abs() < 1e-5, "row {r}: {} vs {want}", got[r]);
    }
}

/// The chain's likelihood (the logit, three CNF blocks, the squeeze and the factored half).
#[test]
fn the_chain_s_likelihood_is_the_change_of_variables() {
    let c = chain(DType::F64, Trace::Exact);
    assert_change_of_variables(&c, &images(2, 5));
    let l = c.log_likelihood_counted(&images(2, 5), &tight(), &mut Rng::new(0), None).unwrap();
    assert!(l.stats.nfe >= 3 * 6, "three blocks solved: {} evaluations", l.stats.nfe);
}

/// x -> base -> x below 1e-4 at tight tolerance; samples are images in (0, 1).
#[test]
fn the_chain_inverts_and_samples_images() {
    let c = chain(DType::F64, Trace::Exact);
    let x = images(3, 7);
    let opts = tight();
    let z = c.log_likelihood_counted(&x, &opts, &mut Rng::new(0), None).unwrap().z;
    let (back, _) = c.decode(&z, &opts).unwrap();
    let err = (back - &x).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap();
    assert!(err < 1e-4, "round trip off by {err}");
    let (s, stats) = c.sample(5, &Options::new(Method::Dopri5), &mut Rng::new(1), DType::F64, &Device::Cpu).unwrap();
    assert_eq!(s.dims(), &[5, 16]);
    assert!(stats.nfe > 0);
    let v = s.flatten_all().unwrap().to_vec1::<f64>().unwrap();
    assert!(v.iter().all(|p| p.is_finite() && *p > -0.06 && *p < 1.06), "{v:?}");
}

/// A convolutional field's float32 path (flowline's convolution kernels) against float64
/// (candle's convolution) on the same weights: values and tangents.
#[test]
fn a_convolutional_field_runs_the_same_on_both_paths() {
    let specs = conv_field_specs(2, &[6, 6], 3, Activation::Softplus);
    let build = |dtype| TimeNet::init(&specs, &[2, 5, 5], &mut Rng::new(8), dtype, &Device::Cpu).unwrap();
    let (a, b) = (build(DType::F32), build(DType::F64));
    let mut rng = Rng::new(9);
    let z: Vec<f64> = (0..3 * 50).map(|_| rng.normal()).collect();
    let v: Vec<f64> = (0..3 * 2 * 50).map(|_| rng.normal()).collect();
    let run = |net: &TimeNet, dtype: DType| {
        let t =
            |x: &Vec<f64>, s: &[usize]| Tensor::from_vec(x.clone(), s, &Device::Cpu).unwrap().to_dtype(dtype).unwrap();
        let (y, jv) = net.eval_with_tangents(0.4, &t(&z, &[3, 50]), &t(&v, &[3, 2, 50])).unwrap();
        let flat = |x: Tensor| x.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let plain = net.eval(0.4, &t(&z, &[3, 50])).unwrap();
        (flat(y), flat(jv), flat(plain))
    };
    let (x, y) = (run(&a, DType::F32), run(&b, DType::F64));
    for (p, q) in [(&x.0, &y.0), (&x.1, &y.1), (&x.2, &y.2)] {
        for (u, w) in p.iter().zip(q) {
            assert!((u - w).abs() < 1e-4 * (1.0 + w.abs()), "{u} vs {w}");
        }
    }
}

/// Training in bits per dimension on dequantized 8-bit images lowers the loss, and the
/// loss is bits/dim: about 8 for a flow near the identity on data near uniform.
/// 40 iterations of Adam on blobs (a bright 2x2 centre on a dark ground, pixel / 255) in
/// bits per dimension with both regularizers: the NLL falls by over a nat, and the loss is
/// bits/dim plus the weighted integrals.
fn train_on_blobs(flow: &dyn FlowModel) -> Vec<FlowRecord> {
    let mut rng = Rng::new(2);
    let v: Vec<f32> = (0..64 * 16)
        .map(|i| {
            let (r, col) = ((i % 16) / 4, i % 4);
            let centre = (1..3).contains(&r) && (1..3).contains(&col);
            let p: f64 = if centre { 200.0 + 40.0 * rng.uniform() } else { 30.0 * rng.uniform() };
            (p.round() / 255.0) as f32
        })
        .collect();
    let x = Tensor::from_vec(v, (64, 16), &Device::Cpu).unwrap();
    let adam = OptimSpec::Adam { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0, decoupled: false };
    let cfg = FlowFit {
        iters: 40,
        batch: 32,
        optimizer: adam,
        kinetic: 0.01,
        jacobian: 0.01,
        adjoint: false,
        dequantize: true,
        bits_per_dim: true,
    };
    let mut opts = Options::new(Method::Dopri5);
    (opts.rtol, opts.atol) = (1e-4, 1e-4);
    let r = fit_flow(flow, &x, &cfg, &opts, &mut Rng::new(4)).unwrap();
    let first = r[..5].iter().map(|r| r.nll).sum::<f64>() / 5.0;
    let last = r[35..].iter().map(|r| r.nll).sum::<f64>() / 5.0;
    assert!(last < first - 1.0, "nll {first} -> {last}");
    let bpd = flowline::flow::image::bits_per_dim(-r[39].nll, 16);
    let reg = 0.01 * (r[39].kinetic + r[39].jacobian);
    assert!((r[39].loss - bpd - reg).abs() < 1e-3, "loss {} is bits/dim {bpd} + {reg}", r[39].loss);
    r
}

#[test]
fn training_an_image_flow_in_bits_per_dim_lowers_it() {
    let r = train_on_blobs(&chain(DType::F32, Trace::Hutchinson { rademacher: false }));
    assert!(r.iter().all(|r| r.nfe_backward > 0));
}

/// Evaluation runs outside the autograd graph (with it, every step's tensors stayed alive:
/// evaluating 1,000 14x14 MNIST images at once ran out of 24 GB) and gives training's
/// numbers for the same draws.
#[test]
fn evaluation_keeps_no_graph_and_matches_the_training_likelihood() {
    let c = chain(DType::F64, Trace::Hutchinson { rademacher: true });
    let x = images(3, 4);
    let mut opts = Options::new(Method::Dopri5);
    (opts.rtol, opts.atol) = (1e-6, 1e-6);
    let (est, _) = c.estimated_log_density(&x, &opts, &mut Rng::new(5)).unwrap();
    let l = c.log_likelihood_counted(&x, &opts, &mut Rng::new(5), None).unwrap();
    let diff = (&est - &l.log_p).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap();
    assert!(diff < 1e-9, "{diff}");
    let vars = c.vars();
    let untracked = est.sum_all().unwrap().backward().unwrap();
    assert!(vars.iter().all(|v| untracked.get(v.as_tensor()).is_none()));
    let tracked = l.log_p.sum_all().unwrap().backward().unwrap();
    assert!(vars.iter().all(|v| tracked.get(v.as_tensor()).is_some()));
}

/// Two resolutions over 1x4x4 images: the 2x2 average image and the 4x4 details given it.
fn multires(dtype: DType, trace: Trace) -> Mrcnf {
    let m = Multiscale { scales: 2, blocks: 2, hidden: vec![4], alpha: 0.05, t1: 0.5, ..Multiscale::mnist(0.5, trace) };
    Mrcnf::new(&[1, 4, 4], &m, &mut Rng::new(6), dtype, &Device::Cpu).unwrap()
}

/// The MRCNF's log p(x), the sum of its scales' terms with nothing added for the change of
/// resolution: this holds only because that change has unit determinant and the details'
/// flow sees the coarse image as a constant.
#[test]
fn the_multires_likelihood_is_the_change_of_variables() {
    assert_change_of_variables(&multires(DType::F64, Trace::Exact), &images(2, 9));
}

/// Every scale's parameters move.
#[test]
fn training_a_multires_flow_lowers_its_bits_per_dim() {
    let m = multires(DType::F32, Trace::Hutchinson { rademacher: false });
    let flat = |m: &Mrcnf| -> Vec<Vec<f32>> {
        m.vars().iter().map(|v| v.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap()).collect()
    };
    let before = flat(&m);
    train_on_blobs(&m);
    for (after, b) in flat(&m).iter().zip(&before) {
        assert_ne!(after, b, "a parameter never moved");
    }
}
