//! The eight 2-D sets of FFJORD (Grathwohl et al. 2019, `lib/toy_data.py`), from their
//! generating formulas, with class labels where a set has natural classes. `noise`
//! replaces each set's default noise level.

use super::Dataset;
use crate::rng::Rng;
use std::f64::consts::PI;

pub const TOY2D: [&str; 8] =
    ["checkerboard", "8gaussians", "2spirals", "moons", "circles", "rings", "pinwheel", "swissroll"];

pub fn generate(name: &str, n: usize, noise: Option<f64>, rng: &mut Rng) -> Result<Dataset, String> {
    let (points, labels, classes): (Vec<[f64; 2]>, Option<Vec<u32>>, Option<usize>) = match name {
        "moons" => labelled(moons(n, noise.unwrap_or(0.1), rng), 2),
        "circles" => labelled(circles(n, noise.unwrap_or(0.08), rng), 2),
        "rings" => labelled(rings(n, noise.unwrap_or(0.08), rng), 4),
        "8gaussians" => labelled(gaussians(n, noise.unwrap_or(0.5), rng), 8),
        "pinwheel" => labelled(pinwheel(n, noise.unwrap_or(0.3), rng), 5),
        "2spirals" => labelled(spirals(n, noise.unwrap_or(0.1), rng), 2),
        "checkerboard" => labelled(checkerboard(n, noise.unwrap_or(0.0), rng), 8),
        "swissroll" => (swissroll(n, noise.unwrap_or(1.0), rng), None, None),
        other => return Err(format!("unknown 2-D dataset `{other}`")),
    };
    let x = points.iter().flat_map(|p| [p[0] as f32, p[1] as f32]).collect();
    Ok(Dataset { x, n: points.len(), shape: vec![2], y: labels, classes, names: None })
}

type Labelled = Vec<([f64; 2], u32)>;

fn labelled(points: Labelled, classes: usize) -> (Vec<[f64; 2]>, Option<Vec<u32>>, Option<usize>) {
    let (p, l) = points.into_iter().unzip();
    (p, Some(l), Some(classes))
}

fn shuffled(mut v: Labelled, rng: &mut Rng) -> Labelled {
    rng.shuffle(&mut v);
    v
}

/// numpy's `linspace(0, end, n, endpoint)`.
fn linspace(end: f64, n: usize, endpoint: bool) -> impl Iterator<Item = f64> {
    let div = if endpoint { (n.max(2) - 1) as f64 } else { n.max(1) as f64 };
    (0..n).map(move |i| end * i as f64 / div)
}

/// sklearn `make_moons`, then FFJORD's `x * 2 + [-1, -0.2]`.
fn moons(n: usize, noise: f64, rng: &mut Rng) -> Labelled {
    let n_out = n / 2;
    let n_in = n - n_out;
    let mut v: Labelled = linspace(PI, n_out, true).map(|t| ([t.cos(), t.sin()], 0)).collect();
    v.extend(linspace(PI, n_in, true).map(|t| ([1.0 - t.cos(), 1.0 - t.sin() - 0.5], 1)));
    let mut v = shuffled(v, rng);
    for (p, _) in &mut v {
        p[0] = (p[0] + noise * rng.normal()) * 2.0 - 1.0;
        p[1] = (p[1] + noise * rng.normal()) * 2.0 - 0.2;
    }
    v
}

/// sklearn `make_circles(factor=0.5)`, scaled by 3.
fn circles(n: usize, noise: f64, rng: &mut Rng) -> Labelled {
    let n_out = n / 2;
    let n_in = n - n_out;
    let mut v: Labelled = linspace(2.0 * PI, n_out, false).map(|t| ([t.cos(), t.sin()], 0)).collect();
    v.extend(linspace(2.0 * PI, n_in, false).map(|t| ([0.5 * t.cos(), 0.5 * t.sin()], 1)));
    let mut v = shuffled(v, rng);
    for (p, _) in &mut v {
        p[0] = (p[0] + noise * rng.normal()) * 3.0;
        p[1] = (p[1] + noise * rng.normal()) * 3.0;
    }
    v
}

/// Four concentric rings of radius 3, 2.25, 1.5, 0.75 (label 0 is the outermost).
fn rings(n: usize, noise: f64, rng: &mut Rng) -> Labelled {
    let q = n / 4;
    let counts = [q, q, q, n - 3 * q];
    let radii = [1.0, 0.75, 0.5, 0.25];
    let mut v = Labelled::new();
    for (k, (&c, &r)) in counts.iter().zip(radii.iter()).enumerate() {
        v.extend(linspace(2.0 * PI, c, false).map(|t| ([t.cos() * r * 3.0, t.sin() * r * 3.0], k as u32)));
    }
    let mut v = shuffled(v, rng);
    for (p, _) in &mut v {
        p[0] += noise * rng.normal();
        p[1] += noise * rng.normal();
    }
    v
}

/// Eight Gaussians on a circle of radius 4, std `noise`, everything divided by 1.414.
fn gaussians(n: usize, std: f64, rng: &mut Rng) -> Labelled {
    let s = 1.0 / 2f64.sqrt();
    let centers = [(1.0, 0.0), (-1.0, 0.0), (0.0, 1.0), (0.0, -1.0), (s, s), (s, -s), (-s, s), (-s, -s)];
    (0..n)
        .map(|_| {
            let x = rng.normal() * std;
            let y = rng.normal() * std;
            let k = rng.below(8);
            let (cx, cy) = centers[k];
            ([(x + 4.0 * cx) / 1.414, (y + 4.0 * cy) / 1.414], k as u32)
        })
        .collect()
}

