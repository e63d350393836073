//! The dissimilarities attacks minimise, on flattened perturbations.

use super::prox::{prox_l0, prox_l1, prox_l2, prox_linf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Norm {
    L0,
    L1,
    L2,
    Linf,
}

impl Norm {
    pub const ALL: [Norm; 4] = [Norm::L0, Norm::L1, Norm::L2, Norm::Linf];

    pub fn parse(s: &str) -> Option<Norm> {
        Some(match s {
            "l0" => Norm::L0,
            "l1" => Norm::L1,
            "l2" => Norm::L2,
            "linf" => Norm::Linf,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Norm::L0 => "l0",
            Norm::L1 => "l1",
            Norm::L2 => "l2",
            Norm::Linf => "linf",
        }
    }

    /// l0 counts entries that moved by more than float32 resolution of an input.
    pub fn of(self, d: &[f64]) -> f64 {
        match self {
            Norm::L0 => d.iter().filter(|v| v.abs() > 1e-6).count() as f64,
            Norm::L1 => d.iter().map(|v| v.abs()).sum(),
            Norm::L2 => d.iter().map(|v| v * v).sum::<f64>().sqrt(),
            Norm::Linf => d.iter().fold(0.0, |m, v| m.max(v.abs())),
        }
    }

    /// prox_{t ||.||}(v).
    pub fn prox(self, v: &[f64], t: f64) -> Vec<f64> {
        match self {
            Norm::L0 => prox_l0(v, t),
            Norm::L1 => prox_l1(v, t),
            Norm::L2 => prox_l2(v, t),
            Norm::Linf => prox_linf(v, t),
        }
    }
}

/// a - b, elementwise.
pub fn diff(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(p, q)| p - q).collect()
}

/// The distance between two inputs in `norm`.
pub fn distance(norm: Norm, a: &[f64], b: &[f64]) -> f64 {
    norm.of(&diff(a, b))
}
