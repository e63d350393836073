//! The certificates against closed forms: a linear binary classifier, whose smoothed
//! classifier and radius are known exactly, and a quadrant classifier whose Gaussian
//! average is a product of normal CDFs, attacked to see that its certificate holds.

use super::average::{gap_radius, monte_carlo_average};
use super::smoothing::Smoothing;
use super::stats::normal_cdf;
use crate::rng::Rng;
use crate::robust::attack::Attack;
use crate::robust::cw::CwConfig;
use crate::robust::ddn::DdnConfig;
use crate::robust::logbarrier::LogBarrierConfig;
use crate::robust::norms::Norm;
use crate::robust::oracle::{Criterion, Oracle};
use crate::robust::pgd::PgdConfig;
use candle_core::{Device, Result, Tensor};

const DIM: usize = 8;

/// w . x + b with |w| = 1, so w . x + b is the signed distance to the boundary.
fn linear() -> (Vec<f32>, f32) {
    let w: Vec<f32> = (0..DIM).map(|i| (i as f32 * 0.7).sin() + 0.2).collect();
    let norm = w.iter().map(|v| v * v).sum::<f32>().sqrt();
    (w.iter().map(|v| v / norm).collect(), 0.1)
}

/// A point at signed distance `d` from the linear boundary.
fn point_at(d: f32) -> Vec<f32> {
    let (w, b) = linear();
    w.iter().map(|wi| wi * (d - b)).collect()
}

fn scores(x: &Tensor) -> Result<Tensor> {
    let (w, b) = linear();
    let w = Tensor::from_vec(w, (DIM, 1), x.device())?;
    (x.matmul(&w)? + b as f64)?.squeeze(1)
}

/// Class 1 where w . x + b > 0.
fn classify(x: &Tensor) -> Result<Vec<u32>> {
    Ok(scores(x)?.to_vec1::<f32>()?.iter().map(|s| u32::from(*s > 0.0)).collect())
}

#[test]
fn randomized_smoothing_of_a_linear_classifier_certifies_its_distance() {
    // g = f for a linear f, and p_A = Phi(d / sigma): the radius sigma Phi^-1(p_A) is the
    // distance d itself, approached from below as n grows.
    let dev = Device::Cpu;
    let s = Smoothing { sigma: 0.5, n0: 100, n: 20_000, alpha: 0.001, batch: 5000 };
    let mut rng = Rng::new(1);
    for d in [0.2f32, 0.5, -0.8] {
        let x = point_at(d);
        let c = s.certify(&mut classify, &x, &[DIM], 2, &mut rng, &dev).unwrap();
        assert_eq!(c.class, Some(usize::from(d > 0.0)), "d = {d}");
        let d = d.abs() as f64;
        assert!(c.radius <= d, "certified {} beyond the true distance {d}", c.radius);
        // Clopper-Pearson at n = 20,000 costs a few hundredths of sigma.
        assert!(d - c.radius < 0.06, "radius {} far below {d}", c.radius);
        assert!(c.p_lower <= normal_cdf(d / 0.5));
        assert_eq!(c.evaluations, 20_100);
    }
    // At the boundary p_A = 1/2: CERTIFY and PREDICT abstain.
    let x = point_at(0.0);
    let c = s.certify(&mut classify, &x, &[DIM], 2, &mut rng, &dev).unwrap();
    assert_eq!(c.class, None);
    assert_eq!(c.radius, 0.0);
    assert_eq!(s.predict(&mut classify, &x, &[DIM], 2, 2000, &mut rng, &dev).unwrap(), None);
    assert_eq!(s.predict(&mut classify, &point_at(0.4), &[DIM], 2, 2000, &mut rng, &dev).unwrap(), Some(1));
}

/// The exact Gaussian average of the linear classifier's one-hot output:
/// (1 - Phi(s / sigma), Phi(s / sigma)), s the signed distance.
fn linear_average(x: &Tensor, sigma: f64) -> Result<Tensor> {
    let p = phi(&(scores(x)? / sigma)?)?.unsqueeze(1)?;
    Tensor::cat(&[&(1.0 - &p)?, &p], 1)
}

/// Phi by erf, differentiable.
fn phi(t: &Tensor) -> Result<Tensor> {
    ((t / std::f64::consts::SQRT_2)?.erf()? + 1.0)? * 0.5
}

