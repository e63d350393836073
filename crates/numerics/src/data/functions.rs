//! Named test functions for regression, R^d -> R, with their Gaussian averages
//! E[f(x + sigma Z)] in closed form, and inputs drawn uniformly from a box.

use super::Dataset;
use crate::rng::Rng;

pub const FUNCTIONS: [&str; 4] = ["quadratic", "sine", "step", "abs"];

fn phi(t: f64) -> f64 {
    crate::certify::stats::normal_cdf(t)
}

/// f at one input: `quadratic` sum x_i^2, `sine` sum sin(2 x_i), `step` 1[x_0 > 0], `abs`
/// sum |x_i|. None for an unknown name.
pub fn value(name: &str, x: &[f64]) -> Option<f64> {
    Some(match name {
        "quadratic" => x.iter().map(|v| v * v).sum(),
        "sine" => x.iter().map(|v| (2.0 * v).sin()).sum(),
        "step" => f64::from(x.first().is_some_and(|v| *v > 0.0)),
        "abs" => x.iter().map(|v| v.abs()).sum(),
        _ => return None,
    })
}

/// E[f(x + sigma Z)], Z ~ N(0, I), in closed form.
pub fn gaussian_average(name: &str, x: &[f64], sigma: f64) -> Option<f64> {
    let s2 = sigma * sigma;
    Some(match name {
        "quadratic" => x.iter().map(|v| v * v + s2).sum(),
        // E[sin(a (x + sigma Z))] = sin(a x) exp(-a^2 sigma^2 / 2), a = 2.
        "sine" => x.iter().map(|v| (2.0 * v).sin() * (-2.0 * s2).exp()).sum(),
        "step" => phi(x.first().copied().unwrap_or(0.0) / sigma),
        // E|x + sigma Z| = sigma sqrt(2/pi) exp(-x^2 / (2 sigma^2)) + x (1 - 2 Phi(-x / sigma)).
        "abs" => x
            .iter()
            .map(|v| {
                sigma * (2.0 / std::f64::consts::PI).sqrt() * (-v * v / (2.0 * s2)).exp()
                    + v * (1.0 - 2.0 * phi(-v / sigma))
            })
            .sum(),
        _ => return None,
    })
}

/// `n` inputs uniform in [low, high]^dims, unlabelled.
pub fn uniform_box(n: usize, dims: usize, low: f64, high: f64, rng: &mut Rng) -> Dataset {
    let x = (0..n * dims).map(|_| (low + (high - low) * rng.uniform()) as f32).collect();
    Dataset { x, n, shape: vec![dims], y: None, classes: None, names: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The closed forms against Monte Carlo with many draws.
    #[test]
    fn closed_form_averages_match_monte_carlo() {
        let mut rng = Rng::new(8);
        let sigma = 0.7;
        for name in FUNCTIONS {
            for x in [[0.3, -1.1], [-0.05, 0.8], [1.7, 0.0]] {
                let draws = 200_000;
                let (mut sum, mut sq) = (0.0, 0.0);
                for _ in 0..draws {
                    let p = [x[0] + sigma * rng.normal(), x[1] + sigma * rng.normal()];
                    let v = value(name, &p).unwrap();
                    sum += v;
                    sq += v * v;
                }
                let mean = sum / draws as f64;
                let se = ((sq / draws as f64 - mean * mean) / draws as f64).sqrt();
                let exact = gaussian_average(name, &x, sigma).unwrap();
                assert!((mean - exact).abs() < 5.0 * se + 1e-9, "{name} at {x:?}: MC {mean} vs {exact} (se {se})");
            }
        }
        assert_eq!(value("nope", &[0.0]), None);
    }
}
