//! Vector fields given by formulas, for solver tests and comparisons.

use candle_core::{Result, Tensor};

#[derive(Debug, Clone, PartialEq)]
pub enum AnalyticField {
    /// x' = p, p' = mu (1 - x^2) p - x.
    VanDerPol { mu: f64 },
    /// x' = alpha x - beta x y, y' = delta x y - gamma y.
    LotkaVolterra { alpha: f64, beta: f64, delta: f64, gamma: f64 },
    /// y' = A y, A given by its rows.
    Linear { matrix: Vec<Vec<f64>> },
}

impl AnalyticField {
    /// The state dimension the field acts on; an error for a matrix that is not square.
    pub fn dim(&self) -> std::result::Result<usize, String> {
        match self {
            AnalyticField::VanDerPol { .. } | AnalyticField::LotkaVolterra { .. } => Ok(2),
            AnalyticField::Linear { matrix } => {
                if matrix.is_empty() || matrix.iter().any(|r| r.len() != matrix.len()) {
                    return Err(format!(
                        "the matrix must be square; it has rows of lengths {:?}",
                        matrix.iter().map(Vec::len).collect::<Vec<_>>()
                    ));
                }
                Ok(matrix.len())
            }
        }
    }

    /// dy/dt at the state `y` (a vector).
    pub fn eval(&self, y: &Tensor) -> Result<Tensor> {
        let comp = |i: usize| y.narrow(0, i, 1);
        match self {
            AnalyticField::VanDerPol { mu } => {
                let (x, p) = (comp(0)?, comp(1)?);
                let dp = ((((x.sqr()? * -1.0)? + 1.0)? * &p)? * *mu)?.sub(&x)?;
                Tensor::cat(&[&p, &dp], 0)
            }
            AnalyticField::LotkaVolterra { alpha, beta, delta, gamma } => {
                let (x, q) = (comp(0)?, comp(1)?);
                let xy = (&x * &q)?;
                let dx = ((&x * *alpha)? - (&xy * *beta)?)?;
                let dy = ((&xy * *delta)? - (&q * *gamma)?)?;
                Tensor::cat(&[&dx, &dy], 0)
            }
            AnalyticField::Linear { matrix } => {
                let n = matrix.len();
                let flat: Vec<f64> = matrix.iter().flatten().copied().collect();
                let a = Tensor::from_vec(flat, (n, n), y.device())?;
                a.matmul(&y.unsqueeze(1)?)?.squeeze(1)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn fields_match_their_formulas() {
        let y = Tensor::new(&[2.0f64, 0.5], &Device::Cpu).unwrap();
        let f = |a: &AnalyticField| a.eval(&y).unwrap().to_vec1::<f64>().unwrap();
        assert_eq!(f(&AnalyticField::VanDerPol { mu: 1.0 }), vec![0.5, 1.0 * (1.0 - 4.0) * 0.5 - 2.0]);
        let lv = AnalyticField::LotkaVolterra { alpha: 1.5, beta: 1.0, delta: 1.0, gamma: 3.0 };
        assert_eq!(f(&lv), vec![1.5 * 2.0 - 1.0, 1.0 - 3.0 * 0.5]);
        let rot = AnalyticField::Linear { matrix: vec![vec![0.0, 1.0], vec![-1.0, 0.0]] };
        assert_eq!(f(&rot), vec![0.5, -2.0]);
        assert!(AnalyticField::Linear { matrix: vec![vec![1.0, 2.0]] }.dim().is_err());
    }
}