#[test]
fn the_gaussian_average_certificate_of_a_linear_classifier_has_its_closed_form() {
    let dev = Device::Cpu;
    let sigma = 0.5;
    let mut rng = Rng::new(2);
    let onehot = |x: &Tensor| -> Result<Tensor> {
        let c = scores(x)?.gt(0.0)?.to_dtype(candle_core::DType::F32)?.unsqueeze(1)?;
        Tensor::cat(&[&(1.0 - &c)?, &c], 1)
    };
    for d in [0.1f32, 0.4, 1.0] {
        let x = point_at(d);
        let t = Tensor::from_vec(x.clone(), (1, DIM), &dev).unwrap();
        let v: Vec<f64> = linear_average(&t, sigma)
            .unwrap()
            .squeeze(0)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .map(|v| *v as f64)
            .collect();
        // Monte Carlo agrees with the closed form within its standard error.
        let (mc, se) = monte_carlo_average(&onehot, &x, &[DIM], 40_000, sigma, 10_000, &mut rng, &dev).unwrap();
        assert!((mc[1] - v[1]).abs() < 4.0 * se[1] + 1e-6, "MC {} vs exact {} (se {})", mc[1], v[1], se[1]);
        let (class, radius) = gap_radius(&v, sigma);
        assert_eq!(class, 1);
        let t = d as f64 / sigma;
        let closed = sigma * (std::f64::consts::PI / 2.0).sqrt() * (2.0 * normal_cdf(t) - 1.0);
        assert!((radius - closed).abs() < 1e-6, "{radius} vs {closed}");
        // It never exceeds the distance, and is tight as d -> 0 (slope 1 at the boundary).
        assert!(radius <= d as f64 + 1e-9);
        if d < 0.15 {
            assert!(radius > 0.95 * d as f64);
        }
    }
}

/// The exact Gaussian average of a four-class quadrant classifier (class by the signs of
/// x_0 and x_1): Phi(+-x_0 / sigma) Phi(+-x_1 / sigma).
fn quadrant_average(x: &Tensor, sigma: f64) -> Result<Tensor> {
    let a = phi(&(x.narrow(1, 0, 1)? / sigma)?)?;
    let b = phi(&(x.narrow(1, 1, 1)? / sigma)?)?;
    let (na, nb) = ((1.0 - &a)?, (1.0 - &b)?);
    Tensor::cat(&[&(&na * &nb)?, &(&a * &nb)?, &(&na * &b)?, &(&a * &b)?], 1)
}

#[test]
fn attacks_never_beat_the_certificate_of_an_exact_gaussian_average() {
    let dev = Device::Cpu;
    let sigma = 0.4;
    let model = |x: &Tensor| -> Result<Tensor> { quadrant_average(x, sigma)?.clamp(1e-12, 1.0)?.log() };
    let oracle = Oracle::new(&model, &[DIM], (-3.0, 3.0), Criterion { top: 1 }, &dev);
    let mut rng = Rng::new(3);
    let xs: Vec<Vec<f64>> = (0..12).map(|_| (0..DIM).map(|_| rng.normal() * 0.6).collect()).collect();
    let refs: Vec<&[f64]> = xs.iter().map(Vec::as_slice).collect();
    let probs: Vec<Vec<f64>> =
        oracle.logits(&refs).unwrap().iter().map(|l| l.iter().map(|v| v.exp()).collect()).collect();
    let certs: Vec<(usize, f64)> = probs.iter().map(|p| gap_radius(p, sigma)).collect();
    let labels: Vec<usize> = certs.iter().map(|c| c.0).collect();
    let attacks = [
        Attack::LogBarrier(LogBarrierConfig::paper(Norm::L2)),
        Attack::Pgd(PgdConfig::baseline(Norm::L2, None)),
        Attack::CarliniWagner(CwConfig::default()),
        Attack::Ddn(DdnConfig::default()),
    ];
    let mut broken = 0;
    for attack in attacks {
        let found = attack.run(&oracle, &xs, &labels, &mut rng).unwrap();
        for ((x, f), (label, radius)) in xs.iter().zip(&found).zip(&certs) {
            let true_distance = x[0].abs().min(x[1].abs());
            assert!(*radius <= true_distance + 1e-9, "certificate {radius} beyond the boundary {true_distance}");
            if let Some(a) = f {
                broken += 1;
                let d: f64 = a.iter().zip(x).map(|(p, q)| (p - q) * (p - q)).sum::<f64>().sqrt();
                let l = oracle.logits(&[a.as_slice()]).unwrap().remove(0);
                let pred = (0..l.len()).max_by(|&p, &q| l[p].total_cmp(&l[q])).unwrap();
                assert_ne!(pred, *label);
                assert!(d >= *radius * (1.0 - 1e-6), "{attack:?} found {d} inside the certified radius {radius}");
            }
        }
    }
    // The attacks work: most points are broken, each at or beyond its certificate.
    assert!(broken >= 40, "only {broken} of 48 attacks succeeded");
}
