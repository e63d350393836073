//! Robust training and lower bounds, end to end on small problems: the certified bound is
//! exact for a linear classifier and never beaten by any attack on deeper models; the
//! input-gradient penalty shrinks input gradients; adversarial training lowers the loss
//! under attack.

use candle_core::{Device, Tensor};
use flowline::data::Dataset;
use flowline::nn::{Activation, Aggregate};
use flowline::nn::{
    Adversarial, Augment, Ball, FitConfig, GradNorm, InputGradient, LayerSpec, Net, Objective, OptimSpec, Penalty,
    Schedule, Start, fit_classifier, gradient_norms, loss_direction, pgd_examples,
};
use flowline::rng::Rng;
use flowline::robust::attack::Attack;
use flowline::robust::bounds::certified_radius;
use flowline::robust::ddn::DdnConfig;
use flowline::robust::logbarrier::LogBarrierConfig;
use flowline::robust::norms::{Norm, distance};
use flowline::robust::oracle::{Criterion, Oracle};
use flowline::robust::pgd::PgdConfig;

fn points(rng: &mut Rng, n: usize, dim: usize) -> Vec<Vec<f64>> {
    (0..n).map(|_| (0..dim).map(|_| rng.uniform()).collect()).collect()
}

fn logits(net: &Net, x: &[f64]) -> Vec<f64> {
    let mut shape = vec![1];
    shape.extend(&net.input);
    let t = Tensor::from_vec(x.iter().map(|v| *v as f32).collect::<Vec<_>>(), shape, &Device::Cpu).unwrap();
    net.forward(&t).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().map(|v| *v as f64).collect()
}

fn argmax(v: &[f64]) -> usize {
    (0..v.len()).max_by(|&a, &b| v[a].total_cmp(&v[b])).unwrap_or(0)
}

/// The certified radius of each point (labelled by the model's own prediction) and the
/// smallest l2 distance any of several attacks found.
fn radii_and_attacks(net: &Net, xs: &[Vec<f64>]) -> Vec<(f64, f64)> {
    let lip = net.lipschitz().unwrap();
    let labels: Vec<usize> = xs.iter().map(|x| argmax(&logits(net, x))).collect();
    let model = |t: &Tensor| net.forward_input_grad(t);
    let oracle = Oracle::new(&model, &net.input, (-50.0, 50.0), Criterion { top: 1 }, &Device::Cpu);
    let attacks = [
        Attack::Ddn(DdnConfig { steps: 300, ..DdnConfig::default() }),
        Attack::Pgd(PgdConfig { norm: Norm::L2, steps: 100, restarts: 2, eps_max: Some(20.0), bisections: 16 }),
        Attack::LogBarrier(LogBarrierConfig { outer: 8, inner: 200, ..LogBarrierConfig::paper(Norm::L2) }),
    ];
    let mut best = vec![f64::INFINITY; xs.len()];
    let mut rng = Rng::new(7);
    for a in attacks {
        for (i, adv) in a.run(&oracle, xs, &labels, &mut rng).unwrap().into_iter().enumerate() {
            if let Some(adv) = adv {
                // Counted only where the model, run again, disagrees with the label.
                if argmax(&logits(net, &adv)) != labels[i] {
                    best[i] = best[i].min(distance(Norm::L2, &adv, &xs[i]));
                }
            }
        }
    }
    xs.iter()
        .zip(&labels)
        .zip(best)
        .map(|((x, &y), b)| (certified_radius(&logits(net, x), y, |a, c| lip.margin(a, c)), b))
        .collect()
}

/// For one dense layer the certified radius is the exact distance to the nearest decision
/// boundary, which the attacks find: the bound is tight, so a missing or doubled factor in
/// the constant shows.
#[test]
fn the_certified_bound_is_the_exact_distance_for_a_linear_classifier() {
    let mut rng = Rng::new(1);
    let net = Net::init(&[LayerSpec::Linear { input: None, out: 4 }], &[6], &mut rng, &Device::Cpu).unwrap();
    for (bound, found) in radii_and_attacks(&net, &points(&mut rng, 8, 6)) {
        assert!(found >= bound * (1.0 - 1e-5), "an attack beat the certificate: {found} < {bound}");
        assert!(found <= bound * 1.01, "the attacks should reach the exact distance: {found} vs {bound}");
    }
}

/// Deeper models of every layer kind the constant covers: no attack ever goes below.
#[test]
fn no_attack_beats_the_certified_bound() {
    let conv = vec![
        LayerSpec::Normalize { mean: vec![0.5], std: vec![0.3] },
        LayerSpec::Conv2d { input: None, out: 3, kernel: 3, stride: 1, pad: 1 },
        LayerSpec::MaxPool { kernel: 2, stride: 2 },
        LayerSpec::Act(Activation::Relu),
        LayerSpec::Residual {
            body: vec![
                LayerSpec::Conv2d { input: None, out: 3, kernel: 3, stride: 1, pad: 1 },
                LayerSpec::Act(Activation::Tanh),
            ],
            farkas: None,
        },
        LayerSpec::Conv2d { input: None, out: 4, kernel: 3, stride: 2, pad: 1 },
        LayerSpec::Act(Activation::Softplus),
        LayerSpec::Flatten,
        LayerSpec::Linear { input: None, out: 8 },
        LayerSpec::Act(Activation::Sigmoid),
        LayerSpec::Dropout { p: 0.5 },
        LayerSpec::Linear { input: None, out: 3 },
    ];
    let mut rng = Rng::new(2);
    let net = Net::init(&conv, &[1, 8, 8], &mut rng, &Device::Cpu).unwrap();
    let pairs = radii_and_attacks(&net, &points(&mut rng, 6, 64));
    for (bound, found) in &pairs {
        assert!(found >= &(bound * (1.0 - 1e-5)), "an attack beat the certificate: {found} < {bound}");
    }
    assert!(pairs.iter().any(|p| p.1.is_finite()), "the attacks broke nothing: {pairs:?}");
    // A Farkas layer has no constant: an error, not a wrong number.
    let farkas = vec![LayerSpec::FarkasLinear { input: None, out: 3, agg: Aggregate::Sum }];
    let f = Net::init(&farkas, &[4], &mut rng, &Device::Cpu).unwrap();
    let e = f.lipschitz().unwrap_err().to_string();
    assert!(e.contains("Farkas"), "{e}");
}

