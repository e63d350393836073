//! Butcher tableaus of the explicit Runge-Kutta methods.

/// Serialised by its lower-case name (`rk4`, `dopri5`), as checkpoints have always written it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Euler,
    Midpoint,
    Rk4,
    /// Bogacki-Shampine 3(2), adaptive, first-same-as-last.
    Bosh3,
    /// Dormand-Prince 5(4), adaptive, first-same-as-last, 4th-order dense output.
    Dopri5,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Euler => "euler",
            Method::Midpoint => "midpoint",
            Method::Rk4 => "rk4",
            Method::Bosh3 => "bosh3",
            Method::Dopri5 => "dopri5",
        }
    }

    pub const ALL: [Method; 5] = [Method::Euler, Method::Midpoint, Method::Rk4, Method::Bosh3, Method::Dopri5];

    /// The method of this name; `None` for any other.
    pub fn parse(name: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.name() == name)
    }

    pub fn adaptive(self) -> bool {
        matches!(self, Method::Bosh3 | Method::Dopri5)
    }

    /// Order of the solution the method propagates.
    pub fn order(self) -> usize {
        match self {
            Method::Euler => 1,
            Method::Midpoint => 2,
            Method::Rk4 => 4,
            Method::Bosh3 => 3,
            Method::Dopri5 => 5,
        }
    }

    pub fn tableau(self) -> Tableau {
        match self {
            Method::Euler => Tableau { c: vec![0.0], a: vec![vec![]], b: vec![1.0], b_err: None, fsal: false },
            Method::Midpoint => {
                Tableau { c: vec![0.0, 0.5], a: vec![vec![], vec![0.5]], b: vec![0.0, 1.0], b_err: None, fsal: false }
            }
            Method::Rk4 => Tableau {
                c: vec![0.0, 0.5, 0.5, 1.0],
                a: vec![vec![], vec![0.5], vec![0.0, 0.5], vec![0.0, 0.0, 1.0]],
                b: vec![1.0 / 6.0, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 6.0],
                b_err: None,
                fsal: false,
            },
            Method::Bosh3 => {
                let b = vec![2.0 / 9.0, 1.0 / 3.0, 4.0 / 9.0, 0.0];
                let b2 = [7.0 / 24.0, 1.0 / 4.0, 1.0 / 3.0, 1.0 / 8.0];
                Tableau {
                    c: vec![0.0, 0.5, 0.75, 1.0],
                    a: vec![vec![], vec![0.5], vec![0.0, 0.75], vec![2.0 / 9.0, 1.0 / 3.0, 4.0 / 9.0]],
                    b_err: Some(b.iter().zip(b2).map(|(x, y)| x - y).collect()),
                    b,
                    fsal: true,
                }
            }
            Method::Dopri5 => {
                let b = vec![35.0 / 384.0, 0.0, 500.0 / 1113.0, 125.0 / 192.0, -2187.0 / 6784.0, 11.0 / 84.0, 0.0];
                let b4 = [
                    5179.0 / 57600.0,
                    0.0,
                    7571.0 / 16695.0,
                    393.0 / 640.0,
                    -92097.0 / 339200.0,
                    187.0 / 2100.0,
                    1.0 / 40.0,
                ];
                Tableau {
                    c: vec![0.0, 1.0 / 5.0, 3.0 / 10.0, 4.0 / 5.0, 8.0 / 9.0, 1.0, 1.0],
                    a: vec![
                        vec![],
                        vec![1.0 / 5.0],
                        vec![3.0 / 40.0, 9.0 / 40.0],
                        vec![44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0],
                        vec![19372.0 / 6561.0, -25360.0 / 2187.0, 64448.0 / 6561.0, -212.0 / 729.0],
                        vec![9017.0 / 3168.0, -355.0 / 33.0, 46732.0 / 5247.0, 49.0 / 176.0, -5103.0 / 18656.0],
                        vec![35.0 / 384.0, 0.0, 500.0 / 1113.0, 125.0 / 192.0, -2187.0 / 6784.0, 11.0 / 84.0],
                    ],
                    b_err: Some(b.iter().zip(b4).map(|(x, y)| x - y).collect()),
                    b,
                    fsal: true,
                }
            }
        }
    }
}

/// Weights of the midpoint value y(t + h/2) for Dormand-Prince's dense output (Shampine 1986,
/// as torchdiffeq uses them), fitted with the end values into a quartic.
pub const DOPRI5_MID: [f64; 7] = [
    6025192743.0 / 30085553152.0 / 2.0,
    0.0,
    51252292925.0 / 65400821598.0 / 2.0,
    -2691868925.0 / 45128329728.0 / 2.0,
    187940372067.0 / 1594534317056.0 / 2.0,
    -1776094331.0 / 19743644256.0 / 2.0,
    11237099.0 / 235043384.0 / 2.0,
];

#[derive(Debug, Clone)]
pub struct Tableau {
    pub c: Vec<f64>,
    pub a: Vec<Vec<f64>>,
    pub b: Vec<f64>,
    /// b minus the embedded lower-order weights: the local error estimate.
    pub b_err: Option<Vec<f64>>,
    /// The last stage is f at the new point, reused as the next step's first stage.
    pub fsal: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tableaus_are_consistent() {
        for m in [Method::Euler, Method::Midpoint, Method::Rk4, Method::Bosh3, Method::Dopri5] {
            let t = m.tableau();
            assert!((t.b.iter().sum::<f64>() - 1.0).abs() < 1e-14, "{m:?} weights");
            for (i, row) in t.a.iter().enumerate() {
                assert!((row.iter().sum::<f64>() - t.c[i]).abs() < 1e-14, "{m:?} row {i}");
            }
            if let Some(e) = &t.b_err {
                assert!(e.iter().sum::<f64>().abs() < 1e-14, "{m:?} error weights sum to 0");
            }
        }
    }
}