/// Five arms; `radial_std` is the noise, tangential std 0.1, rate 0.25.
fn pinwheel(n: usize, radial_std: f64, rng: &mut Rng) -> Labelled {
    let classes = 5;
    let per = n / classes;
    let mut v = Labelled::new();
    for k in 0..classes {
        let rad = 2.0 * PI * k as f64 / classes as f64;
        for _ in 0..per {
            let f0 = rng.normal() * radial_std + 1.0;
            let f1 = rng.normal() * 0.1;
            let angle = rad + 0.25 * f0.exp();
            let (s, c) = angle.sin_cos();
            v.push(([2.0 * (f0 * c - f1 * s), 2.0 * (f0 * s + f1 * c)], k as u32));
        }
    }
    shuffled(v, rng)
}

fn spirals(n: usize, noise: f64, rng: &mut Rng) -> Labelled {
    let half = n / 2;
    let mut v = Labelled::new();
    let mut arm = Vec::with_capacity(half);
    for _ in 0..half {
        let t = rng.uniform().sqrt() * 540.0 * 2.0 * PI / 360.0;
        let x = -t.cos() * t + rng.uniform() * 0.5;
        let y = t.sin() * t + rng.uniform() * 0.5;
        arm.push((x, y));
    }
    for &(x, y) in &arm {
        v.push(([x / 3.0, y / 3.0], 0));
    }
    for &(x, y) in &arm {
        v.push(([-x / 3.0, -y / 3.0], 1));
    }
    for (p, _) in &mut v {
        p[0] += rng.normal() * noise;
        p[1] += rng.normal() * noise;
    }
    v
}

/// Labels number the eight occupied squares: two per column of the 4x4 board.
fn checkerboard(n: usize, noise: f64, rng: &mut Rng) -> Labelled {
    (0..n)
        .map(|_| {
            let x1 = rng.uniform() * 4.0 - 2.0;
            let x2_ = rng.uniform() - (rng.below(2) as f64) * 2.0;
            let x2 = x2_ + x1.floor().rem_euclid(2.0);
            let col = (x1.floor() + 2.0).clamp(0.0, 3.0) as u32;
            let row = (x2.floor() + 2.0).clamp(0.0, 3.0) as u32;
            let p = [x1 * 2.0 + noise * rng.normal(), x2 * 2.0 + noise * rng.normal()];
            (p, col * 2 + row / 2)
        })
        .collect()
}

/// sklearn `make_swiss_roll`, keeping (x, z), divided by 5.
fn swissroll(n: usize, noise: f64, rng: &mut Rng) -> Vec<[f64; 2]> {
    (0..n)
        .map(|_| {
            let t = 1.5 * PI * (1.0 + 2.0 * rng.uniform());
            let _height = 21.0 * rng.uniform();
            let x = t * t.cos() + noise * rng.normal();
            let _y = noise * rng.normal();
            let z = t * t.sin() + noise * rng.normal();
            [x / 5.0, z / 5.0]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_set_has_n_points_and_valid_labels() {
        for name in TOY2D {
            let d = generate(name, 1000, None, &mut Rng::new(0)).unwrap();
            assert_eq!(d.n, 1000, "{name}");
            assert!(d.x.iter().all(|v| v.is_finite()));
            if let (Some(y), Some(k)) = (&d.y, d.classes) {
                assert!(y.iter().all(|&l| (l as usize) < k), "{name}");
                let used: std::collections::BTreeSet<_> = y.iter().collect();
                assert_eq!(used.len(), k, "{name}: every class occurs");
            }
        }
    }

    #[test]
    fn noiseless_moons_and_rings_match_their_formulas() {
        let d = generate("moons", 200, Some(0.0), &mut Rng::new(1)).unwrap();
        let y = d.y.as_ref().unwrap();
        for (i, &label) in y.iter().enumerate() {
            let (x0, x1) = ((d.row(i)[0] as f64 + 1.0) / 2.0, (d.row(i)[1] as f64 + 0.2) / 2.0);
            let r =
                if label == 0 { (x0 * x0 + x1 * x1).sqrt() } else { ((x0 - 1.0).powi(2) + (x1 - 0.5).powi(2)).sqrt() };
            assert!((r - 1.0).abs() < 1e-5, "moon point off its arc: {r}");
        }
        let d = generate("rings", 400, Some(0.0), &mut Rng::new(1)).unwrap();
        let y = d.y.as_ref().unwrap();
        for (i, &label) in y.iter().enumerate() {
            let r = (d.row(i)[0] as f64).hypot(d.row(i)[1] as f64);
            let want = [3.0, 2.25, 1.5, 0.75][label as usize];
            assert!((r - want).abs() < 1e-5);
        }
    }

    #[test]
    fn checkerboard_points_lie_on_dark_squares() {
        let d = generate("checkerboard", 2000, None, &mut Rng::new(2)).unwrap();
        for i in 0..d.n {
            let (a, b) = ((d.row(i)[0] / 2.0).floor() as i64, (d.row(i)[1] / 2.0).floor() as i64);
            assert_eq!((a + b).rem_euclid(2), 0, "({a},{b})");
        }
    }
}
