//! Dense linear algebra written plainly, as an independent reference for tests of the
//! iterative methods (power iteration on operators).

/// Eigenvalues of a symmetric matrix by cyclic Jacobi rotations: an independent
/// reference for the power iteration.
pub fn jacobi_eigenvalues(mut a: Vec<Vec<f64>>) -> Vec<f64> {
    let n = a.len();
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i][j] * a[i][j])
            .sum();
        if off < 1e-22 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                if a[p][q].abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let (c, s) = (1.0 / (t * t + 1.0).sqrt(), t / (t * t + 1.0).sqrt());
                for row in a.iter_mut() {
                    let (akp, akq) = (row[p], row[q]);
                    row[p] = c * akp - s * akq;
                    row[q] = s * akp + c * akq;
                }
                let (rp, rq) = (a[p].clone(), a[q].clone());
                for (k, (apk, aqk)) in rp.into_iter().zip(rq).enumerate() {
                    a[p][k] = c * apk - s * aqk;
                    a[q][k] = s * apk + c * aqk;
                }
            }
        }
    }
    (0..n).map(|i| a[i][i]).collect()
}

pub fn largest_singular_value(rows: &[Vec<f64>]) -> f64 {
    let cols = rows[0].len();
    let ata: Vec<Vec<f64>> =
        (0..cols).map(|i| (0..cols).map(|j| rows.iter().map(|r| r[i] * r[j]).sum()).collect()).collect();
    jacobi_eigenvalues(ata).into_iter().fold(0.0, f64::max).sqrt()
}