fn two_blobs(n: usize, seed: u64) -> Dataset {
    let mut rng = Rng::new(seed);
    let mut x = Vec::with_capacity(n * 2);
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let c = (i % 2) as f64;
        x.push((0.35 + 0.3 * c + 0.08 * rng.normal()).clamp(0.0, 1.0) as f32);
        x.push((0.5 + 0.15 * rng.normal()).clamp(0.0, 1.0) as f32);
        y.push(c as u32);
    }
    Dataset { x, n, shape: vec![2], y: Some(y), classes: Some(2), names: None }
}

fn fit(data: &Dataset, penalties: Vec<Penalty>) -> Net {
    let specs = vec![
        LayerSpec::Linear { input: None, out: 32 },
        LayerSpec::Act(Activation::Relu),
        LayerSpec::Linear { input: None, out: 32 },
        LayerSpec::Act(Activation::Relu),
        LayerSpec::Linear { input: None, out: 2 },
    ];
    let mut rng = Rng::new(3);
    let net = Net::init(&specs, &[2], &mut rng, &Device::Cpu).unwrap();
    let cfg = FitConfig {
        objective: Objective::CrossEntropy,
        optimizer: OptimSpec::Adam {
            lr: 1e-2,
            weight_decay: 0.0,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            decoupled: false,
        },
        batch: 64,
        steps: 400,
        schedule: Schedule::Constant,
        warmup: 0,
        clip: None,
        augment: Augment::default(),
        eval_every: 1000,
        patience: None,
        checkpoint_every: None,
        penalties,
        bounds: (0.0, 1.0),
    };
    let start = Start { step: 0, optimizer_state: None };
    fit_classifier(&net, data, None, &cfg, start, &mut rng, &Device::Cpu, |_, _| {}, |_, _, _| Ok(())).unwrap();
    net
}

fn mean_gradient_norm(net: &Net, data: &Dataset) -> f64 {
    let x = Tensor::from_vec(data.x.clone(), (data.n, 2), &Device::Cpu).unwrap();
    let y = data.y.clone().unwrap();
    let (_, g) = loss_direction(net, &x, &y, Objective::CrossEntropy, GradNorm::L2, &mut Rng::new(1)).unwrap();
    let norms = gradient_norms(&g, GradNorm::L2).unwrap();
    norms.iter().sum::<f64>() / norms.len() as f64
}

/// The mean loss at PGD points of the ball around the test points: what adversarial
/// training minimises.
fn adversarial_loss(net: &Net, data: &Dataset, cfg: &Adversarial) -> f64 {
    let x = Tensor::from_vec(data.x.clone(), (data.n, 2), &Device::Cpu).unwrap();
    let y = data.y.clone().unwrap();
    let adv = pgd_examples(net, &x, &y, Objective::CrossEntropy, cfg, (0.0, 1.0), &mut Rng::new(4)).unwrap();
    let out = net.forward(&adv).unwrap();
    Objective::CrossEntropy.mean(&out, &y).unwrap().to_scalar::<f32>().unwrap() as f64
}

#[test]
fn the_input_gradient_penalty_shrinks_input_gradients_and_adversarial_training_the_loss_under_attack() {
    let (train, test) = (two_blobs(512, 1), two_blobs(200, 2));
    let plain = fit(&train, vec![]);
    let igr = fit(
        &train,
        vec![Penalty::InputGradient(InputGradient { lambda: 1.0, h: 0.01, norm: GradNorm::L2, exact: false })],
    );
    let exact = fit(
        &train,
        vec![Penalty::InputGradient(InputGradient { lambda: 1.0, h: 0.0, norm: GradNorm::L2, exact: true })],
    );
    let (g_plain, g_igr, g_exact) =
        (mean_gradient_norm(&plain, &test), mean_gradient_norm(&igr, &test), mean_gradient_norm(&exact, &test));
    assert!(g_igr < 0.7 * g_plain, "mean |grad_x l|: penalised {g_igr} vs plain {g_plain}");
    assert!(g_exact < 0.7 * g_plain, "mean |grad_x l|: exact penalty {g_exact} vs plain {g_plain}");
    let adv = Adversarial { ball: Ball::L2, eps: 0.1, steps: 5, step: 0.05, random_start: true, join: false };
    let madry = fit(&train, vec![Penalty::Adversarial(adv)]);
    let attack = Adversarial { steps: 20, step: 0.01, ..adv };
    let (l_plain, l_madry) = (adversarial_loss(&plain, &test, &attack), adversarial_loss(&madry, &test, &attack));
    assert!(l_madry < 0.9 * l_plain, "loss under PGD-20: adversarially trained {l_madry} vs plain {l_plain}");
}
